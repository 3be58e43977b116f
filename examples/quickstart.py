"""Quickstart: fit recommenders and rating regressors on data with a known answer.

Run with ``make demo``. Part 1, implicit feedback: synthetic users and items
in planted groups, split leave-last-out per user; every recommender is scored
on the same 99 sampled negatives per held-out item (the NCF protocol) and on
the full catalogue. Part 2, explicit ratings: a planted low-rank model with
biases, split 90/10 at random; every regressor is scored by RMSE and MAE.
Prints one JSON line per model and a table per part.
"""

import json
import time

import numpy as np
from sklearn.model_selection import train_test_split

from sklrec import (
    AutoRecRegressor,
    BiasRegressor,
    DeepAutoEncoderRegressor,
    GMFRecommender,
    MFRecommender,
    MFRegressor,
    NeuMFRecommender,
    PopularityRecommender,
)
from sklrec.datasets import make_interactions, make_ratings
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
    epochs = getattr(model, "n_iter_", 0)
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


def table(rows):
    print()
    header = list(rows[0])
    print("  ".join(f"{h:>16}" for h in header))
    for row in rows:
        print("  ".join(f"{row[h]!s:>16}" for h in header))


table(rows)

user = X_test[0, 0]
print(
    f"\ntop 5 for user {user}:",
    models["neumf"].recommend([user], k=5)[0].tolist(),
    f"(held out: {X_test[0, 1]})",
)

# -- part 2: explicit ratings ---------------------------------------------------------
X, y = make_ratings(
    n_users=1500, n_items=400, ratings_per_user=40, n_factors=4, noise=0.3, random_state=0
)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.1, random_state=0)
print(f"\n{len(X_train)} training and {len(X_test)} held-out ratings")
regressors = {
    "global mean + biases": BiasRegressor(),
    "mf": MFRegressor(random_state=0),
    # the autoencoders' samples are the rows of the rating matrix (400 items, 1,500
    # users here): with their MovieLens defaults (batch 256) an epoch would be 2 steps,
    # so smaller batches, more epochs and a smaller deep model suit this small matrix
    "i-autorec": AutoRecRegressor(batch_size=16, random_state=0),
    "deep autoencoder": DeepAutoEncoderRegressor(
        hidden_dims=(128, 64), dropout=0.5, batch_size=16, max_epochs=60, random_state=0
    ),
}
rows = []
for name, model in regressors.items():
    start = time.perf_counter()
    model.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    error = model.predict(X_test) - y_test
    row = {
        "model": name,
        "RMSE": round(float(np.sqrt(np.mean(error**2))), 4),
        "MAE": round(float(np.mean(np.abs(error))), 4),
        "epochs": getattr(model, "n_iter_", 0),
        "fit_seconds": round(seconds, 2),
    }
    print(json.dumps(row))
    rows.append(row)
table(rows)
