"""The regressors' bases: :class:`BaseRegressor` and :class:`TorchRegressor`."""

import numpy as np
import scipy.sparse as sp
from sklearn.base import RegressorMixin

from .._interactions import as_id_column, check_target, unique_inverse
from .._utils import (
    check_bool,
    check_device,
    check_int,
    check_real,
    draw_seed,
    keep_state_on_error,
    seeded,
)
from ..callbacks import ValidationRMSE
from ._estimators import _InteractionEstimator
from ._net import _MaskedMSELoss, _RecNet
from ._training import _TorchTraining

# -- regressors -------------------------------------------------------------------
# damping of the baseline's user and item biases (shrunk towards 0 for rare ids)
_BIAS_DAMPING = (10.0, 25.0)


def bias_baseline(
    user_index, item_index, ratings, n_users, n_items, damping=_BIAS_DAMPING, weights=None
):
    """Return the global mean and damped user and item biases of ``ratings``.

    ``b_i = sum(r - mu) / (n_i + damping_item)`` over an item's ratings, then
    ``b_u = sum(r - mu - b_i) / (n_u + damping_user)`` over a user's: the
    baseline predictor of Koren (2010), fitted in closed form. With
    ``weights`` every sum and count is weighted, so that a rating of weight 2
    counts as the same rating given twice.
    """
    damp_user, damp_item = damping

    def weighted(values):
        return values if weights is None else weights * values

    mu = float(ratings.mean() if weights is None else np.average(ratings, weights=weights))
    item_bias = np.bincount(item_index, weighted(ratings - mu), n_items) / (
        np.bincount(item_index, weights, n_items) + damp_item
    )
    residual = ratings - mu - item_bias[item_index]
    user_bias = np.bincount(user_index, weighted(residual), n_users) / (
        np.bincount(user_index, weights, n_users) + damp_user
    )
    return mu, user_bias, item_bias


def _pair_sums(user_index, item_index, values, shape):
    """Return the sum of ``values`` per (user, item) pair, in CSR order (explicit zeros kept)."""
    summed = sp.csr_matrix((values.astype(np.float64), (user_index, item_index)), shape=shape)
    summed.sum_duplicates()
    summed.sort_indices()
    return summed


