"""skorch callbacks for sklrec estimators.

:class:`RankingScoring` records a ranking metric on held-out interactions
after every epoch, so that skorch's own ``EarlyStopping`` (with
``load_best=True``) and Optuna's ``SkorchPruningCallback`` can monitor it::

    from skorch.callbacks import EarlyStopping
    NeuMFRecommender(callbacks=[
        RankingScoring(X_valid, metric="ndcg", k=10),
        EarlyStopping(monitor="valid_ndcg@10", lower_is_better=False, load_best=True),
    ])

The estimators' own ``early_stopping`` uses the same mechanism.
"""

import numpy as np
from skorch.callbacks import Callback

from .metrics import evaluate_ranking
from .metrics._evaluate import evaluate_encoded
from .metrics._ranks import _check_metrics

__all__ = ["RankingScoring"]


class _EpochScore(Callback):
    """Record ``self._evaluate(recommender)`` and whether it is the best so far."""

    _lower_is_better = False

    def initialize(self):
        self.best_score_ = float("inf") if self._lower_is_better else -float("inf")
        return self

    def on_epoch_end(self, net, **kwargs):
        recommender = getattr(net, "recommender_", None)
        if recommender is None:
            raise RuntimeError(
                f"{type(self).__name__} runs only inside the fit of an sklrec estimator"
            )
        score = self._evaluate(recommender)
        is_best = score < self.best_score_ if self._lower_is_better else score > self.best_score_
        if is_best:
            self.best_score_ = score
        net.history.record(self.name_, score)
        net.history.record(self.name_ + "_best", bool(is_best))


class RankingScoring(_EpochScore):
    """Score held-out interactions with a ranking metric after each epoch.

    Records ``name`` (default ``"valid_<metric>@<k>"``) and ``name + "_best"``
    in ``net_.history``. It works only inside the ``fit`` of an sklrec
    estimator, which lends the callback its id maps and seen items.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_columns)
        Held-out interactions (cut them from the training data, not the test
        set, or the figures you report will be flattered).
    y : array-like of shape (n_samples,), default=None
        Passed to :func:`~sklrec.metrics.evaluate_ranking`.
    metric : str, default="ndcg"
        Any metric of :data:`sklrec.metrics.METRICS`.
    k : int, default=10
    n_negatives : int, default=None
        Sampled negatives per row instead of the full catalogue.
    random_state : int, default=0
        Seed of the negative draw, the same every epoch.
    name : str, default=None
        History key.
    """

    def __init__(
        self, X, y=None, *, metric="ndcg", k=10, n_negatives=None, random_state=0, name=None
    ):
        self.X = X
        self.y = y
        self.metric = metric
        self.k = k
        self.n_negatives = n_negatives
        self.random_state = random_state
        self.name = name

    def initialize(self):
        """Check the metric and reset the best score."""
        _check_metrics(self.metric, self.k)
        self.name_ = self.name or f"valid_{self.metric}@{self.k}"
        return super().initialize()

    def _evaluate(self, recommender):
        return evaluate_ranking(
            recommender,
            self.X,
            self.y,
            metrics=(self.metric,),
            k=self.k,
            n_negatives=self.n_negatives,
            random_state=self.random_state,
        )[self.metric]


class ValidationNDCG(_EpochScore):
    """NDCG@10 of held-out pairs given as 1-based index arrays.

    The monitor of the estimators' own early stopping, recorded as
    ``"valid_ndcg@10"``: each pair is ranked against ``n_negatives`` items
    drawn with ``random_state`` (the same ones every epoch), or against the
    full catalogue when ``n_negatives`` is None.
    """

    name_ = "valid_ndcg@10"

    def __init__(self, users, items, n_negatives=None, random_state=0):
        self.users = users
        self.items = items
        self.n_negatives = n_negatives
        self.random_state = random_state

    def _evaluate(self, recommender):
        return evaluate_encoded(
            recommender,
            self.users,
            self.items,
            n_negatives=self.n_negatives,
            random_state=self.random_state,
        )["ndcg"]


class ValidationRMSE(_EpochScore):
    """RMSE of held-out ratings of pairs given as 1-based index arrays.

    The monitor of the regressors' own early stopping, recorded as
    ``"valid_rmse"`` (predictions clipped as ``predict`` clips them); with
    ``weights`` (one per pair) each squared error is weighted by its pair's.
    """

    name_ = "valid_rmse"
    _lower_is_better = True

    def __init__(self, users, items, ratings, weights=None):
        self.users = users
        self.items = items
        self.ratings = ratings
        self.weights = weights

    def _evaluate(self, regressor):
        pred = regressor._clipped(regressor._predict_pairs(self.users, self.items))
        weights = self.weights
        if weights is not None and not weights.sum() > 0:
            weights = None  # every held-out rating weighs 0: count them alike
        return float(np.sqrt(np.average((pred - self.ratings) ** 2, weights=weights)))
