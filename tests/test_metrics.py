import numpy as np
import pytest
import torch

from sklrec import MFRecommender, NeuMFRecommender, PopularityRecommender
from sklrec.metrics import (
    auc_score,
    evaluate_ranking,
    hit_rate_at_k,
    make_ranking_scorer,
    map_at_k,
    mrr_at_k,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
)

# two queries over 6 items; relevant: {1, 4} and {0}
Y_TRUE = np.array([[0, 1, 0, 0, 1, 0], [1, 0, 0, 0, 0, 0]])
Y_SCORE = np.array([[0.9, 0.8, 0.1, 0.7, 0.3, 0.2], [0.1, 0.5, 0.4, 0.3, 0.2, 0.6]])
# ranks (0-based): query 0 -> item 1 at 1, item 4 at 3; query 1 -> item 0 at 5


def test_hand_computed_values():
    log2 = np.log2
    assert hit_rate_at_k(Y_TRUE, Y_SCORE, k=2) == pytest.approx(0.5)
    assert hit_rate_at_k(Y_TRUE, Y_SCORE, k=6) == pytest.approx(1.0)
    assert precision_at_k(Y_TRUE, Y_SCORE, k=4) == pytest.approx((2 / 4 + 0) / 2)
    assert recall_at_k(Y_TRUE, Y_SCORE, k=2) == pytest.approx((1 / 2 + 0) / 2)
    ndcg0 = (1 / log2(3) + 1 / log2(5)) / (1 + 1 / log2(3))
    assert ndcg_at_k(Y_TRUE, Y_SCORE, k=4) == pytest.approx(ndcg0 / 2)
    assert ndcg_at_k(Y_TRUE, Y_SCORE, k=6) == pytest.approx((ndcg0 + 1 / log2(7)) / 2)
    assert mrr_at_k(Y_TRUE, Y_SCORE, k=6) == pytest.approx((1 / 2 + 1 / 6) / 2)
    assert map_at_k(Y_TRUE, Y_SCORE, k=4) == pytest.approx(((1 / 2 + 2 / 4) / 2 + 0) / 2)
    # AUC: query 0 has 2 relevant x 4 others, 3 + 2 of 8 pairs right; query 1: 0 of 5
    assert auc_score(Y_TRUE, Y_SCORE) == pytest.approx((5 / 8 + 0) / 2)
    # one query may come as 1-d arrays
    for metric in (hit_rate_at_k, ndcg_at_k, mrr_at_k, map_at_k, auc_score):
        assert metric(Y_TRUE[0], Y_SCORE[0]) == metric(Y_TRUE[:1], Y_SCORE[:1])
    assert ndcg_at_k(Y_TRUE[0], Y_SCORE[0], k=4) == pytest.approx(ndcg0)


def test_ties_count_against_the_relevant_item():
    y_true = np.array([[1, 0, 0, 0]])
    flat = np.zeros((1, 4))
    assert hit_rate_at_k(y_true, flat, k=3) == 0.0
    assert auc_score(y_true, flat) == 0.0
    assert hit_rate_at_k(y_true, flat, k=4) == 1.0


def test_minus_inf_is_not_a_candidate():
    y_true = np.array([[0, 1, 0, 0]])
    scores = np.array([[9.0, 1.0, -np.inf, 0.0]])
    assert mrr_at_k(y_true, scores, k=4) == pytest.approx(0.5)
    assert auc_score(y_true, scores) == pytest.approx(0.5)  # 1 of the 2 candidates below


def test_metric_input_errors():
    with pytest.raises(ValueError, match="same shape"):
        ndcg_at_k(Y_TRUE, Y_SCORE[:, :3])
    with pytest.raises(ValueError, match="no relevant"):
        ndcg_at_k(np.zeros((2, 6)), Y_SCORE)
    with pytest.raises(ValueError, match="k must be"):
        ndcg_at_k(Y_TRUE, Y_SCORE, k=0)
    with pytest.raises(ValueError, match="NaN"):
        ndcg_at_k(Y_TRUE, np.full((2, 6), np.nan))
    with pytest.raises(ValueError, match="unknown metric"):
        make_ranking_scorer("accuracy")
    for bad in (0, 2.5, "99"):
        with pytest.raises(
            ValueError, match=f"n_negatives must be None or an integer >= 1; got {bad!r}"
        ):
            make_ranking_scorer("ndcg", n_negatives=bad)


