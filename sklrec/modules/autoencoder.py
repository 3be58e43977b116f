"""Autoencoders over rating vectors: AutoRec and the deep autoencoder of DeepRecommender."""

import torch
from torch import nn

__all__ = ["ACTIVATIONS", "AutoEncoder"]

ACTIVATIONS = {
    "identity": nn.Identity,
    "sigmoid": nn.Sigmoid,
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "selu": nn.SELU,
    "lrelu": nn.LeakyReLU,
    "tanh": nn.Tanh,
}


class AutoEncoder(nn.Module):
    """A fully connected autoencoder of sparse rating vectors.

    ``hidden_dims`` lists the encoder's layer sizes, the last one being the
    code; the decoder mirrors them back to ``n_inputs``. With one hidden
    layer, a sigmoid ``activation`` and an identity ``output_activation``
    this is AutoRec (Sedhain et al. 2015); with several SELU layers, dropout
    on the code and tied weights it is the deep autoencoder of Kuchaiev and
    Ginsburg (2017).

    Parameters
    ----------
    n_inputs : int
        Length of a rating vector (the items of a user, or the users of an item).
    hidden_dims : sequence of int, default=(500,)
    activation : str, default="sigmoid"
        Activation of every hidden layer, encoder and decoder; a key of ``ACTIVATIONS``.
    output_activation : str, default="identity"
        Activation of the reconstruction.
    dropout : float, default=0.0
        Dropout on the code (the last encoder layer's output).
    constrained : bool, default=False
        Tie the decoder weights to the transposed encoder weights (each
        decoder layer keeps its own bias).
    """

    def __init__(
        self,
        n_inputs,
        hidden_dims=(500,),
        activation="sigmoid",
        output_activation="identity",
        dropout=0.0,
        constrained=False,
    ):
        super().__init__()
        sizes = [n_inputs, *hidden_dims]
        pairs = list(zip(sizes[:-1], sizes[1:], strict=True))
        self.encoder = nn.ModuleList(nn.Linear(a, b) for a, b in pairs)
        self.constrained = constrained
        if constrained:
            self.decoder_bias = nn.ParameterList(
                nn.Parameter(torch.zeros(size)) for size in reversed(sizes[:-1])
            )
        else:
            self.decoder = nn.ModuleList(nn.Linear(b, a) for a, b in reversed(pairs))
        for layer in [*self.encoder, *getattr(self, "decoder", [])]:
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.activation = ACTIVATIONS[activation]()
        self.output_activation = ACTIVATIONS[output_activation]()
        self.dropout = nn.Dropout(dropout)

    def _decoder_layers(self):
        """Yield each decoder layer's (weight, bias), from the code outwards."""
        if self.constrained:
            for layer, bias in zip(reversed(self.encoder), self.decoder_bias, strict=True):
                yield layer.weight.T, bias
        else:
            for layer in self.decoder:
                yield layer.weight, layer.bias

    def forward(self, inputs):
        """Reconstruct a batch of rating vectors.

        Parameters
        ----------
        inputs : Tensor of shape (B, n_inputs)

        Returns
        -------
        Tensor of shape (B, n_inputs)
        """
        h = inputs
        for layer in self.encoder:
            h = self.activation(layer(h))
        h = self.dropout(h)
        layers = list(self._decoder_layers())
        for i, (weight, bias) in enumerate(layers):
            h = nn.functional.linear(h, weight, bias)
            h = self.output_activation(h) if i == len(layers) - 1 else self.activation(h)
        return h
