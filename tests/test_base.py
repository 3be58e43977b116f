"""Validation, unknown ids, partial_fit, callbacks and devices, on every recommender."""

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone, is_regressor
from skorch.callbacks import Callback, LRScheduler

import sklrec
from sklrec import MFRecommender, NeuMFRecommender, PopularityRecommender
from sklrec.callbacks import RankingScoring
from sklrec.metrics import evaluate_ranking, make_ranking_scorer

from .test_common import ESTIMATORS, REGRESSORS, _name, bad_module_sizes, cpu_twin, fitted_on

TORCH_ESTIMATORS = ESTIMATORS[:4]


def _bad_fits(X):
    y = np.ones(len(X))
    return {
        "one column": ((X[:, :1],), "minimum of 2 is required"),
        "empty X": ((X[:0],), "0 sample"),
        "lengths differ": ((X, y[:-1]), "inconsistent numbers of samples"),
        "NaN y": ((X, np.r_[np.nan, y[1:]]), "NaN"),
        "two-column y": ((X, np.c_[y, y]), r"y must be 1-dimensional; got shape \(\d+, 2\)"),
        "infinite y": ((X, np.r_[np.inf, y[1:]]), "infinity"),
        "NaN user id": ((np.r_[[[np.nan, 1, 0]], X.astype(float)],), "NaN or infinite"),
        "mixed id kinds": ((np.array([[1, "a", 0], ["b", "a", 1]], dtype=object),), "one kind"),
        "ids that are tuples": (
            ([[(1,), *X[0, 1:]], [(2,), *X[1, 1:]]],),
            "user ids must be numbers or strings; got tuple objects",
        ),
        "ragged rows": (
            ([[*X[0]], [*X[1, :2]], [*X[2]]],),
            r"rows must all have the same length; row 0 has 3 values but rows \[1\] have \[2\]",
        ),
        "missing string id": (
            (np.array([["a", "x", 0], [None, "y", 1], ["b", np.nan, 2]], dtype=object),),
            r"user ids contain missing values \(None, NaN or NA; rows \[1\]\)",
        ),
    }


@pytest.mark.parametrize("case", list(_bad_fits(np.zeros((3, 3)))))
@pytest.mark.parametrize("est", ESTIMATORS, ids=_name)
def test_bad_input_raises_and_keeps_the_fitted_model(est, case, interactions):
    X, _ = interactions
    args, match = _bad_fits(X)[case]
    assert_raises_and_keeps_the_fitted_model(est, X, match, lambda model: model.fit(*args))


def assert_raises_and_keeps_the_fitted_model(est, X, match, *calls):
    """Each call on a model fitted to ``X`` raises a ValueError matching ``match``
    and leaves the model's state and predictions as they were."""
    model = clone(est).fit(X)
    before = model.predict(X)
    state = dict(model.__dict__)
    for call in calls:
        with pytest.raises(ValueError, match=match):
            call(model)
    assert model.__dict__.keys() == state.keys()
    assert all(model.__dict__[key] is value for key, value in state.items())
    np.testing.assert_array_equal(model.predict(X), before)


@pytest.mark.parametrize("est", TORCH_ESTIMATORS, ids=_name)
def test_negative_sampling_errors_name_the_users(est):
    X = np.array([[1, 1], [1, 2], [1, 3], [2, 1], [2, 2], [3, 3]])
    with pytest.raises(ValueError, match=r"user\(s\) \[1\] interacted with every one of the 3"):
        clone(est).fit(X)
    X = np.array([[1, 1], [2, 2], [3, 3], [3, 4], [4, 5]])
    with pytest.raises(ValueError, match=r"n_negatives=4 is larger .* user\(s\) \[3\]"):
        clone(est).fit(X)
    clone(est).set_params(n_negatives=3).fit(X)


@pytest.mark.parametrize("est", ESTIMATORS, ids=_name)
def test_unknown_ids(est, interactions):
    X, _ = interactions
    model = clone(est).fit(X)
    new = np.array([[X[0, 0], 999, 0], [999, X[0, 1], 0], [X[0, 0], X[0, 1], 0]])
    with pytest.warns(UserWarning, match="unknown user id") as record:
        scores = model.predict(new)
    assert len([w for w in record if "unknown user" in str(w.message)]) == 1
    assert scores[0] == scores[1] == -np.inf and np.isfinite(scores[2])
    with pytest.warns(UserWarning, match=r"unknown user id\(s\) \[999\]") as more:
        assert model.recommend([999], k=2).shape == (1, 2)
        evaluate_ranking(model, new, n_negatives=3)
    # every warning points at the line that called sklrec, not at sklrec's insides
    assert {w.filename for w in [*record, *more]} == {__file__}
    with pytest.warns(UserWarning, match="unknown user id") as scored:
        make_ranking_scorer("ndcg")(model, new)  # through scikit-learn's scorer: its line
    assert all(Path(sklrec.__file__).parent not in Path(w.filename).parents for w in scored)
    model.set_params(handle_unknown="ignore")  # the same fallback, silently
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(model.predict(new), scores)
        assert model.recommend([999], k=2).shape == (1, 2)
        evaluate_ranking(model, new, n_negatives=3)
    model.set_params(handle_unknown="error")
    with pytest.raises(ValueError, match=r"unknown item id\(s\) \[999\]"):
        model.predict(new[:1])
    with pytest.raises(ValueError, match=r"unknown user id\(s\) \[999\]"):
        model.recommend([999, X[0, 0]])
    model.set_params(handle_unknown="oops")
    with pytest.raises(ValueError, match="handle_unknown"):
        model.fit(X)


