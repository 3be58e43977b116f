"""Autoencoder regressors for explicit ratings: AutoRec and the deep autoencoder."""

import numpy as np
import torch

from ._docs import fill_doc
from ._utils import check_bool, check_int, check_real, pairs_per_chunk
from .base import TorchRegressor
from .base._net import _AutoEncoderNet, _SparseRows
from .modules.autoencoder import ACTIVATIONS, AutoEncoder

__all__ = ["AutoRecRegressor", "DeepAutoEncoderRegressor"]

_BATCH_DOC = "Rating vectors (rows of the rating matrix) per gradient step."

# predict reconstructs rows in blocks of exactly this many, the last one padded with
# zero rows. The bits of a row's float32 matrix product depend on how many rows are
# multiplied together (one row runs another kernel than several), so without fixed
# blocks a pair's prediction would change with the other pairs asked in the same call
_ROW_BLOCK = 128


def _reconstruct_in_blocks(module, inputs):
    """``module(inputs)``, every call on exactly ``_ROW_BLOCK`` rows."""
    blocks = list(inputs.split(_ROW_BLOCK))
    short = _ROW_BLOCK - len(blocks[-1])
    if short:
        blocks[-1] = torch.cat([blocks[-1], inputs.new_zeros(short, inputs.shape[1])])
    return torch.cat([module(block) for block in blocks])[: len(inputs)]


class _AutoEncoderRegressor(TorchRegressor):
    """Shared machinery: rows of the rating matrix in, their reconstruction out.

    A training sample is one row of ``interactions_`` (a user's ratings) or of
    its transpose (an item's), made dense per batch on the device. The loss
    counts observed ratings only, and so does every evaluation: ``predict``
    reads each (user, item) pair off the reconstruction of the stored
    training row it belongs to.
    """

    _net_class = _AutoEncoderNet

    @property
    def _item_based(self):
        return self.based == "item"

    def _check_params(self):
        if self.based not in ("item", "user"):
            raise ValueError(f'based must be "item" or "user"; got {self.based!r}')
        device = super()._check_params()
        for name in ("activation", "output_activation"):
            value = self._activations()[name]
            if value not in ACTIVATIONS:
                raise ValueError(
                    f"{self._activation_param(name)} must be one of {sorted(ACTIVATIONS)}; "
                    f"got {value!r}"
                )
        return device

    def _rows(self):
        """Return the training matrix with one sample per row (CSR).

        The item-based models' transpose is built the first time it is asked
        for each matrix that ``interactions_`` holds, and kept with it, not
        rebuilt on every ``predict`` (6 ms on ML-1M, a quarter of what a
        one-pair ``predict`` took).
        """
        if not self._item_based:
            return self.interactions_
        kept = self.__dict__.get("_item_rows")
        if kept is None or kept[0] is not self.interactions_:
            kept = self._item_rows = (self.interactions_, self.interactions_.T.tocsr())
        return kept[1]

    def _weight_rows(self):
        """Return the pairs' weights laid out as ``_rows()`` (None without ``sample_weight``)."""
        weights = self._pair_weights
        return weights.T.tocsr() if weights is not None and self._item_based else weights

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_item_rows", None)  # rebuilt when first asked for: no second copy pickled
        return state

    def _module_params(self):
        return AutoEncoder, {
            "n_inputs": self._rows().shape[1],
            "hidden_dims": tuple(int(d) for d in self._hidden_dims()),
            "dropout": float(self.dropout),
            "constrained": bool(getattr(self, "constrained", False)),
            **self._activations(),
        }

    def _net_extra(self):
        return {"refeed": bool(getattr(self, "refeed", False))}

    def _training_data(self, user_index, item_index, ratings, device, weights=None):
        rows = np.unique(item_index if self._item_based else user_index)
        return _SparseRows(self._rows(), rows, device, self._weight_rows())

    def _predict_pairs(self, users, items):
        rows, cols = (items - 1, users - 1) if self._item_based else (users - 1, items - 1)
        matrix = self._rows()
        order = np.argsort(rows, kind="stable")
        unique, starts = np.unique(rows[order], return_index=True)
        ends = np.append(starts[1:], len(rows))
        out = np.empty(len(rows))
        step = pairs_per_chunk(matrix.shape[1])
        module = self._module()
        with torch.inference_mode():
            for a in range(0, len(unique), step):
                chunk = unique[a : a + step]
                inputs = torch.as_tensor(matrix[chunk].toarray(), device=self._device)
                sel = order[starts[a] : ends[min(a + step, len(unique)) - 1]]
                local = torch.as_tensor(np.searchsorted(chunk, rows[sel]), device=self._device)
                asked = torch.as_tensor(cols[sel], device=self._device)
                # read the asked entries on the device: only they come back to the host
                recon = _reconstruct_in_blocks(module, inputs)
                out[sel] = recon[local, asked].double().cpu().numpy()
        return out


