"""Rating regressors: learning, masking, re-feeding, cold start, bad input, the toolchain."""

import pickle
import warnings

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import (
    GridSearchCV,
    KFold,
    cross_val_score,
    cross_validate,
    train_test_split,
)
from skorch.callbacks import Callback

from sklrec import AutoRecRegressor, BiasRegressor, DeepAutoEncoderRegressor, MFRegressor
from sklrec.base._net import _MaskedMSELoss, _SparseRows
from sklrec.base._regression import build_ratings
from sklrec.callbacks import ValidationRMSE
from sklrec.datasets import make_ratings
from sklrec.modules import AutoEncoder

from .test_base import DEVICES, _NoSyncInBatches
from .test_common import REGRESSORS, _name, bad_module_sizes, cpu_twin

TORCH_REGRESSORS = REGRESSORS[:4]


@pytest.fixture(scope="module")
def ratings():
    """Ratings from a planted rank-3 model with biases, split 80/20."""
    X, y = make_ratings(
        n_users=200, n_items=60, ratings_per_user=40, n_factors=3, noise=0.3, random_state=0
    )
    return train_test_split(X, y, test_size=0.2, random_state=0)


@pytest.fixture
def small():
    return make_ratings(n_users=30, n_items=20, ratings_per_user=8, random_state=1)


def _rmse(model, X, y):
    return float(np.sqrt(np.mean((model.predict(X) - y) ** 2)))


# -- learning ---------------------------------------------------------------------------
LEARNERS = {
    "mf": MFRegressor(embedding_dim=8, lr=0.02, max_epochs=30, batch_size=256),
    "i-autorec": AutoRecRegressor(
        hidden_units=16,
        encoder_activation="elu",
        lr=0.01,
        max_epochs=300,
        batch_size=16,
        weight_decay=1e-4,
    ),
    "u-autorec": AutoRecRegressor(
        based="user", hidden_units=32, lr=0.01, max_epochs=200, batch_size=16
    ),
    "deep-ae": DeepAutoEncoderRegressor(
        hidden_dims=(32, 16), dropout=0.2, lr=0.005, max_epochs=100, batch_size=32
    ),
    "deep-ae-no-refeed": DeepAutoEncoderRegressor(
        hidden_dims=(32, 16), dropout=0.2, refeed=False, lr=0.005, max_epochs=100, batch_size=32
    ),
    "deep-ae-user": DeepAutoEncoderRegressor(
        hidden_dims=(32, 16), based="user", dropout=0.2, lr=0.005, max_epochs=100, batch_size=32
    ),
    "deep-ae-tied": DeepAutoEncoderRegressor(
        hidden_dims=(32, 16), constrained=True, dropout=0.2, lr=0.01, max_epochs=100, batch_size=32
    ),
}


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
@pytest.mark.parametrize("name", LEARNERS)
def test_beats_global_mean_and_bias_baselines(name, device, ratings):
    # the margin holds on seeds 0 to 4 for every model, so also for a GPU's other streams
    X_train, X_test, y_train, y_test = ratings
    model = clone(LEARNERS[name]).set_params(random_state=0, device=device)
    model.fit(X_train, y_train)
    rmse = _rmse(model, X_test, y_test)
    mean_rmse = float(np.sqrt(np.mean((y_train.mean() - y_test) ** 2)))
    bias_rmse = _rmse(BiasRegressor().fit(X_train, y_train), X_test, y_test)
    assert bias_rmse < mean_rmse - 0.1  # the data has strong biases
    assert rmse < bias_rmse - 0.05, (rmse, bias_rmse)


def test_refeed_takes_a_second_step_per_batch(small):
    X, y = small
    steps = {}
    for refeed in (False, True):
        model = DeepAutoEncoderRegressor(
            hidden_dims=(8,), refeed=refeed, max_epochs=2, batch_size=8, random_state=0
        ).fit(X, y)
        steps[refeed] = int(model.net_.optimizer_.state_dict()["state"][0]["step"])
    assert steps[True] == 2 * steps[False] > 0


# -- sample_weight ------------------------------------------------------------------------
@pytest.mark.parametrize("est", REGRESSORS, ids=_name)
def test_weights_of_one_are_the_unweighted_fit(est, small):
    X, y = small
    plain = clone(est).fit(X, y).predict(X)
    for weights in (np.ones(len(y)), list(np.ones(len(y))), 1.0):
        np.testing.assert_array_equal(
            clone(est).fit(X, y, sample_weight=weights).predict(X), plain
        )
    scaled = clone(est).fit(X, y, sample_weight=3.0).predict(X)
    if isinstance(est, BiasRegressor):  # three ratings each: the damping weighs less
        assert not np.allclose(scaled, plain)
    else:  # rescaled to a mean of 1
        np.testing.assert_array_equal(scaled, plain)