@pytest.mark.parametrize(
    "ids",
    [
        np.array([5, 0, 3, 3, 9, 0]),  # dense non-negative: counted
        np.array([5, 0, 3, 3, 9, 0], dtype=np.uint16),
        np.array([5, 0, 3, 3, 9, 0], dtype=np.int32),
        np.array([10**12, 7, 10**12, 3]),  # sparse: sorted
        np.array([-2, 5, -2, 0]),  # negative: sorted
        np.array([2.5, 1.0, 2.5]),
        np.array(["b", "a", "b", "c"]),
        np.array([], dtype=np.int64),
    ],
    ids=lambda a: f"{a.dtype}{list(a)[:2]}",
)
def test_unique_inverse_is_numpys(ids):
    from sklrec._interactions import unique_inverse

    ours, index = unique_inverse(ids)
    theirs, their_index = np.unique(ids, return_inverse=True)
    np.testing.assert_array_equal(ours, theirs)
    assert ours.dtype == theirs.dtype
    np.testing.assert_array_equal(index, their_index)
    np.testing.assert_array_equal(ours[index], ids)


@pytest.mark.parametrize("est", ESTIMATORS, ids=_name)
def test_recommend_among_candidate_items(est, interactions):
    X, _ = interactions
    model = clone(est).fit(X)
    users = np.unique(X[:, 0])[:6]
    candidates = model.items_[::3]
    for exclude_seen in (True, False):
        got, scores = model.recommend(
            users, k=3, exclude_seen=exclude_seen, items=candidates, return_scores=True
        )
        for user, top, top_scores in zip(users, got, scores, strict=True):
            # the best of the candidates by predict, the user's history left out
            pool = candidates
            if exclude_seen:
                pool = np.setdiff1d(candidates, X[X[:, 0] == user, 1])
            rows = np.column_stack([np.full(len(pool), user), pool, np.zeros(len(pool))])
            pool_scores = model.predict(rows)
            assert np.isin(top, pool).all() and len(set(top)) == 3
            np.testing.assert_allclose(top_scores, np.sort(pool_scores)[::-1][:3], rtol=1e-5)
    # repeats count once, and the order of the candidates does not matter
    twice = np.r_[candidates[::-1], candidates]
    np.testing.assert_array_equal(
        model.recommend(users, k=3, items=twice), model.recommend(users, k=3, items=candidates)
    )
    # an unknown candidate is left out, with a warning (or an error) naming it
    with pytest.warns(UserWarning, match=r"unknown item id\(s\) \[999\] .* left out"):
        with_unknown = model.recommend(users, k=3, items=np.r_[candidates, 999])
    np.testing.assert_array_equal(with_unknown, model.recommend(users, k=3, items=candidates))
    strict = clone(model).set_params(handle_unknown="error").fit(X)
    with pytest.raises(ValueError, match=r"unknown item id\(s\) \[999\]"):
        strict.recommend(users, k=1, items=[999, candidates[0]])


def _assert_lists_lose(model, users, k, exclude, gone, **kwargs):
    """``recommend(users, k, exclude=exclude)`` is the plain top ``k + extra`` with the
    items of ``gone[row]`` taken out of each row (compared by score: ties may reorder)."""
    got, scores = model.recommend(users, k=k, exclude=exclude, return_scores=True, **kwargs)
    wide = k + max(len(g) for g in gone)
    top, top_scores = model.recommend(users, k=wide, return_scores=True, **kwargs)
    for row, items in enumerate(gone):
        assert not np.isin(got[row], items).any()
        kept = ~np.isin(top[row], items)
        np.testing.assert_allclose(scores[row], top_scores[row][kept][:k], rtol=1e-6)
        # the items themselves, where no score ties across the cut
        if len(np.unique(top_scores[row])) == wide:
            np.testing.assert_array_equal(got[row], top[row][kept][:k])


