"""Ranking metrics of a fitted recommender, and the scorers built on them."""

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.utils.validation import check_is_fitted

from .._interactions import (
    IdMap,
    as_id_column,
    check_target,
    mask_seen,
    seen_rows,
    show_ids,
    unique_inverse,
)
from .._utils import check_int, draw_seed, pairs_per_chunk
from ..sampling import NegativeIndex, sample_distinct_negatives
from ._ranks import METRICS, _average, _check_metrics, _per_query, _rank_in_rows


def _unwrap(estimator, *arrays):
    """Return the recommender inside Pipelines and wrappers, and ``arrays`` through the steps.

    A wrapper (such as :class:`sklrec.compose.RecencyWeighted`) names its
    fitted recommender with ``_ranking_estimator()``. ``None`` stays ``None``.
    """
    while True:
        if hasattr(estimator, "steps"):
            if len(estimator.steps) > 1:
                steps = estimator[:-1]
                arrays = tuple(a if a is None else steps.transform(a) for a in arrays)
            estimator = estimator[-1]
        elif hasattr(estimator, "_ranking_estimator"):
            estimator = estimator._ranking_estimator()
        else:
            return (estimator, *arrays)


def evaluate_ranking(
    estimator,
    X,
    y=None,
    *,
    metrics=METRICS,
    k=10,
    n_negatives=None,
    negatives=None,
    random_state=0,
    exclude=None,
):
    """Ranking metrics of a fitted recommender on held-out interactions.

    Parameters
    ----------
    estimator : fitted recommender or Pipeline ending in one
    X : array-like of shape (n_samples, n_columns)
        Held-out interactions; each row is a relevant (user, item) pair.
    y : array-like of shape (n_samples,), default=None
        If the estimator has a ``positive_threshold``, only rows with
        ``y >= positive_threshold`` are relevant.
    metrics : str or sequence of str, default=METRICS
        Any of "hit_rate", "ndcg", "map", "mrr", "precision", "recall", "auc".
    k : int, default=10
        Cut-off. It may exceed a user's candidates (a small catalogue, or
        ``k > n_negatives``): every relevant item the model knows then
        ranks within it, and precision still divides by ``k``.
        ``recommend``, by contrast, refuses a ``k`` it cannot fill.
    n_negatives : int, default=None
        Rank each row against this many sampled negatives (the NCF protocol)
        instead of the full catalogue.
    negatives : array-like of shape (n_relevant_rows, n), default=None
        Explicit negatives (raw item ids) for each relevant row, such as the
        NCF paper's own; overrides ``n_negatives``.
    random_state : int, RandomState instance or None, default=0
        Seed of the negative draw.
    exclude : array-like of shape (n_rows, n_columns), default=None
        More interactions whose items, like the training items, are neither
        ranked nor drawn as negatives: one (user id, item id, ...) row each,
        such as a validation split the model was not fitted on. A row
        reaches the user with its id; an item that is also held out for that
        user in ``X`` is still ranked. Not with explicit ``negatives``. In a
        Pipeline it goes through the same steps as ``X``.

    Returns
    -------
    scores : dict
        Metric name -> its mean: over users for the full ranking (a user's
        held-out items are ranked together, against the catalogue less the
        items the user has seen), over rows with sampled or explicit
        negatives (each row against its own). Ties count against the
        held-out item, and one unknown to the model counts as a miss.
    """
    estimator, X, exclude = _unwrap(estimator, X, exclude)
    check_is_fitted(estimator)
    metrics = _check_metrics(metrics, k)
    if exclude is not None and negatives is not None:
        raise ValueError(
            "exclude leaves items out of the full catalogue and of the sampled negatives; "
            "with explicit negatives, leave the excluded items out of negatives instead"
        )
    X = estimator._check_X(X, reset=False)
    threshold = getattr(estimator, "positive_threshold", None)
    if y is not None:
        y = check_target(y, len(X))
        if threshold is not None:
            X = X[y >= threshold]
    if not len(X):
        raise ValueError("X holds no relevant interaction to evaluate")
    raw_users = X[:, 0]
    users, _ = estimator._encode(raw_users, "user")
    items, known_items = estimator._encode(X[:, 1], "item")
    # one query per raw user: distinct unknown users must not share index 0
    query_ids, query = unique_inverse(as_id_column(raw_users, "user"))
    # the excluded items of each query, as a (n_queries, n_items) matrix
    extra = None if exclude is None else estimator._excluded_items(query_ids, exclude)
    if negatives is not None or n_negatives is not None:
        return _evaluate_sampled(
            estimator, users, items, known_items, query, metrics, k, n_negatives, negatives,
            random_state, extra,
        )  # fmt: skip
    # distinct unknown items per query count as misses; tell them apart by raw id
    unknown = np.zeros(query.max() + 1, dtype=np.int64)
    if not known_items.all():
        _, codes = unique_inverse(as_id_column(X[~known_items, 1], "item"))
        pairs = np.unique(np.c_[query[~known_items], codes], axis=0)
        unknown = np.bincount(pairs[:, 0], minlength=len(unknown))
    return _evaluate_full(estimator, users, items, known_items, query, unknown, metrics, k, extra)


