"""The scikit-learn face of every interaction-form estimator.

* ``_InteractionEstimator``: validation of ``X``, raw-id maps ``users_`` / ``items_``.
* :class:`BaseRecommender`: the training matrix ``interactions_``, ``sample_weight``,
  ``predict`` / ``recommend`` / ``score``.
"""

import warnings

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from .._interactions import (
    IdMap,
    as_id_column,
    build_interactions,
    check_sample_weight,
    check_target,
    mask_seen,
    numpy_columns,
    seen_rows,
    show_ids,
    unique_inverse,
)
from .._utils import (
    check_bool,
    check_int,
    keep_state_on_error,
    pairs_per_chunk,
    scored_in_chunks,
)
from ..metrics import evaluate_ranking

_HANDLE_UNKNOWN = ("warn", "ignore", "error")


def _row_width(row):
    """Values in one row of a list ``X``; None for a scalar (no row at all)."""
    return None if isinstance(row, (str, bytes)) or not hasattr(row, "__len__") else len(row)


def _interaction_rows(X, name="X"):
    """``X`` as ``check_array`` can read it: sparse input refused, list rows kept whole.

    A list of tuples becomes an object array row by row, so that the ints and
    strings of a ``(1, "a")`` row stay apart (``np.asarray`` would turn it into
    ``("1", "a")``); a DataFrame gets plain columns (:func:`numpy_columns`).
    """
    if sp.issparse(X):
        raise TypeError(
            f"Sparse {name} (the matrix form, one row per user) is not supported yet; pass "
            "interactions: one (user id, item id, ...) row per sample"
        )
    if (
        isinstance(X, (list, tuple))
        and len(X)
        and not hasattr(X[0], "__array__")
        and _row_width(X[0]) is not None
    ):
        rows = list(X)
        widths = np.array([1 if w is None else w for w in map(_row_width, rows)])
        ragged = np.flatnonzero(widths != widths[0])
        if len(ragged):
            raise ValueError(
                f"{name} rows must all have the same length; row 0 has {widths[0]} values "
                f"but rows {show_ids(ragged)} have {show_ids(widths[ragged])}"
            )
        X = np.empty((len(rows), widths[0]), dtype=object)
        X[:] = rows
    return numpy_columns(X)


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
        X = _interaction_rows(X)
        try:
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
        except ValueError as exc:
            if reset or "features as input" not in str(exc):
                raise
            raise ValueError(
                f"{exc} The model ignores context columns, but X must have the "
                f"{self.n_features_in_} columns it was fitted on (user id, item id, then "
                "context)"
            ) from None

    def _check_params(self):
        if self.handle_unknown not in _HANDLE_UNKNOWN:
            raise ValueError(
                f"handle_unknown must be one of {_HANDLE_UNKNOWN}; got {self.handle_unknown!r}"
            )

    @staticmethod
    def _sample_weights(sample_weight, n_rows, rows=None, what="row"):
        """Return the checked ``sample_weight`` (of ``rows`` only, if given), or None.

        A scalar weighs every row the same, as in scikit-learn.
        """
        if sample_weight is None:
            return None
        weights = check_sample_weight(sample_weight, n_rows)
        if rows is not None:
            weights = weights[rows]
        if not weights.sum() > 0:
            raise ValueError(f"sample_weight is zero on every {what}: nothing to learn from")
        return weights

    # -- id maps ---------------------------------------------------------------
    @property
    def n_users_(self):
        """Number of users seen in ``fit``."""
        return len(self.users_)

    @property
    def n_items_(self):
        """Number of items seen in ``fit``."""
        return len(self.items_)

    def _encode(self, values, kind, **fallback):
        ids = self.users_ if kind == "user" else self.items_
        return IdMap(ids, kind).encode_known(
            values, self.handle_unknown, estimator_name=type(self).__name__, **fallback
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
            if y is not None and (y <= 0).any():
                # 0/1 labels, say: their zeros would silently be learnt as positives
                warnings.warn(
                    f"{type(self).__name__}: y is {(y <= 0).sum()} time(s) <= 0, but with "
                    "positive_threshold=None every row is learnt from as a positive; pass "
                    "positive_threshold (1 for 0/1 labels) to learn only from the rows with "
                    "y at or above it",
                    UserWarning,
                    stacklevel=3,
                )
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
            positive interaction and ``y`` is only checked (a ``y`` with values
            <= 0, such as 0/1 labels, warns that those rows are learnt as
            positives too); with it, rows with ``y >= positive_threshold`` are
            the positives, and the others still count as seen (left out by
            ``recommend`` and the metrics).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weight of each positive row. The torch models weigh
            its term of the loss by it (the negatives sampled for it keep
            weight 1), rescaled to a mean of 1 over the positives they train
            on, so that ``lr`` and ``weight_decay`` keep their meaning;
            ``PopularityRecommender`` sums the weights. A row of weight 0
            still counts as seen (never drawn as its user's negative, excluded
            by ``recommend``); its own term of the loss is zero, while the
            negatives drawn for it still train at weight 1.
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
        weights = self._sample_weights(sample_weight, len(X), positive, "positive row")
        users = as_id_column(X[:, 0], "user")
        items = as_id_column(X[:, 1], "item")
        self.users_, user_index = unique_inverse(users)
        self.items_, item_index = unique_inverse(items)
        self._add_interactions(user_index, item_index, positive, fresh=True)
        self._fit_model(user_index[positive], item_index[positive], epochs, weights)
        return self

    def _add_interactions(self, user_index, item_index, positive, fresh=False):
        """Record 0-based (user, item) rows as seen, and those marked ``positive`` as positives.

        Every row is an interaction the user has had, which ``recommend`` and
        the metrics leave out (``interactions_``). The positives (all rows
        unless some are under ``positive_threshold``) are what the model
        learns from and what its negatives are never drawn from; they are kept
        apart, as ``_positives``, only once some row is not one. ``fresh``
        starts both anew (``fit``); otherwise the rows join them
        (``partial_fit``).
        """
        shape = (len(self.users_), len(self.items_))

        def joined(old, rows):
            new = build_interactions(user_index[rows], item_index[rows], *shape)
            return new if old is None else (old + new).sign().tocsr()

        kept = None if fresh else getattr(self, "_positives", None)
        if kept is not None or not positive.all():
            self._positives = joined(None if fresh else self._positive_interactions(), positive)
        else:
            self._positives = None
        self.interactions_ = joined(None if fresh else self.interactions_, slice(None))

    def _positive_interactions(self):
        """Return the positive pairs: ``interactions_`` less rows under the threshold."""
        positives = getattr(self, "_positives", None)
        return self.interactions_ if positives is None else positives

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
        """Floats ``_score_all`` holds per (user, item) pair (sizes its chunks)."""
        return 1

    def _forward_width(self):
        """Floats ``_score_pairs`` holds per pair (sizes its chunks)."""
        return 1

    def _score_pairs(self, users, items):
        """Scores of broadcastable 1-based index tensors ``users`` and ``items``."""
        raise NotImplementedError

    def _score_all(self, users):
        """Scores of ``users`` (1-based, shape (B,)) against every item: (B, n_items_)."""
        raise NotImplementedError

    def _user_chunks(self, n):
        """Slices of at most as many users as a scoring chunk can hold."""
        step = pairs_per_chunk(self.n_items_ * self._pair_width())
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
            scored = scored_in_chunks(self._score_pairs, u, i, self._forward_width())
            scores[known] = scored.double().cpu().numpy()
        return scores

    def recommend(
        self, users, k=10, exclude_seen=True, items=None, return_scores=False, exclude=None
    ):
        """Return the top ``k`` items for each user, best first.

        Parameters
        ----------
        users : array-like of shape (n_users,)
            Raw user ids. Users unseen in ``fit`` are served from an empty
            history (with a warning), unless ``handle_unknown="error"``.
        k : int, default=10
            Items per user; at most the number of candidate items.
        exclude_seen : bool, default=True
            Leave out the items each user interacted with in ``fit``.
        items : array-like of shape (n_candidates,), default=None
            Raw ids of the candidate items (in stock, in a category, ...), to
            rank instead of the whole catalogue; repeats count once. Ids
            unseen in ``fit`` cannot be scored: they are left out of the
            ranking with a warning, or raise if ``handle_unknown="error"``.
        return_scores : bool, default=False
            Return the items' relevance scores as well.
        exclude : array-like of shape (n_rows, n_columns), default=None
            More interactions whose items to leave out, one (user id, item
            id, ...) row each, such as what the users did since the model was
            fitted: besides the items of ``fit`` (with ``exclude_seen``) or
            instead of them. Only the first two columns are read. A row
            reaches every entry of ``users`` with its user id, unseen in
            ``fit`` or not; rows of other users, and items unseen in ``fit``
            (never recommended anyway), change nothing.

        Returns
        -------
        items : ndarray of shape (n_users, k)
            Raw item ids.
        scores : ndarray of shape (n_users, k)
            Only with ``return_scores=True``: each item's relevance score, as
            :meth:`predict` gives it for that (user, item) pair; for a user
            unseen in ``fit``, the score its empty history gets.
        """
        check_is_fitted(self)
        users = np.asarray(users)
        if users.ndim != 1:
            raise ValueError(f"users must be a 1-d array of ids; got shape {users.shape}")
        k = check_int(k, "k")
        exclude_seen = check_bool(exclude_seen, "exclude_seen")
        return_scores = check_bool(return_scores, "return_scores")
        candidates = self._candidate_items(items)
        if candidates is None:
            n_candidates, pool = self.n_items_, f"the catalogue of {self.n_items_} items"
        else:
            n_candidates, pool = len(candidates), f"the {len(candidates)} candidate items"
        if k > n_candidates:
            raise ValueError(f"k={k} is larger than {pool}")
        extra = None if exclude is None else self._excluded_items(users, exclude)
        index, _ = self._encode(users, "user")
        blocked, block_rows = self._left_out(index, exclude_seen, extra)
        if blocked is not None:
            held_rows = block_rows[block_rows > 0] - 1
            if candidates is None:
                held = np.diff(blocked.indptr)[held_rows]
            else:
                held = blocked[held_rows][:, candidates].getnnz(axis=1)
            short = held > n_candidates - k
            if short.any():
                what = "unseen" if extra is None else "unexcluded"
                raise ValueError(
                    f"k={k} is more than the {what} items of user(s) "
                    f"{show_ids(users[block_rows > 0][short])} among {pool}; lower k or "
                    + ("pass exclude_seen=False" if extra is None else "exclude fewer items")
                )
        top = np.empty((len(users), k), dtype=np.int64)
        top_scores = np.empty((len(users), k))
        index_t = torch.as_tensor(index, device=self._device)
        columns = None if candidates is None else torch.as_tensor(candidates, device=self._device)
        with torch.inference_mode():
            for chunk in self._user_chunks(len(users)):
                scores = self._score_all(index_t[chunk])
                if blocked is not None:
                    mask_seen(scores, blocked, block_rows[chunk])
                if columns is not None:
                    scores = scores.index_select(1, columns)
                best = torch.topk(scores, k, dim=1)
                top[chunk] = best.indices.cpu().numpy()
                if return_scores:
                    top_scores[chunk] = best.values.double().cpu().numpy()
        if candidates is not None:
            top = candidates[top]
        return (self.items_[top], top_scores) if return_scores else self.items_[top]

    def _left_out(self, index, exclude_seen, extra):
        """Return the items to leave out of each entry of ``users`` (encoded as ``index``).

        ``recommend`` leaves them out of its lists, and the metrics out of the
        full ranking and of the sampled negatives.

        Returns ``(matrix, rows)``: a CSR of items and each entry's 1-based row
        in it (0: nothing to leave out). Without ``extra`` (the matrix of
        :meth:`_excluded_items`) that is ``interactions_`` and ``index``
        itself, or ``(None, None)`` if ``exclude_seen`` is off; with it, a
        matrix of one row per entry.
        """
        if extra is None:
            return (self.interactions_, index) if exclude_seen else (None, None)
        if exclude_seen:
            extra = (extra + seen_rows(self.interactions_, index)).tocsr()
        return extra, np.arange(1, len(index) + 1)

    def _excluded_items(self, users, exclude):
        """Return the items ``exclude`` holds for each entry of ``users``.

        Returns a CSR of shape (len(users), n_items) over the items seen in
        ``fit``: an entry's row holds the items of ``exclude``'s rows with
        its user id.
        """
        X = _interaction_rows(exclude, "exclude")
        if len(np.shape(X)) != 2:
            raise ValueError(
                "exclude must be 2-d, one (user id, item id, ...) row per interaction; got "
                f"shape {np.shape(X)}"
            )
        try:
            X = check_array(
                X,
                dtype=None,
                ensure_all_finite=False,
                ensure_min_samples=0,
                ensure_min_features=2,
            )
        except ValueError as exc:
            raise ValueError(f"exclude must hold (user id, item id, ...) rows: {exc}") from None
        items, known = IdMap(self.items_, "exclude's item").encode(X[:, 1])
        asked, entry = unique_inverse(as_id_column(users, "user"))
        if len(asked):
            # the distinct asked users as an id map: each row's user among them
            who, mine = IdMap(asked, "exclude's user").encode(X[:, 0])
        else:  # no user asked: none of exclude's rows is anyone's
            who, mine = np.zeros(len(X), np.int64), np.zeros(len(X), bool)
        keep = known & mine
        per_user = build_interactions(who[keep] - 1, items[keep] - 1, len(asked), self.n_items_)
        return per_user[entry]

    def _candidate_items(self, items):
        """0-based indices of the known ids in ``items``, sorted and unique (None: all)."""
        if items is None:
            return None
        items = np.asarray(items)
        if items.ndim != 1:
            raise ValueError(f"items must be a 1-d array of item ids; got shape {items.shape}")
        if not len(items):
            raise ValueError("items is empty: there is no candidate to recommend")
        index, known = self._encode(items, "item", fallback="they are left out of the candidates")
        if not known.any():
            raise ValueError("none of the candidate items was seen in fit: nothing to rank")
        return np.unique(index[known]) - 1

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
