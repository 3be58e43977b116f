"""Shared estimator machinery.

* :class:`BaseRecommender`: interaction-form validation, raw-id maps, the
  training matrix ``interactions_``, ``predict`` / ``recommend`` / ``score``.
* :class:`TorchRecommender`: builds a skorch net in ``fit`` and keeps it as
  ``net_``; trains on positives plus negatives drawn afresh every epoch.
* ``_RecNet``: the internal :class:`skorch.NeuralNet` subclass with a batch
  iterator over tensors and an epoch loop that does not sync with the device
  per batch.
"""

import functools

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch import NeuralNet
from skorch.callbacks import Callback, EarlyStopping, EpochTimer, LRScheduler, PrintLog
from skorch.utils import TeeGenerator

from ._interactions import (
    IdMap,
    as_id_column,
    build_interactions,
    check_target,
    mask_seen,
    show_ids,
)
from ._utils import (
    check_callbacks,
    check_device,
    check_int,
    check_real,
    check_sizes,
    draw_seed,
    is_auto,
    keep_state_on_error,
    seeded,
)
from .callbacks import ValidationNDCG, ValidationRMSE
from .metrics import evaluate_ranking
from .sampling import NegativeIndex, sample_negatives

__all__ = ["BaseRecommender", "BaseRegressor", "TorchRecommender", "TorchRegressor"]

_OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "adagrad": torch.optim.Adagrad,
    "rmsprop": torch.optim.RMSprop,
}
_HANDLE_UNKNOWN = ("warn", "ignore", "error")
# Floats one scoring chunk may hold: users x items x per-pair width.
_SCORE_BUDGET = 2**25
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


def _silent(*args, **kwargs):
    """Drop skorch's messages (a picklable sink)."""


class _InteractionEstimator(BaseEstimator):
    """Validation of interaction-form input and the raw-id maps ``users_`` / ``items_``."""

    # ensure_min_samples for fit: models that draw negatives need two rows
    _min_samples = 1

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        return tags

    # -- input ---------------------------------------------------------------
    def _check_X(self, X, *, reset):
        if sp.issparse(X):
            raise TypeError(
                "Sparse X (the matrix form, one row per user) is not supported yet; pass "
                "interactions: one (user id, item id, ...) row per sample"
            )
        if isinstance(X, (list, tuple)) and len(X) and not hasattr(X[0], "__array__"):
            # keep ints and strings of a list of tuples apart (np.asarray would
            # turn a (1, "a") row into ("1", "a"))
            rows = list(X)
            arr = np.empty((len(rows), len(rows[0]) if np.ndim(rows[0]) else 1), dtype=object)
            try:
                arr[:] = rows
            except ValueError as exc:
                raise ValueError(f"X rows must all have the same length: {exc}") from None
            X = arr
        return validate_data(
            self,
            X,
            reset=reset,
            dtype=None,
            ensure_all_finite=False,
            # after fit, validate_data's own check on n_features_in_ is the clearer one
            ensure_min_features=2 if reset else 1,
            ensure_min_samples=self._min_samples if reset else 1,
        )

    def _check_params(self):
        if self.handle_unknown not in _HANDLE_UNKNOWN:
            raise ValueError(
                f"handle_unknown must be one of {_HANDLE_UNKNOWN}; got {self.handle_unknown!r}"
            )

    # -- id maps ---------------------------------------------------------------
    @property
    def n_users_(self):
        """Number of users seen in ``fit``."""
        return len(self.users_)

    @property
    def n_items_(self):
        """Number of items seen in ``fit``."""
        return len(self.items_)

    def _encode(self, values, kind):
        ids = self.users_ if kind == "user" else self.items_
        return IdMap(ids, kind).encode_known(
            values, self.handle_unknown, estimator_name=type(self).__name__
        )

    def _known_ids(self, X):
        """Return 0-based user and item indices of validated ``X``; unknown ids raise."""
        name = type(self).__name__
        users, _ = IdMap(self.users_, "user").encode_known(X[:, 0], "error", estimator_name=name)
        items, _ = IdMap(self.items_, "item").encode_known(X[:, 1], "error", estimator_name=name)
        return users - 1, items - 1

    def _encode_X(self, X):
        """Validate ``X`` and return 1-based user and item indices (0 = unknown)."""
        check_is_fitted(self)
        X = self._check_X(X, reset=False)
        users, known_users = self._encode(X[:, 0], "user")
        items, known_items = self._encode(X[:, 1], "item")
        return users, items, known_users & known_items


