"""Checks every public estimator must pass."""

import pickle

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone, is_regressor
from sklearn.utils.estimator_checks import parametrize_with_checks
from skorch.callbacks import Callback, Checkpoint, GradientNormClipping, ProgressBar
from skorch.exceptions import DeviceWarning

import sklrec
from sklrec import (
    AutoRecRegressor,
    BiasRegressor,
    DeepAutoEncoderRegressor,
    GMFRecommender,
    MFRecommender,
    MFRegressor,
    MLPRecommender,
    NeuMFRecommender,
    PopularityRecommender,
)
from sklrec.metrics import evaluate_ranking

SMALL = dict(max_epochs=3, batch_size=64, lr=0.01, random_state=0)
ESTIMATORS = [
    GMFRecommender(embedding_dim=4, **SMALL),
    MLPRecommender(hidden_dims=(8, 4), **SMALL),
    NeuMFRecommender(embedding_dim=4, hidden_dims=(8, 4), **SMALL),
    MFRecommender(embedding_dim=4, **SMALL),
    PopularityRecommender(),
]
SMALL_REGRESSION = dict(max_epochs=3, batch_size=16, lr=0.01, random_state=0)
REGRESSORS = [
    MFRegressor(embedding_dim=4, **SMALL_REGRESSION),
    AutoRecRegressor(hidden_units=8, **SMALL_REGRESSION),
    AutoRecRegressor(based="user", hidden_units=8, **SMALL_REGRESSION),
    DeepAutoEncoderRegressor(hidden_dims=(8, 4), **SMALL_REGRESSION),
    BiasRegressor(),
]
_ALL_ITEMS_SEEN = (
    "its X pairs each of its 3 users with each of its 3 or 4 items, so every user has seen "
    "every item and no negative can be drawn: fit raises a ValueError by design"
)
_WEIGHTED_IS_NOT_REPEATED = (
    "a row of weight 0 still counts as seen (it keeps its ids in users_ / items_ and "
    "is never drawn as a negative), so it is not the same as a removed row"
)
EXPECTED_FAILED = {
    type(e): {
        **dict.fromkeys(
            (
                "check_estimators_dtypes",
                "check_sample_weights_pandas_series",
                "check_sample_weights_not_an_array",
            ),
            _ALL_ITEMS_SEEN,
        ),
        "check_sample_weight_equivalence_on_dense_data": _WEIGHTED_IS_NOT_REPEATED,
    }
    for e in ESTIMATORS
    if not isinstance(e, PopularityRecommender)
}
# its weighted counts are the repeated rows' counts; only the ids of weight 0 differ
EXPECTED_FAILED[PopularityRecommender] = {
    "check_sample_weight_equivalence_on_dense_data": _WEIGHTED_IS_NOT_REPEATED
}
# (BiasRegressor passes it: its closed form counts a weight as that many ratings)
for _e in REGRESSORS:
    if not isinstance(_e, BiasRegressor):
        EXPECTED_FAILED[type(_e)] = {
            "check_sample_weight_equivalence_on_dense_data": (
                "minibatch training: the repeated rows make an epoch of more, other batches "
                "than the weighted rows (weights are rescaled to a mean of 1), so the two "
                "fits take different steps and end at different models"
            )
        }
# scikit-learn's checks fit on a handful of users and items: one negative per positive
# is all their data leaves to draw for some users (as few as one unseen item)
CHECKED = [
    clone(e).set_params(n_negatives=1) if "n_negatives" in e.get_params() else e
    for e in ESTIMATORS
] + REGRESSORS


def _name(est):
    # the optimizer too where it is not the default one (the no-sync tests run lazy_adam)
    lazy = getattr(est, "optimizer", None) == "lazy_adam"
    return type(est).__name__ + ("-lazy_adam" if lazy else "")


def bad_module_sizes(estimators):
    """(estimator, parameter, bad value) for the module sizes each estimator has."""
    bad = {"embedding_dim": (0, -1, 2.5, True), "dropout": (1.0, -0.1, float("nan"))}
    return [
        pytest.param(est, name, value, id=f"{_name(est)}-{name}={value}")
        for est in estimators
        for name, values in bad.items()
        if name in est.get_params()
        for value in values
    ]


def test_every_public_estimator_is_covered():
    assert {n for n in sklrec.__all__ if n.endswith("Recommender")} == {
        _name(e) for e in ESTIMATORS
    }
    assert {n for n in sklrec.__all__ if n.endswith("Regressor")} == {_name(e) for e in REGRESSORS}


