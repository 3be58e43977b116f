"""sample_weight in fit and partial_fit, and recency_weights."""

import pickle

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.model_selection import cross_validate

from sklrec import MFRecommender, PopularityRecommender
from sklrec.base._net import _Positives
from sklrec.model_selection import LeaveLastOut
from sklrec.preprocessing import recency_weights

from .test_base import TORCH_ESTIMATORS, assert_raises_and_keeps_the_fitted_model
from .test_common import ESTIMATORS, _name


@pytest.mark.parametrize("est", ESTIMATORS, ids=_name)
def test_equal_weights_are_the_unweighted_fit(est, interactions):
    X, _ = interactions
    plain = clone(est).fit(X).predict(X)
    for weights in (np.full(len(X), 3.0), list(np.ones(len(X))), pd.Series(np.ones(len(X)))):
        weighted = clone(est).fit(X, sample_weight=weights).predict(X)
        if isinstance(est, PopularityRecommender):  # weighted counts: 3 x the counts
            weighted = weighted / np.asarray(weights)[0]
        np.testing.assert_array_equal(weighted, plain)


@pytest.mark.parametrize("est", ESTIMATORS, ids=_name)
def test_weights_change_the_fit_and_are_not_overwritten(est, interactions):
    X, _ = interactions
    weights = np.random.RandomState(0).uniform(0.1, 3.0, len(X))
    before = weights.copy()
    model = clone(est).fit(X, sample_weight=weights)
    np.testing.assert_array_equal(weights, before)
    assert not np.array_equal(model.predict(X), clone(est).fit(X).predict(X))


def test_popularity_counts_are_weight_sums():
    X = np.array([[1, "a"], [2, "a"], [2, "b"], [3, "c"]], dtype=object)
    model = PopularityRecommender().fit(X, sample_weight=[0.5, 1.0, 4.0, 0.0])
    np.testing.assert_allclose(model.item_counts_, [1.5, 4.0, 0.0])
    assert model.recommend([1], k=2).tolist() == [["b", "c"]]


def test_epoch_samples_carry_their_positive_weight():
    users, items = np.array([0, 0, 1, 2]), np.array([0, 1, 2, 3])
    csr = sp.csr_matrix((np.ones(4), (users, items)), shape=(3, 12))
    weights = np.array([0.5, 1.0, 2.0, 4.0])
    gen = torch.Generator().manual_seed(0)
    pointwise = _Positives(users, items, csr, 3, False, "cpu", weights)
    x, y = pointwise.gather(*pointwise.epoch(gen, shuffle=True))
    positives = y == 1
    # a positive's weight follows it through the shuffle; negatives weigh 1
    expected = dict(zip(zip(users + 1, items + 1, strict=True), weights, strict=True))
    got = zip(x["users"][positives].tolist(), x["items"][positives].tolist(), strict=True)
    assert [expected[pair] for pair in got] == x["sample_weight"][positives].tolist()
    assert (x["sample_weight"][~positives] == 1).all()
    pairwise = _Positives(users, items, csr, 3, True, "cpu", weights)
    x, _ = pairwise.gather(*pairwise.epoch(gen, shuffle=True))
    got = zip(x["users"].tolist(), x["items"].tolist(), strict=True)
    assert [expected[pair] for pair in got] == x["sample_weight"].tolist()
    unweighted = _Positives(users, items, csr, 3, False, "cpu")
    assert "sample_weight" not in unweighted.gather(*unweighted.epoch(gen))[0]


