"""Quickstart: fit recommenders on data with a known answer and compare them.

Run with ``make demo``. The data is synthetic (users and items in planted
groups), split leave-last-out per user; every model is scored on the same
99 sampled negatives per held-out item (the NCF protocol) and on the full
catalogue. Prints one JSON line per model and a table.
"""

import json
import time

from sklrec import (
    GMFRecommender,
    MFRecommender,
    NeuMFRecommender,
    PopularityRecommender,
)
from sklrec.datasets import make_interactions
from sklrec.metrics import evaluate_ranking
from sklrec.model_selection import LeaveLastOut

X, _ = make_interactions(
    n_users=2000, n_items=600, n_groups=12, interactions_per_user=20, noise=0.2, random_state=0
)
train, test = next(LeaveLastOut(time_column=2).split(X))
X_train, X_test = X[train], X[test]
print(
    f"{len(X_train)} training and {len(X_test)} held-out interactions, "
    f"{len(set(X[:, 0]))} users, {len(set(X[:, 1]))} items"
)

models = {
    "popularity": PopularityRecommender(),
    "mf": MFRecommender(random_state=0),
    "gmf": GMFRecommender(random_state=0),
    "neumf": NeuMFRecommender(random_state=0),
}
rows = []
for name, model in models.items():
    start = time.perf_counter()
    model.fit(X_train)
    seconds = time.perf_counter() - start
    sampled = evaluate_ranking(model, X_test, metrics=("hit_rate", "ndcg"), n_negatives=99)
    full = evaluate_ranking(model, X_test, metrics=("hit_rate", "ndcg"))
    epochs = len(model.net_.history) if hasattr(model, "net_") else 0
    row = {
        "model": name,
        "HR@10 (99 neg)": round(sampled["hit_rate"], 4),
        "NDCG@10 (99 neg)": round(sampled["ndcg"], 4),
        "HR@10 (full)": round(full["hit_rate"], 4),
        "NDCG@10 (full)": round(full["ndcg"], 4),
        "epochs": epochs,
        "fit_seconds": round(seconds, 2),
    }
    print(json.dumps(row))
    rows.append(row)

print()
header = list(rows[0])
print("  ".join(f"{h:>16}" for h in header))
for row in rows:
    print("  ".join(f"{row[h]!s:>16}" for h in header))

user = X_test[0, 0]
print(
    f"\ntop 5 for user {user}:",
    models["neumf"].recommend([user], k=5)[0].tolist(),
    f"(held out: {X_test[0, 1]})",
)
