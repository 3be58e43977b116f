"""The neural collaborative filtering family (He et al., 2017): GMF, MLP, NeuMF.

Every module maps ``(users, items)`` index tensors of broadcastable shapes to
logits of the broadcast shape, and ``score_all(users)`` to a ``(len(users),
n_items)`` matrix of logits against every item row, computed without
materialising one embedding pair per (user, item). Row 0 of every embedding
table is a padding row that stands for an unknown id.
"""

import torch
import torch.nn.functional as F
from torch import nn

from ._embedding import Embedding

__all__ = ["GMF", "MLP", "NeuMF"]


def _block(n, dim):
    # The draws of the per-tower nn.Embedding tables this replaced: the table's own
    # N(0, 1) initialisation, discarded, then the redraw at std 0.01. Keeping the
    # first means a seed still gives the weights (and the figures) it gave before
    weight = torch.empty(n, dim)
    nn.init.normal_(weight)
    return nn.init.normal_(weight, std=0.01)


def _tables(n_users, n_items, widths):
    """User and item embedding tables with one block of columns per tower.

    One lookup per side serves every tower, instead of one per tower (about
    10% of a NeuMF training step on CPU). Row 0, the padding row, is zero.
    """
    blocks = [(_block(n_users, w), _block(n_items, w)) for w in widths]
    tables = []
    for side, n in enumerate((n_users, n_items)):
        weight = torch.cat([pair[side] for pair in blocks], dim=1)
        weight[0] = 0.0
        tables.append(Embedding(n, sum(widths), padding_idx=0, _weight=weight))
    return tables


def _check_hidden_dims(hidden_dims):
    hidden_dims = tuple(int(h) for h in hidden_dims)
    if len(hidden_dims) < 1 or hidden_dims[0] % 2 or min(hidden_dims) < 1:
        raise ValueError(
            "hidden_dims must be positive sizes whose first entry (the "
            f"concatenated embedding size) is even; got {hidden_dims}"
        )
    return hidden_dims


class GMFTower(nn.Module):
    """Element-wise product of a user and an item embedding."""

    def __init__(self, embedding_dim):
        super().__init__()
        self.embedding_dim = embedding_dim
        self.out_dim = embedding_dim
        # floats held per (user, item) pair: by score_all, and by forward beyond
        # its inputs
        self.pair_width = 1
        self.forward_width = embedding_dim

    def forward(self, u, v):
        return u * v

    def score_all(self, u, items, weight):
        """``forward(u, v) @ weight`` for every row ``v`` of ``items``: (B, n_items)."""
        return (u * weight) @ items.T


class MLPTower(nn.Module):
    """A ReLU MLP over concatenated user and item embeddings.

    ``hidden_dims[0]`` is the concatenated embedding size (each embedding has
    half of it); the tower outputs ``hidden_dims[-1]`` features.
    """

    def __init__(self, hidden_dims, dropout=0.0):
        super().__init__()
        hidden_dims = _check_hidden_dims(hidden_dims)
        self.embedding_dim = hidden_dims[0] // 2
        self.layers = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(hidden_dims[:-1], hidden_dims[1:], strict=True)
        )
        # Glorot weights and zero biases, as in the NCF reference code. Under torch's
        # default the biases dwarf what the tiny initial embeddings contribute, so
        # each unit is on for every pair or off for every pair, and the last layer
        # could die in the first epoch (HR@10 0.0 on some seeds). Zero biases alone
        # did not prevent it; the larger Glorot weights are needed as well
        for layer in self.layers:
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.dropout = nn.Dropout(dropout)
        self.out_dim = hidden_dims[-1]
        # floats held per (user, item) pair (measured with VmHWM): score_all holds
        # the first layer's sum and its ReLU, forward those and the halves' outputs
        first = hidden_dims[1] if len(hidden_dims) > 1 else None
        self.pair_width = 1 if first is None else 2 * first
        self.forward_width = hidden_dims[0] if first is None else 3 * first

    def _rest(self, h, start):
        for layer in self.layers[start:]:
            h = self.dropout(torch.relu(layer(h)))
        return h

    def forward(self, u, v):
        if not len(self.layers):
            return torch.cat([u, v], dim=-1)
        # the first layer applied to each half: the same as to their concatenation,
        # without materialising it (and its gradient) on every batch
        first, half = self.layers[0], u.shape[-1]
        h = F.linear(u, first.weight[:, :half], first.bias) + F.linear(v, first.weight[:, half:])
        return self._rest(self.dropout(torch.relu(h)), 1)

    def score_all(self, u, items, weight):
        """``forward(u, v) @ weight`` for every row ``v`` of ``items``: (B, n_items).

        The first layer is linear in the concatenation, so its user and item
        halves are applied once per user and once per item, then added.
        """
        half = u.shape[-1]
        if not len(self.layers):
            return (u @ weight[:half])[:, None] + (items @ weight[half:])[None, :]
        first = self.layers[0]
        hu = u @ first.weight[:, :half].T + first.bias
        hv = items @ first.weight[:, half:].T
        h = self.dropout(torch.relu(hu[:, None, :] + hv[None, :, :]))
        return self._rest(h, 1) @ weight