class BaseRecommender(_InteractionEstimator):
    """Shared machinery of every recommender on interaction-form input.

    Subclasses implement ``_fit_model(user_index, item_index, epochs)`` (0-based
    positive pairs) and the scoring protocol ``_score_pairs(users, items)`` and
    ``_score_all(users)`` on 1-based index tensors (0 is an unknown id).
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        return tags

    def _positive_rows(self, X, y):
        """Boolean mask of the rows that count as positive interactions."""
        threshold = getattr(self, "positive_threshold", None)
        if y is not None:
            y = check_target(y, len(X))
        if threshold is None:
            return np.ones(len(X), dtype=bool)
        if y is None:
            raise ValueError(
                f"positive_threshold={threshold!r} needs y (ratings or weights); y is None"
            )
        mask = y >= threshold
        if not mask.any():
            raise ValueError(
                f"no row has y >= positive_threshold={threshold!r}: nothing to learn from"
            )
        return mask

    @keep_state_on_error
    def fit(self, X, y=None, sample_weight=None):
        """Fit the model to interactions.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_columns)
            Column 0 holds user ids, column 1 item ids (ints or strings);
            further columns are context and are ignored.
        y : array-like of shape (n_samples,), default=None
            Ratings or weights. Without ``positive_threshold`` every row is a
            positive interaction and ``y`` is only checked; with it, rows with
            ``y >= positive_threshold`` are the positives.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each positive row. The torch models weigh
            its term of the loss by it (the negatives sampled for it keep
            weight 1), rescaled to a mean of 1 over the positives they train
            on, so that ``lr`` and ``weight_decay`` keep their meaning;
            ``PopularityRecommender`` sums the weights. A row of weight 0
            still counts as seen (never drawn as its user's negative, excluded
            by ``recommend``) but teaches nothing.
            :func:`sklrec.preprocessing.recency_weights` weights each user's
            recent interactions up.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, y, epochs=None, sample_weight=sample_weight)

    def _fit(self, X, y, epochs, sample_weight=None):
        self._check_params()
        X = self._check_X(X, reset=True)
        positive = self._positive_rows(X, y)
        weights = self._positive_weights(sample_weight, X, positive)
        users = as_id_column(X[:, 0], "user")
        items = as_id_column(X[:, 1], "item")
        self.users_, user_index = np.unique(users, return_inverse=True)
        self.items_, item_index = np.unique(items, return_inverse=True)
        self.interactions_ = build_interactions(
            user_index[positive], item_index[positive], len(self.users_), len(self.items_)
        )
        self._fit_model(user_index[positive], item_index[positive], epochs, weights)
        return self

    @staticmethod
    def _positive_weights(sample_weight, X, positive):
        """Return the checked ``sample_weight`` of the positive rows (``None`` if not given).

        A scalar weighs every row the same, as in scikit-learn.
        """
        if sample_weight is None:
            return None
        try:
            weights = np.asarray(sample_weight, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"sample_weight must hold numbers; got {type(sample_weight).__name__}"
            ) from None
        if weights.ndim == 0:
            weights = np.full(len(X), float(weights))
        if weights.shape != (len(X),):
            raise ValueError(
                f"sample_weight has shape {weights.shape}; expected ({len(X)},), one weight "
                "per row of X"
            )
        if not np.isfinite(weights).all():
            raise ValueError("sample_weight contains NaN or infinite values")
        negative = np.flatnonzero(weights < 0)
        if len(negative):
            raise ValueError(
                f"sample_weight must be non-negative; rows {show_ids(negative)} are negative"
            )
        weights = weights[positive]
        if not weights.sum() > 0:
            raise ValueError("sample_weight is zero on every positive row: nothing to learn from")
        return weights

    def _fit_model(self, user_index, item_index, epochs, weights=None):
        """Learn from 0-based positive pairs (``epochs=None``: the full schedule).

        ``weights`` are the pairs' ``sample_weight``, or ``None``.
        """
        raise NotImplementedError

    # -- scoring protocol ---------------------------------------------------------
    @property
    def _device(self):
        return torch.device("cpu")

    def _pair_width(self):
        return 1

    def _score_pairs(self, users, items):
        """Scores of broadcastable 1-based index tensors ``users`` and ``items``."""
        raise NotImplementedError

    def _score_all(self, users):
        """Scores of ``users`` (1-based, shape (B,)) against every item: (B, n_items_)."""
        raise NotImplementedError

    def _user_chunks(self, n):
        """Slices of at most as many users as a scoring chunk can hold."""
        step = max(1, _SCORE_BUDGET // max(1, self.n_items_ * self._pair_width()))
        return [slice(start, min(start + step, n)) for start in range(0, n, step)]

    # -- public API -------------------------------------------------------------
    def predict(self, X):
        """Relevance score of each (user, item) row of ``X``; higher is better.

        Rows with a user or item unseen in ``fit`` get ``-inf`` (the lowest
        score) and a warning, or a ``ValueError`` if
        ``handle_unknown="error"``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_columns)
            Interactions in the form given to ``fit``.

        Returns
        -------
        scores : ndarray of shape (n_samples,)
        """
        users, items, known = self._encode_X(X)
        scores = np.full(len(users), -np.inf)
        if known.any():
            u = torch.as_tensor(users[known], device=self._device)
            i = torch.as_tensor(items[known], device=self._device)
            step = 1 << 18
            parts = [
                self._score_pairs(u[s : s + step], i[s : s + step]) for s in range(0, len(u), step)
            ]
            scores[known] = torch.cat(parts).double().cpu().numpy()
        return scores

    def recommend(self, users, k=10, exclude_seen=True):
        """Return the top ``k`` items for each user, best first.

        Parameters
        ----------
        users : array-like of shape (n_users,)
            Raw user ids. Users unseen in ``fit`` are served from an empty
            history (with a warning), unless ``handle_unknown="error"``.
        k : int, default=10
            Items per user; at most the size of the catalogue.
        exclude_seen : bool, default=True
            Leave out the items each user interacted with in ``fit``.

        Returns
        -------
        items : ndarray of shape (n_users, k)
            Raw item ids.
        """
        check_is_fitted(self)
        users = np.asarray(users)
        if users.ndim != 1:
            raise ValueError(f"users must be a 1-d array of ids; got shape {users.shape}")
        k = check_int(k, "k")
        if k > self.n_items_:
            raise ValueError(f"k={k} is larger than the catalogue of {self.n_items_} items")
        index, known = self._encode(users, "user")
        if exclude_seen and known.any():
            seen = np.diff(self.interactions_.indptr)[index[known] - 1]
            short = seen > self.n_items_ - k
            if short.any():
                raise ValueError(
                    f"k={k} is more than the unseen items of user(s) "
                    f"{show_ids(users[known][short])} (the catalogue has {self.n_items_} "
                    "items); lower k or pass exclude_seen=False"
                )
        top = np.empty((len(users), k), dtype=np.int64)
        index_t = torch.as_tensor(index, device=self._device)
        with torch.inference_mode():
            for chunk in self._user_chunks(len(users)):
                scores = self._score_all(index_t[chunk])
                if exclude_seen:
                    mask_seen(scores, self.interactions_, index[chunk])
                top[chunk] = torch.topk(scores, k, dim=1).indices.cpu().numpy()
        return self.items_[top]

    def score(self, X, y=None):
        """NDCG@10 over the full catalogue, items seen in ``fit`` excluded.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_columns)
            Held-out interactions: each row is a relevant (user, item) pair.
        y : array-like of shape (n_samples,), default=None
            With ``positive_threshold``, only rows with ``y >= threshold``
            count as relevant.

        Returns
        -------
        score : float
        """
        return evaluate_ranking(self, X, y, metrics=("ndcg",), k=10)["ndcg"]


def _permuted(x, y, generator, shuffle):
    """``(x, y)``, permuted along the first axis by ``torch.randperm`` when ``shuffle``."""
    if not shuffle:
        return x, y
    perm = torch.randperm(len(y), generator=generator, device=y.device)
    return {key: value.index_select(0, perm) for key, value in x.items()}, y.index_select(0, perm)


class _Positives:
    """Training set of positive pairs that draws a fresh epoch of negatives.

    ``epoch(generator, shuffle)`` returns ``(X, y)``: pointwise, the positives
    and ``n_negatives`` sampled items per positive with 1/0 labels; pairwise,
    one (user, positive, negative) triple per sampled negative with label 1, to
    be scored by the difference of the two logits (BPR). With ``weights`` (one
    per positive), ``X["sample_weight"]`` holds each sample's loss weight: its
    positive's (negatives weigh 1 in the pointwise loss).
    """

    def __init__(
        self, user_index, item_index, interactions, n_negatives, pairwise, device, weights=None
    ):
        self.users = torch.as_tensor(user_index, dtype=torch.int64, device=device)
        self.items = torch.as_tensor(item_index, dtype=torch.int64, device=device) + 1
        self.index = NegativeIndex.from_csr(interactions, device=device)
        self.n_negatives = n_negatives
        self.pairwise = pairwise
        self.weights = (
            None
            if weights is None
            else torch.as_tensor(weights, dtype=torch.float32, device=device)
        )

    def __len__(self):
        return len(self.users) * (self.n_negatives + (not self.pairwise))

    def epoch(self, generator, shuffle=False):
        # Unshuffled, entry j belongs to positive j % n_positives: the positives come
        # first (pointwise), then n_negatives rounds of one negative per positive. A
        # shuffled epoch reads its users and labels through the permutation from the
        # positives rather than permuting epoch-sized copies (a fifth less time for a
        # 5M-sample epoch); the draws and the tensors are those of permuting the epoch
        negatives = sample_negatives(self.users.repeat(self.n_negatives), self.index, generator)
        device, n, n_pos = negatives.device, len(self), len(self.users)
        if shuffle:
            order = torch.randperm(n, generator=generator, device=device)
        else:
            order = torch.arange(n, device=device)
        source = order % n_pos
        x = {"users": self.users.index_select(0, source) + 1}
        if self.pairwise:
            x["items"] = self.items.index_select(0, source)
            x["neg_items"] = (negatives + 1).index_select(0, order)
            y = torch.ones(n, device=device)
            if self.weights is not None:
                x["sample_weight"] = self.weights.index_select(0, source)
            return x, y
        x["items"] = torch.cat([self.items, negatives + 1]).index_select(0, order)
        y = (order < n_pos).to(torch.float32)
        if self.weights is not None:
            x["sample_weight"] = torch.where(y > 0, self.weights.index_select(0, source), 1.0)
        return x, y


class _EpochBatches:
    """Batches cut from one epoch of tensors; every pass draws a new epoch.

    The dataset's ``epoch(generator, shuffle)`` gives the whole epoch. A
    dataset with a ``batch(x, y)`` method turns each slice into the batch the
    module sees (the autoencoders densify sparse rows there).
    """

    def __init__(self, dataset, batch_size, generator, shuffle):
        self.dataset = dataset
        self.batch_size = batch_size
        self.generator = generator
        self.shuffle = shuffle

    def __iter__(self):
        x, y = self.dataset.epoch(self.generator, self.shuffle)
        bs = self.batch_size
        make = getattr(self.dataset, "batch", None)
        for start in range(0, len(y), bs):
            x_batch = {key: value[start : start + bs] for key, value in x.items()}
            y_batch = y[start : start + bs]
            yield make(x_batch, y_batch) if make is not None else (x_batch, y_batch)


class _RecNet(NeuralNet):
    """skorch net over tensor batches, with a sync-free epoch loop.

    * ``get_iterator`` cuts batches from whole-epoch tensors on the device
      (no per-sample ``Dataset``); ``iterator_train__seed`` seeds the draw.
    * the loss is summed on the device and read once per epoch, and no
      per-batch history rows are kept (they would bloat every pickle).
    * a pairwise batch (with ``neg_items``) is scored by the difference of
      the positive and negative logits.
    """

    def get_default_callbacks(self):
        return [("epoch_timer", EpochTimer()), ("print_log", PrintLog())]

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        pass

    def get_dataset(self, X, y=None):
        return X

    def _set_training(self, training=True):
        # skorch calls this before every batch, and Module.train walks and re-sets
        # every submodule through Module.__setattr__ (about 30 us on NeuMF, 2% of a
        # step at batch 256); reading the flags first costs about 10 us. The modes
        # end up exactly as skorch leaves them.
        for name in self._modules + self._criteria:
            module = getattr(self, name + "_")
            if isinstance(module, torch.nn.Module) and any(
                m.training != training for m in module.modules()
            ):
                module.train(training)

    def get_iterator(self, dataset, training=False):
        params = self.get_params_for("iterator_train" if training else "iterator_valid")
        seed = int(params.get("seed", 0)) + len(self.history)
        generator = torch.Generator(device=self.device).manual_seed(seed)
        return _EpochBatches(dataset, self.batch_size, generator, shuffle=training)

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        if iterator is None:
            return
        # skorch hands every batch's parameters to on_grad_computed; skip that where no
        # callback listens (it costs a walk over the parameters per batch)
        self._grad_listeners = any(
            type(cb).on_grad_computed is not Callback.on_grad_computed for _, cb in self.callbacks_
        )
        total = torch.zeros((), device=self.device)
        n_samples = n_batches = 0
        for batch in iterator:
            self.notify("on_batch_begin", batch=batch, training=training)
            step = step_fn(batch, **fit_params)
            size = len(batch[1])
            total.add_(step["loss"].detach(), alpha=size)
            n_samples += size
            n_batches += 1
            self.notify("on_batch_end", batch=batch, training=training, **step)
        self.history.record(prefix + "_loss", (total / max(n_samples, 1)).item())
        self.history.record(prefix + "_batch_count", n_batches)

    def train_step(self, batch, **fit_params):
        """One optimizer step, as skorch's but without the closure where none is needed.

        Only LBFGS-like optimizers evaluate a closure; for the others the
        closure machinery and the per-batch ``on_grad_computed`` walk over the
        parameters (when no callback listens) are pure overhead at small batches.
        """
        if isinstance(self.optimizer_, torch.optim.LBFGS):
            return super().train_step(batch, **fit_params)
        self._zero_grad_optimizer()
        step = self.train_step_single(batch, **fit_params)
        if getattr(self, "_grad_listeners", True):
            self.notify(
                "on_grad_computed",
                named_parameters=TeeGenerator(self.get_all_learnable_params()),
                batch=batch,
            )
        self._step_optimizer(None)
        return step

    def get_loss(self, y_pred, y_true, X=None, training=False):
        weight = X.get("sample_weight") if isinstance(X, dict) else None
        if weight is None:
            return super().get_loss(y_pred, y_true, X=X, training=training)
        # the training samples' own weights: the mean over the batch of the weighted
        # binary cross-entropy (the criterion every recommender net uses)
        criterion = self.criterion_
        return F.binary_cross_entropy_with_logits(
            y_pred, y_true, weight=weight, pos_weight=criterion.pos_weight
        )

    def infer(self, x, **fit_params):
        if "sample_weight" in x:  # the loss's, not the module's
            x = {key: value for key, value in x.items() if key != "sample_weight"}
        if "neg_items" in x:
            users = x["users"]
            return self.module_(users, x["items"]) - self.module_(users, x["neg_items"])
        return self.module_(**x)


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
        if "pretrain" in params and not isinstance(self.pretrain, (bool, np.bool_)):
            raise ValueError(f"pretrain must be True or False; got {self.pretrain!r}")
        check_int(self.max_epochs, "max_epochs", minimum=0)
        check_callbacks(self.callbacks)
        auto = self._auto_batch_sizes is not None
        check_int(self.batch_size, "batch_size", auto=auto)
        if self.lr_schedule not in _LR_SCHEDULES:
            raise ValueError(
                f"lr_schedule must be one of {_LR_SCHEDULES}; got {self.lr_schedule!r}"
            )
        check_real(self.lr, "lr", 0, auto=auto)
        check_real(self.weight_decay, "weight_decay", 0, low_closed=True)
        self._optimizer_class()
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

    def _optimizer_kwargs(self, device, opt):
        """Extra arguments of optimizer ``opt``: the fused kernel of Adam where torch has one."""
        if opt in (torch.optim.Adam, torch.optim.AdamW) and _fused_available(opt, device.type):
            return {"optimizer__fused": True}
        return {}

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
            optimizer__weight_decay=self.weight_decay,
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

    def _continue(self, data, epochs=1):
        """Train ``net_`` ``epochs`` more epochs at constant ``lr`` (``partial_fit``)."""
        for group in self.net_.optimizer_.param_groups:  # no schedule outside fit
            group["lr"] = self._lr(self.net_.batch_size)
        with seeded(self._seed + len(self.net_.history), self.net_.device):
            self._run(self.net_, data, epochs=epochs)

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

    def _check_negatives(self, interactions):
        """Every user with positives needs ``n_negatives`` unseen items."""
        degree = np.diff(interactions.indptr)
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
                f"n_negatives={self.n_negatives} is larger than the items left unseen by "
                f"user(s) {show_ids(self.users_[short])} (as few as {free[short].min()})"
            )

    def _split_validation(self, user_index, item_index, seed):
        """Hold out one random positive of each user with at least three.

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
        # rank each held-out item against up to 99 sampled unseen items (the same ones every
        # epoch): cheap next to a full ranking, and it still works for huge catalogues
        free = self.n_items_ - np.diff(self.interactions_.indptr)[user_index[held]]
        n_negatives = int(min(_VALIDATION_NEGATIVES, free.min())) if free.min() > 0 else None
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
            criterion=torch.nn.BCEWithLogitsLoss,
            **self._net_kwargs(seed, device, n_samples, internal, user_callbacks, optimizer),
        )

    def _training_data(self, user_index, item_index, device, weights=None):
        # rescaled to a mean of 1, so that lr and weight_decay keep their meaning; equal
        # weights are the unweighted fit, bit for bit
        if weights is not None:
            if not weights.sum() > 0:
                raise ValueError(
                    "sample_weight is zero on every positive left to train on (early "
                    "stopping holds one positive of a user out)"
                )
            weights = (
                None if (weights == weights[0]).all() else weights * (len(weights) / weights.sum())
            )
        return _Positives(
            user_index,
            item_index,
            self.interactions_,
            self.n_negatives,
            self._pairwise,
            device,
            weights,
        )

    def _fit_model(self, user_index, item_index, epochs, weights=None):
        device = check_device(self.device)
        self._seed = draw_seed(self.random_state)
        self._check_negatives(self.interactions_)
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

        The ids of ``X`` must have been seen in the first fit; its positives
        join ``interactions_``. Optuna's pruning calls this once per step.

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
        device = self.net_.device
        X = self._check_X(X, reset=False)
        positive = self._positive_rows(X, y)
        weights = self._positive_weights(sample_weight, X, positive)
        users, items = self._known_ids(X)
        users, items = users[positive], items[positive]
        new = build_interactions(users, items, self.n_users_, self.n_items_)
        self.interactions_ = (self.interactions_ + new).sign().tocsr()
        self._check_negatives(self.interactions_)
        self._continue(self._training_data(users, items, device, weights))
        return self

    # -- scoring protocol ---------------------------------------------------------
    def _pair_width(self):
        return getattr(self.net_.module_, "pair_width", 1)

    def _score_pairs(self, users, items):
        module = self.net_.module_.eval()
        with torch.inference_mode():
            return module(users, items).float()

    def _score_all(self, users):
        module = self.net_.module_.eval()
        with torch.inference_mode():
            return module.score_all(users)[:, 1:].float()


# -- regressors -------------------------------------------------------------------
# damping of the baseline's user and item biases (shrunk towards 0 for rare ids)
_BIAS_DAMPING = (10.0, 25.0)


def bias_baseline(user_index, item_index, ratings, n_users, n_items, damping=_BIAS_DAMPING):
    """Return the global mean and damped user and item biases of ``ratings``.

    ``b_i = sum(r - mu) / (n_i + damping_item)`` over an item's ratings, then
    ``b_u = sum(r - mu - b_i) / (n_u + damping_user)`` over a user's: the
    baseline predictor of Koren (2010), fitted in closed form.
    """
    damp_user, damp_item = damping
    mu = float(ratings.mean())
    item_bias = np.bincount(item_index, ratings - mu, n_items) / (
        np.bincount(item_index, minlength=n_items) + damp_item
    )
    residual = ratings - mu - item_bias[item_index]
    user_bias = np.bincount(user_index, residual, n_users) / (
        np.bincount(user_index, minlength=n_users) + damp_user
    )
    return mu, user_bias, item_bias


def build_ratings(user_index, item_index, ratings, n_users, n_items):
    """Return the CSR matrix of ratings; a pair rated more than once gets the mean."""
    shape = (n_users, n_items)
    total = sp.csr_matrix((ratings.astype(np.float64), (user_index, item_index)), shape=shape)
    count = sp.csr_matrix((np.ones(len(ratings)), (user_index, item_index)), shape=shape)
    total.sum_duplicates()
    count.sum_duplicates()
    total.sort_indices()
    count.sort_indices()
    # an explicit zero rating must stay stored: build from the pattern of `count`
    return sp.csr_matrix(
        ((total.data / count.data).astype(np.float32), count.indices, count.indptr), shape=shape
    )


class BaseRegressor(RegressorMixin, _InteractionEstimator):
    """Shared machinery of the rating regressors on interaction-form input.

    ``fit`` stores the id maps, the rating matrix ``interactions_``, the
    baseline ``global_mean_`` / ``user_bias_`` / ``item_bias_`` and the rating
    range. Subclasses implement ``_fit_model(user_index, item_index, ratings,
    epochs)`` (0-based) and ``_predict_pairs(users, items)`` on 1-based
    indices of known ids; unknown ids fall back to the baseline.
    """

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # sklearn's checks fit on random float X, where every row is a new user and a new
        # item: there is no collaborative signal to score well on
        tags.regressor_tags.poor_score = True
        return tags

    def _check_params(self):
        super()._check_params()
        if not isinstance(self.clip, (bool, np.bool_)):
            raise ValueError(f"clip must be True or False; got {self.clip!r}")

    @keep_state_on_error
    def fit(self, X, y):
        """Fit the model to rated interactions.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_columns)
            Column 0 holds user ids, column 1 item ids (ints or strings);
            further columns are context and are ignored.
        y : array-like of shape (n_samples,)
            The rating of each row. A (user, item) pair rated more than once
            counts with the mean of its ratings.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, y, epochs=None)

    def _check_y(self, X, y):
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None: "
                "give the rating of each row of X"
            )
        return check_target(y, len(X))

    def _fit(self, X, y, epochs):
        self._check_params()
        X = self._check_X(X, reset=True)
        y = self._check_y(X, y)
        self.users_, user_index = np.unique(as_id_column(X[:, 0], "user"), return_inverse=True)
        self.items_, item_index = np.unique(as_id_column(X[:, 1], "item"), return_inverse=True)
        self.interactions_ = build_ratings(user_index, item_index, y, self.n_users_, self.n_items_)
        self.global_mean_, self.user_bias_, self.item_bias_ = bias_baseline(
            user_index, item_index, y, self.n_users_, self.n_items_
        )
        self.rating_range_ = (float(y.min()), float(y.max()))
        self._fit_model(user_index, item_index, y, epochs=epochs)
        return self

    def _fit_model(self, user_index, item_index, ratings, epochs):
        """Learn from 0-based rated pairs (``epochs=None``: the full schedule)."""
        raise NotImplementedError

    def _predict_pairs(self, users, items):
        """Ratings of 1-based known ``users`` and ``items`` (index arrays)."""
        raise NotImplementedError

    def predict(self, X):
        """Predict the rating of each (user, item) row of ``X``.

        A row with a user or item unseen in ``fit`` gets the global mean plus
        the bias of whichever of the two is known, with a warning, or a
        ``ValueError`` if ``handle_unknown="error"``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_columns)
            Interactions in the form given to ``fit``.

        Returns
        -------
        ratings : ndarray of shape (n_samples,)
            Clipped to the range of the ratings seen in ``fit`` if ``clip``.
        """
        users, items, known = self._encode_X(X)
        pred = (
            self.global_mean_
            + np.where(users > 0, self.user_bias_[users - 1], 0.0)
            + np.where(items > 0, self.item_bias_[items - 1], 0.0)
        )
        if known.any():
            pred[known] = self._predict_pairs(users[known], items[known])
        return self._clipped(pred)

    def _clipped(self, pred):
        """Clip ``pred`` (in place) to the training ratings' range if ``clip``."""
        if self.clip:
            np.clip(pred, *self.rating_range_, out=pred)
        return pred