@parametrize_with_checks(
    CHECKED, expected_failed_checks=lambda e: EXPECTED_FAILED.get(type(e), {})
)
# its checks fit recommenders on targets with zeros, which warns (see test_base)
@pytest.mark.filterwarnings("ignore:.*positive_threshold=None every row:UserWarning")
def test_sklearn_compatible(estimator, check):
    check(estimator)


def _fitted(est, X, y=None):
    return clone(est).fit(X, y)


def target_for(est, X):
    """``y`` to fit ``est`` on ``X``: ratings 1-5 for a regressor, none for a recommender."""
    return 1.0 + np.arange(len(X)) % 5 if is_regressor(est) else None


def fitted_on(est, X):
    """A clone of ``est`` fitted on ``X`` (and :func:`target_for`), with that ``y``."""
    y = target_for(est, X)
    return clone(est).fit(X, y), y


@pytest.fixture(params=ESTIMATORS, ids=_name)
def estimator(request):
    return clone(request.param)


def test_clone_and_params_round_trip(estimator):
    params = estimator.get_params()
    twin = clone(estimator).set_params(**params)
    assert twin.get_params() == params


def test_recommend_returns_k_unseen_items(estimator, interactions):
    X, y = interactions
    users = np.unique(X[:, 0])[:5]
    recs = estimator.fit(X, y).recommend(users, k=3)
    assert recs.shape == (5, 3)
    for user, items in zip(users, recs, strict=True):
        assert not np.isin(items, X[X[:, 0] == user, 1]).any()
        assert len(set(items)) == 3


def test_recommend_best_first_matches_predict(estimator, interactions):
    X, _ = interactions
    est = estimator.fit(X)
    user = X[0, 0]
    recs = est.recommend([user], k=5, exclude_seen=False)[0]
    scores = est.predict(np.column_stack([np.full(5, user), recs, np.zeros(5)]))
    assert np.all(np.diff(scores) <= 1e-6)
    n = len(est.items_)
    everything = est.predict(np.column_stack([np.full(n, user), est.items_, np.zeros(n)]))
    assert scores[0] == pytest.approx(everything.max(), rel=1e-5)


@pytest.mark.parametrize("exclude_seen", [True, False])
def test_recommend_returns_the_scores_predict_gives(estimator, interactions, exclude_seen):
    X, _ = interactions
    est = estimator.fit(X)
    users = np.unique(X[:, 0])[:6]
    items, scores = est.recommend(users, k=4, exclude_seen=exclude_seen, return_scores=True)
    np.testing.assert_array_equal(items, est.recommend(users, k=4, exclude_seen=exclude_seen))
    assert scores.shape == (6, 4) and scores.dtype == np.float64
    assert np.all(np.diff(scores, axis=1) <= 0)
    pairs = np.column_stack([np.repeat(users, 4), items.ravel(), np.zeros(24)])
    np.testing.assert_allclose(scores.ravel(), est.predict(pairs), rtol=1e-5, atol=1e-6)


def test_pickle_and_joblib_round_trip(estimator, interactions, tmp_path):
    X, _ = interactions
    est = estimator.fit(X)
    restored = pickle.loads(pickle.dumps(est))
    joblib.dump(est, tmp_path / "model.joblib")
    loaded = joblib.load(tmp_path / "model.joblib")
    users = np.unique(X[:, 0])[:4]
    for other in (restored, loaded):
        np.testing.assert_array_equal(other.predict(X), est.predict(X))
        np.testing.assert_array_equal(other.recommend(users, k=4), est.recommend(users, k=4))
        assert other.score(X[:20]) == est.score(X[:20])


@pytest.mark.skipif(torch.cuda.is_available(), reason="loads a CUDA model without CUDA")
@pytest.mark.parametrize("est", ESTIMATORS[:4] + REGRESSORS[:4], ids=_name)
def test_a_cuda_model_serves_on_a_machine_without_cuda(est, interactions):
    # the pickle of a model fitted with device="cuda", made here by marking a CPU fit as
    # CUDA (its tensors pickle the same way): skorch maps the net to the CPU on loading
    X, _ = interactions
    model, y = fitted_on(est, X)
    before = model.predict(X)
    model.set_params(device="cuda").net_.device = "cuda"
    with pytest.warns(DeviceWarning, match="no CUDA"):
        served = pickle.loads(pickle.dumps(model))
    assert torch.device(served.net_.device).type == "cpu"
    np.testing.assert_array_equal(served.predict(X), before)
    # training again needs a device that is there, said plainly
    with pytest.raises(ValueError, match="CUDA is not available"):
        served.partial_fit(X, y)
    np.testing.assert_array_equal(served.predict(X), before)