def test_bias_baseline_counts_a_weight_as_repeated_ratings(small):
    X, y = small
    weights = np.random.RandomState(0).randint(0, 4, len(y))
    weights[0] = 0
    repeated = np.repeat(np.arange(len(y)), weights)
    weighted = BiasRegressor(clip=False).fit(X, y, sample_weight=weights)
    plain = BiasRegressor(clip=False).fit(X[repeated], y[repeated])
    assert weighted.global_mean_ == pytest.approx(plain.global_mean_)
    np.testing.assert_allclose(weighted.predict(X[repeated]), plain.predict(X[repeated]))


@pytest.mark.parametrize("name", ["mf", "i-autorec", "u-autorec", "deep-ae"])
def test_ratings_of_weight_zero_teach_nothing(name, ratings):
    # every training rating again with its opposite value: at weight 0 the model learns
    # what the clean ratings teach; at weight 1 the pairs average to the middle
    X_train, X_test, y_train, y_test = ratings
    X2 = np.r_[X_train, X_train]
    y2 = np.r_[y_train, y_train.min() + y_train.max() - y_train]
    weights = np.r_[np.ones(len(y_train)), np.zeros(len(y_train))]
    model = clone(LEARNERS[name]).set_params(random_state=0)
    weighted = _rmse(clone(model).fit(X2, y2, sample_weight=weights), X_test, y_test)
    spoiled = _rmse(clone(model).fit(X2, y2), X_test, y_test)
    bias_rmse = _rmse(BiasRegressor().fit(X_train, y_train), X_test, y_test)
    assert weighted < bias_rmse - 0.05 < spoiled - 0.05, (weighted, bias_rmse, spoiled)


def test_weighted_masked_loss():
    target = torch.tensor([[4.0, float("nan")], [1.0, 3.0]])
    pred = torch.tensor([[3.0, 9.0], [3.0, 3.0]])
    weight = torch.tensor([[2.0, 5.0], [0.5, 1.0]])
    loss = _MaskedMSELoss()(pred, target, weight)
    assert loss.item() == pytest.approx((2.0 * 1 + 0.5 * 4 + 1.0 * 0) / 3)


@pytest.mark.parametrize("est", TORCH_REGRESSORS, ids=_name)
def test_partial_fit_and_early_stopping_take_weights(est, small):
    X, y = small
    weights = np.random.RandomState(0).uniform(0.2, 3.0, len(y))
    stopping = dict(early_stopping=True, validation_fraction=0.2, random_state=0)
    model = clone(est).set_params(**stopping).fit(X, y, sample_weight=weights)
    plain = clone(est).set_params(**stopping).fit(X, y)
    assert not np.array_equal(model.predict(X), plain.predict(X))
    # the held-out pairs carry their weights, and the validation RMSE is weighted by them
    _, (users, items, held, held_weights) = model._split_validation(model._seed)
    expected = model._pair_weights.toarray()[users, items]
    np.testing.assert_allclose(held_weights, expected)
    # partial_fit: the new ratings replace their pairs' weights; the others keep theirs
    pairs = model._pair_weights.toarray()
    model.partial_fit(X[:5], y[:5], sample_weight=np.full(5, 7.0))
    after = model._pair_weights.toarray()
    u, i = model._known_ids(X[:5])
    np.testing.assert_allclose(after[u, i], 7.0 * np.bincount(u * 100 + i)[u * 100 + i])
    others = np.ones_like(pairs, dtype=bool)
    others[u, i] = False
    np.testing.assert_allclose(after[others], pairs[others])
    # a model fitted without weights gets weight 1 for its other pairs
    plain.partial_fit(X[:5], y[:5], sample_weight=np.full(5, 7.0))
    stored = plain.interactions_.toarray() != 0
    assert set(np.unique(plain._pair_weights.toarray()[stored & others])) <= {1.0}