@pytest.mark.parametrize("est", ESTIMATORS, ids=_name)
def test_recommend_excludes_more_interactions(est, interactions):
    X, _ = interactions
    model = clone(est).fit(X)
    users = np.unique(X[:, 0])[:5]
    asked = np.r_[users, users[0], 999]  # a user twice, and one unseen in fit
    with pytest.warns(UserWarning, match=r"unknown user id\(s\) \[999\]"):
        before = model.recommend(asked, k=6)
    # two items of users[0] (twice in asked) and one of the unseen user go; an item
    # unseen in fit and a user not asked for change nothing
    exclude = np.array(
        [[users[0], before[0, 0]], [users[0], before[0, 3]], [999, before[-1, 1]],
         [users[1], 998], [12345, before[2, 0]]]
    )  # fmt: skip
    gone = [before[0, [0, 3]], [], [], [], [], before[0, [0, 3]], before[-1, [1]]]
    with pytest.warns(UserWarning, match="unknown user"):
        _assert_lists_lose(model, asked, 4, exclude, gone)
    # the training interactions as exclude, instead of exclude_seen: the same lists
    np.testing.assert_array_equal(
        model.recommend(users, k=5, exclude_seen=False, exclude=X),
        model.recommend(users, k=5),
    )
    # with exclude_seen=False, only the excluded items are left out
    unseen = model.recommend(users, k=3, exclude_seen=False)
    gone = unseen[:, :1]
    _assert_lists_lose(model, users, 2, np.c_[users, gone], gone, exclude_seen=False)
    # among candidates; a DataFrame and a list of tuples
    candidates = model.items_[::3]
    top = model.recommend(users[:1], k=3, items=candidates)
    _assert_lists_lose(model, users[:1], 2, [(users[0], top[0, 0])], top[:, :1], items=candidates)
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"user": users, "item": gone[:, 0], "when": 0})
    _assert_lists_lose(model, users, 2, frame, gone, exclude_seen=False)
    # string user ids; numeric ones in exclude never match them
    named = clone(est).fit(pd.DataFrame({"user": [f"u{u}" for u in X[:, 0]], "item": X[:, 1]}))
    as_str = np.array([f"u{u}" for u in users])
    top = named.recommend(as_str, k=3)
    exclude = pd.DataFrame({"user": as_str, "item": top[:, 0]})
    _assert_lists_lose(named, as_str, 2, exclude, top[:, :1])
    exclude = np.c_[users, top[:, 0]]
    np.testing.assert_array_equal(named.recommend(as_str, k=2, exclude=exclude), top[:, :2])
    # an empty exclude changes nothing
    np.testing.assert_array_equal(
        model.recommend(users, k=3, exclude=np.empty((0, 2))), model.recommend(users, k=3)
    )
    # no user asked: an empty list, whatever exclude holds
    for empty in ([], np.array([], dtype=users.dtype)):
        got, scores = model.recommend(empty, k=3, exclude=X[:5], return_scores=True)
        assert got.shape == scores.shape == (0, 3) and got.dtype == model.items_.dtype


@pytest.mark.parametrize("est", ESTIMATORS, ids=_name)
def test_recommend_exclude_bad_input(est, interactions):
    X, _ = interactions
    model = clone(est).fit(X)
    user = X[0, 0]
    left = np.setdiff1d(model.items_, X[X[:, 0] == user, 1])
    # k must fit what is left once both the history and exclude are out
    model.recommend([user], k=len(left) - 1, exclude=[(user, left[0])])
    with pytest.raises(ValueError, match=r"k=\d+ is more than the unexcluded items of user"):
        model.recommend([user], k=len(left), exclude=[(user, left[0])])
    with pytest.raises(ValueError, match="exclude must be 2-d.*got shape \\(2,\\)"):
        model.recommend([user], exclude=[user, left[0]])
    with pytest.raises(ValueError, match="exclude must hold .* minimum of 2"):
        model.recommend([user], exclude=[[user]])
    with pytest.raises(ValueError, match="exclude's user ids contain NaN"):
        model.recommend([user], exclude=np.array([[np.nan, left[0]]]))
    with pytest.raises(ValueError, match="exclude rows must all have the same length"):
        model.recommend([user], exclude=[(user, left[0]), (user,)])
    with pytest.raises(TypeError, match="Sparse exclude"):
        model.recommend([user], exclude=sp.csr_matrix(np.ones((1, 2))))


@pytest.mark.parametrize("est", ESTIMATORS, ids=_name)
def test_recommend_arguments(est, interactions):
    X, _ = interactions
    model = clone(est).fit(X)
    n = model.n_items_
    with pytest.raises(ValueError, match=f"larger than the catalogue of {n}"):
        model.recommend([X[0, 0]], k=n + 1)
    with pytest.raises(ValueError, match="unseen items of user"):
        model.recommend([X[0, 0]], k=n)
    assert model.recommend([X[0, 0]], k=n, exclude_seen=False).shape == (1, n)
    user = X[0, 0]
    history = np.unique(X[X[:, 0] == user, 1])
    few = np.r_[history[:2], np.setdiff1d(model.items_, history)[:1]]  # 2 seen, 1 not
    with pytest.raises(ValueError, match="k=4 is larger than the 3 candidate items"):
        model.recommend([user], k=4, items=few)
    with pytest.raises(ValueError, match=r"unseen items of user\(s\) .* among the 3 candidate"):
        model.recommend([user], k=2, items=few)
    assert model.recommend([user], k=1, items=few)[0, 0] == few[2]
    with pytest.raises(ValueError, match="exclude_seen must be True or False; got 'no'"):
        model.recommend([user], exclude_seen="no")
    with pytest.raises(ValueError, match="return_scores must be True or False"):
        model.recommend([user], return_scores=1)
    with pytest.raises(ValueError, match="items must be a 1-d array"):
        model.recommend([X[0, 0]], items=[few])
    with pytest.raises(ValueError, match="items is empty"):
        model.recommend([X[0, 0]], items=[])
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="none of the candidate"):
        model.recommend([X[0, 0]], items=[998, 999])
    with pytest.raises(ValueError, match="k must be"):
        model.recommend([X[0, 0]], k=0)
    with pytest.raises(ValueError, match="1-d"):
        model.recommend([[X[0, 0]]])