@pytest.mark.parametrize("est", ESTIMATORS[:4] + REGRESSORS[:4], ids=_name)
def test_skorch_checkpoint_and_progress_bar(est, interactions, tmp_path, capsys):
    # both read the history's latest batch row; the checkpoint monitors the flag
    # skorch's own loss scoring sets
    X, _ = interactions
    y = target_for(est, X)
    checkpoint = Checkpoint(
        dirname=tmp_path, monitor="train_loss_best", f_params="{last_epoch[epoch]}.pt"
    )
    bar = ProgressBar(batches_per_epoch="count")
    model = clone(est).set_params(callbacks=[checkpoint, bar], max_epochs=3).fit(X, y)
    assert "it/s" in capsys.readouterr().err
    losses = model.net_.history[:, "train_loss"]
    best = [loss < min(losses[:epoch], default=np.inf) for epoch, loss in enumerate(losses)]
    assert model.net_.history[:, "train_loss_best"] == best
    saved_epochs = {path.name for path in tmp_path.iterdir() if path.name[0].isdigit()}
    assert saved_epochs == {f"{epoch + 1}.pt" for epoch in np.flatnonzero(best)}
    # the latest checkpoint holds the weights of the best epoch, here the last
    assert best[-1]
    saved = torch.load(tmp_path / "3.pt", weights_only=True)
    fitted = model.net_.module_.state_dict()
    assert saved.keys() == fitted.keys()
    assert all(torch.equal(saved[key], fitted[key]) for key in saved)


@pytest.mark.parametrize("est", ESTIMATORS[:4] + REGRESSORS[:4], ids=_name)
def test_verbose_prints_skorch_epoch_log_and_zero_prints_nothing(est, interactions, capsys):
    X, _ = interactions
    y = target_for(est, X)
    for verbose in (True, 1):
        clone(est).set_params(verbose=verbose, max_epochs=2).fit(X, y)
        lines = capsys.readouterr().out.splitlines()
        assert lines[0].split()[:2] == ["epoch", "train_loss"]
        assert [line.split()[0] for line in lines[2:4]] == ["1", "2"]
    clone(est).set_params(verbose=0, max_epochs=2).fit(X, y)
    assert capsys.readouterr().out == ""


class _GradientNorms(Callback):
    """Records the norm of every batch's gradient, as skorch hands them to callbacks."""

    def initialize(self):
        self.norms = []
        return self

    def on_grad_computed(self, net, named_parameters, **kwargs):
        grads = [p.grad.norm() for _, p in named_parameters if p.grad is not None]
        self.norms.append(float(torch.linalg.vector_norm(torch.stack(grads))))


@pytest.mark.parametrize("est", ESTIMATORS[:4] + REGRESSORS[:4], ids=_name)
def test_skorch_gradient_callbacks_see_every_batch(est, interactions):
    # the loop skips skorch's per-batch gradient hook when no callback listens; one
    # that does (skorch's GradientNormClipping, a recorder after it) runs every batch
    X, _ = interactions
    y = target_for(est, X)
    recorder = _GradientNorms()
    clipped = clone(est).set_params(callbacks=[GradientNormClipping(1e-3), recorder])
    clipped.fit(X, y)
    batches = sum(clipped.net_.history[:, "train_batch_count"])
    updates = batches * (2 if est.get_params().get("refeed") else 1)  # re-feeding: 2 a batch
    assert len(recorder.norms) == updates > est.max_epochs
    assert max(recorder.norms) <= 1e-3 * (1 + 1e-4)
    free = clone(est).fit(X, y)
    assert not np.allclose(clipped.predict(X), free.predict(X))


def _bigger(est):
    """One of ``est``'s module sizes and a larger value of it."""
    params = est.get_params()
    for name in ("embedding_dim", "hidden_units"):
        if name in params:
            return name, params[name] + 2
    return "hidden_dims", tuple(size + 2 for size in params["hidden_dims"])


@pytest.mark.parametrize("est", ESTIMATORS[:4] + REGRESSORS[:4], ids=_name)
def test_partial_fit_refuses_a_changed_architecture_and_takes_the_current_decay(est, interactions):
    X, _ = interactions
    model, y = fitted_on(est, X)
    before = model.predict(X)
    name, value = _bigger(est)
    model.set_params(**{name: value})
    # named as the module has it (AutoRec's hidden_units is its hidden_dims)
    with pytest.raises(
        ValueError, match=r"architecture changed since fit \((hidden_dims|embedding_d)"
    ):
        model.partial_fit(X, y)
    np.testing.assert_array_equal(model.predict(X), before)
    if "dropout" in est.get_params():
        model.set_params(**{name: getattr(est, name)}, dropout=0.5)
        with pytest.raises(ValueError, match=r"architecture changed since fit \(dropout 0"):
            model.partial_fit(X, y)
        model.set_params(dropout=est.dropout)
        np.testing.assert_array_equal(model.predict(X), before)
    assert len(model.net_.history) == est.max_epochs
    # lr and weight decay are read afresh, as a manual schedule would set them
    model.set_params(**{name: getattr(est, name)}, weight_decay=0.25, lr=0.125)
    model.partial_fit(X, y)
    group = model.net_.optimizer_.param_groups[0]
    assert group["lr"] == 0.125
    if isinstance(est, MFRegressor):  # the penalty it applies itself
        assert (group["weight_decay"], model.net_.l2) == (0, 0.25)
    else:
        assert group["weight_decay"] == 0.25


