"""Hyper-parameter search with scikit-learn's GridSearchCV and with Optuna.

Both score candidates with a ranking metric on a leave-last-out split cut
from the data; the Optuna study prunes weak trials from the per-epoch
validation NDCG that ``RankingScoring`` records.

    python examples/search.py
"""

import optuna
from optuna_integration import SkorchPruningCallback
from sklearn.model_selection import GridSearchCV

from sklrec import MFRecommender, NeuMFRecommender
from sklrec.callbacks import RankingScoring
from sklrec.datasets import make_interactions
from sklrec.metrics import evaluate_ranking, make_ranking_scorer
from sklrec.model_selection import LeaveLastOut

X, _ = make_interactions(
    n_users=600, n_items=200, n_groups=6, interactions_per_user=15, random_state=0
)
cv = LeaveLastOut(time_column=2)
scoring = make_ranking_scorer("ndcg", k=10)

# 1. GridSearchCV: every candidate is scored on the same held-out items
grid = GridSearchCV(
    MFRecommender(max_epochs=10, random_state=0),
    {"embedding_dim": [8, 32], "loss": ["bce", "bpr"]},
    scoring=scoring,
    cv=cv,
).fit(X)
print("grid search:", grid.best_params_, round(grid.best_score_, 4))

# 2. An Optuna study with pruning: a validation split cut from the training part
train, test = next(cv.split(X))
fit_idx, valid_idx = next(cv.split(X[train]))
X_fit, X_valid = X[train][fit_idx], X[train][valid_idx]


def objective(trial):
    model = NeuMFRecommender(
        embedding_dim=trial.suggest_categorical("embedding_dim", [4, 8, 16]),
        lr=trial.suggest_float("lr", 1e-3, 3e-2, log=True),
        max_epochs=10,
        callbacks=[
            RankingScoring(X_valid, metric="ndcg", k=10),
            SkorchPruningCallback(trial, "valid_ndcg@10"),
        ],
        random_state=0,
    )
    model.fit(X_fit)
    return evaluate_ranking(model, X_valid, metrics="ndcg")["ndcg"]


optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.create_study(direction="maximize", pruner=optuna.pruners.MedianPruner())
study.optimize(objective, n_trials=8)
print("optuna:", study.best_params, round(study.best_value, 4))