def build_ratings(user_index, item_index, ratings, n_users, n_items, weights=None):
    """Return the CSR matrix of ratings and that of the pairs' summed weights (None without).

    A pair rated more than once gets the mean of its ratings, weighted by
    ``weights`` where they sum above 0 (a pair of weight 0 keeps the plain
    mean: it teaches nothing anyway). Both matrices share one pattern.
    """
    shape = (n_users, n_items)
    count = _pair_sums(user_index, item_index, np.ones(len(ratings)), shape)
    mean = _pair_sums(user_index, item_index, ratings, shape).data / count.data
    pair_weights = None
    if weights is not None:
        total = _pair_sums(user_index, item_index, weights, shape).data
        weighted = _pair_sums(user_index, item_index, weights * ratings, shape).data
        mean = np.where(total > 0, weighted / np.where(total > 0, total, 1.0), mean)
        pair_weights = sp.csr_matrix(
            (total.astype(np.float32), count.indices, count.indptr), shape=shape
        )
    # an explicit zero rating must stay stored: build from the pattern of `count`
    matrix = sp.csr_matrix((mean.astype(np.float32), count.indices, count.indptr), shape=shape)
    return matrix, pair_weights


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
        check_bool(self.clip, "clip")

    @keep_state_on_error
    def fit(self, X, y, sample_weight=None):
        """Fit the model to rated interactions.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_columns)
            Column 0 holds user ids, column 1 item ids (ints or strings);
            further columns are context and are ignored.
        y : array-like of shape (n_samples,)
            The rating of each row. A (user, item) pair rated more than once
            counts with the mean of its ratings.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each rating. The baseline's means and
            counts (``global_mean_``, ``user_bias_``, ``item_bias_``) weigh
            each rating by it, as if it were given that many times. The torch
            models weigh its term of the squared error by it, rescaled to a
            mean of 1 over the ratings they train on, so that ``lr`` and
            ``weight_decay`` keep their meaning; early stopping's validation
            RMSE is weighted the same way. A pair rated more than once gets
            the weighted mean of its ratings and the sum of their weights. A
            rating of weight 0 still makes its pair an input of the
            autoencoders' rows, but teaches nothing.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, y, epochs=None, sample_weight=sample_weight)

    def _check_y(self, X, y):
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None: "
                "give the rating of each row of X"
            )
        return check_target(y, len(X))

    def _fit(self, X, y, epochs, sample_weight=None):
        self._check_params()
        X = self._check_X(X, reset=True)
        y = self._check_y(X, y)
        weights = self._sample_weights(sample_weight, len(X))
        self.users_, user_index = unique_inverse(as_id_column(X[:, 0], "user"))
        self.items_, item_index = unique_inverse(as_id_column(X[:, 1], "item"))
        shape = (self.n_users_, self.n_items_)
        # with each rated pair's summed weight, in the pattern of interactions_ (None: all 1)
        self.interactions_, self._pair_weights = build_ratings(
            user_index, item_index, y, *shape, weights
        )
        self.global_mean_, self.user_bias_, self.item_bias_ = bias_baseline(
            user_index, item_index, y, *shape, weights=weights
        )
        self.rating_range_ = (float(y.min()), float(y.max()))
        self._fit_model(user_index, item_index, y, epochs=epochs, weights=weights)
        return self

    def _fit_model(self, user_index, item_index, ratings, epochs, weights=None):
        """Learn from 0-based rated pairs (``epochs=None``: the full schedule).

        ``weights`` are the rows' ``sample_weight``, or ``None``.
        """
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


class TorchRegressor(_TorchTraining, BaseRegressor):
    """A rating regressor whose predictions come from a PyTorch module.

    Subclasses define ``_module_params()`` (the module class and its keyword
    arguments), ``_training_data(user_index, item_index, ratings, device)``
    and ``_predict_pairs``; the loss is the masked mean squared error.
    """

    _net_class = _RecNet

    def _module_params(self):
        raise NotImplementedError

    def _training_data(self, user_index, item_index, ratings, device, weights=None):
        """Return the training set of these 0-based rated pairs (``weights``: theirs, or None)."""
        raise NotImplementedError

    def _check_params(self):
        super()._check_params()
        check_bool(self.early_stopping, "early_stopping")
        check_real(self.validation_fraction, "validation_fraction", 0, 1)
        check_int(self.n_iter_no_change, "n_iter_no_change")
        return self._check_training_params()

    def _split_validation(self, seed):
        """Split the rated pairs of ``interactions_`` for early stopping.

        Returns the training pairs and the held-out ones, each as 0-based
        (users, items, ratings, weights), a pair rated twice counting once
        with its mean (and the sum of its weights; ``weights`` is None
        without ``sample_weight``) so that it never lands on both sides.
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
        # the weights share interactions_' pattern, so their COO order is the same
        weights = None if self._pair_weights is None else self._pair_weights.tocoo().data
        return [
            (rows[m], cols[m], pairs.data[m], None if weights is None else weights[m])
            for m in (~held, held)
        ]

    def _fit_model(self, user_index, item_index, ratings, epochs, weights=None):
        device = check_device(self.device)
        self._seed = draw_seed(self.random_state)
        stopping = []
        everything = self.interactions_, self._pair_weights
        if epochs is None and self.early_stopping:
            (user_index, item_index, ratings, weights), valid = self._split_validation(self._seed)
            users, items, held_ratings, held_weights = valid
            stopping = self._stopping_callbacks(
                ValidationRMSE(users + 1, items + 1, held_ratings, held_weights)
            )
            # the held-out ratings leave the training rows (the autoencoders' inputs) as well
            # as the loss while training; they join the inputs of predict afterwards
            self.interactions_, self._pair_weights = build_ratings(
                user_index, item_index, ratings, self.n_users_, self.n_items_, weights
            )
        try:
            data = self._training_data(user_index, item_index, ratings, device, weights)
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
            self.interactions_, self._pair_weights = everything

    @keep_state_on_error
    def partial_fit(self, X, y, sample_weight=None):
        """Train one more epoch on ``X`` (one epoch from scratch if unfitted).

        The ids of ``X`` must have been seen in the first fit; its ratings
        join ``interactions_`` (replacing earlier ratings of the same pairs,
        and their weights). Optuna's pruning calls this once per step.
        ``lr`` and ``weight_decay`` take their current values; the module's
        architecture (a changed size, dropout or activation raises), the batch
        size, the device, the callbacks and the optimizer with its state stay
        those of ``fit``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_columns)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), default=None
            As in ``fit``.

        Returns
        -------
        self : object
        """
        if not hasattr(self, "net_"):
            return self._fit(X, y, epochs=1, sample_weight=sample_weight)
        self._check_params()
        self._check_fitted_module()
        X = self._check_X(X, reset=False)
        y = self._check_y(X, y)
        weights = self._sample_weights(sample_weight, len(X))
        users, items = self._known_ids(X)
        shape = (self.n_users_, self.n_items_)
        new, new_weights = build_ratings(users, items, y, *shape, weights)
        new = new.tocoo()
        old = self.interactions_.tocoo()
        n_items = self.n_items_
        keep = ~np.isin(old.row.astype(np.int64) * n_items + old.col, new.row * n_items + new.col)
        rows = np.concatenate([old.row[keep], new.row])
        cols = np.concatenate([old.col[keep], new.col])
        ratings = np.concatenate([old.data[keep], new.data])
        merged = None
        if self._pair_weights is not None or new_weights is not None:
            # weights of 1 stand for the side that had none (CSR order is the COO order)
            old_w = np.ones(old.nnz) if self._pair_weights is None else self._pair_weights.data
            new_w = np.ones(new.nnz) if new_weights is None else new_weights.data
            merged = np.concatenate([old_w[keep], new_w])
        self.interactions_, self._pair_weights = build_ratings(rows, cols, ratings, *shape, merged)
        self._continue(self._training_data(users, items, y, self.net_.device, weights))
        return self

    # -- prediction ---------------------------------------------------------------
    def _module(self):
        return self.net_.module_.eval()
