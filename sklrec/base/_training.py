"""Training with skorch, shared by every torch estimator, and :class:`TorchRecommender`.

``_TorchTraining`` checks the shared training parameters and builds the net
(optimizer, "auto" batch and learning rate, cosine schedule, early stopping);
:class:`TorchRecommender` adds the recommenders' negatives, validation split,
``partial_fit`` and scoring.
"""

import functools
import inspect

import numpy as np
import torch
from skorch.callbacks import EarlyStopping, LRScheduler

from .._interactions import show_ids
from .._utils import (
    callback_objects,
    check_bool,
    check_callbacks,
    check_device,
    check_int,
    check_real,
    check_sizes,
    draw_seed,
    is_auto,
    is_callback,
    keep_state_on_error,
    seeded,
)
from ..callbacks import ValidationNDCG
from ..optim import LazyAdam
from ._estimators import BaseRecommender
from ._net import (
    _BCEWithLogitsLoss,
    _Positives,
    _RecNet,
    check_finite_weights,
    rescaled_weights,
)

_OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "adagrad": torch.optim.Adagrad,
    "rmsprop": torch.optim.RMSprop,
    "lazy_adam": LazyAdam,
}
# early_stopping="auto" turns on from this many positive interactions
_AUTO_EARLY_STOPPING = 10_000
# users whose held-out interaction is scored after every epoch, at most
_MAX_VALIDATION_USERS = 10_000
# sampled items each held-out validation item is ranked against
_VALIDATION_NEGATIVES = 99
_INTERNAL_CALLBACKS = ("sklrec_lr_schedule", "sklrec_validation", "sklrec_early_stopping")
_LR_SCHEDULES = ("cosine", "constant")
# batch_size="auto" takes the larger of its two batches from this many training
# samples an epoch (32 steps of 8192): measured between the demo's 180k samples,
# where batch 8192 lost 0.01 HR@10, and ML-100k's 490k, where it lost nothing
_LARGE_EPOCH = 2**18


@functools.cache
def _fused_available(optimizer, device_type):
    """Whether ``optimizer(fused=True)`` works on this torch build and device."""
    try:
        param = torch.zeros(1, device=device_type, requires_grad=True)
        optimizer([param], fused=True)
    except (RuntimeError, TypeError, ValueError):
        return False
    return True


def _host_copy(state):
    """``state`` (a state dict, nested) with every tensor copied to host memory."""
    if isinstance(state, torch.Tensor):
        return state.detach().to("cpu", copy=True)
    if isinstance(state, dict):
        return {key: _host_copy(value) for key, value in state.items()}
    if isinstance(state, (list, tuple)):
        return type(state)(_host_copy(value) for value in state)
    return state


def _snapshot(net, settings):
    """Return a function that puts back ``net``'s weights, optimiser state and history.

    The attributes named in ``settings`` are put back too. The copies are
    kept in host memory, so that ``partial_fit`` on a GPU does not need room
    for a second model there.
    """
    module = _host_copy(net.module_.state_dict())
    optimizer = _host_copy(net.optimizer_.state_dict())
    settings = {name: getattr(net, name) for name in settings}
    n_epochs = len(net.history)

    def restore():
        net.module_.load_state_dict(module)
        net.optimizer_.load_state_dict(optimizer)
        for name, value in settings.items():
            setattr(net, name, value)
        del net.history[n_epochs:]

    return restore


@functools.cache
def _takes_weight_decay(optimizer):
    """Whether the optimizer class ``optimizer`` takes a ``weight_decay`` argument."""
    params = inspect.signature(optimizer).parameters.values()
    return any(p.name == "weight_decay" or p.kind is p.VAR_KEYWORD for p in params)


def _silent(*args, **kwargs):
    """Drop skorch's messages (a picklable sink)."""


