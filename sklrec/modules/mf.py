"""Matrix factorisation: a dot product of embeddings plus biases."""

import torch
from torch import nn

from ._embedding import Embedding

__all__ = ["MatrixFactorization"]


class MatrixFactorization(nn.Module):
    """Matrix factorisation with biases: ``dot(p_u, q_i) + b_u + b_i + b``.

    Parameters
    ----------
    n_users, n_items : int
        Embedding rows, padding row 0 (an unknown id) included.
    embedding_dim : int, default=32
    bias : bool, default=True
        Learn user, item and global biases. The padding row of each bias is
        zero, so an unknown user or item contributes nothing.
    init_std : float, default=0.01
        Standard deviation of the normal initialisation of the embeddings.
    """

    def __init__(self, n_users, n_items, embedding_dim=32, bias=True, init_std=0.01):
        super().__init__()
        # floats held per (user, item) pair (measured with VmHWM), for chunking:
        # score_all holds the score matrix and its bias sums; forward the item rows,
        # their product with the user rows and the bias sums
        self.pair_width = 4
        self.forward_width = 2 * embedding_dim + 3
        self.user = Embedding(n_users, embedding_dim, padding_idx=0)
        self.item = Embedding(n_items, embedding_dim, padding_idx=0)
        for emb in (self.user, self.item):
            nn.init.normal_(emb.weight, std=init_std)
            with torch.no_grad():
                emb.weight[0].zero_()
        self.bias = bias
        if bias:
            self.user_bias = Embedding(n_users, 1, padding_idx=0)
            self.item_bias = Embedding(n_items, 1, padding_idx=0)
            nn.init.zeros_(self.user_bias.weight)
            nn.init.zeros_(self.item_bias.weight)
            self.global_bias = nn.Parameter(torch.zeros(()))

    def forward(self, users, items):
        """Scores of (user, item) pairs.

        Parameters
        ----------
        users, items : LongTensor
            Broadcastable 1-based indices (0 is the padding row of an unknown id).

        Returns
        -------
        Tensor of their broadcast shape
        """
        score = (self.user(users) * self.item(items)).sum(-1)
        if self.bias:
            score = (
                score
                + self.user_bias(users).squeeze(-1)
                + self.item_bias(items).squeeze(-1)
                + self.global_bias
            )
        return score

    def penalty(self, users, items):
        """Mean squared norm of the embeddings and biases a batch of pairs uses.

        Parameters
        ----------
        users, items : LongTensor
            Broadcastable 1-based indices of the batch's pairs.

        Returns
        -------
        Tensor of shape ()
        """
        norm = self.user(users).square().sum(-1) + self.item(items).square().sum(-1)
        if self.bias:
            norm = (
                norm
                + self.user_bias(users).squeeze(-1) ** 2
                + self.item_bias(items).squeeze(-1) ** 2
            )
        return norm.mean()

    def score_all(self, users):
        """Scores of ``users`` against every item row.

        Parameters
        ----------
        users : LongTensor of shape (B,)
            1-based user indices (0 is the padding row of an unknown user).

        Returns
        -------
        Tensor of shape (B, n_items)
            One column per item row, the padding row 0 included.
        """
        score = self.user(users) @ self.item.weight.T
        if self.bias:
            score = score + self.item_bias.weight.T + self.user_bias(users) + self.global_bias
        return score
