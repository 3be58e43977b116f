"""Simple baselines, fitted by counting and averaging (no gradient training)."""

import numpy as np
import torch

from ._docs import fill_doc
from ._utils import check_real
from .base import BaseRecommender, BaseRegressor
from .base._regression import _BIAS_DAMPING, bias_baseline

__all__ = ["BiasRegressor", "PopularityRecommender"]


@fill_doc()
class PopularityRecommender(BaseRecommender):
    """Recommend the items with the most positive interactions.

    Every user gets the same ranking (minus the items they have seen), so a
    personalised model must beat it by a margin to be worth its cost.

    Parameters
    ----------
    positive_threshold : float, default=None
        If set, only rows with ``y >= positive_threshold`` are counted; the
        others still count as seen (``recommend`` leaves their items out).
    handle_unknown : {{"warn", "ignore", "error"}}, default="warn"
        Ids unseen in ``fit``: ``predict`` gives their rows ``-inf``, with a
        warning (``"warn"``) or silently (``"ignore"``); ``"error"`` raises.

    Attributes
    ----------
    {attributes}
    item_counts_ : ndarray of shape (n_items,)
        Positive interactions per item, the score of each item (the summed
        ``sample_weight`` when ``fit`` is given one).

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

    def _fit_model(self, user_index, item_index, epochs, weights=None):
        self.item_counts_ = np.bincount(item_index, weights, minlength=self.n_items_)

    def _counts(self):
        # a zero first entry for the unknown item index 0
        return torch.as_tensor(np.r_[0, self.item_counts_], dtype=torch.float32)

    def _score_pairs(self, users, items):
        # broadcast_tensors, not broadcast_shapes: the latter imports sympy on its first
        # call, a third of a second on the first predict of a freshly loaded model
        _, items = torch.broadcast_tensors(users, items)
        return self._counts()[items]

    def _score_all(self, users):
        return self._counts()[1:].expand(len(users), self.n_items_).clone()


@fill_doc()
class BiasRegressor(BaseRegressor):
    """The baseline predictor: global mean plus damped user and item biases.

    ``r(u, i) = mu + b_u + b_i``, fitted in closed form: ``b_i`` is the sum
    of an item's deviations from ``mu`` over its count plus
    ``item_damping``, ``b_u`` the same over the user's residuals. Every
    rating model must beat it by a margin to be worth its cost.

    Parameters
    ----------
    user_damping : float, default=10.0
        Pseudo-count shrinking each user's bias towards 0.
    item_damping : float, default=25.0
        Pseudo-count shrinking each item's bias towards 0.
    clip : bool, default=True
        Clip predictions to the range of the ratings seen in ``fit``.
    handle_unknown : {{"warn", "ignore", "error"}}, default="warn"
        Ids unseen in ``fit`` contribute no bias, with a warning (``"warn"``)
        or silently (``"ignore"``); ``"error"`` raises a ``ValueError``.

    Attributes
    ----------
    {regression_attributes}

    References
    ----------
    Koren. Factor in the Neighbors: Scalable and Accurate Collaborative
    Filtering. ACM TKDD, 2010.

    Examples
    --------
    >>> from sklrec.datasets import make_ratings
    >>> from sklrec.baselines import BiasRegressor
    >>> X, y = make_ratings(n_users=30, n_items=20, random_state=0)
    >>> BiasRegressor().fit(X, y).predict(X[:3]).shape
    (3,)
    """

    def __init__(
        self,
        user_damping=_BIAS_DAMPING[0],
        item_damping=_BIAS_DAMPING[1],
        *,
        clip=True,
        handle_unknown="warn",
    ):
        self.user_damping = user_damping
        self.item_damping = item_damping
        self.clip = clip
        self.handle_unknown = handle_unknown

    def _check_params(self):
        super()._check_params()
        for name in ("user_damping", "item_damping"):
            check_real(getattr(self, name), name, 0, low_closed=True)

    def _fit_model(self, user_index, item_index, ratings, epochs, weights=None):
        damping = (float(self.user_damping), float(self.item_damping))
        self.global_mean_, self.user_bias_, self.item_bias_ = bias_baseline(
            user_index, item_index, ratings, self.n_users_, self.n_items_, damping, weights
        )

    def _predict_pairs(self, users, items):
        return self.global_mean_ + self.user_bias_[users - 1] + self.item_bias_[items - 1]