class _TorchTraining:
    """Training machinery shared by the torch estimators: parameters, optimiser, ``_run``.

    The estimator builds a ``_RecNet`` (or a subclass) in ``fit`` from
    :meth:`_net_kwargs` and trains it on a dataset with an ``epoch(generator)``
    method through :meth:`_run`.
    """

    # Estimators that take batch_size="auto" and lr="auto" set these: the batches
    # below and from _LARGE_EPOCH training samples an epoch, and the learning rate
    # at the smaller one (it grows in proportion to the batch up to the larger one)
    _auto_batch_sizes = None
    _auto_lr = None

    def _batch_size(self, n_samples):
        """Return the batch of a fit on ``n_samples`` training samples an epoch."""
        if not is_auto(self.batch_size):
            return self.batch_size
        small, large = self._auto_batch_sizes
        return large if n_samples >= _LARGE_EPOCH else small

    def _lr(self, batch_size):
        """Return the learning rate of training at ``batch_size``."""
        if not is_auto(self.lr):
            return self.lr
        small, large = self._auto_batch_sizes
        # linear in the batch between the two auto batches (Goyal et al., 2017), flat outside
        return self._auto_lr * min(max(batch_size, small), large) / small

    def _check_training_params(self):
        # the module sizes the families share, checked here so that a bad one
        # names itself instead of failing deep inside torch
        params = self.get_params(deep=False)
        if "embedding_dim" in params:
            check_int(self.embedding_dim, "embedding_dim")
        if "dropout" in params:
            check_real(self.dropout, "dropout", 0, 1, low_closed=True)
        if "hidden_dims" in params:
            check_sizes(self.hidden_dims, "hidden_dims")
        if "pretrain" in params:
            check_bool(self.pretrain, "pretrain")
        check_int(self.max_epochs, "max_epochs", minimum=0)
        if not isinstance(self.verbose, (bool, np.bool_)):  # True or an integer >= 0
            check_int(self.verbose, "verbose", minimum=0)
        check_callbacks(self.callbacks)
        if self.lr_schedule == "cosine" and any(
            is_callback(c, LRScheduler) for c in callback_objects(self.callbacks)
        ):
            raise ValueError(
                "callbacks hold a skorch LRScheduler, and lr_schedule='cosine' would set the "
                "learning rate too; pass lr_schedule='constant' to let yours alone set it"
            )
        auto = self._auto_batch_sizes is not None
        check_int(self.batch_size, "batch_size", auto=auto)
        if self.lr_schedule not in _LR_SCHEDULES:
            raise ValueError(
                f"lr_schedule must be one of {_LR_SCHEDULES}; got {self.lr_schedule!r}"
            )
        check_real(self.lr, "lr", 0, auto=auto)
        check_real(self.weight_decay, "weight_decay", 0, low_closed=True)
        optimizer = self._optimizer_class()
        if self._optimizer_weight_decay() and not _takes_weight_decay(optimizer):
            raise ValueError(
                f"optimizer {optimizer.__name__} takes no weight_decay; pass weight_decay=0 "
                "or an optimizer that takes one"
            )
        return check_device(self.device)

    def _optimizer_class(self):
        opt = self.optimizer
        if isinstance(opt, str) and opt.lower() in _OPTIMIZERS:
            return _OPTIMIZERS[opt.lower()]
        if isinstance(opt, type) and issubclass(opt, torch.optim.Optimizer):
            return opt
        raise ValueError(
            f"optimizer must be one of {sorted(_OPTIMIZERS)} or a torch.optim.Optimizer "
            f"subclass; got {opt!r}"
        )

    def _optimizer_weight_decay(self):
        """Return the L2 penalty handed to the optimizer (0 where the model applies its own)."""
        return self.weight_decay

    def _optimizer_kwargs(self, device, opt):
        """Return the arguments of optimizer ``opt``.

        Its weight decay where it takes one, and the fused kernel of Adam where
        torch has one.
        """
        kwargs = {}
        if _takes_weight_decay(opt):
            # always passed where taken: AdamW's own default is not 0
            kwargs["optimizer__weight_decay"] = self._optimizer_weight_decay()
        if opt in (torch.optim.Adam, torch.optim.AdamW, LazyAdam) and _fused_available(
            opt, device.type
        ):
            kwargs["optimizer__fused"] = True
        return kwargs

    def _schedule_callbacks(self, n_samples):
        """Return the cosine learning-rate schedule of a full ``fit`` (stepped every batch)."""
        if self.lr_schedule != "cosine":
            return []
        steps = self.max_epochs * -(-n_samples // self._batch_size(n_samples))
        schedule = LRScheduler(
            policy=torch.optim.lr_scheduler.CosineAnnealingLR,
            T_max=max(steps, 1),
            step_every="batch",
            event_name=None,
        )
        return [("sklrec_lr_schedule", schedule)]

    def _net_kwargs(
        self, seed, device, n_samples, internal=(), user_callbacks=True, optimizer=None
    ):
        """Return the constructor arguments every net of this estimator shares.

        ``n_samples`` is the number of training samples an epoch (it sets an
        "auto" batch). ``optimizer`` (a ``torch.optim.Optimizer`` class)
        replaces the estimator's own for this net.
        """
        optimizer = optimizer or self._optimizer_class()
        batch_size = self._batch_size(n_samples)
        return dict(
            optimizer=optimizer,
            **self._optimizer_kwargs(device, optimizer),
            lr=self._lr(batch_size),
            max_epochs=self.max_epochs,
            batch_size=batch_size,
            # the user's callbacks pass straight through, as skorch takes them
            callbacks=list((self.callbacks or []) if user_callbacks else []) + list(internal),
            train_split=None,
            iterator_train__seed=seed,
            device=str(device),
            verbose=self.verbose,
        )

    def _stopping_callbacks(self, validation):
        """Return ``validation`` (a score per epoch) and early stopping on that score.

        Training stops after ``n_iter_no_change`` epochs without a better
        score and the weights of the best epoch are restored.
        """
        if not self.max_epochs:  # no epoch to stop (skorch's EarlyStopping fails on none)
            return []
        stop = EarlyStopping(
            monitor=validation.name_,
            patience=self.n_iter_no_change,
            lower_is_better=validation._lower_is_better,
            load_best=True,
            sink=print if self.verbose else _silent,
        )
        return [("sklrec_validation", validation), ("sklrec_early_stopping", stop)]

    def _run(self, net, data, epochs=None):
        """Train ``net`` as ``net_``, lending it this estimator for the callbacks.

        The schedule and early stopping callbacks of ``fit`` are dropped
        afterwards, so that a later ``partial_fit`` trains exactly one more
        epoch at ``lr``.
        """
        self.net_ = net
        net.recommender_ = self
        try:
            net.partial_fit(data, None, epochs=epochs)
            check_finite_weights(net)
        finally:
            del net.recommender_
            if net.initialized_:
                net.callbacks_ = [c for c in net.callbacks_ if c[0] not in _INTERNAL_CALLBACKS]
            net.callbacks = [
                c
                for c in net.callbacks
                if not (isinstance(c, tuple) and c[0] in _INTERNAL_CALLBACKS)
            ]
        return net

    def _net_extra(self):
        """Return extra constructor arguments of the net (training settings)."""
        return {}

    def _check_fitted_module(self):
        """Raise if a parameter that built ``net_``'s module changed since ``fit``.

        ``partial_fit`` goes on training the fitted module, so a changed size,
        dropout or activation would otherwise be ignored without a word.
        """
        _, kwargs = self._module_params()
        changed = [
            f"{name} {getattr(self.net_, 'module__' + name)!r} -> {value!r}"
            for name, value in kwargs.items()
            if getattr(self.net_, "module__" + name, value) != value
        ]
        if changed:
            raise ValueError(
                f"the model's architecture changed since fit ({', '.join(changed)}); "
                "partial_fit goes on training the fitted model: call fit to build the new one"
            )

    def _continue(self, data, epochs=1):
        """Train ``net_`` ``epochs`` more epochs at constant ``lr`` (``partial_fit``).

        ``lr``, ``weight_decay`` and the net's other training settings
        (``_net_extra``) take their current values; the batch size is the
        fitted net's.
        """
        extra = self._net_extra()
        restore = _snapshot(self.net_, extra)
        try:
            for group in self.net_.optimizer_.param_groups:  # no schedule outside fit
                group["lr"] = self._lr(self.net_.batch_size)
                if "weight_decay" in group:
                    group["weight_decay"] = self._optimizer_weight_decay()
            for name, value in extra.items():
                setattr(self.net_, name, value)
            with seeded(self._seed + len(self.net_.history), self.net_.device):
                self._run(self.net_, data, epochs=epochs)
        except BaseException:
            restore()  # a diverged epoch leaves the fitted model as it was
            raise

    @property
    def n_iter_(self):
        """Epochs ``net_`` trained: ``fit``'s (up to early stopping), one per ``partial_fit``."""
        return len(self.net_.history)

    @property
    def _device(self):
        return torch.device(self.net_.device)


class TorchRecommender(_TorchTraining, BaseRecommender):
    """A recommender whose scores come from a PyTorch module trained by skorch.

    Subclasses define ``_module_params()`` (the module class and its keyword
    arguments) and may set ``_pairwise = True`` to train with BPR.
    """

    _min_samples = 2
    _pairwise = False

    def _module_params(self):
        raise NotImplementedError

    def _check_params(self):
        super()._check_params()
        check_int(self.n_negatives, "n_negatives")
        check_int(self.n_iter_no_change, "n_iter_no_change")
        if self.early_stopping not in ("auto", True, False):
            raise ValueError(
                f'early_stopping must be "auto", True or False; got {self.early_stopping!r}'
            )
        return self._check_training_params()

    def _check_negatives(self, positives):
        """Every user with positives needs ``n_negatives`` items that are not."""
        degree = np.diff(positives.indptr)
        free = self.n_items_ - degree
        active = degree > 0
        if (active & (free == 0)).any():
            raise ValueError(
                f"user(s) {show_ids(self.users_[active & (free == 0)])} interacted with "
                f"every one of the {self.n_items_} items: no negative can be drawn for them"
            )
        short = active & (free < self.n_negatives)
        if short.any():
            raise ValueError(
                f"n_negatives={self.n_negatives} is larger than the items left to draw as "
                f"negatives for user(s) {show_ids(self.users_[short])} (as few as "
                f"{free[short].min()})"
            )

    def _split_validation(self, user_index, item_index, seed):
        """Hold out one random positive of each user with at least three.

        Users with fewer unseen items than the validation's negatives sit out.

        Returns the mask of the training pairs and the held-out ones as
        1-based index arrays (``None`` when early stopping is off). The
        held-out pairs stay in ``interactions_``: they are never drawn as
        negatives.
        """
        on = self.early_stopping
        if on == "auto":
            on = len(user_index) >= _AUTO_EARLY_STOPPING
        train = np.ones(len(user_index), dtype=bool)
        if not on:
            return train, None
        rng = np.random.RandomState(seed)
        counts = np.bincount(user_index, minlength=self.n_users_)
        eligible = np.flatnonzero(counts >= 3)
        # each held-out item is ranked against the same number of sampled unseen items,
        # up to 99: as many as nine in ten of the users have, so that a few heavy users
        # of a small catalogue cannot cut everyone's to theirs (one user who had seen
        # all but 4 of 300 items made every user's 4); users with fewer sit out
        free = self.n_items_ - np.diff(self.interactions_.indptr)
        n_negatives = 0
        if len(eligible):
            n_negatives = min(
                _VALIDATION_NEGATIVES, int(np.quantile(free[eligible], 0.1, method="lower"))
            )
            eligible = eligible[free[eligible] >= n_negatives]
        if len(eligible) > _MAX_VALIDATION_USERS:
            eligible = np.sort(rng.choice(eligible, _MAX_VALIDATION_USERS, replace=False))
        if not len(eligible):
            raise ValueError(
                "early_stopping needs users with at least 3 positive interactions to hold "
                "one out; there are none (pass early_stopping=False)"
            )
        order = np.lexsort((rng.random_sample(len(user_index)), user_index))
        held = order[(np.cumsum(counts) - counts)[eligible]]
        train[held] = False
        # sampled negatives (the same ones every epoch): cheap next to a full ranking, and
        # it still works for huge catalogues
        valid = (user_index[held] + 1, item_index[held] + 1, n_negatives, seed)
        return train, valid

    def _internal_callbacks(self, n_samples, valid):
        """Return the learning-rate schedule and early stopping of a full ``fit``."""
        callbacks = self._schedule_callbacks(n_samples)
        if valid is not None:
            callbacks += self._stopping_callbacks(ValidationNDCG(*valid))
        return callbacks

    def _make_net(
        self,
        module,
        seed,
        device,
        n_samples,
        internal=(),
        user_callbacks=True,
        optimizer=None,
        **module_kwargs,
    ):
        return _RecNet(
            module=module,
            **{f"module__{key}": value for key, value in module_kwargs.items()},
            module__n_users=self.n_users_ + 1,
            module__n_items=self.n_items_ + 1,
            criterion=_BCEWithLogitsLoss,
            **self._net_kwargs(seed, device, n_samples, internal, user_callbacks, optimizer),
        )

    def _training_data(self, user_index, item_index, device, weights=None):
        weights = rescaled_weights(
            weights, "positive left to train on (early stopping holds one positive of a user out)"
        )
        return _Positives(
            user_index,
            item_index,
            self._positive_interactions(),
            self.n_negatives,
            self._pairwise,
            device,
            weights,
        )

    def _fit_model(self, user_index, item_index, epochs, weights=None):
        device = check_device(self.device)
        self._seed = draw_seed(self.random_state)
        self._check_negatives(self._positive_interactions())
        valid = None
        if epochs is None:  # partial_fit trains one epoch and never stops early
            train, valid = self._split_validation(user_index, item_index, self._seed)
            user_index, item_index = user_index[train], item_index[train]
            weights = None if weights is None else weights[train]
        data = self._training_data(user_index, item_index, device, weights)
        with seeded(self._seed, device):
            self._train(data, device, self._seed, epochs, valid)

    def _train(self, data, device, seed, epochs, valid):
        """Build and train ``net_``; ``epochs=None`` means ``max_epochs``."""
        module, kwargs = self._module_params()
        internal = self._internal_callbacks(len(data), valid) if epochs is None else ()
        net = self._make_net(module, seed, device, len(data), internal, **kwargs)
        self._run(net, data, epochs)

    @keep_state_on_error
    def partial_fit(self, X, y=None, sample_weight=None):
        """Train one more epoch on ``X`` (one epoch from scratch if unfitted).

        The ids of ``X`` must have been seen in the first fit; its rows join
        ``interactions_``. Optuna's pruning calls this once per step.
        ``lr`` and ``weight_decay`` take their current values; the module's
        architecture (a changed size, dropout or activation raises), the batch
        size, the device, the callbacks and the optimizer with its state stay
        those of ``fit``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_columns)
        y : array-like of shape (n_samples,), default=None
        sample_weight : array-like of shape (n_samples,), default=None
            As in :meth:`fit`, rescaled to a mean of 1 over this call's positives.

        Returns
        -------
        self : object
        """
        if not hasattr(self, "net_"):
            return self._fit(X, y, epochs=1, sample_weight=sample_weight)
        self._check_params()
        self._check_fitted_module()
        device = self.net_.device
        X = self._check_X(X, reset=False)
        positive = self._positive_rows(X, y)
        weights = self._sample_weights(sample_weight, len(X), positive, "positive row")
        users, items = self._known_ids(X)
        self._add_interactions(users, items, positive)
        self._check_negatives(self._positive_interactions())
        self._continue(self._training_data(users[positive], items[positive], device, weights))
        return self

    # -- scoring protocol ---------------------------------------------------------
    def _pair_width(self):
        return getattr(self.net_.module_, "pair_width", 1)

    def _forward_width(self):
        return getattr(self.net_.module_, "forward_width", 1)

    def _score_pairs(self, users, items):
        module = self.net_.module_.eval()
        with torch.inference_mode():
            return module(users, items).float()

    def _score_all(self, users):
        module = self.net_.module_.eval()
        with torch.inference_mode():
            return module.score_all(users)[:, 1:].float()