@pytest.mark.parametrize("est", TORCH_REGRESSORS, ids=_name)
def test_weight_only_on_held_out_ratings_is_a_clear_error(est, small):
    X, y = small
    model = clone(est).set_params(early_stopping=True, validation_fraction=0.2, random_state=0)
    model.fit(X, y)
    before = model.predict(X)
    # weight on exactly the pairs the same seed holds out for validation
    _, (users, items, _, _) = model._split_validation(model._seed)
    held = set(zip(users, items, strict=True))
    u, i = model._known_ids(X)
    weights = np.array([(a, b) in held for a, b in zip(u, i, strict=True)], dtype=float)
    with pytest.raises(ValueError, match="zero on every rating left to train on"):
        model.fit(X, y, sample_weight=weights)
    np.testing.assert_array_equal(model.predict(X), before)


def test_validation_rmse_is_weighted(small):
    X, y = small
    model = MFRegressor(max_epochs=1, random_state=0).fit(X, y)
    users, items = model._known_ids(X[:4])
    pred = model.predict(X[:4])
    weights = np.array([1.0, 0.0, 2.0, 0.0])
    score = ValidationRMSE(users + 1, items + 1, y[:4], weights)._evaluate(model)
    assert score == pytest.approx(
        np.sqrt((1 * (pred[0] - y[0]) ** 2 + 2 * (pred[2] - y[2]) ** 2) / 3)
    )
    # all held-out weights 0: the plain RMSE, not a division by 0
    score = ValidationRMSE(users + 1, items + 1, y[:4], np.zeros(4))._evaluate(model)
    assert score == pytest.approx(np.sqrt(np.mean((pred - y[:4]) ** 2)))


# -- masking ------------------------------------------------------------------------------
def test_masked_loss_ignores_unobserved_entries():
    target = torch.tensor([[4.0, float("nan"), 2.0], [float("nan"), 5.0, float("nan")]])
    pred = torch.tensor([[3.0, 100.0, 2.0], [-7.0, 4.0, 1e6]], requires_grad=True)
    loss = _MaskedMSELoss()(pred, target)
    assert loss.item() == pytest.approx((1.0 + 0.0 + 1.0) / 3)
    loss.backward()
    observed = ~torch.isnan(target)
    assert torch.all(pred.grad[~observed] == 0)
    # d/dp of the mean over the 3 observed entries: 2 (p - t) / 3 (0 where p = t)
    expected = 2 * (pred.detach() - target)[observed] / 3
    torch.testing.assert_close(pred.grad[observed], expected)
    # any change at an unobserved entry leaves the loss as it was
    other = pred.detach().clone()
    other[~observed] = torch.randn(int((~observed).sum()))
    assert _MaskedMSELoss()(other, target).item() == pytest.approx(loss.item())


def test_sparse_rows_densify_per_batch_with_nan_where_unobserved():
    users = np.array([0, 0, 1, 2, 2, 2])
    items = np.array([1, 3, 0, 0, 2, 3])
    matrix, _ = build_ratings(users, items, np.array([5.0, 3, 4, 1, 2, 0]), 3, 4)
    rows = _SparseRows(matrix, np.array([2, 0]), "cpu")
    x, target = rows.batch(*rows.epoch(torch.Generator(), shuffle=False))
    np.testing.assert_array_equal(x["inputs"].numpy(), [[1, 0, 2, 0], [0, 5, 0, 3]])
    expected = np.array([[1, np.nan, 2, 0], [np.nan, 5, np.nan, 3]])
    np.testing.assert_array_equal(target.numpy(), expected)  # a rating of 0 is observed
    # a shuffled epoch carries its row order to the host too, for the batches' sizes
    x, _ = _SparseRows(matrix, np.arange(3), "cpu").epoch(torch.Generator(), shuffle=True)
    np.testing.assert_array_equal(x["rows_on_host"], x["rows"])


def test_duplicate_pairs_count_with_their_mean():
    X = np.array([[1, 1], [1, 1], [1, 2], [2, 1]])
    model = BiasRegressor().fit(X, [2.0, 4.0, 5.0, 1.0])
    assert model.interactions_[0, 0] == 3.0 and model.interactions_.nnz == 3


def _assert_predictions_read_the_item_reconstruction(model, X):
    # each pair's prediction is its user's entry of its item's reconstructed rating row
    users, items, _ = model._encode_X(X)
    with torch.no_grad():
        recon = model.net_.module_.eval()(torch.as_tensor(model.interactions_.T.toarray()))
    np.testing.assert_allclose(model.predict(X), recon[items - 1, users - 1].numpy(), rtol=1e-5)


def test_autoencoder_predictions_read_the_reconstruction(small):
    X, y = small
    model = AutoRecRegressor(hidden_units=8, max_epochs=2, clip=False, random_state=0).fit(X, y)
    _assert_predictions_read_the_item_reconstruction(model, X[:5])