@pytest.mark.parametrize("est", TORCH_ESTIMATORS, ids=_name)
@pytest.mark.parametrize(
    "params, match",
    [
        ({"device": "tpu9"}, "unknown device 'tpu9'"),
        ({"lr": -1}, "lr must be"),
        ({"batch_size": 0}, "batch_size must be"),
        ({"n_negatives": 0}, "n_negatives must be"),
        ({"verbose": -1}, "verbose must be an integer >= 0; got -1"),
        ({"verbose": "loud"}, "verbose must be an integer >= 0"),
        ({"optimizer": "lbfgs-ish"}, "optimizer must be"),
        (
            {"optimizer": torch.optim.LBFGS, "weight_decay": 0.1},
            "optimizer LBFGS takes no weight_decay; pass weight_decay=0",
        ),
        ({"callbacks": "print_log"}, "callbacks must be None or a list"),
        ({"callbacks": [print]}, "callbacks must hold skorch Callback"),
        ({"callbacks": [("log", 3)]}, r"\(name, callback\) pairs; got \('log', 3\)"),
        ({"callbacks": [LRScheduler("StepLR", step_size=1)]}, "lr_schedule='constant'"),
        ({"callbacks": [("lr", LRScheduler)]}, "LRScheduler, and lr_schedule='cosine'"),
        ({"lr_schedule": "step"}, r"lr_schedule must be one of \('cosine', 'constant'\)"),
        ({"early_stopping": "yes"}, 'early_stopping must be "auto", True or False'),
        ({"n_iter_no_change": 0}, "n_iter_no_change must be an integer >= 1"),
        ({"weight_decay": -1e-3}, "weight_decay must be a number in"),
        ({"max_epochs": -1}, "max_epochs must be an integer >= 0"),
    ],
)
def test_bad_parameters(est, params, match, interactions):
    X, _ = interactions
    with pytest.raises(ValueError, match=match):
        clone(est).set_params(**params).fit(X)


def test_mf_loss_is_bce_or_bpr(interactions):
    X, _ = interactions
    for loss in ("mse", None, "BPR"):
        with pytest.raises(ValueError, match=f'loss must be "bce" or "bpr"; got {loss!r}'):
            MFRecommender(loss=loss).fit(X)


@pytest.mark.parametrize("est", TORCH_ESTIMATORS, ids=_name)
def test_an_optimizer_without_weight_decay_trains(est, interactions):
    # LBFGS takes no weight_decay and evaluates a closure (skorch's own train
    # step); it needs whole-data batches
    X, _ = interactions
    model = clone(est).set_params(
        optimizer=torch.optim.LBFGS, weight_decay=0, lr=0.1, batch_size=len(X) * 5
    )
    model.fit(X)
    assert type(model.net_.optimizer_) is torch.optim.LBFGS
    losses = model.net_.history[:, "train_loss"]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]


def test_adamw_gets_the_weight_decay_asked_for(interactions):
    # AdamW's own default is 0.01: the estimator's value must reach it, 0 included
    X, _ = interactions
    for decay in (0.0, 0.3):
        model = clone(ESTIMATORS[3]).set_params(optimizer="adamw", weight_decay=decay).fit(X)
        assert model.net_.optimizer_.defaults["weight_decay"] == decay


def test_a_users_lr_scheduler_alone_sets_the_rate(interactions):
    X, _ = interactions
    halving = LRScheduler("StepLR", step_size=1, gamma=0.5)
    model = clone(ESTIMATORS[3]).set_params(
        lr=0.01, lr_schedule="constant", callbacks=[("halving", halving)]
    )
    model.fit(X)  # ESTIMATORS[3] trains 3 epochs
    assert model.net_.history[:, "event_lr"] == [0.01, 0.005, 0.0025]
    assert model.net_.optimizer_.param_groups[0]["lr"] == 0.00125


@pytest.mark.parametrize("est, name, value", bad_module_sizes(TORCH_ESTIMATORS))
def test_bad_module_sizes_name_themselves(est, name, value, interactions):
    X, _ = interactions
    model = clone(est).fit(X)
    before = model.predict(X[:20])
    with pytest.raises(ValueError, match=f"{name} must be"):
        model.set_params(**{name: value}).fit(X)
    np.testing.assert_array_equal(model.predict(X[:20]), before)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without CUDA")
def test_cuda_without_cuda_is_a_clear_error(interactions):
    with pytest.raises(ValueError, match="CUDA is not available"):
        MFRecommender(device="cuda").fit(interactions[0])


@pytest.mark.parametrize("device, forked", [("cpu", []), ("cuda", [1]), ("cuda:2", [2])])
def test_seeding_forks_the_rng_of_the_device_that_trains(device, forked, monkeypatch):
    # plain "cuda" is the current device: after torch.cuda.set_device(1), cuda:1
    from contextlib import nullcontext

    from sklrec._utils import seeded

    calls = []
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    monkeypatch.setattr(
        torch.random, "fork_rng", lambda devices: calls.append(devices) or nullcontext()
    )
    monkeypatch.setattr(torch, "manual_seed", lambda seed: None)
    with seeded(0, device):
        pass
    assert calls == [forked]


def test_devices_that_cannot_train_are_named(monkeypatch):
    from sklrec._utils import check_device

    with pytest.raises(ValueError, match="'meta' holds no data"):
        check_device("meta")
    for other in ("mps", "xpu:0"):  # MPS lacks the float64 that sampling uses
        with pytest.raises(ValueError, match=f"'{other}': .* on 'cpu' and 'cuda' devices only"):
            check_device(other)
    # a machine with one GPU, as torch would report it
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert check_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(ValueError, match=r"'cuda:3' was asked for, but this machine has 1 CUDA"):
        check_device("cuda:3")


