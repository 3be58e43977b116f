import numpy as np
import pytest
import scipy.sparse as sp
import torch

from sklrec.sampling import NegativeIndex, sample_distinct_negatives, sample_negatives


def _random_csr(n_users, n_items, density, seed):
    m = sp.random(n_users, n_items, density=density, random_state=seed, format="csr")
    m.data[:] = 1
    return m


def test_never_a_positive_and_in_range():
    lil = _random_csr(50, 40, 0.5, 0).tolil()
    lil[np.arange(50), 0] = 1  # item 0 is everyone's positive
    lil[np.arange(50), 39] = 1  # and so is the last one
    csr = lil.tocsr()
    index = NegativeIndex.from_csr(csr)
    users = torch.arange(50).repeat(400)
    items = sample_negatives(users, index, torch.Generator().manual_seed(0))
    assert items.min() >= 1 and items.max() <= 38
    dense = torch.as_tensor(csr.toarray(), dtype=torch.bool)
    assert not dense[users, items].any()


def test_uniform_over_unseen_items():
    # one user who has seen items 0, 3, 4, 9 of 12: the other 8 are equally likely
    csr = sp.csr_matrix((np.ones(4), ([0, 0, 0, 0], [0, 3, 4, 9])), shape=(1, 12))
    index = NegativeIndex.from_csr(csr)
    n = 80_000
    items = sample_negatives(
        torch.zeros(n, dtype=torch.long), index, torch.Generator().manual_seed(1)
    )
    counts = np.bincount(items.numpy(), minlength=12)
    assert counts[[0, 3, 4, 9]].sum() == 0
    free = counts[[1, 2, 5, 6, 7, 8, 10, 11]]
    chi2 = ((free - n / 8) ** 2 / (n / 8)).sum()
    assert chi2 < 24.3  # 7 degrees of freedom, p = 0.001


def test_seeded_and_fresh():
    index = NegativeIndex.from_csr(_random_csr(20, 30, 0.2, 1))
    users = torch.arange(20).repeat(10)
    a = sample_negatives(users, index, torch.Generator().manual_seed(5))
    b = sample_negatives(users, index, torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    c, d = sample_negatives(users, index, g), sample_negatives(users, index, g)
    assert torch.equal(a, b) and torch.equal(a, c) and not torch.equal(c, d)


@pytest.mark.parametrize("n_free_extra", [0, 1, 50])
def test_distinct_negatives(n_free_extra):
    n_items, n_neg = 70, 15
    rng = np.random.default_rng(0)
    rows, cols = [], []
    for u in range(30):  # user u leaves exactly n_neg + n_free_extra (+u for variety) items free
        free = min(n_items, n_neg + n_free_extra + u % 3)
        seen = rng.choice(n_items, n_items - free, replace=False)
        rows += [u] * len(seen)
        cols += list(seen)
    csr = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(30, n_items))
    index = NegativeIndex.from_csr(csr)
    users = torch.arange(30).repeat(3)
    items = sample_distinct_negatives(users, n_neg, index, torch.Generator().manual_seed(0))
    assert items.shape == (90, n_neg)
    dense = torch.as_tensor(csr.toarray(), dtype=torch.bool)
    assert not dense[users[:, None], items].any()
    for row in items:
        assert len(set(row.tolist())) == n_neg