class _Scorer(nn.Module):
    """Towers over shared embedding tables, their outputs concatenated and mapped to one logit.

    Subclasses build ``user`` and ``item`` with :func:`_tables` (one block of
    columns per tower, in the order of ``_towers()``), then the towers and ``out``.
    """

    def _towers(self):
        raise NotImplementedError

    def _embed(self, u, v):
        """Split the looked-up rows into each tower's block."""
        towers = self._towers()
        if len(towers) == 1:
            return towers, (u,), (v,)
        widths = [tower.embedding_dim for tower in towers]
        return towers, u.split(widths, dim=-1), v.split(widths, dim=-1)

    def forward(self, users, items):
        """Logits of (user, item) pairs.

        Parameters
        ----------
        users, items : LongTensor
            Broadcastable 1-based indices (0 is the padding row of an unknown id).

        Returns
        -------
        Tensor of their broadcast shape
        """
        users, items = torch.broadcast_tensors(users, items)
        towers, us, vs = self._embed(self.user(users), self.item(items))
        feats = [tower(u, v) for tower, u, v in zip(towers, us, vs, strict=True)]
        h = feats[0] if len(feats) == 1 else torch.cat(feats, dim=-1)
        return self.out(h).squeeze(-1)

    def score_all(self, users):
        """Logits of ``users`` against every item row.

        Parameters
        ----------
        users : LongTensor of shape (B,)
            1-based user indices (0 is the padding row of an unknown user).

        Returns
        -------
        Tensor of shape (B, n_items)
            One column per item row, the padding row 0 included.
        """
        towers, us, vs = self._embed(self.user(users), self.item.weight)
        w, start, total = self.out.weight[0], 0, self.out.bias
        for tower, u, v in zip(towers, us, vs, strict=True):
            total = total + tower.score_all(u, v, w[start : start + tower.out_dim])
            start += tower.out_dim
        return total

    @property
    def pair_width(self):
        """Floats held per (user, item) pair by :meth:`score_all` (for chunking)."""
        # each tower's, beside the running total it is added to
        return sum(tower.pair_width for tower in self._towers()) + 1

    @property
    def forward_width(self):
        """Floats held per (user, item) pair by :meth:`forward` (for chunking)."""
        # the broadcast pairs' embedding rows of both sides, then each tower's
        # features (the GMF product stays alive while the MLP runs), then the logit
        towers = self._towers()
        embedded = 2 * sum(tower.embedding_dim for tower in towers)
        return embedded + sum(tower.forward_width for tower in towers) + 1


class GMF(_Scorer):
    """Generalized matrix factorisation: ``dot(h, p_u * q_i) + b``.

    Parameters
    ----------
    n_users, n_items : int
        Embedding rows, padding row 0 included.
    embedding_dim : int, default=8
    """

    def __init__(self, n_users, n_items, embedding_dim=8):
        super().__init__()
        self.user, self.item = _tables(n_users, n_items, [embedding_dim])
        self.gmf = GMFTower(embedding_dim)
        self.out = nn.Linear(embedding_dim, 1)

    def _towers(self):
        return (self.gmf,)


class MLP(_Scorer):
    """Multi-layer perceptron over concatenated embeddings.

    Parameters
    ----------
    n_users, n_items : int
        Embedding rows, padding row 0 included.
    hidden_dims : tuple of int, default=(64, 32, 16, 8)
        Layer sizes; the first is the concatenated embedding size.
    dropout : float, default=0.0
    """

    def __init__(self, n_users, n_items, hidden_dims=(64, 32, 16, 8), dropout=0.0):
        super().__init__()
        hidden_dims = _check_hidden_dims(hidden_dims)
        self.user, self.item = _tables(n_users, n_items, [hidden_dims[0] // 2])
        self.mlp = MLPTower(hidden_dims, dropout)
        self.out = nn.Linear(self.mlp.out_dim, 1)

    def _towers(self):
        return (self.mlp,)


class NeuMF(_Scorer):
    """Neural matrix factorisation: GMF and MLP towers fused by one output layer.

    Parameters
    ----------
    n_users, n_items : int
        Embedding rows, padding row 0 included.
    embedding_dim : int, default=8
        GMF factors.
    hidden_dims : tuple of int, default=(64, 32, 16, 8)
        MLP layer sizes; the first is the concatenated embedding size.
    dropout : float, default=0.0
    """

    def __init__(
        self, n_users, n_items, embedding_dim=8, hidden_dims=(64, 32, 16, 8), dropout=0.0
    ):
        super().__init__()
        hidden_dims = _check_hidden_dims(hidden_dims)
        # the GMF block first, then the MLP's: the order the tables were drawn in
        # when each tower had its own
        self.user, self.item = _tables(n_users, n_items, [embedding_dim, hidden_dims[0] // 2])
        self.gmf = GMFTower(embedding_dim)
        self.mlp = MLPTower(hidden_dims, dropout)
        self.out = nn.Linear(embedding_dim + self.mlp.out_dim, 1)

    def _towers(self):
        return (self.gmf, self.mlp)

    @torch.no_grad()
    def load_pretrained(self, gmf, mlp, alpha=0.5):
        """Start from trained :class:`GMF` and :class:`MLP` modules.

        Their embedding tables fill the GMF and MLP blocks, the MLP layers are
        copied, and the output layer becomes the concatenation of theirs,
        weighted by ``alpha`` and ``1 - alpha`` (the NCF paper's pre-training
        scheme).

        Parameters
        ----------
        gmf : GMF
        mlp : MLP
            Trained on the same users and items, with this model's sizes.
        alpha : float, default=0.5
            Weight of the GMF output layer; the MLP's gets ``1 - alpha``.

        Returns
        -------
        self : NeuMF
        """
        self.user.weight.copy_(torch.cat([gmf.user.weight, mlp.user.weight], dim=1))
        self.item.weight.copy_(torch.cat([gmf.item.weight, mlp.item.weight], dim=1))
        self.mlp.load_state_dict(mlp.mlp.state_dict())
        self.out.weight.copy_(
            torch.cat([alpha * gmf.out.weight, (1 - alpha) * mlp.out.weight], dim=1)
        )
        self.out.bias.copy_(alpha * gmf.out.bias + (1 - alpha) * mlp.out.bias)
        return self
