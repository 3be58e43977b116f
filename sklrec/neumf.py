"""The neural collaborative filtering estimators (He et al., 2017)."""

import copy

import torch

from ._docs import EMBEDDING_WEIGHT_DECAY_DOC, fill_doc
from .base import TorchRecommender
from .modules.ncf import GMF, MLP, NeuMF

__all__ = ["GMFRecommender", "MLPRecommender", "NeuMFRecommender"]

DEFAULTS = dict(
    n_negatives=4,
    lr='"auto"',
    lr_type='float or "auto"',
    lr_doc='Learning rate. ``"auto"`` is 0.01 at batches up to 4096, growing\n'
    "        in proportion to the batch up to 0.02 at 8192 and above: the rates\n"
    '        measured for the two batches of ``batch_size="auto"``.',
    max_epochs=20,
    batch_size='"auto"',
    batch_type='int or "auto"',
    batch_doc="Samples (positives and negatives alike) per gradient step.\n"
    '        ``"auto"`` takes 8192 when an epoch holds at least 2**18\n'
    "        (262,144) training samples, and 4096 below. On data that large\n"
    "        (ML-100k, ML-1M) the larger batch scored as well and trained faster;\n"
    "        with about 20 steps of 8192 an epoch it cost 0.01 HR@10.\n"
    "        ``net_.batch_size`` and ``net_.lr`` hold the values a fit used.",
    optimizer="adam",
    weight_decay=1e-6,
    weight_decay_doc=EMBEDDING_WEIGHT_DECAY_DOC,
)


class _NCFRecommender(TorchRecommender):
    """The NCF family's shared "auto" batch sizes and learning rate."""

    _auto_batch_sizes = (4096, 8192)
    _auto_lr = 0.01