def _two_phase_histories(n_users=120, n_per_phase=8, seed=0):
    """Each user's early items come from one group, the recent ones from another.

    Returns X (user, item, time) and each user's recent group: a model that
    weighs the recent past up should recommend from it.
    """
    rng = np.random.RandomState(seed)
    n_groups, group_size = 4, 20
    rows, recent = [], []
    for user in range(n_users):  # data generation, not training: a loop is fine
        old, new = user % n_groups, (user // n_groups + user + 1) % n_groups
        if new == old:
            new = (old + 1) % n_groups
        recent.append(new)
        for phase, group in enumerate((old, new)):
            picked = group * group_size + rng.choice(group_size, n_per_phase, replace=False)
            for t, item in enumerate(picked):
                rows.append((user, item, phase * n_per_phase + t))
    return np.array(rows), np.array(recent), group_size


@pytest.mark.parametrize("est", TORCH_ESTIMATORS, ids=_name)
def test_recency_weights_steer_recommendations_to_the_recent_past(est):
    X, recent, group_size = _two_phase_histories()
    params = dict(max_epochs=30, batch_size=128, lr=0.01, early_stopping=False, random_state=0)
    users = np.arange(len(recent))

    def recent_share(sample_weight):
        model = clone(est).set_params(**params).fit(X, sample_weight=sample_weight)
        top = model.recommend(users, k=5).astype(int)
        return np.mean(top // group_size == recent[:, None])

    plain = recent_share(None)
    weighted = recent_share(recency_weights(X, time_column=2, strength=4.0))
    # without weights the two phases pull equally
    assert 0.25 < plain < 0.75
    assert weighted > plain + 0.2
    assert weighted > 0.8


def test_recency_weights_values():
    X = pd.DataFrame(
        {
            "user": ["u", "u", "u", "v", "w", "w"],
            "item": list("abcabc"),
            "t": [30, 10, 20, 5, 1, 1],
        }
    )
    w = recency_weights(X, time_column="t", strength=1.0)
    raw = np.exp([3 / 3, 1 / 3, 2 / 3])
    np.testing.assert_allclose(w[:3], raw / raw.mean())
    assert w[3] == 1.0  # one interaction
    raw = np.exp([1 / 2, 2 / 2])  # a tie keeps row order
    np.testing.assert_allclose(w[4:], raw / raw.mean())
    for user in "uvw":
        assert w[(X.user == user).to_numpy()].mean() == pytest.approx(1.0)
    np.testing.assert_array_equal(recency_weights(X, "t", strength=0.0), np.ones(6))
    # without a time column the rows are in time order
    np.testing.assert_allclose(
        recency_weights(X.to_numpy()[[1, 2, 0]]), recency_weights(X, "t")[[1, 2, 0]]
    )
    for bad in (-1.0, float("nan"), "2"):
        with pytest.raises(ValueError, match="strength must be"):
            recency_weights(X, "t", strength=bad)


def _bad_weights(n):
    return {
        "wrong length": (np.ones(n - 1), rf"shape \({n - 1},\); expected \({n},\)"),
        "NaN": (np.r_[np.nan, np.ones(n - 1)], "NaN or infinite"),
        "infinite": (np.r_[np.inf, np.ones(n - 1)], "NaN or infinite"),
        "negative": (np.r_[1.0, -1.0, np.ones(n - 2)], r"non-negative; rows \[1\]"),
        "2-d": (np.ones((n, 2)), rf"shape \({n}, 2\)"),
        "strings": (np.array(["a"] * n), "must hold numbers"),
        "all zero": (np.zeros(n), "zero on every positive row"),
    }


@pytest.mark.parametrize("case", list(_bad_weights(3)))
@pytest.mark.parametrize("est", ESTIMATORS, ids=_name)
def test_bad_weights_raise_and_keep_the_fitted_model(est, case, interactions):
    X, _ = interactions
    weights, match = _bad_weights(len(X))[case]
    calls = [lambda model: model.fit(X, sample_weight=weights)]
    if hasattr(est, "partial_fit"):
        calls.append(lambda model: model.partial_fit(X, sample_weight=weights))
    assert_raises_and_keeps_the_fitted_model(est, X, match, *calls)


def test_weights_on_positives_only_must_not_all_be_zero(interactions):
    X, _ = interactions
    y = np.r_[np.ones(len(X) // 2), np.zeros(len(X) - len(X) // 2)]
    weights = 1 - y  # weight only on the rows below the threshold
    for est in (MFRecommender(max_epochs=1), PopularityRecommender()):
        with pytest.raises(ValueError, match="zero on every positive row"):
            est.set_params(positive_threshold=1).fit(X, y, sample_weight=weights)


@pytest.mark.parametrize("est", TORCH_ESTIMATORS, ids=_name)
def test_partial_fit_and_early_stopping_take_weights(est, interactions):
    X, _ = interactions
    weights = recency_weights(X, time_column=2)
    model = clone(est).set_params(early_stopping=True).fit(X, sample_weight=weights)
    plain = clone(est).set_params(early_stopping=True).fit(X)
    assert not np.array_equal(model.predict(X), plain.predict(X))
    # one more epoch from the same state, with and without the weights: the same draws,
    # so only the weights can tell the two apart
    twin = pickle.loads(pickle.dumps(model))
    epochs = len(model.net_.history)
    model.partial_fit(X, sample_weight=weights)
    twin.partial_fit(X)
    assert len(model.net_.history) == len(twin.net_.history) == epochs + 1
    assert not np.array_equal(model.predict(X), twin.predict(X))


def test_cross_validate_routes_weights_to_each_fold(interactions):
    X, _ = interactions
    weights = recency_weights(X, time_column=2)
    model = MFRecommender(embedding_dim=4, max_epochs=2, random_state=0)
    cv = LeaveLastOut(time_column=2)
    weighted = cross_validate(model, X, cv=cv, params={"sample_weight": weights})
    plain = cross_validate(model, X, cv=cv)
    assert np.isfinite(weighted["test_score"]).all()
    assert weighted["test_score"][0] != plain["test_score"][0]