# a popularity model over 5 items: counts a:4 b:3 c:2 d:1 e:0 (e only seen below threshold)
TRAIN = np.array(
    [
        [u, i]
        for u, i in [
            (1, "a"),
            (2, "a"),
            (3, "a"),
            (4, "a"),
            (1, "b"),
            (2, "b"),
            (3, "b"),
            (1, "c"),
            (2, "c"),
            (1, "d"),
            (5, "e"),
        ]
    ],
    dtype=object,
)
TRAIN_Y = np.array([1.0] * 10 + [0.0])


def _popularity():
    return PopularityRecommender(positive_threshold=0.5).fit(TRAIN, TRAIN_Y)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"k": True}, "k must be an integer >= 1; got True"),
        ({"k": 2.0}, "k must be an integer"),
        ({"n_negatives": True}, "n_negatives must be an integer >= 1; got True"),
        ({"n_negatives": 0}, "n_negatives must be an integer >= 1; got 0"),
        ({"metrics": ("ndcg", "accuracy")}, r"unknown metric\(s\) \['accuracy'\]"),
    ],
)
def test_evaluate_ranking_names_a_bad_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        evaluate_ranking(_popularity(), np.array([[3, "d"]], dtype=object), **kwargs)


def test_full_ranking_excludes_seen_items():
    est = _popularity()
    # user 3 has seen a, b: candidates c(2) d(1) e(0); held-out d ranks 2nd
    res = evaluate_ranking(est, np.array([[3, "d"]], dtype=object), k=1)
    assert res["hit_rate"] == 0.0
    res = evaluate_ranking(est, np.array([[3, "d"]], dtype=object), k=2)
    assert res["hit_rate"] == 1.0 and res["ndcg"] == pytest.approx(1 / np.log2(3))
    assert res["auc"] == pytest.approx(0.5)  # above e, below c
    # a held-out item that is also in the history is still ranked (it is relevant)
    res = evaluate_ranking(est, np.array([[3, "a"]], dtype=object), k=1)
    assert res["hit_rate"] == 1.0


@pytest.mark.parametrize("n_negatives", [None, 2])
def test_metrics_come_in_the_order_asked(n_negatives):
    est, X = _popularity(), np.array([[3, "d"]], dtype=object)
    everything = ["hit_rate", "ndcg", "map", "mrr", "precision", "recall", "auc"]
    assert list(evaluate_ranking(est, X, n_negatives=n_negatives)) == everything
    asked = ("auc", "recall", "ndcg")
    assert list(evaluate_ranking(est, X, metrics=asked, n_negatives=n_negatives)) == list(asked)


def test_full_ranking_averages_over_users_and_counts_unknown_items_as_misses():
    est = _popularity()
    X = np.array([[3, "c"], [3, "zzz"], [4, "b"]], dtype=object)
    with pytest.warns(UserWarning, match="unknown item"):
        res = evaluate_ranking(est, X, k=1)
    # user 3: c is top-1 of {c, d, e} but zzz is a miss -> recall 1/2; user 4: b top-1
    assert res["hit_rate"] == 1.0
    assert res["recall"] == pytest.approx((0.5 + 1) / 2)
    with pytest.raises(ValueError, match="unknown item"):
        evaluate_ranking(est.set_params(handle_unknown="error"), X)


def test_a_cut_off_beyond_the_candidates_counts_every_known_item():
    # user 3's candidates are c, d, e: at k=50 both known held-out items are within the
    # cut-off, the unknown one stays a miss, and precision divides by k
    est = _popularity()
    X = np.array([[3, "e"], [3, "d"], [3, "zzz"]], dtype=object)
    with pytest.warns(UserWarning, match="unknown item"):
        res = evaluate_ranking(est, X, k=50)
    assert res["hit_rate"] == 1.0
    assert res["recall"] == pytest.approx(2 / 3)
    assert res["precision"] == pytest.approx(2 / 50)
    assert res["ndcg"] == pytest.approx(
        (1 / np.log2(3) + 1 / np.log2(4)) / (1 + 1 / np.log2(3) + 0.5)
    )
    with pytest.raises(ValueError, match="k=50"):
        est.recommend([3], k=50)