@fill_doc(**DEFAULTS)
class GMFRecommender(_NCFRecommender):
    """Generalized matrix factorisation for implicit feedback.

    The score of a (user, item) pair is ``h . (p_u * q_i) + b``: a learned
    weighting of the element-wise product of the two embeddings, trained
    with binary cross-entropy on the positives and sampled negatives.

    Parameters
    ----------
    embedding_dim : int, default=8
        Size of the user and item embeddings (the GMF factors).
    {implicit_params}
    {training_params}

    Attributes
    ----------
    {attributes}
    {net_attribute}

    See Also
    --------
    NeuMFRecommender : GMF and MLP fused.
    MFRecommender : the plain dot product.

    References
    ----------
    He, Liao, Zhang, Nie, Hu and Chua. Neural Collaborative Filtering. WWW 2017.

    Examples
    --------
    >>> from sklrec.datasets import make_interactions
    >>> from sklrec import GMFRecommender
    >>> X, _ = make_interactions(n_users=30, n_items=20, n_groups=2, random_state=0)
    >>> model = GMFRecommender(max_epochs=2, random_state=0).fit(X)
    >>> model.recommend(X[:2, 0], k=3).shape
    (2, 3)
    """

    def __init__(
        self,
        embedding_dim=8,
        *,
        n_negatives=4,
        positive_threshold=None,
        handle_unknown="warn",
        lr="auto",
        max_epochs=20,
        batch_size="auto",
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

    def _module_params(self):
        return GMF, {"embedding_dim": self.embedding_dim}


# no weight decay for the MLP alone: on small data it tipped seeds into a dead-ReLU
# collapse (docs/benchmarks.md, "Weight decay"), measured before the MLP tower's
# initialisation changed; not measured again since
@fill_doc(
    **{
        **DEFAULTS,
        "weight_decay": 0.0,
        "weight_decay_doc": "L2 penalty handed to the optimizer (see ``NeuMFRecommender``\n"
        "        for how its pull grows with ``batch_size``).",
    }
)
class MLPRecommender(_NCFRecommender):
    """A multi-layer perceptron over concatenated user and item embeddings.

    Parameters
    ----------
    hidden_dims : tuple of int, default=(64, 32, 16, 8)
        Layer sizes. The first is the size of the concatenated embeddings
        (each embedding has half of it) and must be even; the last is the
        number of predictive factors.
    dropout : float, default=0.0
        Dropout after each hidden layer.
    {implicit_params}
    {training_params}

    Attributes
    ----------
    {attributes}
    {net_attribute}

    See Also
    --------
    NeuMFRecommender : GMF and MLP fused.

    References
    ----------
    He, Liao, Zhang, Nie, Hu and Chua. Neural Collaborative Filtering. WWW 2017.

    Examples
    --------
    >>> from sklrec.datasets import make_interactions
    >>> from sklrec import MLPRecommender
    >>> X, _ = make_interactions(n_users=30, n_items=20, n_groups=2, random_state=0)
    >>> model = MLPRecommender(hidden_dims=(16, 8), max_epochs=2, random_state=0).fit(X)
    >>> model.predict(X[:3]).shape
    (3,)
    """

    def __init__(
        self,
        hidden_dims=(64, 32, 16, 8),
        dropout=0.0,
        *,
        n_negatives=4,
        positive_threshold=None,
        handle_unknown="warn",
        lr="auto",
        max_epochs=20,
        batch_size="auto",
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
        self.hidden_dims = hidden_dims
        self.dropout = dropout
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

    def _module_params(self):
        return MLP, {"hidden_dims": tuple(self.hidden_dims), "dropout": self.dropout}


@fill_doc(**DEFAULTS)
class NeuMFRecommender(_NCFRecommender):
    """Neural matrix factorisation: GMF and an MLP fused by one output layer.

    Parameters
    ----------
    embedding_dim : int, default=8
        GMF factors.
    hidden_dims : tuple of int, default=(64, 32, 16, 8)
        MLP layer sizes; the first is the concatenated embedding size.
    dropout : float, default=0.0
        Dropout after each hidden MLP layer.
    pretrain : bool, default=False
        Train a GMF and an MLP first (``max_epochs`` each) and start NeuMF
        from their weights, the output layer being their two output layers
        weighted by one half each, as the NCF paper does. As in the paper,
        that NeuMF phase is trained with plain SGD (no momentum) at ``lr``,
        whatever ``optimizer`` is: a fresh Adam undoes much of what
        pre-training gained. With early stopping, the model as loaded
        competes with the epochs of that phase on the validation split, and
        is kept where none of them scores higher. ``callbacks`` see only the
        NeuMF phase, and ``n_iter_`` counts its epochs; ``partial_fit`` never
        pre-trains.
    {implicit_params}
    {training_params}

    Attributes
    ----------
    {attributes}
    {net_attribute}

    See Also
    --------
    GMFRecommender, MLPRecommender : the two halves.
    MFRecommender : the dot-product baseline NeuMF must beat.

    References
    ----------
    He, Liao, Zhang, Nie, Hu and Chua. Neural Collaborative Filtering. WWW 2017.

    Examples
    --------
    >>> from sklrec.datasets import make_interactions
    >>> from sklrec import NeuMFRecommender
    >>> X, _ = make_interactions(n_users=30, n_items=20, n_groups=2, random_state=0)
    >>> model = NeuMFRecommender(max_epochs=2, random_state=0).fit(X)
    >>> model.recommend(X[:2, 0], k=3).shape
    (2, 3)
    """

    def __init__(
        self,
        embedding_dim=8,
        hidden_dims=(64, 32, 16, 8),
        dropout=0.0,
        pretrain=False,
        *,
        n_negatives=4,
        positive_threshold=None,
        handle_unknown="warn",
        lr="auto",
        max_epochs=20,
        batch_size="auto",
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
        self.hidden_dims = hidden_dims
        self.dropout = dropout
        self.pretrain = pretrain
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

    def _module_params(self):
        return NeuMF, {
            "embedding_dim": self.embedding_dim,
            "hidden_dims": tuple(self.hidden_dims),
            "dropout": self.dropout,
        }

    def _train(self, data, device, seed, epochs, valid):
        if not self.pretrain or epochs is not None:
            super()._train(data, device, seed, epochs, valid)
            return
        n = len(data)
        gmf = self._make_net(
            GMF, seed + 1, device, n, self._internal_callbacks(n, valid),
            user_callbacks=False, embedding_dim=self.embedding_dim,
        )  # fmt: skip
        mlp = self._make_net(
            MLP, seed + 2, device, n, self._internal_callbacks(n, valid),
            user_callbacks=False, hidden_dims=tuple(self.hidden_dims), dropout=self.dropout,
        )  # fmt: skip
        self._run(gmf, data)
        self._run(mlp, data)
        module, kwargs = self._module_params()
        internal = self._internal_callbacks(n, valid)
        # plain SGD, as the NCF paper fine-tunes: a fresh Adam has no moment estimates for
        # the loaded weights, and its first steps undo much of what pre-training gained
        net = self._make_net(
            module, seed, device, n, internal, optimizer=torch.optim.SGD, **kwargs
        ).initialize()
        net.module_.load_pretrained(gmf.module_, mlp.module_)
        validation = dict(internal).get("sklrec_validation")
        if validation is None:  # no early stopping, or no epochs
            self._run(net, data)
            return
        # the loaded model competes with the epochs of the NeuMF phase on the validation
        # split: where none of them beats it, its weights are kept
        loaded = copy.deepcopy(net.module_.state_dict())
        self.net_ = net
        start = validation._evaluate(self)
        self._run(net, data)
        if start >= max(net.history[:, validation.name_]):
            net.module_.load_state_dict(loaded)
