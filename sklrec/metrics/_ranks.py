"""Metrics from the ranks of relevant items, and of score arrays.

Ties are broken against the relevant item (a constant scorer earns nothing).
"""

import numpy as np
import scipy.sparse as sp
import torch

from .._utils import check_int

METRICS = ("hit_rate", "ndcg", "map", "mrr", "precision", "recall", "auc")


# -- the core: metrics from the ranks of relevant items ---------------------------
def _per_query(rank, above_neg, query, n_rel, n_neg, k, metrics):
    """Per-query metric values from the ranks of relevant entries.

    Parameters
    ----------
    rank : tensor of shape (R,)
        0-based position of each rankable relevant entry among all candidates
        (ties counted against it).
    above_neg : tensor of shape (R,)
        Negatives scored at least as high as the entry.
    query : LongTensor of shape (R,)
        Query (user or row) of each entry.
    n_rel : tensor of shape (Q,)
        Relevant entries per query, unrankable ones included (they are misses).
    n_neg : tensor of shape (Q,)
        Negative candidates per query.
    """
    n_queries, dev = len(n_rel), n_rel.device
    rank, above_neg, n_rel, n_neg = (
        rank.double(),
        above_neg.double(),
        n_rel.double(),
        n_neg.double(),
    )
    hit = (rank < k).double()

    def per_query(values):
        return torch.zeros(n_queries, dtype=torch.float64, device=dev).index_add_(0, query, values)

    n_hits = per_query(hit)
    out = {}
    if "hit_rate" in metrics:
        out["hit_rate"] = (n_hits > 0).double()
    if "precision" in metrics:
        out["precision"] = n_hits / k
    if "recall" in metrics:
        out["recall"] = n_hits / n_rel
    if "ndcg" in metrics:
        gains = 1.0 / torch.log2(torch.arange(k, device=dev, dtype=torch.float64) + 2)
        ideal = torch.cat([gains.new_zeros(1), torch.cumsum(gains, 0)])
        dcg = per_query(hit / torch.log2(rank + 2))
        out["ndcg"] = dcg / ideal[torch.clamp(n_rel, max=k).long()]
    if "mrr" in metrics:
        out["mrr"] = torch.zeros(n_queries, dtype=torch.float64, device=dev).scatter_reduce_(
            0, query, hit / (rank + 1), reduce="amax"
        )
    if "map" in metrics:
        # j-th best relevant entry of its query: precision at its rank is j / (rank + 1)
        order = torch.argsort(query * (rank.max() + 2 if len(rank) else 1) + rank)
        q_sorted, hit_sorted, rank_sorted = query[order], hit[order], rank[order]
        counts = torch.bincount(q_sorted, minlength=n_queries)
        start = torch.cumsum(counts, 0) - counts
        j = torch.arange(len(order), device=dev) - start[q_sorted] + 1
        ap = per_query(hit_sorted * j / (rank_sorted + 1))
        out["map"] = ap / torch.clamp(n_rel, max=k)
    if "auc" in metrics:
        frac = above_neg / n_neg[query]
        # an unrankable relevant entry counts as ranked below every negative
        out["auc"] = 1.0 - (per_query(frac) + (n_rel - per_query(torch.ones_like(frac)))) / n_rel
    return {name: out[name] for name in metrics}  # in the order asked


def _rank_in_rows(scores, rows, cols):
    """Ranks of the entries ``(rows, cols)`` of ``scores`` within their rows.

    Returns ``(rank, above_neg)``: candidates and non-relevant candidates
    (other entries of ``(rows, cols)`` being the relevant ones) scored at
    least as high, the entry itself excluded. Entries must be sorted by row.
    ``-inf`` scores are not candidates.
    """
    n_rows = scores.shape[0]
    value = scores[rows, cols]
    counts = torch.bincount(rows, minlength=n_rows)
    width = int(counts.max()) if len(rows) else 0
    slot = torch.arange(len(rows), device=scores.device) - (torch.cumsum(counts, 0) - counts)[rows]
    padded = torch.full(
        (n_rows, max(width, 1)), -torch.inf, dtype=scores.dtype, device=scores.device
    )
    padded[rows, slot] = value
    n = scores.shape[1]
    ge_all = n - torch.searchsorted(torch.sort(scores, dim=1).values, padded, side="left")
    ge_rel = padded.shape[1] - torch.searchsorted(
        torch.sort(padded, dim=1).values, padded, side="left"
    )
    ge_all, ge_rel = ge_all[rows, slot], ge_rel[rows, slot]
    return ge_all - 1, ge_all - ge_rel