def evaluate_encoded(
    estimator, users, items, *, metrics=("ndcg",), k=10, n_negatives=None, random_state=0
):
    """Metrics of held-out (user, item) pairs given as 1-based known indices.

    The fast path for validation during ``fit``: no id mapping, no checks.
    """
    _, query = unique_inverse(users)
    known = np.ones(len(users), dtype=bool)
    if n_negatives is not None:
        return _evaluate_sampled(
            estimator, users, items, known, query, metrics, k, n_negatives, None, random_state
        )
    unknown = np.zeros(query.max() + 1, dtype=np.int64)
    return _evaluate_full(estimator, users, items, known, query, unknown, metrics, k)


def _query_users(users, query):
    first = np.zeros(query.max() + 1, dtype=np.int64)
    first[query] = np.arange(len(query))
    return users[first]


def _evaluate_full(est, users, items, known_items, query, n_unknown, metrics, k, extra=None):
    n_queries = query.max() + 1
    q_users = _query_users(users, query)
    # distinct relevant items per query; unknown items stay as misses
    rel = sp.csr_matrix(
        (np.ones(known_items.sum(), np.float32), (query[known_items], items[known_items] - 1)),
        shape=(n_queries, est.n_items_),
    )
    rel.sum_duplicates()
    rel.data[:] = 1
    dev = est._device
    q_users_t = torch.as_tensor(q_users, device=dev)
    # what recommend leaves out of each query's ranking: the seen items, and extra's
    blocked, block_rows = est._left_out(q_users, True, extra)
    parts = []
    with torch.inference_mode():
        for chunk in est._user_chunks(n_queries):
            scores = est._score_all(q_users_t[chunk]).clone()
            rel_chunk = rel[chunk]
            mask_seen(scores, blocked, block_rows[chunk], keep=rel_chunk)
            if torch.isnan(scores).any():
                raise ValueError(f"{type(est).__name__} produced NaN scores")
            coo = rel_chunk.tocoo()
            rows = torch.as_tensor(coo.row.astype(np.int64), device=dev)
            cols = torch.as_tensor(coo.col.astype(np.int64), device=dev)
            order = torch.argsort(rows * est.n_items_ + cols)
            rows, cols = rows[order], cols[order]
            rank, above_neg = _rank_in_rows(scores, rows, cols)
            n_rel_known = torch.as_tensor(np.diff(rel_chunk.indptr), device=dev)
            n_rel = n_rel_known + torch.as_tensor(n_unknown[chunk], device=dev)
            n_neg = (scores > -torch.inf).sum(dim=1) - n_rel_known
            parts.append(_per_query(rank, above_neg, rows, n_rel, n_neg, k, metrics))
    return {m: float(torch.cat([p[m] for p in parts]).mean()) for m in metrics}


def _forbidden_items(est, q_users, query, items, known_items, extra=None):
    """Per query: what recommend leaves out (seen items, ``extra``'s), and its held-out items."""
    n_queries = len(q_users)
    left_out = seen_rows(*est._left_out(q_users, True, extra))
    test = sp.csr_matrix(
        (np.ones(known_items.sum(), np.float32), (query[known_items], items[known_items] - 1)),
        shape=(n_queries, est.n_items_),
    )
    forbidden = (left_out + test).tocsr()
    forbidden.eliminate_zeros()
    return forbidden


