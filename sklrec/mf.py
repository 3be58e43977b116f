"""Matrix factorisation estimators: the baseline every neural model is held against."""

from ._docs import fill_doc
from .base import TorchRecommender
from .modules.mf import MatrixFactorization

__all__ = ["MFRecommender"]

DEFAULTS = dict(
    n_negatives=4, lr=0.005, max_epochs=20, batch_size=2048, optimizer="adam", weight_decay=0.0
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
        weight_decay=0.0,
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