def test_item_rows_follow_the_ratings_they_are_read_from(small):
    # the item-based models keep the transpose of interactions_ between calls: ratings
    # that partial_fit changes must reach predict, and a pickle must not carry the copy
    X, y = small
    model = AutoRecRegressor(hidden_units=8, max_epochs=2, clip=False, random_state=0).fit(X, y)
    model.partial_fit(X[:10], np.where(y[:10] >= 3, 1.0, 5.0))
    _assert_predictions_read_the_item_reconstruction(model, X[:5])
    assert "_item_rows" not in model.__getstate__()
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(model)).predict(X), model.predict(X))


def test_tied_decoder_is_the_transposed_encoder():
    # constrained=True: each decoder layer multiplies by its encoder layer's weight,
    # transposed, and owns only a bias; an untied net given those weights computes the same
    torch.manual_seed(0)
    sizes = dict(n_inputs=7, hidden_dims=(5, 3), activation="selu")
    tied, free = AutoEncoder(**sizes, constrained=True), AutoEncoder(**sizes)
    for bias in tied.decoder_bias:
        torch.nn.init.normal_(bias)
    encoder_weights = [layer.weight for layer in tied.encoder]
    assert sum(p.numel() for p in tied.parameters()) == (
        sum(p.numel() for p in tied.encoder.parameters()) + 5 + 7
    )
    assert not any("decoder.weight" in key for key in tied.state_dict())
    with torch.no_grad():
        free.encoder.load_state_dict(tied.encoder.state_dict())
        for layer, enc, bias in zip(
            free.decoder, reversed(tied.encoder), tied.decoder_bias, strict=True
        ):
            layer.weight.copy_(enc.weight.T)
            layer.bias.copy_(bias)
    inputs = torch.rand(4, 7)
    torch.testing.assert_close(tied(inputs), free(inputs))
    # the decoder's share of the gradient lands on the encoder's weights
    tied(inputs).sum().backward()
    free(inputs).sum().backward()
    for shared, enc, dec in zip(
        encoder_weights, free.encoder, reversed(list(free.decoder)), strict=True
    ):
        torch.testing.assert_close(shared.grad, enc.weight.grad + dec.weight.grad.T)


def test_tied_deep_autoencoder_fits_pickles_and_keeps_its_weights_tied(small):
    X, y = small
    model = DeepAutoEncoderRegressor(
        hidden_dims=(8, 4), constrained=True, max_epochs=3, random_state=0
    ).fit(X, y)
    module = model.net_.module_
    assert module.constrained and not hasattr(module, "decoder")
    loaded = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    loaded.partial_fit(X, y)  # training on after loading moves encoder and decoder as one
    assert not hasattr(loaded.net_.module_, "decoder")
    assert not np.array_equal(loaded.predict(X), model.predict(X))


@pytest.mark.parametrize("est", [AutoRecRegressor(), DeepAutoEncoderRegressor()], ids=_name)
def test_autoencoder_prediction_ignores_the_other_pairs_asked(est, ratings):
    # with the default (wide) layers, one row through float32 matrix products used to
    # give other bits than the same row among many
    X_train, X_test, y_train, _ = ratings
    model = clone(est).set_params(max_epochs=2, random_state=0).fit(X_train, y_train)
    together = model.predict(X_test[:70])
    alone = np.concatenate([model.predict(X_test[i : i + 1]) for i in range(70)])
    np.testing.assert_array_equal(alone, together)
    np.testing.assert_array_equal(model.predict(X_test[35:70]), together[35:])


def test_clip_to_the_training_range(small):
    X, y = small
    model = MFRegressor(max_epochs=1, lr=5.0, random_state=0).fit(X, y)
    pred = model.predict(X)
    assert pred.min() >= y.min() and pred.max() <= y.max()
    raw = clone(model).set_params(clip=False).fit(X, y).predict(X)
    assert raw.min() < y.min() or raw.max() > y.max()


