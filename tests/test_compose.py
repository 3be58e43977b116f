"""RecencyWeighted: recency weights computed inside fit, per split."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils.estimator_checks import parametrize_with_checks

from sklrec import MFRecommender, NeuMFRecommender, PopularityRecommender
from sklrec.compose import RecencyWeighted
from sklrec.metrics import evaluate_ranking, make_ranking_scorer
from sklrec.model_selection import LeaveLastOut
from sklrec.preprocessing import recency_weights

from .test_base import assert_raises_and_keeps_the_fitted_model
from .test_common import EXPECTED_FAILED, SMALL
from .test_weights import _two_phase_histories

_REPEATS_ARE_NOT_WEIGHTS = (
    "repeating a row also moves the user's other rows in time order, so their recency "
    "weights differ from those of the weighted rows"
)
# scikit-learn's checks give X of two columns: the rows' order is their time; the MF
# model has n_negatives=1, as test_common's CHECKED, for their tiny data
WRAPPED = [
    RecencyWeighted(PopularityRecommender()),
    RecencyWeighted(MFRecommender(embedding_dim=4, n_negatives=1, **SMALL)),
]


def _expected_failed(wrapper):
    failed = dict(EXPECTED_FAILED.get(type(wrapper.estimator), {}))
    failed["check_sample_weight_equivalence_on_dense_data"] = _REPEATS_ARE_NOT_WEIGHTS
    return failed


@parametrize_with_checks(WRAPPED, expected_failed_checks=_expected_failed)
# its checks fit recommenders on targets with zeros, which warns (see test_base)
@pytest.mark.filterwarnings("ignore:.*positive_threshold=None every row:UserWarning")
def test_sklearn_compatible(estimator, check):
    check(estimator)


SMALL_NEUMF = NeuMFRecommender(embedding_dim=4, hidden_dims=(8, 4), **SMALL)


@pytest.mark.parametrize("strength", [0.0, 1.5])
def test_same_fit_as_recency_weights_by_hand(strength, interactions):
    X, _ = interactions
    wrapped = RecencyWeighted(SMALL_NEUMF, time_column=2, strength=strength).fit(X)
    by_hand = clone(SMALL_NEUMF).fit(
        X, sample_weight=recency_weights(X, time_column=2, strength=strength)
    )
    np.testing.assert_array_equal(wrapped.predict(X), by_hand.predict(X))
    np.testing.assert_array_equal(wrapped.recommend([0, 1], k=5), by_hand.recommend([0, 1], k=5))
    assert wrapped.score(X) == by_hand.score(X)
    assert wrapped.n_features_in_ == 3
    assert not hasattr(SMALL_NEUMF, "net_")  # the wrapped estimator is cloned, never fitted
    if strength == 0:  # weight 1 everywhere: the plain fit
        plain = clone(SMALL_NEUMF).fit(X)
        np.testing.assert_array_equal(wrapped.predict(X), plain.predict(X))


def test_sample_weight_multiplies_the_recency_weights(interactions):
    X, _ = interactions
    given = np.linspace(0.5, 3.0, len(X))
    wrapped = RecencyWeighted(PopularityRecommender(), time_column=2).fit(X, sample_weight=given)
    by_hand = PopularityRecommender().fit(
        X, sample_weight=given * recency_weights(X, time_column=2)
    )
    np.testing.assert_allclose(wrapped.estimator_.item_counts_, by_hand.item_counts_)


def test_metrics_and_scorers_see_through_the_wrapper(interactions):
    X, _ = interactions
    train, test = next(LeaveLastOut(time_column=2).split(X))
    wrapped = RecencyWeighted(SMALL_NEUMF, time_column=2).fit(X[train])
    inner = evaluate_ranking(wrapped.estimator_, X[test], n_negatives=10)
    assert evaluate_ranking(wrapped, X[test], n_negatives=10) == inner
    scorer = make_ranking_scorer("hit_rate", k=10, n_negatives=10)
    assert scorer(wrapped, X[test]) == inner["hit_rate"]
    # and inside a Pipeline
    pipe = make_pipeline(FunctionTransformer(), clone(wrapped)).fit(X[train])
    assert evaluate_ranking(pipe, X[test], n_negatives=10) == inner


def test_recommend_passes_its_arguments_through(interactions):
    X, _ = interactions
    wrapped = RecencyWeighted(SMALL_NEUMF, time_column=2).fit(X)
    users = np.unique(X[:, 0])[:3]
    exclude = np.c_[users, wrapped.recommend(users, k=1)[:, 0]]
    cases = ((True, None, None), (False, np.unique(X[:, 1])[::2], None), (True, None, exclude))
    for exclude_seen, items, excluded in cases:
        kwargs = dict(k=3, exclude_seen=exclude_seen, items=items, exclude=excluded)
        got = wrapped.recommend(users, **kwargs, return_scores=True)
        inner = wrapped.estimator_.recommend(users, **kwargs, return_scores=True)
        for a, b in zip(got, inner, strict=True):  # the items, then their scores
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(wrapped.recommend(users, **kwargs), got[0])


def test_grid_search_over_strength_picks_recency_where_the_recent_past_predicts():
    X, _, _ = _two_phase_histories()
    model = MFRecommender(embedding_dim=4, max_epochs=30, batch_size=128, lr=0.01, random_state=0)
    search = GridSearchCV(
        RecencyWeighted(model, time_column=2),
        {"strength": [0.0, 4.0]},
        scoring=make_ranking_scorer("hit_rate", k=10),
        cv=LeaveLastOut(time_column=2),
    ).fit(X)
    plain, weighted = search.cv_results_["mean_test_score"]
    assert search.best_params_ == {"strength": 4.0}
    assert weighted > plain + 0.2  # measured: 0.32 and 0.65


def test_partial_fit_trains_one_epoch_at_a_time(interactions):
    X, _ = interactions
    wrapped = RecencyWeighted(SMALL_NEUMF, time_column=2)
    wrapped.partial_fit(X)
    assert len(wrapped.estimator_.net_.history) == 1
    inner = wrapped.estimator_
    wrapped.partial_fit(X)
    assert wrapped.estimator_ is inner and len(inner.net_.history) == 2
    assert not hasattr(RecencyWeighted(PopularityRecommender()), "partial_fit")


@pytest.mark.parametrize(
    "params, match",
    [
        ({"strength": -1.0}, "strength must be"),
        ({"strength": "high"}, "strength must be"),
        ({"time_column": 7}, "no column 7"),
        (
            {"estimator": KNeighborsRegressor()},
            "whose fit takes sample_weight; KNeighborsRegressor.fit",
        ),
    ],
)
def test_bad_parameters_raise_and_keep_the_fitted_model(params, match, interactions):
    X, _ = interactions
    wrapped = RecencyWeighted(SMALL_NEUMF, time_column=2).fit(X)
    inner, before = wrapped.estimator_, wrapped.predict(X)
    with pytest.raises(ValueError, match=match):
        wrapped.set_params(**params).fit(X)
    assert wrapped.estimator_ is inner
    np.testing.assert_array_equal(wrapped.predict(X), before)


def test_bad_input_raises_and_keeps_the_fitted_model(interactions):
    X, _ = interactions
    wrapped = RecencyWeighted(SMALL_NEUMF, time_column=2)
    assert_raises_and_keeps_the_fitted_model(
        wrapped, X, r"sample_weight has shape \(3,\)",
        lambda m: m.fit(X, sample_weight=np.ones(3)),
        lambda m: m.partial_fit(X, sample_weight=np.ones(3)),
    )  # fmt: skip
    assert_raises_and_keeps_the_fitted_model(
        wrapped, X, "sample_weight must hold numbers", lambda m: m.fit(X, sample_weight="heavy")
    )
    # the wrapped estimator's own errors reach the caller as they are
    unknown = np.r_[X[:1], [[10**6, X[0, 1], 0]]]
    assert_raises_and_keeps_the_fitted_model(
        wrapped, X, r"unknown user id\(s\) \[1000000\]", lambda m: m.partial_fit(unknown)
    )
    assert_raises_and_keeps_the_fitted_model(
        wrapped, X, "NaN", lambda m: m.fit(X, np.r_[np.nan, np.ones(len(X) - 1)])
    )


def test_unfitted_and_pickled(interactions):
    X, _ = interactions
    wrapped = RecencyWeighted(SMALL_NEUMF, time_column=2)
    with pytest.raises(Exception, match="not fitted"):
        wrapped.predict(X)
    assert not hasattr(wrapped, "n_features_in_")
    wrapped.fit(X)
    restored = pickle.loads(pickle.dumps(wrapped))
    np.testing.assert_array_equal(restored.recommend([0, 1], k=4), wrapped.recommend([0, 1], k=4))