def test_sampled_negatives_count_an_unknown_item_as_a_miss_past_them_too():
    # each row against one sampled negative (c, the only item user 3 has neither seen nor
    # holds out), with k = 50 past it: the known items rank within the cut-off, and the
    # unknown one is still a miss, as in the full ranking, not an item ranked last
    est = _popularity()
    X = np.array([[3, "e"], [3, "d"], [3, "zzz"]], dtype=object)
    with pytest.warns(UserWarning, match="unknown item"):
        res = evaluate_ranking(est, X, k=50, n_negatives=1)
    assert res["hit_rate"] == pytest.approx(2 / 3)
    assert res["ndcg"] == pytest.approx(2 / 3 / np.log2(3))  # e and d second, below c
    assert res["auc"] == 0.0
    with pytest.warns(UserWarning, match="unknown item"):
        alone = evaluate_ranking(est, X[2:], k=50, n_negatives=1)
    assert all(value == 0.0 for value in alone.values())


def test_positive_threshold_filters_relevant_rows():
    est = _popularity()
    X = np.array([[3, "c"], [4, "e"]], dtype=object)
    both = evaluate_ranking(est, X, k=1)
    only_c = evaluate_ranking(est, X, np.array([1.0, 0.0]), k=1)
    assert both["hit_rate"] == 0.5 and only_c["hit_rate"] == 1.0


def test_no_row_at_the_threshold_is_a_clear_error():
    with pytest.raises(ValueError, match="X holds no relevant interaction to evaluate"):
        evaluate_ranking(_popularity(), np.array([[3, "c"], [4, "d"]], dtype=object), [0.0, 0.0])


@pytest.mark.parametrize("n_negatives", [None, 3])
def test_nan_scores_are_a_clear_error(n_negatives):
    # a model whose scores are NaN cannot be ranked: say so rather than rank by noise
    from sklrec.datasets import make_interactions

    X, _ = make_interactions(n_users=30, n_items=20, interactions_per_user=5, random_state=0)
    model = MFRecommender(embedding_dim=4, max_epochs=1, random_state=0).fit(X)
    with torch.no_grad():
        model.net_.module_.user.weight[1:] = float("nan")
    with pytest.raises(ValueError, match="MFRecommender produced NaN scores"):
        evaluate_ranking(model, X[:10], n_negatives=n_negatives)


def test_sampled_negatives_fixed_seed_and_never_positives():
    from sklrec.datasets import make_interactions
    from sklrec.model_selection import LeaveLastOut

    X, _ = make_interactions(n_users=60, n_items=40, n_groups=2, random_state=0)
    train, test = (X[i] for i in next(LeaveLastOut(time_column=2).split(X)))
    a = MFRecommender(embedding_dim=4, max_epochs=2, random_state=0).fit(train)
    b = PopularityRecommender().fit(train)
    ra = evaluate_ranking(a, test, n_negatives=20, random_state=3)
    assert ra == evaluate_ranking(a, test, n_negatives=20, random_state=3)
    assert ra != evaluate_ranking(a, test, n_negatives=20, random_state=4)
    assert 0 <= ra["hit_rate"] <= 1
    # every item neither seen nor held out as the negatives: the same as the full ranking
    free = b.n_items_ - 10  # 9 training items and the held-out one
    full = evaluate_ranking(b, test, metrics=("hit_rate", "ndcg"))
    assert evaluate_ranking(b, test, n_negatives=free, metrics=("hit_rate", "ndcg")) == full
    with pytest.raises(ValueError, match="larger than the items left"):
        evaluate_ranking(b, test, n_negatives=free + 1)