# -- cold start and bad input ---------------------------------------------------------------
@pytest.mark.parametrize("est", REGRESSORS, ids=_name)
def test_unknown_ids_fall_back_to_mean_plus_known_bias(est, small):
    X, y = small
    model = clone(est).fit(X, y)
    known_user, known_item = X[0, 0], X[0, 1]
    rows = np.array([[known_user, 999, 0], [999, known_item, 0], [998, 997, 0]])
    with pytest.warns(UserWarning, match="not seen in fit") as record:
        pred = model.predict(rows)
    assert {w.filename for w in record} == {__file__}  # the caller's line
    u = np.searchsorted(model.users_, known_user)
    i = np.searchsorted(model.items_, known_item)
    expected = model.global_mean_ + np.array([model.user_bias_[u], model.item_bias_[i], 0.0])
    np.testing.assert_allclose(pred, np.clip(expected, y.min(), y.max()))
    model.set_params(handle_unknown="ignore")  # the same fallback, silently
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(model.predict(rows), pred)
    strict = clone(est).set_params(handle_unknown="error").fit(X, y)
    with pytest.raises(ValueError, match=r"unknown user id\(s\) \[999\]"):
        strict.predict(rows[1:2])


def test_user_based_unknown_user_is_named(small):
    X, y = small
    model = AutoRecRegressor(based="user", hidden_units=4, max_epochs=1, handle_unknown="error")
    model.fit(X, y)
    with pytest.raises(ValueError, match=r"unknown user id\(s\) \[4242\]"):
        model.predict([[4242, X[0, 1], 0]])


def _bad_regression_fits(X, y):
    return {
        "y missing": ((X, None), "requires y"),
        "NaN rating": ((X, np.r_[np.nan, y[1:]]), "NaN"),
        "infinite rating": ((X, np.r_[np.inf, y[1:]]), "infinity"),
        "one column": ((X[:, :1], y), "minimum of 2 is required"),
        "empty X": ((X[:0], y[:0]), "0 sample"),
        "lengths differ": ((X, y[:-1]), "inconsistent numbers of samples"),
        "negative weight": ((X, y, np.r_[-1.0, np.ones(len(y) - 1)]), r"non-negative; rows \[0\]"),
        "NaN weight": ((X, y, np.r_[np.nan, np.ones(len(y) - 1)]), "NaN or infinite"),
        "weights too short": ((X, y, np.ones(len(y) - 1)), "one weight per row"),
        "all weights zero": ((X, y, np.zeros(len(y))), "zero on every row"),
    }


@pytest.mark.parametrize("case", list(_bad_regression_fits(np.zeros((3, 3)), np.ones(3))))
@pytest.mark.parametrize("est", REGRESSORS, ids=_name)
def test_bad_input_raises_and_keeps_the_fitted_model(est, case, small):
    X, y = small
    model = clone(est).fit(X, y)
    before = model.predict(X)
    args, match = _bad_regression_fits(X, y)[case]
    with pytest.raises(ValueError, match=match):
        model.fit(*args)
    np.testing.assert_array_equal(model.predict(X), before)
    assert model.n_users_ == len(np.unique(X[:, 0]))
    if len(args) == 3 and hasattr(model, "partial_fit"):  # the weights' checks
        with pytest.raises(ValueError, match=match):
            model.partial_fit(*args)
        np.testing.assert_array_equal(model.predict(X), before)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"based": "row"}, "based must be"),
        ({"encoder_activation": "swish"}, "encoder_activation must be one of"),
        ({"hidden_units": 0}, "hidden_units must be"),
        ({"clip": "yes"}, "clip must be"),
        ({"device": "tpu:0"}, "unknown device"),
        ({"lr": -1.0}, "lr must be"),
    ],
)
def test_bad_autorec_parameters(params, match, small):
    with pytest.raises(ValueError, match=match):
        AutoRecRegressor(**params).fit(*small)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"hidden_dims": ()}, "hidden_dims must be"),
        ({"hidden_dims": (8, -1)}, "hidden_dims must be"),
        ({"hidden_dims": 8}, "hidden_dims must be"),
        ({"hidden_dims": (8.0, 4)}, "hidden_dims must be"),
        ({"activation": "gelu"}, "activation must be one of"),
        ({"refeed": "on"}, "refeed must be"),
        ({"based": "both"}, "based must be"),
        ({"max_grad_norm": 0}, "max_grad_norm must be"),
        ({"max_grad_norm": float("nan")}, "max_grad_norm must be"),
        ({"max_grad_norm": "1"}, "max_grad_norm must be"),
    ],
)
def test_bad_deep_autoencoder_parameters(params, match, small):
    with pytest.raises(ValueError, match=match):
        DeepAutoEncoderRegressor(**params).fit(*small)