def test_positive_threshold(interactions):
    X, _ = interactions
    y = np.where(np.arange(len(X)) % 3 == 0, 1.0, 5.0)
    model = clone(ESTIMATORS[3]).set_params(positive_threshold=4).fit(X, y)
    # every row is an interaction the user has seen, whatever its y; only positives train
    assert model.interactions_.nnz == len(np.unique(X[:, :2], axis=0))
    assert len(model.users_) == len(np.unique(X[:, 0]))  # every id seen in fit is known
    with pytest.raises(ValueError, match="needs y"):
        clone(model).fit(X)
    with pytest.raises(ValueError, match="y must hold numbers"):
        clone(model).fit(X, np.where(y > 4, "many", "few"))
    with pytest.raises(ValueError, match="no row has y >= positive_threshold"):
        clone(model).fit(X, np.zeros(len(X)))
    pop = PopularityRecommender(positive_threshold=4).fit(X, y)
    assert pop.item_counts_.sum() == (y >= 4).sum()


@pytest.mark.parametrize("est", ESTIMATORS, ids=_name)
def test_zero_or_negative_y_without_a_threshold_warns(est, interactions):
    # 0/1 labels without positive_threshold: every row, the zeros too, is a positive
    X, _ = interactions
    labels = (np.arange(len(X)) % 4 == 0).astype(float)
    with pytest.warns(UserWarning, match=rf"y is {(labels == 0).sum()} time\(s\) <= 0, but"):
        clone(est).fit(X, labels)
    with pytest.warns(UserWarning, match="y is 1 time"):
        clone(est).fit(X, np.r_[-1.0, np.ones(len(X) - 1)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clone(est).fit(X, 1.0 + np.arange(len(X)) % 5)  # ratings: every row a positive
        clone(est).fit(X)
        clone(est).set_params(positive_threshold=1).fit(X, labels)
        if hasattr(est, "partial_fit"):
            clone(est).fit(X[:40]).partial_fit(X[:40], np.ones(40))
    if hasattr(est, "partial_fit"):
        with pytest.warns(UserWarning, match="y is 40 time"):
            clone(est).fit(X[:40]).partial_fit(X[:40], np.zeros(40))


# user 0 rated "a" highly and the most popular item, "b", under the threshold; its
# held-out item "c" is the most popular of the two items it has not rated
_RATED = np.array(
    [[0, "a"], [0, "b"], [1, "b"], [1, "c"], [2, "b"], [2, "c"], [3, "b"], [3, "d"]], dtype=object
)
_RATINGS = np.array([5.0, 1.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0])


def test_items_rated_under_the_threshold_are_seen():
    # a row under positive_threshold is not learnt from, but the user has seen the item:
    # recommend and the metrics leave it out as they leave out the positives
    pop = PopularityRecommender(positive_threshold=4).fit(_RATED, _RATINGS)
    assert list(pop.item_counts_) == [1, 3, 2, 1]  # "b" counts only its three positives
    assert pop.recommend([0], k=2).tolist() == [["c", "d"]]
    assert pop.recommend([0], k=1, exclude_seen=False).tolist() == [["b"]]
    with pytest.raises(ValueError, match="k=3 is more than"):
        pop.recommend([0], k=3)
    test = np.array([[0, "c"]], dtype=object)
    assert evaluate_ranking(pop, test, metrics=("hit_rate",), k=1)["hit_rate"] == 1.0
    # one sampled negative: "d", the only item user 0 has neither seen nor holds out
    for seed in range(5):
        sampled = evaluate_ranking(pop, test, metrics=("hit_rate",), k=1, n_negatives=1,
                                   random_state=seed)  # fmt: skip
        assert sampled["hit_rate"] == 1.0
    with pytest.raises(ValueError, match="n_negatives=2 is larger than the items left"):
        evaluate_ranking(pop, test, n_negatives=2)


@pytest.mark.parametrize("est", TORCH_ESTIMATORS, ids=_name)
def test_items_rated_under_the_threshold_can_be_training_negatives(est):
    # a user who rated every item, some under the threshold: those are known negatives
    # to draw; a user whose positives cover every item still has none
    X = np.array([[u, i] for u in range(6) for i in range(5)])
    y = np.where((X[:, 0] == 0) & (X[:, 1] >= 3), 1.0, 5.0)
    y[(X[:, 0] > 0) & (X[:, 1] == (X[:, 0] % 5))] = 0.0  # every other user: one negative
    model = clone(est).set_params(positive_threshold=4, n_negatives=1, max_epochs=1)
    model.fit(X, y)
    assert model.interactions_.nnz == len(X)  # every item seen by every user
    positives = model._positive_interactions()
    assert positives.nnz == (y >= 4).sum()
    # the epoch the model trains on (0-based positive pairs in, 1-based samples out)
    data = model._training_data(*np.nonzero(positives.toarray()), "cpu")
    x, labels = data.gather(*data.epoch(torch.Generator().manual_seed(0)))
    negative = labels.numpy() == 0
    users, items = x["users"].numpy()[negative] - 1, x["items"].numpy()[negative] - 1
    assert negative.sum() == positives.nnz  # one negative per positive
    assert not positives.toarray()[users, items].any()  # each one an item rated low
    assert model.recommend([0], k=1, exclude_seen=False).shape == (1, 1)
    with pytest.raises(ValueError, match="k=1 is more than"):
        model.recommend([0], k=1)  # user 0 has seen everything
    all_positive = np.full(len(X), 5.0)
    with pytest.raises(ValueError, match="interacted with every one of the 5 items"):
        clone(model).fit(X, all_positive)


def test_partial_fit_rows_under_the_threshold_join_the_seen_items_only():
    model = MFRecommender(positive_threshold=4, max_epochs=1, n_negatives=1, random_state=0)
    model.fit(_RATED, _RATINGS)
    before = model._positive_interactions().copy()
    model.partial_fit(np.array([[0, "c"], [1, "d"]], dtype=object), np.array([1.0, 5.0]))
    seen, positives = model.interactions_.toarray(), model._positive_interactions().toarray()
    assert seen[0, 2] == 1 and positives[0, 2] == 0  # seen, not a positive
    assert positives[1, 3] == 1 and (positives - before.toarray()).sum() == 1
    assert model.recommend([0], k=1).tolist() == [["d"]]


@pytest.mark.parametrize("est", TORCH_ESTIMATORS, ids=_name)
def test_partial_fit_adds_one_epoch(est, interactions):
    X, _ = interactions
    model = clone(est).partial_fit(X)
    assert len(model.net_.history) == model.n_iter_ == 1
    first = model.predict(X)
    model.partial_fit(X)
    assert len(model.net_.history) == model.n_iter_ == 2
    assert not np.allclose(first, model.predict(X))
    with pytest.raises(ValueError, match="unknown user"):
        model.partial_fit(np.array([[12345, X[0, 1], 0]]))
    assert len(model.net_.history) == 2
    # the same sequence of calls gives the same model
    twin = clone(est).partial_fit(X).partial_fit(X)
    np.testing.assert_array_equal(twin.predict(X), model.predict(X))


@pytest.mark.parametrize("est", TORCH_ESTIMATORS, ids=_name)
def test_history_has_one_row_per_epoch_and_one_batch_row_each(est, interactions):
    X, _ = interactions
    model = clone(est).set_params(max_epochs=4).fit(X)
    hist = model.net_.history
    n_samples, batch = len(X) * 5, model.net_.batch_size
    assert len(hist) == 4
    # the latest batch's size only: no row per batch, no loss per batch
    assert all(row["batches"] == [{"train_batch_size": n_samples % batch}] for row in hist)
    assert np.isfinite(hist[:, "train_loss"]).all()
    assert hist[-1, "train_batch_count"] == int(np.ceil(n_samples / batch))


def test_every_batch_trains_in_training_mode(interactions):
    # the net skips Module.train when every submodule is already in the mode asked; a
    # callback that leaves one submodule in eval mode must not leak into the next batch
    from skorch.callbacks import Callback

    class Record(Callback):
        def __init__(self):
            self.modes = []

        def on_batch_begin(self, net, batch=None, training=False, **kwargs):
            net.module_.mlp.dropout.eval()  # undone by the train step that follows

        def on_batch_end(self, net, batch=None, training=False, **kwargs):
            self.modes.append([m.training for m in net.module_.modules()])
            net.module_.gmf.eval()  # so is this one

    X, _ = interactions
    record = Record()
    model = NeuMFRecommender(
        dropout=0.5, max_epochs=2, batch_size=256, early_stopping=True, callbacks=[record],
        random_state=0,
    ).fit(X)  # fmt: skip
    assert len(record.modes) == sum(model.net_.history[:, "train_batch_count"]) > 2
    assert all(all(modes) for modes in record.modes)
    # prediction runs in eval mode: dropout off, so predictions repeat
    np.testing.assert_array_equal(model.predict(X), model.predict(X))


def test_ranking_scoring_and_early_stopping(grouped):
    from skorch.callbacks import EarlyStopping

    train, valid = grouped
    callbacks = [
        RankingScoring(valid, metric="hit_rate", k=10, n_negatives=20),
        EarlyStopping(
            monitor="valid_hit_rate@10", lower_is_better=False, patience=2, load_best=True
        ),
    ]
    model = NeuMFRecommender(
        embedding_dim=4,
        hidden_dims=(8, 4),
        max_epochs=40,
        lr=0.02,
        batch_size=256,
        callbacks=callbacks,
        random_state=0,
    ).fit(train)
    scores = model.net_.history[:, "valid_hit_rate@10"]
    assert len(scores) < 40  # stopped early
    assert callbacks[0].name_ == "valid_hit_rate@10"  # the given objects were used
    best = max(scores)

    # load_best restored the weights of the best epoch
    got = evaluate_ranking(model, valid, metrics="hit_rate", n_negatives=20)["hit_rate"]
    assert got == pytest.approx(best)


def test_ranking_scoring_outside_sklrec_is_a_clear_error():
    from skorch import NeuralNet

    cb = RankingScoring(np.zeros((2, 2))).initialize()
    with pytest.raises(RuntimeError, match="inside the fit"):
        cb.on_epoch_end(NeuralNet(torch.nn.Linear(1, 1), torch.nn.MSELoss))


@pytest.mark.gpu
@pytest.mark.parametrize("est", TORCH_ESTIMATORS, ids=_name)
def test_cuda_round_trip(est, interactions):
    import pickle

    X, _ = interactions
    gpu = clone(est).set_params(device="cuda").fit(X)
    assert next(gpu.net_.module_.parameters()).is_cuda
    # scoring on the GPU (pairs, and the whole catalogue with seen items masked) gives
    # what the same weights give on the CPU; the two trainings themselves differ, as
    # the devices draw different random streams
    cpu = cpu_twin(est, gpu, X)
    np.testing.assert_allclose(gpu.predict(X), cpu.predict(X), rtol=1e-4, atol=1e-5)
    users = np.unique(X[:, 0])
    best = {name: m.recommend(users, k=5) for name, m in (("gpu", gpu), ("cpu", cpu))}
    # compared by their CPU scores, best first, so that a near tie may swap two items
    context = np.zeros((len(users) * 5, X.shape[1] - 2), X.dtype)
    scored = {
        name: cpu.predict(np.c_[np.repeat(users, 5), items.ravel(), context]).reshape(-1, 5)
        for name, items in best.items()
    }
    np.testing.assert_allclose(scored["gpu"], scored["cpu"], rtol=1e-4, atol=1e-5)
    restored = pickle.loads(pickle.dumps(gpu))
    np.testing.assert_array_equal(restored.predict(X), gpu.predict(X))


# the tensor methods that read a value back to the host: a sync on a GPU
_HOST_READS = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__", "__index__")
# code whose host reads run on CPU only: Embedding.forward checks for the padding index
# on its CPU path alone (other devices take torch's kernel)
_CPU_ONLY = {"sklrec.modules._embedding"}


def _refused_from_the_library(name, original):
    def method(self, *args, **kwargs):
        caller = sys._getframe(1).f_globals.get("__name__", "")
        if caller.partition(".")[0] in ("sklrec", "skorch") and caller not in _CPU_ONLY:
            raise AssertionError(f"{caller} calls Tensor.{name} inside a batch (a host sync)")
        return original(self, *args, **kwargs)

    return method


def _tensor_methods():
    return {name: getattr(torch.Tensor, name) for name in _HOST_READS}


class _NoSyncInBatches(Callback):
    """Make any host sync inside a batch an error, from the second epoch on.

    On CUDA, through torch's sync debug mode. On a CPU, where nothing syncs,
    the tensor methods that would (``item``, ``tolist``, ``float(t)``,
    ``if t:`` ...) raise when sklrec's or skorch's own code calls them, so
    that CI, which has no GPU, catches the usual way a sync creeps in; the
    implicit syncs inside torch's kernels (boolean-mask indexing, say) only
    the CUDA test sees. The first epoch is left out (optimizer state and
    kernels are set up there); the per-epoch read of the loss after the last
    batch is allowed. ``restore()`` undoes the CPU guard where a batch failed.
    """

    def on_batch_begin(self, net, **kwargs):
        if len(net.history) <= 1:
            return
        if torch.device(net.device).type == "cuda":
            torch.cuda.set_sync_debug_mode("error")
            return
        self._own = {name: vars(torch.Tensor).get(name) for name in _HOST_READS}
        for name in _HOST_READS:
            setattr(
                torch.Tensor, name, _refused_from_the_library(name, getattr(torch.Tensor, name))
            )

    def on_batch_end(self, net, **kwargs):
        self.restore()

    def restore(self):
        if torch.cuda.is_available():
            torch.cuda.set_sync_debug_mode("default")
        for name, own in self.__dict__.pop("_own", {}).items():
            if own is None:
                delattr(torch.Tensor, name)
            else:
                setattr(torch.Tensor, name, own)


# on CPU the guard catches the host reads of sklrec's and skorch's code, so CI runs it too
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize(
    "est",
    TORCH_ESTIMATORS
    + [
        MFRecommender(loss="bpr"),
        # sparse embedding gradients and the lazy update of their rows
        MFRecommender(optimizer="lazy_adam"),
        NeuMFRecommender(embedding_dim=4, hidden_dims=(8, 4), optimizer="lazy_adam"),
    ],
    ids=_name,
)
def test_training_never_syncs_within_a_batch(est, weighted, device, interactions):
    X, _ = interactions
    weights = np.linspace(0.5, 2.0, len(X)) if weighted else None
    guard = _NoSyncInBatches()
    model = clone(est).set_params(
        device=device, max_epochs=3, batch_size=32, callbacks=[("no_sync", guard)]
    )
    before = _tensor_methods()
    try:
        model.fit(X, sample_weight=weights)
    finally:
        guard.restore()
    assert _tensor_methods() == before  # the guard is off again
    assert len(model.net_.history) == 3


def test_the_cpu_sync_guard_catches_a_read_back(interactions, monkeypatch):
    # a train_step that reads its loss back, as skorch's own loop does per batch, compiled
    # as if it were sklrec's code: the guard must refuse it from the second epoch on
    import sklrec.base._net as net_module

    namespace = {"__name__": "sklrec.base._net", "step": net_module._RecNet.train_step}
    exec("def train_step(self, batch, **kw):\n    out = step(self, batch, **kw)\n"
         "    out['loss'].item()\n    return out", namespace)  # fmt: skip
    monkeypatch.setattr(net_module._RecNet, "train_step", namespace["train_step"])
    guard = _NoSyncInBatches()
    model = MFRecommender(max_epochs=1, batch_size=32, callbacks=[("no_sync", guard)])
    before = _tensor_methods()
    try:
        model.fit(interactions[0])  # the first epoch is left out
        with pytest.raises(AssertionError, match=r"sklrec.base._net calls Tensor.item inside"):
            model.set_params(max_epochs=2).fit(interactions[0])
    finally:
        guard.restore()
    assert _tensor_methods() == before


def test_sparse_matrix_form_is_a_clear_error(interactions):
    import scipy.sparse as sp

    with pytest.raises(TypeError, match="matrix form"):
        MFRecommender().fit(sp.random(10, 10, density=0.3, format="csr"))


@pytest.mark.parametrize("pairwise", [False, True], ids=["pointwise", "pairwise"])
def test_shuffled_epoch_is_the_permuted_epoch(pairwise):
    # the shuffled epoch is read through the permutation from the positives; it must be
    # exactly the epoch laid out in order and permuted by randperm, draws included
    import scipy.sparse as sp

    from sklrec.base._net import _Positives
    from sklrec.sampling import sample_negatives

    rng = np.random.default_rng(0)
    matrix = sp.random(40, 30, density=0.3, format="csr", random_state=rng)
    matrix.data[:] = 1
    users, items = (torch.as_tensor(a, dtype=torch.int64) for a in matrix.nonzero())
    data = _Positives(users, items, matrix, 3, pairwise, "cpu")
    # the epoch by its definition: positives first (pointwise), then 3 rounds of negatives
    plain = torch.Generator().manual_seed(7)
    negatives = sample_negatives(users.repeat(3), data.index, plain) + 1
    perm = torch.randperm(len(data), generator=plain)
    if pairwise:
        x = {"users": users.repeat(3) + 1, "items": items.repeat(3) + 1, "neg_items": negatives}
        y = torch.ones(len(negatives))
    else:
        x = {
            "users": torch.cat([users, users.repeat(3)]) + 1,
            "items": torch.cat([items + 1, negatives]),
        }
        y = torch.cat([torch.ones(len(users)), torch.zeros(len(negatives))])
    for shuffle, order in ((False, torch.arange(len(data))), (True, perm)):
        fast = torch.Generator().manual_seed(7)
        x_fast, y_fast = data.gather(*data.epoch(fast, shuffle))
        assert x_fast.keys() == x.keys()
        for key in x:
            torch.testing.assert_close(x_fast[key], x[key][order], rtol=0, atol=0)
        torch.testing.assert_close(y_fast, y[order], rtol=0, atol=0)
    assert torch.equal(plain.get_state(), fast.get_state())  # the same draws


@pytest.mark.parametrize("pairwise", [False, True], ids=["pointwise", "pairwise"])
def test_batches_gathered_a_chunk_at_a_time_are_the_epochs(pairwise, monkeypatch):
    # an epoch's samples are made a chunk of whole batches at a time; the batches must
    # be the whole epoch's, cut in order, with the last one short
    import scipy.sparse as sp

    from sklrec.base import _net

    rng = np.random.default_rng(1)
    matrix = sp.random(30, 25, density=0.3, format="csr", random_state=rng)
    matrix.data[:] = 1
    users, items = (torch.as_tensor(a, dtype=torch.int64) for a in matrix.nonzero())
    weights = torch.rand(len(users), generator=torch.Generator().manual_seed(0))
    data = _net._Positives(users, items, matrix, 3, pairwise, "cpu", weights)
    whole_x, whole_y = data.gather(*data.epoch(torch.Generator().manual_seed(5), True))
    monkeypatch.setattr(_net, "_GATHER_SAMPLES", 50)  # chunks of 44 samples: 4 batches of 11
    batches = list(_net._EpochBatches(data, 11, torch.Generator().manual_seed(5), True))
    assert len(data) % 11 and len(data) > 50  # several chunks, a short last batch
    sizes = [min(11, len(data) - start) for start in range(0, len(data), 11)]
    assert [len(y) for _, y in batches] == sizes
    for key in whole_x:
        got = torch.cat([x[key] for x, _ in batches])
        torch.testing.assert_close(got, whole_x[key], rtol=0, atol=0)
    torch.testing.assert_close(torch.cat([y for _, y in batches]), whole_y, rtol=0, atol=0)


@pytest.mark.parametrize("est", ESTIMATORS + REGRESSORS[:4], ids=_name)
def test_scoring_in_small_chunks_changes_nothing(est, interactions, monkeypatch):
    # predict, recommend and both evaluations score pairs a chunk at a time, sized by
    # the floats a pair holds; a budget of a few pairs per chunk must give the same
    # figures as one chunk, and no call may take more pairs than the budget allows
    import sklrec._utils

    X, _ = interactions
    model, _ = fitted_on(est, X)

    def figures():
        out = [model.predict(X)]
        if not is_regressor(model):
            out.append(model.recommend(X[:5, 0], k=4))
            for n_neg in (None, 5):
                got = evaluate_ranking(model, X[::7], n_negatives=n_neg, metrics=("ndcg",))
                out.append(np.array(list(got.values())))
        return out

    whole = figures()
    assert sklrec._utils.pairs_per_chunk(1) >= len(X) * 30  # the default: one chunk here
    monkeypatch.setattr(sklrec._utils, "_SCORE_BUDGET", 300)
    sizes = []
    module = getattr(getattr(model, "net_", None), "module_", None)
    if module is not None and hasattr(module, "forward_width"):
        forward = module.forward

        def counted(users, items, *args, **kwargs):  # pairs: the broadcast shape
            sizes.append(torch.broadcast_shapes(users.shape, items.shape).numel())
            return forward(users, items, *args, **kwargs)

        monkeypatch.setattr(module, "forward", counted)
    for before, after in zip(whole, figures(), strict=True):
        np.testing.assert_allclose(after, before, rtol=1e-6)
    if sizes:
        assert len(sizes) > 3 and max(sizes) <= max(1, 300 // module.forward_width) * 6
