"""Matrix factorisation estimators: the baseline every neural model is held against."""

import torch

from ._docs import EMBEDDING_WEIGHT_DECAY_DOC, fill_doc
from ._utils import scored_in_chunks
from .base import TorchRecommender, TorchRegressor
from .base._net import _PenalisedNet, _Ratings
from .modules.mf import MatrixFactorization

__all__ = ["MFRecommender", "MFRegressor"]

DEFAULTS = dict(
    n_negatives=4,
    lr=0.005,
    max_epochs=20,
    batch_size=2048,
    optimizer="adam",
    weight_decay=1e-6,
    weight_decay_doc=EMBEDDING_WEIGHT_DECAY_DOC,
)


@fill_doc(**DEFAULTS)
class MFRecommender(TorchRecommender):
    """Dot-product matrix factorisation for implicit feedback.

    The score of a (user, item) pair is ``p_u . q_i + b_u + b_i + b``.
    Rendle et al. (2020) show that a well-regularised dot product matches
    NeuMF, so this is the baseline to beat.

    Parameters
    ----------
    embedding_dim : int, default=32
        Size of the user and item embeddings.
    loss : {{"bce", "bpr"}}, default="bce"
        ``"bce"``: binary cross-entropy on positives (label 1) and sampled
        negatives (label 0). ``"bpr"``: Bayesian personalised ranking, the
        log-sigmoid of the score difference of each positive and each of
        its sampled negatives.
    {implicit_params}
    {training_params}

    Attributes
    ----------
    {attributes}
    {net_attribute}

    See Also
    --------
    NeuMFRecommender : the neural model this baseline is held against.

    References
    ----------
    Rendle, Krichene, Zhang and Anderson. Neural Collaborative Filtering vs.
    Matrix Factorization Revisited. RecSys 2020.

    Rendle, Freudenthaler, Gantner and Schmidt-Thieme. BPR: Bayesian
    Personalized Ranking from Implicit Feedback. UAI 2009.

    Examples
    --------
    >>> from sklrec.datasets import make_interactions
    >>> from sklrec import MFRecommender
    >>> X, _ = make_interactions(n_users=30, n_items=20, n_groups=2, random_state=0)
    >>> model = MFRecommender(loss="bpr", max_epochs=2, random_state=0).fit(X)
    >>> model.recommend(X[:2, 0], k=3).shape
    (2, 3)
    """

    def __init__(
        self,
        embedding_dim=32,
        loss="bce",
        *,
        n_negatives=4,
        positive_threshold=None,
        handle_unknown="warn",
        lr=0.005,
        max_epochs=20,
        batch_size=2048,
        optimizer="adam",
        weight_decay=1e-6,
        lr_schedule="cosine",
        early_stopping="auto",
        n_iter_no_change=3,
        callbacks=None,
        device="cpu",
        verbose=0,
        random_state=None,
    ):
        self.embedding_dim = embedding_dim
        self.loss = loss
        self.n_negatives = n_negatives
        self.positive_threshold = positive_threshold
        self.handle_unknown = handle_unknown
        self.lr = lr
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.lr_schedule = lr_schedule
        self.early_stopping = early_stopping
        self.n_iter_no_change = n_iter_no_change
        self.callbacks = callbacks
        self.device = device
        self.verbose = verbose
        self.random_state = random_state

    def _check_params(self):
        if self.loss not in ("bce", "bpr"):
            raise ValueError(f'loss must be "bce" or "bpr"; got {self.loss!r}')
        return super()._check_params()

    @property
    def _pairwise(self):
        return self.loss == "bpr"

    def _module_params(self):
        return MatrixFactorization, {"embedding_dim": self.embedding_dim}


@fill_doc(
    lr=0.005,
    max_epochs=20,
    batch_size=1024,
    optimizer="adam",
    weight_decay=0.07,
    batch_doc="Ratings per gradient step.",
    weight_decay_doc=(
        "L2 penalty on the factors and biases each batch uses (mean squared\n"
        "        norm per rating), the classic regulariser of matrix factorisation;\n"
        "        unlike optimizer weight decay it leaves rows a batch does not use alone."
    ),
)
class MFRegressor(TorchRegressor):
    """Biased matrix factorisation for explicit ratings.

    The rating of a (user, item) pair is ``mu + b + b_u + b_i + p_u . q_i``,
    with ``mu`` the mean training rating, trained on the squared error of
    each rating. It is the baseline every neural regressor is held against.

    Parameters
    ----------
    embedding_dim : int, default=64
        Size of the user and item factors.
    clip : bool, default=True
        Clip predictions to the range of the ratings seen in ``fit``.
    handle_unknown : {{"warn", "ignore", "error"}}, default="warn"
        Ids unseen in ``fit``: ``predict`` falls back to the global mean plus
        the bias of whichever of user and item is known, with a warning
        (``"warn"``) or silently (``"ignore"``); ``"error"`` raises a
        ``ValueError`` naming them.
    {regression_training_params}

    Attributes
    ----------
    {regression_attributes}
    {net_attribute}

    See Also
    --------
    AutoRecRegressor, DeepAutoEncoderRegressor : the neural models it is held against.

    References
    ----------
    Koren, Bell and Volinsky. Matrix Factorization Techniques for Recommender
    Systems. IEEE Computer, 2009.

    Examples
    --------
    >>> from sklrec.datasets import make_ratings
    >>> from sklrec import MFRegressor
    >>> X, y = make_ratings(n_users=30, n_items=20, random_state=0)
    >>> model = MFRegressor(max_epochs=2, random_state=0).fit(X, y)
    >>> model.predict(X[:3]).shape
    (3,)
    """

    _net_class = _PenalisedNet

    def __init__(
        self,
        embedding_dim=64,
        *,
        clip=True,
        handle_unknown="warn",
        lr=0.005,
        max_epochs=20,
        batch_size=1024,
        optimizer="adam",
        weight_decay=0.07,
        lr_schedule="cosine",
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=5,
        callbacks=None,
        device="cpu",
        verbose=0,
        random_state=None,
    ):
        self.embedding_dim = embedding_dim
        self.clip = clip
        self.handle_unknown = handle_unknown
        self.lr = lr
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.weight_decay = weight_decay
        self.lr_schedule = lr_schedule
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.callbacks = callbacks
        self.device = device
        self.verbose = verbose
        self.random_state = random_state

    def _module_params(self):
        return MatrixFactorization, {
            "n_users": self.n_users_ + 1,
            "n_items": self.n_items_ + 1,
            "embedding_dim": self.embedding_dim,
        }

    def _optimizer_weight_decay(self):
        # the penalty acts on the rows each batch uses, not through the optimizer
        return 0.0

    def _net_extra(self):
        return {"l2": self.weight_decay}

    def _training_data(self, user_index, item_index, ratings, device, weights=None):
        return _Ratings(user_index, item_index, ratings - self.global_mean_, device, weights)

    def _predict_pairs(self, users, items):
        module = self._module()
        u = torch.as_tensor(users, device=self._device)
        i = torch.as_tensor(items, device=self._device)
        with torch.inference_mode():
            scored = scored_in_chunks(module, u, i, getattr(module, "forward_width", 1))
        return scored.double().cpu().numpy() + self.global_mean_
