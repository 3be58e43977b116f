"""An embedding table whose CPU backward pass does not sort its indices."""

import torch
from torch import nn

__all__ = ["Embedding"]


class _SparseLookup(torch.autograd.Function):
    """Rows ``weight[index]``, whose gradient is a sparse tensor of those rows.

    As ``nn.Embedding(sparse=True)``'s, but the padding row's entries are
    zeroed in place rather than filtered out, so the gradient's size is known
    before the device computes it (torch's filter waits on a GPU every step).
    """

    @staticmethod
    def forward(weight, index, padding_idx):
        return weight.index_select(0, index)

    @staticmethod
    def setup_context(ctx, inputs, output):
        weight, index, padding_idx = inputs
        ctx.save_for_backward(index)
        ctx.shape, ctx.padding_idx = weight.shape, padding_idx

    @staticmethod
    def backward(ctx, grad_rows):
        (index,) = ctx.saved_tensors
        if ctx.padding_idx is not None:
            grad_rows = grad_rows.masked_fill((index == ctx.padding_idx).unsqueeze(-1), 0)
        grad = torch.sparse_coo_tensor(
            index.unsqueeze(0), grad_rows, ctx.shape, is_coalesced=False, check_invariants=False
        )
        return grad, None, None


class Embedding(nn.Embedding):
    """``nn.Embedding`` with a faster backward pass on CPU.

    For more than 3,000 indices torch's CPU embedding backward sorts them; at
    batch 4096 that was a quarter of a NeuMF training step. The backward of
    ``index_select`` (an ``index_add_``) gives the same gradient, summed in
    another order, and a NeuMF step at batch 4096 about 13% faster. The padding
    row gets no gradient, as in ``nn.Embedding``. Other devices keep torch's
    kernel. The NCF modules and ``MatrixFactorization`` use it.

    With ``sparse=True`` the gradient is a sparse tensor of the rows looked up,
    on every device, for an optimiser that updates only those rows
    (:class:`sklrec.optim.LazyAdam`).
    """

    def forward(self, index):
        # torch's kernel where it is not slow, or where an option changes the lookup
        if self.max_norm is not None or self.scale_grad_by_freq:
            return super().forward(index)
        flat = index.reshape(-1)
        if self.sparse and torch.is_grad_enabled() and self.weight.requires_grad:
            rows = _SparseLookup.apply(self.weight, flat, self.padding_idx)
            return rows.view(*index.shape, -1)
        if self.weight.device.type != "cpu":
            return super().forward(index)
        rows = self.weight.index_select(0, flat)
        # the mask stops the padding row's gradient; training batches hold no padding
        # index (it stands for unknown ids), and skipping the multiply by ones there
        # saves a pass forward and one backward over the rows (about a tenth of a
        # NeuMF step at batch 8192). Checking costs one pass over the indices, and
        # the .any() reads no device: this path runs on CPU only
        if self.padding_idx is not None and bool((flat == self.padding_idx).any()):
            rows = rows * (flat != self.padding_idx).unsqueeze(-1).to(rows.dtype)
        return rows.view(*index.shape, -1)