def _evaluate_sampled(
    est, users, items, known_items, query, metrics, k, n_negatives, negatives, random_state,
    extra=None,
):  # fmt: skip
    n_rows = len(users)
    if negatives is not None:
        negatives = np.asarray(negatives)
        if negatives.ndim != 2 or len(negatives) != n_rows or negatives.shape[1] < 1:
            raise ValueError(
                f"negatives must have shape (n_relevant_rows={n_rows}, n); got {negatives.shape}"
            )
        neg, known = IdMap(est.items_, "item").encode(negatives.ravel())
        if not known.all():
            unseen = np.unique(negatives.ravel()[~known])
            raise ValueError(f"negatives hold item ids unseen in fit: {show_ids(unseen)}")
        neg = neg.reshape(negatives.shape)
        clash = np.flatnonzero((neg == items[:, None]).any(axis=1))
        if len(clash):
            raise ValueError(
                f"negatives of row(s) {show_ids(clash)} include the row's own held-out item; "
                "each row's negatives must differ from the item they are ranked against"
            )
    else:
        check_int(n_negatives, "n_negatives")
        q_users = _query_users(users, query)
        forbidden = _forbidden_items(est, q_users, query, items, known_items, extra)
        index = NegativeIndex.from_csr(forbidden)
        free = index.n_free.numpy()
        short = free < n_negatives
        if short.any():
            raise ValueError(
                f"n_negatives={n_negatives} is larger than the items left to sample for "
                f"user(s) {show_ids(np.unique(est.users_[np.maximum(q_users[short] - 1, 0)]))} "
                f"(as few as {free[short].min()} of {est.n_items_} items are neither "
                "seen in training nor held-out positives"
                + (")" if extra is None else " nor excluded)")
            )
        generator = torch.Generator().manual_seed(draw_seed(random_state))
        neg = (
            sample_distinct_negatives(
                torch.as_tensor(query, dtype=torch.int64), n_negatives, index, generator
            ).numpy()
            + 1
        )
    n_neg = neg.shape[1]
    dev = est._device
    candidates = torch.as_tensor(np.c_[items, neg], device=dev)
    users_t = torch.as_tensor(users, device=dev)[:, None]
    step = pairs_per_chunk((n_neg + 1) * est._forward_width())  # rows of n_neg + 1 pairs
    ranks = []
    with torch.inference_mode():
        for start in range(0, n_rows, step):
            scores = est._score_pairs(
                users_t[start : start + step], candidates[start : start + step]
            )
            if torch.isnan(scores).any():
                raise ValueError(f"{type(est).__name__} produced NaN scores")
            ranks.append((scores[:, 1:] >= scores[:, :1]).sum(dim=1))
    # a held-out item unknown to the model is a miss, as in the full ranking: it is left
    # out of the ranked entries (placing it last would be a hit when k > n_negatives)
    known = torch.as_tensor(known_items, device=dev)
    rank = torch.cat(ranks)[known]
    rows = torch.arange(n_rows, device=dev)[known]
    ones = torch.ones(n_rows, device=dev)
    return _average(_per_query(rank, rank, rows, ones, ones * n_neg, k, metrics))


class RankingScorer:
    """A scorer for ``scoring=`` of any scikit-learn or Optuna search.

    Calling it as ``scorer(estimator, X, y=None)`` returns one metric of
    :func:`evaluate_ranking`; greater is better for every metric. Build it
    with :func:`make_ranking_scorer`.

    Parameters
    ----------
    metric : str
    k : int
    n_negatives : int or None
    random_state : int
        As in :func:`make_ranking_scorer`.
    """

    def __init__(self, metric, k, n_negatives, random_state):
        self.metric = metric
        self.k = k
        self.n_negatives = n_negatives
        self.random_state = random_state

    def __call__(self, estimator, X, y=None):
        """Return the metric of ``estimator`` on held-out interactions ``X``."""
        return evaluate_ranking(
            estimator,
            X,
            y,
            metrics=(self.metric,),
            k=self.k,
            n_negatives=self.n_negatives,
            random_state=self.random_state,
        )[self.metric]

    def __repr__(self):
        return (
            f"make_ranking_scorer({self.metric!r}, k={self.k}, n_negatives={self.n_negatives}, "
            f"random_state={self.random_state})"
        )


def make_ranking_scorer(metric, k=10, n_negatives=None, random_state=0):
    """Make a scorer from a ranking metric, for ``scoring=`` in any search.

    Parameters
    ----------
    metric : {"hit_rate", "ndcg", "map", "mrr", "precision", "recall", "auc"}
    k : int, default=10
        Cut-off.
    n_negatives : int, default=None
        Rank each held-out row against this many sampled negatives (drawn
        with ``random_state``, so every model of a search sees the same
        ones); ``None`` ranks against the full catalogue.
    random_state : int, default=0
        Seed of the negative draw.

    Returns
    -------
    scorer : RankingScorer
        Callable as ``scorer(estimator, X, y=None)``.

    Examples
    --------
    >>> from sklrec.metrics import make_ranking_scorer
    >>> make_ranking_scorer("hit_rate", k=10, n_negatives=99)
    make_ranking_scorer('hit_rate', k=10, n_negatives=99, random_state=0)
    """
    _check_metrics(metric, k)
    if n_negatives is not None and (
        not isinstance(n_negatives, (int, np.integer)) or n_negatives < 1
    ):
        raise ValueError(f"n_negatives must be None or an integer >= 1; got {n_negatives!r}")
    return RankingScorer(metric, k, n_negatives, random_state)