@pytest.mark.parametrize("est", ESTIMATORS[:4] + REGRESSORS[:4], ids=_name)
def test_a_diverging_fit_is_a_clear_error_and_keeps_the_fitted_model(est, interactions):
    X, _ = interactions
    model, y = fitted_on(est, X)
    twin = pickle.loads(pickle.dumps(model))
    before = model.predict(X)
    # Adam's steps are about lr long: at this rate the weights overflow in the first epoch
    model.set_params(lr=1e30)
    with pytest.raises(ValueError, match=r"diverged: the mean training loss of epoch 1 was"):
        model.fit(X, y)
    np.testing.assert_array_equal(model.predict(X), before)
    epoch = est.max_epochs + 1
    with pytest.raises(ValueError, match=rf"loss of epoch {epoch} was (nan|inf); try a lower lr"):
        model.partial_fit(X, y)
    np.testing.assert_array_equal(model.predict(X), before)
    assert model.n_iter_ == est.max_epochs
    # weights, optimiser state and rate, and the history that seeds the next epoch are
    # all as they were: one more epoch now is the epoch the untouched twin trains
    model.set_params(lr=est.lr).partial_fit(X, y)
    twin.partial_fit(X, y)
    np.testing.assert_array_equal(model.predict(X), twin.predict(X))
    assert model.net_.history[:, "train_loss"] == twin.net_.history[:, "train_loss"]


class _SpoilsAWeight(Callback):
    """Sets one weight to ``value`` when training ends, after the last loss was taken."""

    def __init__(self, value):
        self.value = value

    def on_train_end(self, net, **kwargs):
        with torch.no_grad():
            next(net.module_.parameters()).view(-1)[0] = self.value


@pytest.mark.parametrize("value", [float("nan"), -float("inf"), 1e20])
@pytest.mark.parametrize("est", [ESTIMATORS[2], REGRESSORS[3]], ids=_name)
def test_weights_left_unusable_are_a_clear_error(est, value, interactions):
    # 1e20 is finite, but its product with another such weight overflows float32
    X, _ = interactions
    y = target_for(est, X)
    model = clone(est).set_params(callbacks=[_SpoilsAWeight(value)])
    with pytest.raises(ValueError, match="after epoch 3 the weights are NaN, infinite or too"):
        model.fit(X, y)
    assert not hasattr(model, "net_")
    clone(est).set_params(callbacks=[_SpoilsAWeight(1e18)]).fit(X, y)  # large, but usable


def test_a_step_that_diverges_after_the_last_loss_is_caught(interactions):
    # one batch an epoch: its loss is taken before the step that blows the weights up
    X, _ = interactions
    model = clone(ESTIMATORS[3]).set_params(batch_size=len(X) * 5, max_epochs=1, lr=1e30)
    with pytest.raises(ValueError, match="after epoch 1 the weights are NaN, infinite or too"):
        model.fit(X)


def test_same_random_state_same_model(estimator, interactions):
    X, _ = interactions
    a = clone(estimator).fit(X).predict(X)
    b = clone(estimator).fit(X).predict(X)
    np.testing.assert_array_equal(a, b)


