"""Shared estimator machinery.

* :class:`BaseRecommender` (``_estimators.py``): interaction-form validation,
  raw-id maps, the training matrix ``interactions_``, ``predict`` /
  ``recommend`` / ``score``.
* :class:`TorchRecommender` (``_training.py``): builds a skorch net in ``fit``
  and keeps it as ``net_``; trains on positives plus negatives drawn afresh
  every epoch.
* ``_RecNet`` (``_net.py``): the internal :class:`skorch.NeuralNet` subclass
  with a batch iterator over tensors and an epoch loop that does not sync with
  the device per batch, and the whole-epoch training sets it iterates over.
* :class:`BaseRegressor` and :class:`TorchRegressor` (``_regression.py``): the
  same for explicit ratings.
"""

from ._estimators import BaseRecommender
from ._regression import BaseRegressor, TorchRegressor
from ._training import TorchRecommender

__all__ = ["BaseRecommender", "BaseRegressor", "TorchRecommender", "TorchRegressor"]