def test_exclude_leaves_items_out_of_the_ranking_and_of_the_negatives():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    est = _popularity()
    X = np.array([[3, "d"]], dtype=object)
    # user 3 has seen a, b; c (2 ratings) ranks above d (1) above e (0)
    assert evaluate_ranking(est, X, k=1)["hit_rate"] == 0.0
    gone_c = np.array([[3, "c"], [3, "zzz"]], dtype=object)  # an unknown item changes nothing
    res = evaluate_ranking(est, X, k=1, exclude=gone_c)
    assert res["hit_rate"] == 1.0 and res["auc"] == 1.0  # d above e, the one left
    # another user's rows change nothing; a held-out item in exclude is still ranked
    other = np.array([[4, "c"]], dtype=object)
    assert evaluate_ranking(est, X, k=1, exclude=other) == evaluate_ranking(est, X, k=1)
    both = np.array([[3, "c"], [3, "d"]], dtype=object)
    assert evaluate_ranking(est, X, k=1, exclude=both)["hit_rate"] == 1.0
    # sampled negatives are never excluded items: e is the only one left for user 3
    assert evaluate_ranking(est, X, k=1, n_negatives=1, exclude=gone_c)["hit_rate"] == 1.0
    with pytest.raises(ValueError, match=r"larger than the items left .* nor excluded\)"):
        evaluate_ranking(est, X, n_negatives=2, exclude=gone_c)
    with pytest.raises(ValueError, match="with explicit negatives, leave the excluded items out"):
        evaluate_ranking(est, X, negatives=np.array([["e"]], dtype=object), exclude=gone_c)
    with pytest.raises(ValueError, match="exclude must be 2-d"):
        evaluate_ranking(est, X, exclude=np.array([3, "c"], dtype=object))
    # through a Pipeline, exclude takes the steps X takes
    pipe = make_pipeline(FunctionTransformer(), PopularityRecommender(positive_threshold=0.5))
    pipe.fit(TRAIN, TRAIN_Y)
    assert evaluate_ranking(pipe, X, k=1, exclude=gone_c) == res


def test_excluding_the_training_interactions_changes_nothing():
    from sklrec.datasets import make_interactions
    from sklrec.model_selection import LeaveLastOut

    X, _ = make_interactions(n_users=60, n_items=40, n_groups=2, random_state=0)
    train, test = (X[i] for i in next(LeaveLastOut(time_column=2).split(X)))
    model = MFRecommender(embedding_dim=4, max_epochs=2, random_state=0).fit(train)
    for n_negatives in (None, 20):
        plain = evaluate_ranking(model, test, n_negatives=n_negatives)
        assert evaluate_ranking(model, test, n_negatives=n_negatives, exclude=train) == plain


def test_explicit_negatives():
    est = _popularity()
    X = np.array([[3, "d"], [4, "c"]], dtype=object)
    negs = np.array([["c", "e"], ["d", "e"]], dtype=object)
    res = evaluate_ranking(est, X, negatives=negs, k=1)
    assert res["hit_rate"] == 0.5  # d loses to c; c beats d and e
    with pytest.raises(ValueError, match="unseen in fit"):
        evaluate_ranking(est, X, negatives=np.array([["c", "q"], ["d", "e"]], dtype=object))
    with pytest.raises(ValueError, match="shape"):
        evaluate_ranking(est, X, negatives=negs[:1])
    with pytest.raises(ValueError, match=r"row\(s\) \[1\] include the row's own held-out item"):
        evaluate_ranking(est, X, negatives=np.array([["c", "e"], ["c", "e"]], dtype=object))


def test_scorer_matches_evaluate():
    est = _popularity()
    X = np.array([[3, "d"], [4, "c"]], dtype=object)
    scorer = make_ranking_scorer("mrr", k=3)
    assert scorer(est, X) == evaluate_ranking(est, X, metrics="mrr", k=3)["mrr"]
    assert "mrr" in repr(scorer)


def _brute_force_ranking(model, train, test, k, exclude=None):
    """Hit rate, recall and NDCG at k, one user at a time from ``predict``.

    Each user's held-out items are ranked together against every item it
    neither saw in ``train`` nor has in ``exclude`` (ties count against the
    held-out item, as everywhere in sklrec).
    """
    hidden = train if exclude is None else np.r_[train[:, :2], exclude[:, :2]]
    hit, recall, ndcg = [], [], []
    for user in np.unique(test[:, 0]):
        relevant = set(test[test[:, 0] == user, 1])
        seen = set(hidden[hidden[:, 0] == user, 1]) - relevant
        candidates = np.array([item for item in model.items_ if item not in seen])
        predicted = model.predict(np.c_[np.full(len(candidates), user), candidates])
        scores = dict(zip(candidates, predicted, strict=True))
        # an item the model never saw is a miss
        ranks = [
            sum(scores[c] >= scores[r] for c in candidates if c != r)
            for r in relevant
            if r in scores
        ]
        found = [rank for rank in ranks if rank < k]
        hit.append(len(found) > 0)
        recall.append(len(found) / len(relevant))
        ideal = sum(1 / np.log2(j + 2) for j in range(min(len(relevant), k)))
        ndcg.append(sum(1 / np.log2(rank + 2) for rank in found) / ideal)
    return {"hit_rate": np.mean(hit), "recall": np.mean(recall), "ndcg": np.mean(ndcg)}