def _average(per_query):
    return {name: float(values.mean()) for name, values in per_query.items()}


def _check_metrics(metrics, k):
    metrics = (metrics,) if isinstance(metrics, str) else tuple(metrics)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise ValueError(f"unknown metric(s) {unknown}; choose from {METRICS}")
    check_int(k, "k")
    return metrics


# -- metrics of score arrays ---------------------------------------------------------
def _array_metric(name, y_true, y_score, k):
    y_true = y_true.toarray() if sp.issparse(y_true) else np.asarray(y_true)
    y_score = np.asarray(y_score, dtype=np.float64)
    if y_true.ndim == 1:
        y_true, y_score = y_true[None], y_score[None]
    if y_true.shape != y_score.shape or y_true.ndim != 2:
        raise ValueError(
            f"y_true and y_score must have the same shape (n_queries, n_items); "
            f"got {y_true.shape} and {y_score.shape}"
        )
    if np.isnan(y_score).any():
        raise ValueError("y_score contains NaN")
    relevant = y_true > 0
    keep = relevant.any(axis=1)
    if not keep.any():
        raise ValueError("y_true has no relevant entry: the metric is undefined")
    relevant, scores = relevant[keep], torch.as_tensor(y_score[keep])
    rows, cols = (torch.as_tensor(a) for a in np.nonzero(relevant))
    rank, above_neg = _rank_in_rows(scores, rows, cols)
    n_rel = torch.as_tensor(relevant.sum(axis=1))
    n_neg = (scores > -torch.inf).sum(dim=1) - n_rel
    per_q = _per_query(rank, above_neg, rows, n_rel, n_neg, k, (name,))
    return float(per_q[name].mean())


def _make_array_metric(name, doc):
    def metric(y_true, y_score, *, k=10):
        _check_metrics(name, k)
        return _array_metric(name, y_true, y_score, k)

    metric.__name__ = f"{name}_at_k"
    metric.__doc__ = f"""{doc}

    Each row of ``y_score`` ranks the items of one query (a user); ties are
    broken against the relevant item; ``-inf`` marks an item that is not a
    candidate. Rows of ``y_true`` without a relevant item are left out of the
    mean.

    Parameters
    ----------
    y_true : array-like or sparse matrix of shape (n_queries, n_items)
        Relevance: entries > 0 are relevant.
    y_score : array-like of shape (n_queries, n_items)
        Predicted scores, higher is better.
    k : int, default=10
        Cut-off.

    Returns
    -------
    score : float
        The mean over queries.
    """
    return metric


hit_rate_at_k = _make_array_metric(
    "hit_rate", "Share of queries with a relevant item in the top k."
)
ndcg_at_k = _make_array_metric(
    "ndcg", "Normalised discounted cumulative gain of the top k (binary relevance)."
)
map_at_k = _make_array_metric(
    "map", "Mean average precision at k (divided by min(k, relevant items))."
)
mrr_at_k = _make_array_metric(
    "mrr", "Mean reciprocal rank of the first relevant item, 0 beyond k."
)
precision_at_k = _make_array_metric("precision", "Relevant items in the top k, divided by k.")
recall_at_k = _make_array_metric(
    "recall", "Relevant items in the top k, divided by the relevant items."
)


def auc_score(y_true, y_score):
    """Per-query area under the ROC curve, averaged over queries.

    The share of (relevant, non-relevant) pairs ordered correctly, ties
    counted as wrong. It looks at the whole ranking, so it takes no ``k``.

    Parameters
    ----------
    y_true : array-like or sparse matrix of shape (n_queries, n_items)
        Relevance: entries > 0 are relevant.
    y_score : array-like of shape (n_queries, n_items)
        Predicted scores, higher is better.

    Returns
    -------
    score : float
    """
    return _array_metric("auc", y_true, y_score, 1)
