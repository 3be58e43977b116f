"""Simple baselines without torch."""

import numpy as np
import torch

from ._docs import fill_doc
from .base import BaseRecommender

__all__ = ["PopularityRecommender"]


@fill_doc()
class PopularityRecommender(BaseRecommender):
    """Recommend the items with the most positive interactions.

    Every user gets the same ranking (minus the items they have seen), so a
    personalised model must beat it by a margin to be worth its cost.

    Parameters
    ----------
    positive_threshold : float, default=None
        If set, only rows with ``y >= positive_threshold`` count.
    handle_unknown : {{"warn", "ignore", "error"}}, default="warn"
        Ids unseen in ``fit``: ``predict`` gives their rows ``-inf``, with a
        warning (``"warn"``) or silently (``"ignore"``); ``"error"`` raises.

    Attributes
    ----------
    {attributes}
    item_counts_ : ndarray of shape (n_items,)
        Positive interactions per item, the score of each item.

    Examples
    --------
    >>> from sklrec import PopularityRecommender
    >>> X = [[1, "a"], [2, "a"], [2, "b"], [3, "c"]]
    >>> PopularityRecommender().fit(X).recommend([3], k=2)
    array([['a', 'b']], dtype='<U1')
    """

    def __init__(self, *, positive_threshold=None, handle_unknown="warn"):
        self.positive_threshold = positive_threshold
        self.handle_unknown = handle_unknown

    def _fit_model(self, user_index, item_index, epochs):
        self.item_counts_ = np.bincount(item_index, minlength=self.n_items_)

    def _counts(self):
        # a zero first entry for the unknown item index 0
        return torch.as_tensor(np.r_[0, self.item_counts_], dtype=torch.float32)

    def _score_pairs(self, users, items):
        return self._counts()[items].expand(torch.broadcast_shapes(users.shape, items.shape))

    def _score_all(self, users):
        return self._counts()[1:].expand(len(users), self.n_items_).clone()