@pytest.mark.filterwarnings("ignore:.*unknown item id")  # held-out items new to the model
@pytest.mark.parametrize("seed", range(6))
def test_full_ranking_matches_a_brute_force_ranking_from_predict(seed):
    # random data, thresholds and cut-offs: the vectorised ranking (chunks, masks,
    # searchsorted ranks) must give what ranking each user by hand gives
    rng = np.random.default_rng(seed)
    n_users, n_items = rng.integers(6, 12), rng.integers(10, 18)
    X = np.array([[u, i] for u in range(n_users) for i in range(n_items) if rng.random() < 0.4])
    y = rng.integers(1, 6, len(X)).astype(float)
    held = rng.random(len(X)) < 0.3
    threshold = (None, 3)[seed % 2]
    k = int(rng.integers(1, 6))
    # items the users met after the fit, and repeats of training pairs among the held-out
    # rows (an item in the history that is held out again is still ranked)
    exclude = np.c_[rng.integers(0, n_users, 3 * n_users), rng.integers(0, n_items, 3 * n_users)]
    repeats = X[~held][rng.random((~held).sum()) < 0.1]
    for model in (
        PopularityRecommender(positive_threshold=threshold),
        MFRecommender(
            positive_threshold=threshold, embedding_dim=4, max_epochs=2, n_negatives=1,
            random_state=seed,
        ),
        NeuMFRecommender(  # its full ranking takes another path than its predict
            positive_threshold=threshold, embedding_dim=4, hidden_dims=(8, 4), max_epochs=2,
            n_negatives=1, random_state=seed,
        ),
    ):  # fmt: skip
        model.fit(X[~held], y[~held])
        test = X[held] if threshold is None else X[held & (y >= threshold)]
        test = np.r_[test, repeats]
        test = test[np.isin(test[:, 0], model.users_)]
        metrics = ("hit_rate", "recall", "ndcg")
        for extra in (None, exclude):
            got = evaluate_ranking(model, test, metrics=metrics, k=k, exclude=extra)
            expected = _brute_force_ranking(model, X[~held], test, k, extra)
            for name in metrics:
                assert got[name] == pytest.approx(expected[name]), (type(model).__name__, name)


@pytest.mark.parametrize("seed", range(3))
def test_explicit_negatives_match_a_brute_force_ranking_from_predict(seed):
    # each held-out row against its own negatives, as the NCF paper's files give them
    rng = np.random.default_rng(seed)
    X = np.array([[u, i] for u in range(8) for i in range(20) if rng.random() < 0.3])
    held = rng.random(len(X)) < 0.3
    model = NeuMFRecommender(
        embedding_dim=4, hidden_dims=(8, 4), max_epochs=2, n_negatives=1, random_state=seed
    ).fit(X[~held])
    test = X[held & np.isin(X[:, 0], model.users_) & np.isin(X[:, 1], model.items_)]
    negatives = np.array(
        [rng.choice(np.setdiff1d(model.items_, [item]), 6, replace=False) for _, item in test]
    )
    k = int(rng.integers(1, 8))
    got = evaluate_ranking(model, test, metrics=("hit_rate", "ndcg", "auc"), k=k,
                           negatives=negatives)  # fmt: skip
    positive = model.predict(test)
    against = model.predict(np.c_[np.repeat(test[:, 0], 6), negatives.ravel()]).reshape(-1, 6)
    rank = (against >= positive[:, None]).sum(axis=1)  # ties count against the row's item
    assert got["hit_rate"] == pytest.approx(np.mean(rank < k))
    assert got["ndcg"] == pytest.approx(np.mean((rank < k) / np.log2(rank + 2)))
    assert got["auc"] == pytest.approx(np.mean(1 - rank / 6))
