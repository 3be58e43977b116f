"""Pure PyTorch modules: they import only torch and know nothing of sklearn."""

from .mf import MatrixFactorization
from .ncf import GMF, MLP, NeuMF

__all__ = ["GMF", "MLP", "MatrixFactorization", "NeuMF"]
