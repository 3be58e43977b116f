"""Optimisers for models with large embedding tables (pure PyTorch)."""

import torch

__all__ = ["LazyAdam", "sparse_gradients"]


class LazyAdam(torch.optim.Adam):
    """Adam that updates only the embedding rows a batch touches.

    A parameter with a sparse gradient (an embedding table of sklrec's modules
    trained with this optimizer) gets Adam's update on the rows its gradient
    holds, and nowhere else: the weights and moments of the other rows stay as
    they are, where Adam would move every row by its decaying momentum. A step
    then costs what the batch touches, not the size of the tables, which is what
    sets a dense Adam step's time once the tables hold a million rows (about
    14 times the lazy step for MF at batch 2048 on 2 CPU cores; on small
    tables the dense step is the faster). Dense gradients get
    :class:`torch.optim.Adam`'s update, unchanged.

    ``weight_decay`` is added to the gradient of the touched rows only, and the
    bias correction counts every step of the parameter, as in TensorFlow's
    ``LazyAdam``. The update reads no value back to the host, so a GPU step
    does not wait on it; each sparse parameter keeps one more buffer of its own
    size (for summing the rows a batch touches more than once), in place of the
    dense gradient it no longer needs. Code that reads the gradients as dense
    tensors, such as skorch's ``GradientNormClipping`` callback, does not take
    the sparse ones.

    Parameters
    ----------
    params : iterable
        Parameters, or dicts of parameter groups, as torch's optimisers take.
    lr : float, default=1e-3
        Learning rate.
    betas : tuple of float, default=(0.9, 0.999)
        Decay rates of the first and second moment estimates.
    eps : float, default=1e-8
        Added to the denominator.
    weight_decay : float, default=0.0
        L2 penalty, added to the gradient (of the touched rows, for a sparse
        gradient).
    fused : bool, default=None
        Use torch's fused Adam kernel for the dense gradients (sklrec's
        estimators ask for it where torch has one: on a GPU, the unfused
        kernels read the step count back to the host every step).

    Examples
    --------
    >>> import torch
    >>> from sklrec.optim import LazyAdam
    >>> table = torch.nn.Embedding(5, 2, sparse=True)
    >>> before = table.weight.detach().clone()
    >>> optimizer = LazyAdam(table.parameters(), lr=0.1)
    >>> table(torch.tensor([1, 3])).sum().backward()
    >>> optimizer.step()
    >>> (table.weight != before).any(dim=1).tolist()
    [False, True, False, True, False]
    """

    # sklrec's nets give the embeddings of a model trained with this class sparse gradients
    takes_sparse_gradients = True

    def __init__(
        self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, *, fused=None
    ):
        super().__init__(
            params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, fused=fused
        )

    @torch.no_grad()
    def step(self, closure=None):
        """Update the parameters once.

        Parameters
        ----------
        closure : callable, default=None
            Re-evaluates the model and returns the loss.

        Returns
        -------
        loss : Tensor or None
            What ``closure`` returned.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        sparse = [
            (p, group)
            for group in self.param_groups
            for p in group["params"]
            if p.grad is not None and p.grad.is_sparse
        ]
        for p, _ in sparse:
            if p.grad.sparse_dim() != 1:
                raise ValueError(
                    "LazyAdam updates whole rows: it takes sparse gradients with one sparse "
                    f"dimension (an embedding table's); got {p.grad.sparse_dim()} for a "
                    f"parameter of shape {tuple(p.shape)}"
                )
        # Adam steps the dense gradients; it skips a parameter whose gradient is None
        grads = [p.grad for p, _ in sparse]
        for p, _ in sparse:
            p.grad = None
        try:
            super().step()
        finally:
            for (p, _), grad in zip(sparse, grads, strict=True):
                p.grad = grad
        for p, group in sparse:
            self._update_rows(p, group)
        return loss

    def _update_rows(self, param, group):
        """Adam's update of the rows of ``param`` that its sparse gradient holds."""
        state = self.state[param]
        if not state:
            state["step"] = torch.zeros((), dtype=torch.float32, device=param.device)
            state["exp_avg"] = torch.zeros_like(param)
            state["exp_avg_sq"] = torch.zeros_like(param)
            state["grad_sum"] = torch.zeros_like(param)
        beta1, beta2 = group["betas"]
        grad = param.grad
        # an uncoalesced gradient may name a row more than once: sum its entries in a
        # zeroed buffer and read the sum back for each of them (no coalescing, whose
        # output size only the device knows); repeated rows then write equal values
        rows = grad._indices()[0]
        grad_sum = state["grad_sum"]
        grad_sum.index_add_(0, rows, grad._values())
        g = grad_sum.index_select(0, rows)
        grad_sum.index_fill_(0, rows, 0)
        weight = param.index_select(0, rows)
        if group["weight_decay"]:
            g = g.add(weight, alpha=group["weight_decay"])
        state["step"] += 1
        exp_avg = state["exp_avg"].index_select(0, rows).lerp_(g, 1 - beta1)
        exp_avg_sq = state["exp_avg_sq"].index_select(0, rows).mul_(beta2)
        exp_avg_sq.addcmul_(g, g, value=1 - beta2)
        state["exp_avg"].index_copy_(0, rows, exp_avg)
        state["exp_avg_sq"].index_copy_(0, rows, exp_avg_sq)
        # Adam's: lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
        bias1 = 1 - torch.pow(beta1, state["step"])
        bias2_sqrt = (1 - torch.pow(beta2, state["step"])).sqrt()
        denom = exp_avg_sq.sqrt_().div_(bias2_sqrt).add_(group["eps"])
        weight.sub_(exp_avg.div_(denom).mul_(group["lr"] / bias1))
        param.index_copy_(0, rows, weight)


def _takes_sparse_gradients(optimizer):
    """Whether the optimiser class ``optimizer`` wants the tables' gradients sparse."""
    return getattr(optimizer, "takes_sparse_gradients", False) is True


def sparse_gradients(module, sparse=True):
    """Make the embedding tables of ``module`` give sparse gradients, or dense ones.

    Sets ``sparse`` on every ``torch.nn.Embedding`` in ``module``: sparse for
    :class:`LazyAdam`, dense for optimisers that want dense gradients. sklrec's
    estimators call it when they build their optimiser; it is for training
    sklrec's modules by hand.

    Parameters
    ----------
    module : torch.nn.Module
    sparse : bool, default=True

    Returns
    -------
    module : torch.nn.Module
        The same module.
    """
    for table in module.modules():
        if isinstance(table, torch.nn.Embedding):
            table.sparse = sparse
    return module
