"""Ranking metrics and scorers.

Two protocols, both vectorised in torch on the estimator's device:

* **full ranking** (default): each test user's held-out items are ranked
  against the whole catalogue, minus the items the user interacted with in
  ``fit``; metrics are averaged over users.
* **sampled** (``n_negatives=`` or ``negatives=``): each held-out row is
  ranked against ``n_negatives`` items drawn, with a fixed seed, among those
  the user has neither a training nor a test interaction with (the NCF
  protocol); metrics are averaged over rows. The draw depends only on the
  data and the seed, so every model is scored on the same negatives.

Ties are broken against the relevant item (a constant scorer earns nothing),
and a held-out item unknown to the model counts as a miss.
"""

from ._evaluate import RankingScorer, evaluate_ranking, make_ranking_scorer
from ._ranks import (
    METRICS,
    auc_score,
    hit_rate_at_k,
    map_at_k,
    mrr_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)

__all__ = [
    "METRICS",
    "auc_score",
    "evaluate_ranking",
    "hit_rate_at_k",
    "RankingScorer",
    "make_ranking_scorer",
    "map_at_k",
    "mrr_at_k",
    "ndcg_at_k",
    "precision_at_k",
    "recall_at_k",
]