@pytest.fixture
def float64_default():
    """torch's default dtype set to float64 for the test, as some users set it."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


@pytest.mark.parametrize("est", ESTIMATORS[:4] + REGRESSORS[:4], ids=_name)
def test_models_train_in_float32_whatever_the_default_dtype(est, interactions, float64_default):
    # the autoencoders failed (a float64 input row met float32 ratings); the others
    # trained float64 parameters on float32 data
    X, _ = interactions
    model, y = fitted_on(clone(est).set_params(early_stopping=True), X)
    model.partial_fit(X, y)
    assert {p.dtype for p in model.net_.module_.parameters()} == {torch.float32}
    assert np.isfinite(model.predict(X)).all()
    if not is_regressor(est):
        model.recommend(X[:3, 0], k=2, return_scores=True)
        evaluate_ranking(model, X, n_negatives=3)


@pytest.mark.parametrize("est", ESTIMATORS[:4], ids=_name)
def test_seed_matters_and_global_rng_untouched(est, interactions):
    import torch

    X, _ = interactions
    torch_state, np_state = torch.get_rng_state(), np.random.get_state()  # noqa: NPY002
    a = clone(est).set_params(random_state=1).fit(X).predict(X)
    b = clone(est).set_params(random_state=2).fit(X).predict(X)
    clone(est).set_params(random_state=None).fit(X)
    assert not np.allclose(a, b)
    assert torch.equal(torch.get_rng_state(), torch_state)
    np_after = np.random.get_state()  # noqa: NPY002
    assert all(np.array_equal(u, v) for u, v in zip(np_after, np_state, strict=True))


@pytest.mark.parametrize(
    "est",
    [
        NeuMFRecommender(embedding_dim=4, hidden_dims=(8, 4), dropout=0.3, **SMALL),
        DeepAutoEncoderRegressor(hidden_dims=(8, 4), **SMALL_REGRESSION),
    ],
    ids=_name,
)
def test_fits_in_threads_give_what_they_give_one_at_a_time(est, interactions):
    # torch's global RNG (initialisation, dropout) is one per process; Optuna's n_jobs
    # and joblib's threading backend fit in threads. Measured before the fix: 18 of 18
    # threaded NeuMF fits differed from the same seeds fitted one at a time
    from concurrent.futures import ThreadPoolExecutor

    X, _ = interactions
    torch_state = torch.get_rng_state()

    def fit(seed):
        model, _ = fitted_on(clone(est).set_params(random_state=seed), X)
        return model.predict(X)

    alone = [fit(seed) for seed in range(4)]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(fit, range(4)))
    for a, b in zip(alone, threaded, strict=True):
        np.testing.assert_array_equal(a, b)
    assert torch.equal(torch.get_rng_state(), torch_state)


@pytest.mark.parametrize("est", ESTIMATORS + REGRESSORS, ids=_name)
def test_a_fitted_model_serves_threads_at_once(est, interactions):
    # a server may answer requests from several threads with one loaded model
    from concurrent.futures import ThreadPoolExecutor

    X, _ = interactions
    model, y = fitted_on(est, X)
    users = np.unique(X[:, 0])
    ranks = hasattr(model, "recommend")

    def serve(part):
        answers = [
            model.predict(X[part::8]),
            model.score(X[part::4], None if y is None else y[part::4]),
        ]
        if ranks:
            answers.append(model.recommend(users[part::8], k=5))
        return answers

    alone = [serve(part) for part in range(8)]
    with ThreadPoolExecutor(4) as pool:
        threaded = list(pool.map(serve, list(range(8)) * 4))
    for part, answers in enumerate(threaded):
        for got, expected in zip(answers, alone[part % 8], strict=True):
            np.testing.assert_array_equal(got, expected)


def test_string_ids_dataframe_and_context_columns(estimator):
    pd = pytest.importorskip("pandas")
    X, _ = sklrec.datasets.make_interactions(n_users=30, n_items=20, n_groups=2, random_state=0)
    frame = pd.DataFrame(
        {
            "user": [f"u{u}" for u in X[:, 0]],
            "item": [f"i{i}" for i in X[:, 1]],
            "device": np.where(X[:, 2] % 2, "phone", "web"),
        }
    )
    est = estimator.fit(frame)
    assert est.users_.dtype.kind == "U" and est.users_[0] == "u0"
    assert est.n_features_in_ == 3 and list(est.feature_names_in_) == ["user", "item", "device"]
    recs = est.recommend(["u0", "u1"], k=2)
    assert recs.shape == (2, 2) and str(recs[0, 0]).startswith("i")
    assert np.isfinite(est.predict(frame.iloc[:5])).all()
    # context is ignored, yet predict takes the columns fit saw, and says so
    with pytest.raises(ValueError, match=r"has 2 features.*the 3 columns it was fitted on"):
        est.predict(frame[["user", "item"]].to_numpy())


def test_pandas_extension_dtypes_and_times(estimator):
    # categories, nullable integers and zoned timestamps (as read from parquet or
    # after convert_dtypes) train the same model as plain columns of the same values
    pd = pytest.importorskip("pandas")
    X, _ = sklrec.datasets.make_interactions(n_users=30, n_items=20, n_groups=2, random_state=0)
    plain = pd.DataFrame({"user": [f"u{u}" for u in X[:, 0]], "item": X[:, 1], "ts": X[:, 2]})
    typed = pd.DataFrame(
        {
            "user": pd.Categorical(plain["user"]),
            "item": pd.array(X[:, 1], dtype="Int64"),
            "ts": pd.to_datetime(X[:, 2], unit="s").tz_localize("UTC"),
        }
    )
    expected = clone(estimator).fit(plain).predict(plain)
    est = estimator.fit(typed)
    assert est.items_.dtype.kind == "i" and list(est.feature_names_in_) == ["user", "item", "ts"]
    np.testing.assert_array_equal(est.predict(typed), expected)
    naive = typed.assign(ts=typed["ts"].dt.tz_convert(None))
    np.testing.assert_array_equal(est.predict(naive), expected)

    missing = typed.assign(item=typed["item"].where(np.arange(len(typed)) != 3, pd.NA))
    with pytest.raises(ValueError, match=r"item ids contain NaN .*rows \[3\]"):
        est.fit(missing)
    np.testing.assert_array_equal(est.predict(typed), expected)  # left as it was


def test_list_of_tuples_keeps_ids_apart():
    X = [(1, "a", 0), (1, "b", 1), (2, "a", 2), (3, "c", 3)]
    est = PopularityRecommender().fit(X)
    assert est.users_.tolist() == [1, 2, 3] and est.items_.tolist() == ["a", "b", "c"]
    assert est.recommend([3], k=1).tolist() == [["a"]]


def test_bytes_ids_are_ids_as_strings_are(estimator, interactions):
    X, _ = interactions
    as_text = X[:, :2].astype(str)
    expected = clone(estimator).fit(as_text).predict(as_text)
    for as_bytes in (as_text.astype("S"), np.vectorize(str.encode, otypes=[object])(as_text)):
        model = clone(estimator).fit(as_bytes)
        assert model.users_.dtype.kind == "S" and model.items_.dtype.kind == "S"
        np.testing.assert_array_equal(model.predict(as_bytes), expected)
        top = model.recommend([as_bytes[0, 0]], k=2)
        assert top.dtype.kind == "S" and set(top[0]) <= set(model.items_)


def test_ids_that_are_neither_numbers_nor_strings_are_named():
    X = np.array(["2026-01-01", "2026-01-02"], dtype="datetime64[D]")
    with pytest.raises(
        ValueError, match="user ids must be numbers or strings; got dtype datetime64"
    ):
        PopularityRecommender().fit(np.c_[X, X])


def test_pipeline(estimator, interactions):
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline

    from sklrec.metrics import make_ranking_scorer

    X, _ = interactions
    pipe = make_pipeline(ColumnTransformer([("ids", "passthrough", [0, 1])]), estimator)
    pipe.fit(X)
    assert pipe[-1].n_features_in_ == 2
    # the same as the bare estimator on the two id columns, through every method
    bare = clone(estimator).fit(X[:, :2])
    np.testing.assert_array_equal(pipe.predict(X[:7]), bare.predict(X[:7, :2]))
    assert pipe.score(X[:20]) == bare.score(X[:20, :2])
    hr = make_ranking_scorer("hit_rate", n_negatives=5)
    assert hr(pipe, X[:20]) == hr(bare, X[:20, :2])


def test_cross_validate_kfold_and_leave_last_out(estimator, interactions):
    from sklearn.model_selection import KFold, cross_validate

    from sklrec.metrics import make_ranking_scorer
    from sklrec.model_selection import LeaveLastOut

    X, _ = interactions
    scoring = {
        "ndcg": make_ranking_scorer("ndcg"),
        "hr": make_ranking_scorer("hit_rate", n_negatives=9),
    }
    for cv in (KFold(3, shuffle=True, random_state=0), LeaveLastOut(time_column=2)):
        res = cross_validate(estimator, X, cv=cv, scoring=scoring)
        # each fold as fitting a clone on its training rows by hand
        for name, scorer in scoring.items():
            by_hand = [scorer(clone(estimator).fit(X[tr]), X[te]) for tr, te in cv.split(X)]
            np.testing.assert_array_equal(res[f"test_{name}"], by_hand)


def _leave_last_out_score(model, X, scorer=None):
    """Mean score of ``model`` over a leave-last-out split (by the time column, 2).

    The score is HR@10 against 9 sampled negatives unless ``scorer`` is given:
    the searches' score in these tests, computed here by hand.
    """
    from sklearn.model_selection import cross_val_score

    from sklrec.metrics import make_ranking_scorer
    from sklrec.model_selection import LeaveLastOut

    scorer = scorer or make_ranking_scorer("hit_rate", n_negatives=9)
    return cross_val_score(model, X, cv=LeaveLastOut(time_column=2), scoring=scorer).mean()


def test_grid_search_with_ranking_scorer(interactions):
    from sklearn.model_selection import GridSearchCV

    from sklrec.metrics import make_ranking_scorer
    from sklrec.model_selection import LeaveLastOut

    X, _ = interactions
    scorer = make_ranking_scorer("ndcg", k=5)
    search = GridSearchCV(
        ESTIMATORS[3],
        {"embedding_dim": [2, 4], "loss": ["bce", "bpr"]},
        scoring=scorer,
        cv=LeaveLastOut(time_column=2),
    ).fit(X)
    # every candidate scores as the estimator with its parameters set by hand
    for params, score in zip(
        search.cv_results_["params"], search.cv_results_["mean_test_score"], strict=True
    ):
        model = clone(ESTIMATORS[3]).set_params(**params)
        assert score == pytest.approx(_leave_last_out_score(model, X, scorer))
    assert search.best_estimator_.recommend([X[0, 0]], k=2).shape == (1, 2)


def _optuna_search(estimator, distributions, **kwargs):
    """A quiet, seeded ``OptunaSearchCV`` on leave-last-out HR@10 (9 sampled negatives)."""
    optuna = pytest.importorskip("optuna")
    integration = pytest.importorskip("optuna_integration")

    from sklrec.metrics import make_ranking_scorer
    from sklrec.model_selection import LeaveLastOut

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return integration.OptunaSearchCV(
        estimator,
        distributions,
        cv=LeaveLastOut(time_column=2),
        scoring=make_ranking_scorer("hit_rate", n_negatives=9),
        random_state=0,
        **kwargs,
    )


def test_optuna_search(interactions):
    optuna = pytest.importorskip("optuna")
    X, _ = interactions
    search = _optuna_search(
        ESTIMATORS[2],
        {
            "embedding_dim": optuna.distributions.IntDistribution(2, 8),
            "lr": optuna.distributions.FloatDistribution(1e-3, 5e-2, log=True),
        },
        n_trials=3,
    ).fit(X)
    assert len(search.trials_) == 3
    # the best trial's score is what its parameters give when set by hand
    model = clone(ESTIMATORS[2]).set_params(**search.best_params_)
    assert search.best_score_ == pytest.approx(_leave_last_out_score(model, X))
    assert search.best_estimator_.get_params()["embedding_dim"] == model.embedding_dim


def test_optuna_search_prunes_through_partial_fit(interactions):
    # enable_pruning makes OptunaSearchCV train each fold by max_iter calls to
    # partial_fit (one epoch each, see test_base), reporting the score after each call
    optuna = pytest.importorskip("optuna")
    X, _ = interactions
    model = MFRecommender(embedding_dim=4, random_state=0)
    lr = {"lr": optuna.distributions.FloatDistribution(1e-3, 5e-2, log=True)}
    search = _optuna_search(model, lr, enable_pruning=True, max_iter=3, n_trials=2).fit(X)
    assert [sorted(t.intermediate_values) for t in search.trials_] == [[0, 1, 2]] * 2
    assert all(0.0 <= v <= 1.0 for t in search.trials_ for v in t.intermediate_values.values())

    # a pruner that stops everything below an unreachable score prunes after epoch 1
    study = optuna.create_study(
        direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=2.0)
    )
    pruned = _optuna_search(
        model, lr, enable_pruning=True, max_iter=3, n_trials=2, refit=False, study=study
    ).fit(X)
    assert all(t.state == optuna.trial.TrialState.PRUNED for t in pruned.trials_)
    assert [sorted(t.intermediate_values) for t in pruned.trials_] == [[0]] * 2


def test_cross_validate_in_worker_processes(interactions):
    # n_jobs sends a pickled clone to each of joblib's worker processes (DESIGN.md's
    # scale-out path): the folds must come back as the same models as in one process
    from sklearn.model_selection import KFold, cross_validate

    from sklrec.metrics import make_ranking_scorer

    X, _ = interactions
    model = NeuMFRecommender(embedding_dim=4, hidden_dims=(8, 4), **SMALL)
    kwargs = dict(
        cv=KFold(3, shuffle=True, random_state=0),
        scoring=make_ranking_scorer("ndcg", n_negatives=9),
        return_estimator=True,
    )
    serial = cross_validate(model, X, **kwargs)
    parallel = cross_validate(model, X, n_jobs=2, **kwargs)
    np.testing.assert_array_equal(parallel["test_score"], serial["test_score"])
    for one, other in zip(serial["estimator"], parallel["estimator"], strict=True):
        np.testing.assert_array_equal(other.predict(X), one.predict(X))


def cpu_twin(est, trained, *fit_args):
    """A CPU fit of ``est`` on ``fit_args`` that then takes the weights of ``trained``.

    On the same data the twin has the same id maps and training matrix, so it
    scores as ``trained`` would on the CPU (the GPU tests compare the two).
    """
    twin = clone(est).set_params(device="cpu").fit(*fit_args)
    state = trained.net_.module_.state_dict()
    twin.net_.module_.load_state_dict({key: value.cpu() for key, value in state.items()})
    return twin


def _study_storage(kind, directory):
    """An Optuna storage that several processes can share: an RDB URL or a journal file."""
    optuna = pytest.importorskip("optuna")
    if kind == "rdb":
        return f"sqlite:///{directory / 'study.db'}"
    try:  # optuna >= 4
        from optuna.storages.journal import JournalFileBackend
    except ImportError:  # optuna 3
        JournalFileBackend = optuna.storages.JournalFileStorage
    return optuna.storages.JournalStorage(JournalFileBackend(str(directory / "study.log")))


def _search_trial(trial, X):
    """A study's objective: leave-last-out HR@10 of an MF model the trial configures."""
    model = MFRecommender(
        embedding_dim=trial.suggest_int("embedding_dim", 2, 8),
        lr=trial.suggest_float("lr", 1e-3, 5e-2, log=True),
        **{key: value for key, value in SMALL.items() if key != "lr"},
    )
    return _leave_last_out_score(model, X)