@pytest.mark.parametrize("based", ["item", "user"])
def test_deep_autoencoder_reads_the_rows_it_is_based_on(based, small):
    X, y = small
    model = DeepAutoEncoderRegressor(
        hidden_dims=(8, 4), based=based, max_epochs=2, clip=False, random_state=0
    ).fit(X, y)
    matrix = model.interactions_.T if based == "item" else model.interactions_
    assert model.net_.module_.encoder[0].in_features == matrix.shape[1]
    users, items, _ = model._encode_X(X[:5])
    rows, cols = (items - 1, users - 1) if based == "item" else (users - 1, items - 1)
    with torch.no_grad():
        recon = model.net_.module_.eval()(torch.as_tensor(matrix.toarray()))
    np.testing.assert_allclose(model.predict(X[:5]), recon[rows, cols], rtol=1e-5)


@pytest.mark.parametrize("max_grad_norm", [1e-3, None])
def test_max_grad_norm_bounds_each_update(max_grad_norm, small):
    X, y = small
    # plain SGD with lr 1: an update moves the parameters by exactly the clipped gradient
    model = DeepAutoEncoderRegressor(
        hidden_dims=(8,),
        max_grad_norm=max_grad_norm,
        optimizer="sgd",
        lr=1.0,
        weight_decay=0.0,
        refeed=False,
        batch_size=10_000,
        max_epochs=1,
        random_state=0,
    ).fit(X, y)
    before = [p.detach().clone() for p in model.net_.module_.parameters()]
    model.partial_fit(X, y)  # one epoch, one batch, one update
    after = list(model.net_.module_.parameters())
    moved = sum(((a.detach() - b) ** 2).sum().item() for a, b in zip(after, before, strict=True))
    moved = moved**0.5
    if max_grad_norm is None:
        assert moved > 1e-2
    else:
        assert 0 < moved <= max_grad_norm * (1 + 1e-4)


def test_bias_regressor_damping_and_parameters(small):
    X, y = small
    undamped = BiasRegressor(user_damping=0, item_damping=0, clip=False).fit(X, y)
    damped = BiasRegressor(clip=False).fit(X, y)
    assert np.abs(undamped.item_bias_).mean() > np.abs(damped.item_bias_).mean()
    with pytest.raises(ValueError, match="item_damping must be"):
        BiasRegressor(item_damping=-1).fit(X, y)


# -- training API ---------------------------------------------------------------------------
# -- early stopping --------------------------------------------------------------------------
class _TrainingRows(Callback):
    """Record how many ratings the estimator trains on (its ``interactions_``)."""

    def on_train_begin(self, net, **kwargs):
        self.nnz_ = net.recommender_.interactions_.nnz


@pytest.mark.parametrize("est", TORCH_REGRESSORS, ids=_name)
def test_zero_epochs_with_early_stopping(est, ratings):
    X_train, _, y_train, _ = ratings
    model = clone(est).set_params(early_stopping=True, max_epochs=0, random_state=0)
    model.fit(X_train, y_train)
    assert len(model.net_.history) == 0
    assert np.isfinite(model.predict(X_train[:5])).all()


@pytest.mark.parametrize("est", TORCH_REGRESSORS, ids=_name)
def test_early_stopping_holds_out_ratings_and_keeps_the_best_epoch(est, ratings):
    X_train, _, y_train, _ = ratings
    seen = _TrainingRows()
    model = clone(est).set_params(
        early_stopping=True, n_iter_no_change=2, max_epochs=40, callbacks=[seen], random_state=0
    )
    model.fit(X_train, y_train)
    history = model.net_.history
    scores = history[:, "valid_rmse"]
    assert len(scores) == len(history) <= 40
    n_pairs = model.interactions_.nnz  # every rating is back once fit ends
    assert n_pairs == len(X_train)
    assert seen.nnz_ == n_pairs - round(0.1 * n_pairs)  # held out of the inputs as well
    # the same split again: the restored weights score the best recorded RMSE on it
    _, (users, items, held, weights) = model._split_validation(model._seed)
    assert weights is None  # fitted without sample_weight
    if isinstance(model, MFRegressor):  # its predictions do not read interactions_
        pred = model._clipped(model._predict_pairs(users + 1, items + 1))
        # (skorch counts gains below a relative 1e-4 as none)
        assert np.sqrt(np.mean((pred - held) ** 2)) == pytest.approx(min(scores), rel=2e-4)
    assert history[:, "valid_rmse_best"].count(True) >= 1