@fill_doc(
    lr=0.003,
    max_epochs=50,
    batch_size=256,
    optimizer="adam",
    weight_decay=0.0005,
    batch_doc=_BATCH_DOC,
)
class AutoRecRegressor(_AutoEncoderRegressor):
    """AutoRec: an autoencoder of each item's (or user's) vector of ratings.

    I-AutoRec (``based="item"``, the default and the better of the two in
    the paper) reconstructs each item's ratings over all users through a
    ``hidden_units`` bottleneck; the predicted rating of a (user, item)
    pair is the user's entry of the reconstruction of the item's training
    ratings. U-AutoRec does the same with users' vectors over items. Only
    observed ratings count in the loss.

    Parameters
    ----------
    based : {{"item", "user"}}, default="item"
        Whether a sample is an item's ratings (I-AutoRec) or a user's (U-AutoRec).
    hidden_units : int, default=500
        Size of the hidden layer.
    encoder_activation : str, default="sigmoid"
        One of "sigmoid", "identity", "relu", "elu", "selu", "lrelu", "tanh".
    decoder_activation : str, default="identity"
        Activation of the reconstruction, from the same list.
    dropout : float, default=0.0
        Dropout on the hidden layer while training.
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
    DeepAutoEncoderRegressor : a deep autoencoder with dense re-feeding.
    MFRegressor : the biased matrix factorisation baseline.

    References
    ----------
    Sedhain, Menon, Sanner and Xie. AutoRec: Autoencoders Meet Collaborative
    Filtering. WWW 2015.

    Examples
    --------
    >>> from sklrec.datasets import make_ratings
    >>> from sklrec import AutoRecRegressor
    >>> X, y = make_ratings(n_users=30, n_items=20, random_state=0)
    >>> model = AutoRecRegressor(hidden_units=16, max_epochs=2, random_state=0).fit(X, y)
    >>> model.predict(X[:3]).shape
    (3,)
    """

    def __init__(
        self,
        based="item",
        hidden_units=500,
        *,
        encoder_activation="sigmoid",
        decoder_activation="identity",
        dropout=0.0,
        clip=True,
        handle_unknown="warn",
        lr=0.003,
        max_epochs=50,
        batch_size=256,
        optimizer="adam",
        weight_decay=0.0005,
        lr_schedule="cosine",
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=5,
        callbacks=None,
        device="cpu",
        verbose=0,
        random_state=None,
    ):
        self.based = based
        self.hidden_units = hidden_units
        self.encoder_activation = encoder_activation
        self.decoder_activation = decoder_activation
        self.dropout = dropout
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

    def _check_params(self):
        check_int(self.hidden_units, "hidden_units")
        return super()._check_params()

    def _hidden_dims(self):
        return (self.hidden_units,)

    def _activations(self):
        return {
            "activation": self.encoder_activation,
            "output_activation": self.decoder_activation,
        }

    @staticmethod
    def _activation_param(name):
        return {"activation": "encoder_activation", "output_activation": "decoder_activation"}[
            name
        ]


