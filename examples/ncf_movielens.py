"""NeuMF against the dot-product baseline on MovieLens, with the NCF protocol.

Leave-last-out per user by timestamp; each held-out item ranked against 99
negatives drawn with a fixed seed. MovieLens may not be redistributed:
point the script at a copy you have (``u.data``, ``ratings.dat``, a TSV from
``get_movielens.sh``), or let it download ML-100k into ``~/sklrec_data``.
NeuMF is fitted twice: as is, and with each user's recent training
interactions weighted up (``sklrec.preprocessing.recency_weights``).

    python examples/ncf_movielens.py [path/to/ratings]
"""

import sys
import time

from sklrec import MFRecommender, NeuMFRecommender, PopularityRecommender
from sklrec.datasets import fetch_movielens, load_movielens
from sklrec.metrics import evaluate_ranking
from sklrec.model_selection import LeaveLastOut
from sklrec.preprocessing import recency_weights

X, _ = load_movielens(sys.argv[1]) if len(sys.argv) > 1 else fetch_movielens("100k")
train, test = next(LeaveLastOut(time_column=2).split(X))
print(f"{len(train)} training ratings, {len(test)} held out")

# each user's recent training interactions weigh more: the held-out item is the next one
recent = recency_weights(X[train], time_column=2, strength=2.0)
neumf = dict(embedding_dim=8, hidden_dims=(64, 32, 16, 8), random_state=0)
for name, model, weights in [
    ("popularity", PopularityRecommender(), None),
    ("mf", MFRecommender(embedding_dim=40, random_state=0), None),
    ("neumf", NeuMFRecommender(**neumf), None),
    ("neumf, recency-weighted", NeuMFRecommender(**neumf), recent),
]:
    start = time.perf_counter()
    model.fit(X[train], sample_weight=weights)
    seconds = time.perf_counter() - start
    res = evaluate_ranking(model, X[test], metrics=("hit_rate", "ndcg"), k=10, n_negatives=99)
    print(f"{name:>23}: HR@10 {res['hit_rate']:.4f}  NDCG@10 {res['ndcg']:.4f}  ({seconds:.0f} s)")
