import os

import numpy as np
import pytest
import torch

from sklrec.datasets import make_interactions

if os.environ.get("PYTEST_XDIST_WORKER"):
    # one thread per xdist worker: more threads than cores makes torch's spinning
    # OpenMP threads fight over them, slowing every test several times over
    torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def interactions():
    """Small implicit data with 4 planted groups, seeded."""
    return make_interactions(
        n_users=40, n_items=30, n_groups=3, interactions_per_user=6, random_state=0
    )


@pytest.fixture(scope="session")
def grouped():
    """Train/test split (last item per user) of data with a strong planted signal."""
    X, _ = make_interactions(
        n_users=200, n_items=80, n_groups=4, interactions_per_user=10, noise=0.05, random_state=1
    )
    order = np.lexsort((X[:, 2], X[:, 0]))
    X = X[order]
    last = np.r_[X[1:, 0] != X[:-1, 0], True]
    return X[~last], X[last]
