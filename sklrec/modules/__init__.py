"""Pure PyTorch modules: they import only torch and know nothing of sklearn."""

from .autoencoder import AutoEncoder
from .mf import MatrixFactorization
from .ncf import GMF, MLP, NeuMF

__all__ = ["AutoEncoder", "GMF", "MLP", "MatrixFactorization", "NeuMF"]
