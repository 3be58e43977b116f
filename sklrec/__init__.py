"""sklrec: recommender systems as scikit-learn estimators on PyTorch via skorch."""

from .baselines import PopularityRecommender
from .mf import MFRecommender
from .neumf import GMFRecommender, MLPRecommender, NeuMFRecommender

__version__ = "0.1.0"

__all__ = [
    "GMFRecommender",
    "MFRecommender",
    "MLPRecommender",
    "NeuMFRecommender",
    "PopularityRecommender",
]
