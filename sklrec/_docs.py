"""Docstring pieces shared by the estimators (filled in by :func:`fill_doc`)."""

import re

# the indent of a class docstring's sections in the source, which the pieces are written in
_PIECE_INDENT = "    "

_FIRST_PARAMS = """lr : {lr_type}, default={lr}
        {lr_doc}
        A rate at which training diverges (an epoch's mean loss, or the
        weights, NaN or infinite) makes ``fit`` and ``partial_fit`` raise a
        ``ValueError``, and the estimator keeps the model it had before the
        call.
    max_epochs : int, default={max_epochs}
        Passes over the training data. 0 builds the model and leaves it as
        initialised (``partial_fit`` then trains it one epoch per call).
    batch_size : {batch_type}, default={batch_size}
        {batch_doc}
    optimizer : str or torch.optim.Optimizer subclass, default="{optimizer}"
        One of "adam", "adamw", "sgd", "adagrad", "rmsprop", "lazy_adam", or a
        class. A class that takes no ``weight_decay`` argument, such as
        ``torch.optim.LBFGS`` (which also wants whole-data batches), needs
        ``weight_decay=0`` unless the model applies the penalty itself
        (``MFRegressor``). "lazy_adam" (:class:`sklrec.optim.LazyAdam`) gives
        the embedding tables sparse gradients and updates only the rows each
        batch touches: for tables of a million rows and more, where a dense
        Adam step costs what the tables hold, not what the batch does (a
        model without tables trains as with "adam").
    weight_decay : float, default={weight_decay}
        {weight_decay_doc}
    lr_schedule : {{"cosine", "constant"}}, default="cosine"
        ``"cosine"`` anneals the learning rate from ``lr`` to 0 over the
        ``max_epochs`` of a ``fit`` (stepped every batch), which keeps the
        large-batch training here from drifting once it has converged.
        ``partial_fit`` always trains at ``lr``. To schedule the rate with a
        skorch ``LRScheduler`` in ``callbacks``, set ``"constant"``."""

_EARLY_STOPPING_PARAMS = """
    early_stopping : "auto" or bool, default="auto"
        Hold out one random positive interaction of every user with at least
        three (of at most 10,000 such users, drawn at random) and score them
        after each epoch: NDCG@10 against 99 sampled unseen items, the same
        every epoch, recorded as ``"valid_ndcg@10"`` in ``net_.history``.
        Where some users have fewer than 99 unseen items (a small catalogue),
        the count drops to what nine in ten of them have, and users with
        fewer sit out. Training stops after ``n_iter_no_change`` epochs
        without improvement and keeps the weights of the best epoch. The
        held-out interactions still count as seen: they are never drawn as
        negatives and ``recommend`` leaves them out. ``"auto"`` turns it on
        from 10,000 positive interactions. ``partial_fit`` never stops early.
    n_iter_no_change : int, default=3
        Epochs without improvement before early stopping ends training."""

_LAST_PARAMS = """
    callbacks : list of skorch callbacks, default=None
        Passed straight to the skorch net, which uses (and initialises) the
        given objects, as skorch does; ``clone`` the estimator for fresh
        ones. See :mod:`sklrec.callbacks` for ranking metrics per epoch.
    device : str, default="cpu"
        Torch device that trains and predicts: "cpu", or "cuda" (or
        "cuda:1"). A model pickled on a GPU loads on a machine without one.
    verbose : int, default=0
        Print one line per epoch when positive.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, sampling, dropout and shuffling; the global
        torch and NumPy random states are left untouched. Fits in threads of
        one process (Optuna's ``n_jobs``) take turns, so that each gets the
        draws of its own seed; fit in processes to run them side by side."""

TRAINING_PARAMS = _FIRST_PARAMS + _EARLY_STOPPING_PARAMS + _LAST_PARAMS
_REGRESSION_EARLY_STOPPING_PARAMS = """
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rated pairs (drawn with
        ``random_state``), record their RMSE after each epoch (as
        ``"valid_rmse"`` in ``net_.history``), stop after
        ``n_iter_no_change`` epochs without improvement and keep the weights
        of the best epoch. The held-out ratings stay out of training, the
        autoencoders' input rows included, and join ``interactions_`` (and
        so the inputs of ``predict``) once ``fit`` ends. ``partial_fit``
        never stops early.
    validation_fraction : float, default=0.1
        Share of the rated pairs held out when ``early_stopping`` is on.
    n_iter_no_change : int, default=5
        Epochs without improvement before early stopping ends training."""

REGRESSION_TRAINING_PARAMS = _FIRST_PARAMS + _REGRESSION_EARLY_STOPPING_PARAMS + _LAST_PARAMS