def _optimize_shared_study(kind, directory, X, seed):
    # runs in a worker process: it opens the study by name from the shared storage
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(
        study_name="shared",
        storage=_study_storage(kind, directory),
        sampler=optuna.samplers.RandomSampler(seed=seed),
    )
    study.optimize(lambda trial: _search_trial(trial, X), n_trials=2)


@pytest.mark.parametrize("kind", ["rdb", "journal"])
def test_optuna_study_shared_by_worker_processes(kind, interactions, tmp_path):
    # DESIGN.md's scale-out path for searches: processes (or machines) that share an
    # Optuna storage work on one study. Every trial of every worker must land in it,
    # and its recorded value must be what the same parameters give in this process
    optuna = pytest.importorskip("optuna")
    X, _ = interactions
    optuna.create_study(
        study_name="shared", storage=_study_storage(kind, tmp_path), direction="maximize"
    )
    joblib.Parallel(n_jobs=2)(
        joblib.delayed(_optimize_shared_study)(kind, tmp_path, X, seed) for seed in (0, 1)
    )
    study = optuna.load_study(study_name="shared", storage=_study_storage(kind, tmp_path))
    trials = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(study.trials) == len(trials) == 4
    assert len({trial.params["lr"] for trial in trials}) == 4  # two samplers, two seeds
    best = study.best_trial
    again = _search_trial(optuna.trial.FixedTrial(best.params), X)
    assert again == pytest.approx(best.value, rel=1e-9)