def test_early_stopping_stops_an_overfitting_model(ratings):
    X_train, _, y_train, _ = ratings
    model = MFRegressor(
        embedding_dim=64, lr=0.05, weight_decay=0.0, max_epochs=200, lr_schedule="constant"
    )
    model.set_params(early_stopping=True, n_iter_no_change=3, random_state=0)
    model.fit(X_train, y_train)
    scores = model.net_.history[:, "valid_rmse"]
    assert len(scores) < 200
    # it stopped because the last epochs did not improve, after the best had passed
    assert min(scores[-3:]) > min(scores) and scores[-1] > min(scores)


def test_early_stopping_split_covers_each_pair_once(small):
    X, y = small
    model = MFRegressor(max_epochs=1, random_state=0).fit(X, y)
    model.set_params(validation_fraction=0.25)
    (tu, ti, tr, _), (vu, vi, vr, _) = model._split_validation(0)
    keys = np.r_[tu * 1000 + ti, vu * 1000 + vi]
    assert len(np.unique(keys)) == len(keys) == model.interactions_.nnz
    assert len(vu) == round(0.25 * model.interactions_.nnz)
    matrix = model.interactions_.toarray()
    np.testing.assert_array_equal(matrix[vu, vi], vr)
    np.testing.assert_array_equal(matrix[tu, ti], tr)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"early_stopping": "yes"}, "early_stopping must be True or False"),
        ({"validation_fraction": 0.0}, "validation_fraction must be"),
        ({"validation_fraction": 1.0}, "validation_fraction must be"),
        ({"validation_fraction": float("nan")}, "validation_fraction must be"),
        ({"n_iter_no_change": 0}, "n_iter_no_change must be"),
        ({"early_stopping": True, "validation_fraction": 0.001}, "each side needs at least one"),
    ],
)
@pytest.mark.parametrize("est", TORCH_REGRESSORS, ids=_name)
def test_bad_early_stopping_parameters(est, params, match, small):
    with pytest.raises(ValueError, match=match):
        clone(est).set_params(**params).fit(*small)


@pytest.mark.parametrize("est, name, value", bad_module_sizes(TORCH_REGRESSORS))
def test_bad_module_sizes_name_themselves(est, name, value, small):
    with pytest.raises(ValueError, match=f"{name} must be"):
        clone(est).set_params(**{name: value}).fit(*small)


@pytest.mark.parametrize("est", TORCH_REGRESSORS, ids=_name)
def test_an_optimizer_without_weight_decay(est, ratings):
    # LBFGS takes no weight_decay and needs whole-data batches
    X, _, y, _ = ratings
    model = clone(est).set_params(optimizer=torch.optim.LBFGS, lr=0.1, batch_size=len(X))
    if isinstance(est, MFRegressor):
        # its weight_decay is a penalty on the rows a batch uses, not the optimizer's
        model.fit(X, y)
        assert model.net_.l2 == est.weight_decay
    else:
        with pytest.raises(ValueError, match="LBFGS takes no weight_decay"):
            model.fit(X, y)
        model.set_params(weight_decay=0).fit(X, y)
    assert type(model.net_.optimizer_) is torch.optim.LBFGS
    losses = model.net_.history[:, "train_loss"]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]


@pytest.mark.parametrize("est", TORCH_REGRESSORS, ids=_name)
def test_partial_fit_adds_one_epoch_and_updates_ratings(est, small):
    X, y = small
    model = clone(est).partial_fit(X, y)
    assert len(model.net_.history) == 1
    y2 = y.copy()
    y2[0] = 1.0 if y[0] != 1.0 else 2.0
    model.partial_fit(X[:10], y2[:10])
    assert len(model.net_.history) == 2
    u = np.searchsorted(model.users_, X[0, 0])
    i = np.searchsorted(model.items_, X[0, 1])
    assert model.interactions_[u, i] == y2[0]
    assert model.interactions_.nnz == len({(a, b) for a, b in X[:, :2]})
    with pytest.raises(ValueError, match="unknown user"):
        model.partial_fit([[777, X[0, 1], 0]], [3.0])


@pytest.mark.parametrize("est", REGRESSORS, ids=_name)
def test_pickle_joblib_and_seeds(est, small, tmp_path):
    X, y = small
    model = clone(est).fit(X, y)
    restored = pickle.loads(pickle.dumps(model))
    joblib.dump(model, tmp_path / "model.joblib")
    for other in (restored, joblib.load(tmp_path / "model.joblib")):
        np.testing.assert_array_equal(other.predict(X), model.predict(X))
    np.testing.assert_array_equal(clone(est).fit(X, y).predict(X), model.predict(X))


