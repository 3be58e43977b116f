"""sklrec: recommender systems as scikit-learn estimators on PyTorch via skorch."""

from .autoencoders import AutoRecRegressor, DeepAutoEncoderRegressor
from .baselines import BiasRegressor, PopularityRecommender
from .mf import MFRecommender, MFRegressor
from .neumf import GMFRecommender, MLPRecommender, NeuMFRecommender

__version__ = "0.1.0"

__all__ = [
    "AutoRecRegressor",
    "BiasRegressor",
    "DeepAutoEncoderRegressor",
    "GMFRecommender",
    "MFRecommender",
    "MFRegressor",
    "MLPRecommender",
    "NeuMFRecommender",
    "PopularityRecommender",
]