def test_sample_weight_routed_through_cross_validate(interactions):
    # with metadata routing on, cross_validate slices sample_weight per split and the
    # recommender trains on the training share: the same as fitting each split by hand
    import sklearn
    from sklearn.model_selection import cross_validate

    from sklrec.metrics import make_ranking_scorer
    from sklrec.model_selection import LeaveLastOut
    from sklrec.preprocessing import recency_weights

    X, _ = interactions
    weights = recency_weights(X, time_column=2, strength=4.0)
    cv = LeaveLastOut(time_column=2)
    scorer = make_ranking_scorer("ndcg", n_negatives=9)
    model = MFRecommender(embedding_dim=4, **SMALL)
    by_hand = [
        scorer(clone(model).fit(X[train], sample_weight=weights[train]), X[test])
        for train, test in cv.split(X)
    ]
    unweighted = [scorer(clone(model).fit(X[train]), X[test]) for train, test in cv.split(X)]
    with sklearn.config_context(enable_metadata_routing=True):
        routed = cross_validate(
            clone(model).set_fit_request(sample_weight=True),
            X,
            cv=cv,
            scoring=scorer,
            params={"sample_weight": weights},
        )["test_score"]
    np.testing.assert_array_equal(routed, by_hand)
    assert not np.array_equal(by_hand, unweighted)  # the weights reached the loss


def test_optuna_pruning_through_callbacks(grouped):
    optuna = pytest.importorskip("optuna")
    integration = pytest.importorskip("optuna_integration")

    from sklrec.callbacks import RankingScoring

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    train, valid = grouped

    def objective(trial):
        model = MFRecommender(
            embedding_dim=trial.suggest_int("embedding_dim", 2, 8),
            max_epochs=5,
            callbacks=[
                RankingScoring(valid, metric="ndcg"),
                integration.SkorchPruningCallback(trial, "valid_ndcg@10"),
            ],
            random_state=0,
        ).fit(train)
        return model.net_.history[-1, "valid_ndcg@10"]

    # any validation NDCG below 2 is pruned: the reports must reach the study
    study = optuna.create_study(
        direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=2.0)
    )
    study.optimize(objective, n_trials=2)
    assert all(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    assert all(t.intermediate_values for t in study.trials)