@fill_doc(
    lr=0.001,
    max_epochs=30,
    batch_size=128,
    optimizer="adam",
    weight_decay=0.001,
    batch_doc=_BATCH_DOC,
)
class DeepAutoEncoderRegressor(_AutoEncoderRegressor):
    """Deep autoencoder of rating vectors with dense re-feeding (NVIDIA DeepRecommender).

    Each sample's vector of ratings (an item's over all users by default, a
    user's over all items with ``based="user"`` as in the paper) goes
    through a deep SELU encoder, heavy dropout on the code and a mirrored
    decoder; only observed ratings count in the loss. With ``refeed=True``
    every update on a batch ``x`` is followed by one on the dense
    reconstruction ``f(x)`` as both input and target, which the paper finds
    to help most.

    The paper's settings (user-based, no weight decay) were tuned on
    Netflix, with about 80 times the users of MovieLens-1M. On MovieLens
    they overfit and can diverge; the defaults here keep the architecture
    and re-feeding but sample items, add L2 weight decay, clip the gradient
    norm and train 30 epochs (docs/benchmarks.md gives the measurements).

    Parameters
    ----------
    hidden_dims : tuple of int, default=(512, 512, 1024)
        Encoder layer sizes, the last one the code; the decoder mirrors them.
    activation : str, default="selu"
        Activation of every hidden layer: "selu", "elu", "lrelu", "relu",
        "sigmoid", "tanh" or "identity".
    dropout : float, default=0.8
        Dropout on the code while training.
    constrained : bool, default=False
        Tie each decoder layer's weights to the transposed encoder weights.
    refeed : bool, default=True
        Dense re-feeding: a second update per batch on its reconstruction.
    based : {{"item", "user"}}, default="item"
        Whether a sample is an item's ratings over users or a user's over
        items (the paper's model). On MovieLens the item-based model is the
        more accurate, as I-AutoRec is against U-AutoRec.
    max_grad_norm : float or None, default=1.0
        Clip the norm of the gradient of every update (``None``: no clipping).
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
    AutoRecRegressor : the one-layer item- or user-based autoencoder.

    References
    ----------
    Kuchaiev and Ginsburg. Training Deep AutoEncoders for Collaborative
    Filtering. arXiv:1708.01715, 2017.

    Examples
    --------
    >>> from sklrec.datasets import make_ratings
    >>> from sklrec import DeepAutoEncoderRegressor
    >>> X, y = make_ratings(n_users=30, n_items=20, random_state=0)
    >>> model = DeepAutoEncoderRegressor(hidden_dims=(8, 4), max_epochs=2, random_state=0)
    >>> model.fit(X, y).predict(X[:3]).shape
    (3,)
    """

    def __init__(
        self,
        hidden_dims=(512, 512, 1024),
        *,
        activation="selu",
        dropout=0.8,
        constrained=False,
        refeed=True,
        based="item",
        max_grad_norm=1.0,
        clip=True,
        handle_unknown="warn",
        lr=0.001,
        max_epochs=30,
        batch_size=128,
        optimizer="adam",
        weight_decay=0.001,
        lr_schedule="cosine",
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=5,
        callbacks=None,
        device="cpu",
        verbose=0,
        random_state=None,
    ):
        self.hidden_dims = hidden_dims
        self.activation = activation
        self.dropout = dropout
        self.constrained = constrained
        self.refeed = refeed
        self.based = based
        self.max_grad_norm = max_grad_norm
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

    def _check_params(self):
        for name in ("constrained", "refeed"):
            check_bool(getattr(self, name), name)
        if self.max_grad_norm is not None:
            check_real(self.max_grad_norm, "max_grad_norm", 0)
        return super()._check_params()

    def _net_extra(self):
        norm = None if self.max_grad_norm is None else float(self.max_grad_norm)
        return {**super()._net_extra(), "max_grad_norm": norm}

    def _hidden_dims(self):
        return tuple(self.hidden_dims)

    def _activations(self):
        return {"activation": self.activation, "output_activation": "identity"}

    @staticmethod
    def _activation_param(name):
        return name