class _MaskedMSELoss(torch.nn.Module):
    """Mean squared error over the observed entries (the target is NaN elsewhere)."""

    def forward(self, y_pred, y_true):
        observed = ~torch.isnan(y_true)
        error = torch.where(observed, y_pred - y_true, 0.0)
        return error.square().sum() / observed.sum().clamp(min=1)


class _Ratings:
    """Rated (user, item) pairs as whole-epoch tensors (1-based indices)."""

    def __init__(self, user_index, item_index, ratings, device):
        self.users = torch.as_tensor(user_index, dtype=torch.int64, device=device) + 1
        self.items = torch.as_tensor(item_index, dtype=torch.int64, device=device) + 1
        self.ratings = torch.as_tensor(ratings, dtype=torch.float32, device=device)

    def __len__(self):
        return len(self.ratings)

    def epoch(self, generator, shuffle=False):
        return _permuted(
            {"users": self.users, "items": self.items}, self.ratings, generator, shuffle
        )


class _SparseRows:
    """Rows of a CSR matrix kept on the device and made dense one batch at a time.

    A batch of row indices becomes ``({"inputs": dense}, target)``: the input
    has 0 where nothing was observed, the target NaN, so that the loss counts
    observed entries only.
    """

    def __init__(self, matrix, rows, device):
        self.indptr = torch.as_tensor(matrix.indptr, dtype=torch.int64, device=device)
        self.indices = torch.as_tensor(matrix.indices, dtype=torch.int64, device=device)
        self.data = torch.as_tensor(matrix.data, dtype=torch.float32, device=device)
        self.rows = torch.as_tensor(rows, dtype=torch.int64, device=device)
        self.n_cols = matrix.shape[1]

    def __len__(self):
        return len(self.rows)

    def epoch(self, generator, shuffle=False):
        return _permuted({"rows": self.rows}, self.rows, generator, shuffle)

    def batch(self, x, y):
        rows = x["rows"]
        start = self.indptr[rows]
        count = self.indptr[rows + 1] - start
        which = torch.repeat_interleave(torch.arange(len(rows), device=rows.device), count)
        first = torch.cumsum(count, 0) - count
        pos = start[which] + torch.arange(len(which), device=rows.device) - first[which]
        cols, values = self.indices[pos], self.data[pos]
        inputs = torch.zeros(len(rows), self.n_cols, device=rows.device)
        inputs[which, cols] = values
        target = torch.full_like(inputs, float("nan"))
        target[which, cols] = values
        return {"inputs": inputs}, target