@pytest.mark.parametrize("est", TORCH_REGRESSORS, ids=_name)
def test_seed_matters_and_global_rng_untouched(est, small):
    X, y = small
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()  # noqa: NPY002
    a = clone(est).set_params(random_state=1).fit(X, y).predict(X)
    b = clone(est).set_params(random_state=2).fit(X, y).predict(X)
    assert not np.allclose(a, b)
    assert torch.equal(torch.get_rng_state(), torch_state)
    np_after = np.random.get_state()  # noqa: NPY002
    assert all(np.array_equal(u, v) for u, v in zip(np_after, np_state, strict=True))


@pytest.mark.parametrize("est", REGRESSORS, ids=_name)
def test_string_ids_dataframe_pipeline(est, small):
    pd = pytest.importorskip("pandas")
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline

    X, y = small
    frame = pd.DataFrame({"user": [f"u{u}" for u in X[:, 0]], "item": [f"i{i}" for i in X[:, 1]]})
    frame["time"] = X[:, 2]
    pipe = make_pipeline(ColumnTransformer([("ids", "passthrough", [0, 1])]), clone(est))
    pipe.fit(frame, y)
    assert pipe[-1].users_.dtype.kind == "U"
    assert pipe.predict(frame.iloc[:5]).shape == (5,)
    assert np.isfinite(pipe.score(frame, y))


@pytest.mark.parametrize("est", REGRESSORS, ids=_name)
def test_cross_validate_with_sklearn_scorers(est, small):
    X, y = small
    res = cross_validate(
        est,
        X,
        y,
        cv=KFold(3, shuffle=True, random_state=0),
        scoring=("neg_root_mean_squared_error", "r2"),
    )
    assert np.all(-res["test_neg_root_mean_squared_error"] < 4)
    assert np.isfinite(res["test_r2"]).all()


def test_grid_search_and_optuna_search(small):
    # every candidate, and Optuna's best trial, scores as the estimator with its
    # parameters set by hand
    X, y = small
    cv = KFold(3, shuffle=True, random_state=0)
    rmse = "neg_root_mean_squared_error"

    def by_hand(est, params):
        model = clone(est).set_params(**params)
        return cross_val_score(model, X, y, cv=cv, scoring=rmse).mean()

    search = GridSearchCV(REGRESSORS[1], {"hidden_units": [4, 8]}, cv=cv, scoring=rmse)
    search.fit(X, y)
    results = search.cv_results_
    for params, score in zip(results["params"], results["mean_test_score"], strict=True):
        assert score == pytest.approx(by_hand(REGRESSORS[1], params))
    optuna = pytest.importorskip("optuna")
    integration = pytest.importorskip("optuna_integration")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    search = integration.OptunaSearchCV(
        REGRESSORS[0],
        {"embedding_dim": optuna.distributions.IntDistribution(2, 8)},
        cv=cv,
        scoring=rmse,
        n_trials=2,
        random_state=0,
    ).fit(X, y)
    assert len(search.trials_) == 2
    assert search.best_score_ == pytest.approx(by_hand(REGRESSORS[0], search.best_params_))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize(
    "est",
    TORCH_REGRESSORS + [MFRegressor(embedding_dim=4, optimizer="lazy_adam")],
    ids=_name,
)
def test_training_never_syncs_within_a_batch(est, weighted, device, small):
    X, y = small
    weights = np.linspace(0.5, 2.0, len(y)) if weighted else None
    refeed = {"refeed": True} if "refeed" in est.get_params() else {}
    guard = _NoSyncInBatches()
    model = clone(est).set_params(
        device=device, max_epochs=3, callbacks=[("no_sync", guard)], **refeed
    )
    try:
        model.fit(X, y, sample_weight=weights)
    finally:
        guard.restore()
    assert len(model.net_.history) == 3


@pytest.mark.gpu
@pytest.mark.parametrize("est", TORCH_REGRESSORS, ids=_name)
def test_cuda_round_trip(est, small, tmp_path):
    X, y = small
    model = clone(est).set_params(device="cuda").fit(X, y)
    assert next(model.net_.module_.parameters()).is_cuda
    pred = model.predict(X)
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(model))
    restored = pickle.loads(path.read_bytes())
    np.testing.assert_allclose(restored.predict(X), pred, rtol=1e-5)
    # the same weights predict the same on the CPU (the trainings themselves differ,
    # as the devices draw different random streams)
    np.testing.assert_allclose(cpu_twin(est, model, X, y).predict(X), pred, rtol=1e-4, atol=1e-4)
