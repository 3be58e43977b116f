"""Vectorised negative sampling.

Negatives are drawn exactly uniformly from the items a user has *not*
interacted with, with no rejection loop: for a user with sorted positives
``p_0 < p_1 < ...`` the ``r``-th unseen item is ``r + #{k : p_k - k <= r}``.
The values ``p_k - k`` of every user are packed into one sorted key array
(``user * n_items + p_k - k``), so a single :func:`torch.searchsorted` maps a
whole epoch of draws at once, on whatever device the tensors live on.
"""

import numpy as np
import torch

__all__ = ["NegativeIndex", "sample_negatives", "sample_distinct_negatives"]


class NegativeIndex:
    """The positives of every user, laid out for :func:`sample_negatives`.

    Parameters
    ----------
    indptr, indices : array-like of int
        A CSR matrix (users x items) with sorted, duplicate-free indices: the
        items each user must never be given as a negative.
    n_items : int
        Size of the catalogue.
    device : str or torch.device, default="cpu"
    """

    def __init__(self, indptr, indices, n_items, device="cpu"):
        indptr = torch.as_tensor(np.asarray(indptr, dtype=np.int64), device=device)
        indices = torch.as_tensor(np.asarray(indices, dtype=np.int64), device=device)
        degree = indptr[1:] - indptr[:-1]
        owner = torch.repeat_interleave(torch.arange(len(degree), device=device), degree)
        rank_in_row = torch.arange(len(indices), device=device) - indptr[owner]
        self.n_items = int(n_items)
        self.indptr = indptr
        self.indices = indices
        self.n_free = self.n_items - degree
        self.keys = owner * self.n_items + (indices - rank_in_row)

    @classmethod
    def from_csr(cls, matrix, device="cpu"):
        """Build the index from a ``scipy.sparse`` matrix.

        Parameters
        ----------
        matrix : sparse matrix of shape (n_users, n_items)
            Its non-zeros are the positives (duplicates and order do not matter).
        device : str or torch.device, default="cpu"

        Returns
        -------
        NegativeIndex
        """
        matrix = matrix.tocsr(copy=True)
        matrix.sum_duplicates()
        matrix.sort_indices()
        return cls(matrix.indptr, matrix.indices, matrix.shape[1], device=device)


def sample_negatives(users, index, generator):
    """Draw one unseen item per entry of ``users``, uniformly and with replacement.

    Parameters
    ----------
    users : torch.LongTensor of shape (n,)
        0-based user indices; every one must have at least one unseen item.
    index : NegativeIndex
    generator : torch.Generator
        On the same device as ``index``.

    Returns
    -------
    items : torch.LongTensor of shape (n,)
        0-based item indices, never a positive of the matching user.
    """
    # in place where it can be, so that at most four draw-sized tensors are alive at
    # once (users included), not eight: an epoch's draw is the peak of a fit's memory
    n_free = index.n_free[users]
    r = torch.rand(users.shape, generator=generator, device=users.device, dtype=torch.float64)
    r = r.mul_(n_free).long()  # the r-th unseen item, r uniform in [0, n_free)
    torch.minimum(r, n_free.sub_(1), out=r)  # guards the rounding of u * n_free up to n_free
    del n_free
    key = users * index.n_items
    key += r
    below = torch.searchsorted(index.keys, key, right=True)
    del key
    r += below
    del below
    r -= index.indptr[users]
    return r


def sample_distinct_negatives(users, n_negatives, index, generator, *, max_rounds=32):
    """Draw ``n_negatives`` distinct unseen items for each entry of ``users``.

    Duplicates within a row are redrawn; rows that still hold one after
    ``max_rounds`` (users with barely more unseen items than asked for) are
    filled by ranking random keys over their unseen items.

    Parameters
    ----------
    users : torch.LongTensor of shape (n,)
        0-based user indices; each needs at least ``n_negatives`` unseen items.
    n_negatives : int
    index : NegativeIndex
    generator : torch.Generator
        On the same device as ``index``.
    max_rounds : int, default=32
        Redraws of duplicates before the fallback.

    Returns
    -------
    items : torch.LongTensor of shape (len(users), n_negatives)
    """
    n = len(users)
    rows = users[:, None].expand(n, n_negatives)
    items = sample_negatives(rows.reshape(-1), index, generator).view(n, n_negatives)
    for _ in range(max_rounds):
        items, dup = _sorted_with_repeats(items)
        if not bool(dup.any()):
            return items
        items[dup] = sample_negatives(rows[dup], index, generator)
    items, dup = _sorted_with_repeats(items)
    stuck = dup.any(dim=1).nonzero().squeeze(1)
    if len(stuck):
        items[stuck] = _distinct_by_random_keys(users[stuck], n_negatives, index, generator)
    return items


def _sorted_with_repeats(items):
    """Sort each row of ``items``; mark the entries equal to the one before them."""
    items, _ = torch.sort(items, dim=1)
    repeat = torch.zeros_like(items, dtype=torch.bool)
    repeat[:, 1:] = items[:, 1:] == items[:, :-1]
    return items, repeat


def _distinct_by_random_keys(users, n_negatives, index, generator):
    """Exact draw without replacement for a few rows: top-k of random keys."""
    keys = torch.rand(
        (len(users), index.n_items), generator=generator, dtype=torch.float32, device=users.device
    )
    start, stop = index.indptr[users], index.indptr[users + 1]
    count = stop - start
    row = torch.repeat_interleave(torch.arange(len(users), device=users.device), count)
    offset = torch.arange(int(count.sum()), device=users.device) - torch.repeat_interleave(
        torch.cumsum(count, 0) - count, count
    )
    keys[row, index.indices[torch.repeat_interleave(start, count) + offset]] = -1.0
    return torch.topk(keys, n_negatives, dim=1).indices