class _PenalisedNet(_RecNet):
    """``_RecNet`` adding ``l2`` times the module's ``penalty`` of each training batch.

    For embedding models this is the classic per-rating L2 term: only the rows
    a batch uses are pulled towards 0, unlike optimizer weight decay, which
    shrinks every row at every step.
    """

    def __init__(self, *args, l2=0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.l2 = l2

    def get_loss(self, y_pred, y_true, X=None, training=False):
        loss = super().get_loss(y_pred, y_true, X=X, training=training)
        if training and self.l2:
            loss = loss + self.l2 * self.module_.penalty(**X)
        return loss


class _AutoEncoderNet(_RecNet):
    """``_RecNet`` with dense re-feeding (Kuchaiev & Ginsburg 2017).

    With ``refeed=True`` every update on a batch ``x`` is followed by an
    update on its reconstruction ``f(x)`` (fixed, dense) as input and target.
    ``max_grad_norm`` clips the gradient norm of every update.
    """

    def __init__(self, *args, refeed=False, max_grad_norm=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.refeed = refeed
        self.max_grad_norm = max_grad_norm

    def _step_optimizer(self, step_fn):
        if self.max_grad_norm is not None and step_fn is None:
            torch.nn.utils.clip_grad_norm_(self.module_.parameters(), self.max_grad_norm)
        super()._step_optimizer(step_fn)

    def train_step(self, batch, **fit_params):
        step = super().train_step(batch, **fit_params)
        if self.refeed:
            dense = step["y_pred"].detach()
            super().train_step(({"inputs": dense}, dense), **fit_params)
        return step


class TorchRegressor(_TorchTraining, BaseRegressor):
    """A rating regressor whose predictions come from a PyTorch module.

    Subclasses define ``_module_params()`` (the module class and its keyword
    arguments), ``_training_data(user_index, item_index, ratings, device)``
    and ``_predict_pairs``; the loss is the masked mean squared error.
    """

    _net_class = _RecNet

    def _module_params(self):
        raise NotImplementedError

    def _training_data(self, user_index, item_index, ratings, device):
        raise NotImplementedError

    def _net_extra(self):
        """Return extra constructor arguments of the net."""
        return {}

    def _check_params(self):
        super()._check_params()
        if not isinstance(self.early_stopping, (bool, np.bool_)):
            raise ValueError(f"early_stopping must be True or False; got {self.early_stopping!r}")
        check_real(self.validation_fraction, "validation_fraction", 0, 1)
        check_int(self.n_iter_no_change, "n_iter_no_change")
        return self._check_training_params()

    def _split_validation(self, seed):
        """Split the rated pairs of ``interactions_`` for early stopping.

        Returns the training pairs and the held-out ones, each as 0-based
        (users, items, ratings), a pair rated twice counting once with its
        mean so that it never lands on both sides.
        """
        pairs = self.interactions_.tocoo()
        n_pairs = pairs.nnz
        n_valid = int(round(self.validation_fraction * n_pairs))
        if not 0 < n_valid < n_pairs:
            raise ValueError(
                f"early_stopping: validation_fraction={self.validation_fraction} of "
                f"{n_pairs} rated pairs leaves {n_valid} for validation and "
                f"{n_pairs - n_valid} for training; each side needs at least one"
            )
        held = np.zeros(n_pairs, dtype=bool)
        held[np.random.RandomState(seed).choice(n_pairs, n_valid, replace=False)] = True
        rows, cols = pairs.row.astype(np.int64), pairs.col.astype(np.int64)
        return [(rows[m], cols[m], pairs.data[m]) for m in (~held, held)]

    def _fit_model(self, user_index, item_index, ratings, epochs):
        device = check_device(self.device)
        self._seed = draw_seed(self.random_state)
        stopping = []
        everything = self.interactions_
        if epochs is None and self.early_stopping:
            (user_index, item_index, ratings), valid = self._split_validation(self._seed)
            users, items, held_ratings = valid
            stopping = self._stopping_callbacks(ValidationRMSE(users + 1, items + 1, held_ratings))
            # the held-out ratings leave the training rows (the autoencoders' inputs) as well
            # as the loss while training; they join the inputs of predict afterwards
            self.interactions_ = build_ratings(
                user_index, item_index, ratings, self.n_users_, self.n_items_
            )
        try:
            data = self._training_data(user_index, item_index, ratings, device)
            module, kwargs = self._module_params()
            internal = [*self._schedule_callbacks(len(data)), *stopping] if epochs is None else ()
            net = self._net_class(
                module=module,
                **{f"module__{key}": value for key, value in kwargs.items()},
                criterion=_MaskedMSELoss,
                **{
                    **self._net_kwargs(self._seed, device, len(data), internal),
                    **self._net_extra(),
                },
            )
            with seeded(self._seed, device):
                self._run(net, data, epochs)
        finally:
            self.interactions_ = everything

    @keep_state_on_error
    def partial_fit(self, X, y):
        """Train one more epoch on ``X`` (one epoch from scratch if unfitted).

        The ids of ``X`` must have been seen in the first fit; its ratings
        join ``interactions_`` (replacing earlier ratings of the same pairs).
        Optuna's pruning calls this once per step.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_columns)
        y : array-like of shape (n_samples,)

        Returns
        -------
        self : object
        """
        if not hasattr(self, "net_"):
            return self._fit(X, y, epochs=1)
        self._check_params()
        X = self._check_X(X, reset=False)
        y = self._check_y(X, y)
        users, items = self._known_ids(X)
        new = build_ratings(users, items, y, self.n_users_, self.n_items_).tocoo()
        old = self.interactions_.tocoo()
        n_items = self.n_items_
        keep = ~np.isin(old.row.astype(np.int64) * n_items + old.col, new.row * n_items + new.col)
        rows = np.concatenate([old.row[keep], new.row])
        cols = np.concatenate([old.col[keep], new.col])
        ratings = np.concatenate([old.data[keep], new.data])
        self.interactions_ = build_ratings(rows, cols, ratings, self.n_users_, n_items)
        self._continue(self._training_data(users, items, y, self.net_.device))
        return self

    # -- prediction ---------------------------------------------------------------
    def _module(self):
        return self.net_.module_.eval()