IMPLICIT_PARAMS = """n_negatives : int, default={n_negatives}
        Items drawn per positive interaction, afresh every epoch, uniformly
        among the items that are not the user's positives: never one it
        interacted with, except one it rated under ``positive_threshold``,
        which is a known negative.
    positive_threshold : float, default=None
        If set, only rows with ``y >= positive_threshold`` are positives;
        otherwise every row is one and ``y`` is only validated. A row under
        the threshold still counts as seen: ``recommend`` and the metrics
        leave its item out for its user, as they do the positives.
    handle_unknown : {{"warn", "ignore", "error"}}, default="warn"
        Ids unseen in ``fit``: ``predict`` gives their rows the lowest score
        (``-inf``) and ``recommend`` serves an unknown user from an empty
        history, with a warning (``"warn"``) or silently (``"ignore"``);
        ``"error"`` raises a ``ValueError`` naming them."""

ATTRIBUTES = """users_ : ndarray of shape (n_users,)
        Raw user ids seen in ``fit``, in index order.
    items_ : ndarray of shape (n_items,)
        Raw item ids seen in ``fit``, in index order.
    interactions_ : scipy.sparse.csr_matrix of shape (n_users, n_items)
        Every (user, item) pair of ``fit``'s rows: the items each user has
        seen, which ``recommend`` and the metrics leave out. They are the
        positives, never drawn as negatives, unless ``positive_threshold``
        left some rows out of those.
    n_features_in_ : int
        Number of columns of ``X`` in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names of ``X`` in ``fit``, when it had string names."""

REGRESSION_ATTRIBUTES = """users_ : ndarray of shape (n_users,)
        Raw user ids seen in ``fit``, in index order.
    items_ : ndarray of shape (n_items,)
        Raw item ids seen in ``fit``, in index order.
    interactions_ : scipy.sparse.csr_matrix of shape (n_users, n_items)
        The training ratings (the mean, for a pair rated more than once).
    global_mean_ : float
        Mean training rating.
    user_bias_, item_bias_ : ndarray of shape (n_users,) and (n_items,)
        Damped mean deviations of each user's and item's ratings (the
        baseline predictor); with ``global_mean_`` they serve unknown ids.
    rating_range_ : tuple of float
        Lowest and highest training rating.
    n_features_in_ : int
        Number of columns of ``X`` in ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Column names of ``X`` in ``fit``, when it had string names."""

EMBEDDING_WEIGHT_DECAY_DOC = (
    "L2 penalty handed to the optimizer. Adam applies it to every\n"
    "        embedding row at every step, while the loss is a mean over the\n"
    "        batch, so its pull grows with ``batch_size``: the default suits\n"
    "        batches of a few thousand. Without it large embeddings overfit\n"
    "        (a 64-factor dot product on ML-1M peaks after three epochs), and\n"
    "        ten times the default at batch 4096 shrank every embedding of a\n"
    "        64-factor GMF to zero."
)

NET_ATTRIBUTE = """net_ : skorch.NeuralNet
        The trained network; ``net_.history`` holds the per-epoch losses.
    n_iter_ : int
        Epochs ``net_`` trained: those ``fit`` ran before early stopping
        ended it (the weights are the best epoch's), plus one per
        ``partial_fit``."""


def _indent_like(piece, doc, name):
    """Re-indent ``piece`` (written for a 4-space docstring) to where ``{name}`` sits in ``doc``.

    The pieces above are indented as a class docstring is in the source, but
    Python 3.13 strips that common indent when it compiles a docstring, and
    lines still 4 spaces in would continue the entry before them.
    """
    indent = re.search(r"^([ \t]*)\{" + name + r"\}", doc, re.MULTILINE).group(1)
    first, *rest = piece.split("\n")
    return "\n".join(
        [first] + [indent + line.removeprefix(_PIECE_INDENT) if line else line for line in rest]
    )


def fill_doc(**defaults):
    """Class decorator: expand ``{training_params}`` and friends in a docstring."""
    pieces = {
        "training_params": TRAINING_PARAMS,
        "regression_training_params": REGRESSION_TRAINING_PARAMS,
        "regression_attributes": REGRESSION_ATTRIBUTES,
        "implicit_params": IMPLICIT_PARAMS,
        "attributes": ATTRIBUTES,
        "net_attribute": NET_ATTRIBUTE,
    }

    defaults = {
        "lr_type": "float",
        "lr_doc": "Learning rate.",
        "batch_type": "int",
        "batch_doc": "Samples (positives and negatives alike) per gradient step.",
        "weight_decay_doc": "L2 penalty handed to the optimizer.",
        **defaults,
    }

    def decorate(cls):
        used = {
            name: _indent_like(text.format(**defaults), cls.__doc__, name)
            for name, text in pieces.items()
            if "{" + name + "}" in cls.__doc__
        }
        cls.__doc__ = cls.__doc__.format(**used)
        return cls

    return decorate
