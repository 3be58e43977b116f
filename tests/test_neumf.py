"""The NCF family learns the planted structure that popularity misses."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from skorch.callbacks import Callback

from sklrec import (
    GMFRecommender,
    MFRecommender,
    MLPRecommender,
    NeuMFRecommender,
    PopularityRecommender,
)
from sklrec.metrics import evaluate_ranking
from sklrec.modules import GMF, MLP, MatrixFactorization, NeuMF
from sklrec.modules._embedding import Embedding

# the data is tiny, so models overfit within a few epochs: stop on a validation split
FAST = dict(max_epochs=60, lr=0.01, batch_size=256, early_stopping=True, random_state=0)
MODELS = {
    "gmf": GMFRecommender(embedding_dim=8, **FAST),
    "mlp": MLPRecommender(hidden_dims=(32, 16, 8), **FAST),
    "neumf": NeuMFRecommender(embedding_dim=8, hidden_dims=(32, 16, 8), **FAST),
    "neumf-pretrain": NeuMFRecommender(
        embedding_dim=8, hidden_dims=(32, 16, 8), pretrain=True, **FAST
    ),
    "mf-bce": MFRecommender(embedding_dim=8, **FAST),
    "mf-bpr": MFRecommender(embedding_dim=8, loss="bpr", **FAST),
}


@pytest.fixture(scope="module")
def popularity_hr(grouped):
    train, test = grouped
    return evaluate_ranking(PopularityRecommender().fit(train), test)["hit_rate"]


# a GPU trains on other random streams than the CPU: the margins hold whatever the seed
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", MODELS)
def test_beats_popularity_by_a_margin(name, device, grouped, popularity_hr):
    train, test = grouped
    model = clone(MODELS[name]).set_params(device=device).fit(train)
    scores = evaluate_ranking(model, test, metrics=("hit_rate", "ndcg"))
    assert popularity_hr < 0.5
    # NeuMF and the MLP average 0.83-0.86 over ten seeds; one standard error over the
    # 200 test users is about 0.03, and single seeds of NeuMF range down to 0.74
    assert scores["hit_rate"] > 0.7
    assert scores["hit_rate"] > popularity_hr + 0.3


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_mlp_learns_whatever_the_seed(seed, grouped, popularity_hr):
    # under torch's default Linear init the last ReLU layer died in the first epoch
    # on some seeds, leaving every item the same score (HR@10 0.0 for seed 4)
    train, test = grouped
    model = clone(MODELS["mlp"]).set_params(random_state=seed).fit(train)
    assert evaluate_ranking(model, test)["hit_rate"] > popularity_hr + 0.3


def test_early_stopping_keeps_the_best_epoch_and_then_steps_aside(grouped):
    train, _ = grouped
    model = MFRecommender(
        embedding_dim=8,
        early_stopping=True,
        n_iter_no_change=2,
        max_epochs=200,
        lr=0.05,
        batch_size=256,
        random_state=0,
    ).fit(train)
    hist = model.net_.history
    valid = hist[:, "valid_ndcg@10"]
    assert model.n_iter_ == len(hist) < 200
    assert np.argmax(valid) == len(hist) - 3  # two epochs without improvement
    names = [name for name, _ in model.net_.callbacks_]
    assert "sklrec_early_stopping" not in names and "sklrec_validation" not in names
    # the held-out pairs still count as seen
    assert model.interactions_.nnz == len(np.unique(train[:, :2], axis=0))
    fitted_epochs = model.n_iter_
    model.partial_fit(train)
    assert model.n_iter_ == len(model.net_.history) == fitted_epochs + 1
    assert "valid_ndcg@10" not in model.net_.history[-1]


def test_a_few_heavy_users_do_not_cut_every_users_validation_negatives():
    from sklrec.datasets import make_interactions

    X, _ = make_interactions(n_users=300, n_items=150, interactions_per_user=8, random_state=0)
    items = np.unique(X[:, 1])
    heavy = [[10**6 + u, i, 0] for u in range(3) for i in items[: -4 - u]]  # 4, 5, 6 left
    with_heavy = np.r_[X, heavy]
    model = MFRecommender(max_epochs=1, n_negatives=2, early_stopping=True).fit(with_heavy)
    users, items_index = model._known_ids(with_heavy)
    train, (held_users, _, n_negatives, _) = model._split_validation(users, items_index, 0)
    assert n_negatives == 99  # every light user has 140 or more unseen items
    assert (~train).sum() == len(held_users) == 300  # one of each light user's, no heavy one's
    assert (model.users_[held_users - 1] < 10**6).all()
    # a catalogue of 40: 300 users with 32 to 34 unseen items, 20 with 2; the 20 sit out
    small = np.c_[X[:, 0], X[:, 1] % 40, X[:, 2]]
    small = small[np.unique(small[:, :2], axis=0, return_index=True)[1]]
    small = np.r_[small, [[10**6 + u, i, 0] for u in range(20) for i in range(38)]]
    model = MFRecommender(max_epochs=1, n_negatives=2, early_stopping=True).fit(small)
    users, items_index = model._known_ids(small)
    train, (held_users, _, n_negatives, _) = model._split_validation(users, items_index, 0)
    free = model.n_items_ - np.diff(model.interactions_.indptr)
    assert n_negatives == 32 == free[model.users_ < 10**6].min()
    assert len(held_users) == 300 and (model.users_[held_users - 1] < 10**6).all()


def test_validation_holds_out_at_most_its_cap_of_users(monkeypatch):
    # past _MAX_VALIDATION_USERS eligible users, a seeded sample of that many is held out
    from sklrec.base import _training
    from sklrec.datasets import make_interactions

    X, _ = make_interactions(n_users=300, n_items=150, interactions_per_user=8, random_state=0)
    monkeypatch.setattr(_training, "_MAX_VALIDATION_USERS", 50)
    model = MFRecommender(max_epochs=1, early_stopping=True, random_state=0).fit(X)
    users, items = model._known_ids(X)
    train, (held_users, held_items, _, _) = model._split_validation(users, items, 0)
    assert (~train).sum() == len(np.unique(held_users)) == 50
    again = model._split_validation(users, items, 0)
    np.testing.assert_array_equal(again[1][0], held_users)
    assert not np.array_equal(model._split_validation(users, items, 1)[1][0], held_users)
    # what is held out is a positive of its user, and no longer a training row
    pairs = set(zip(users[~train] + 1, items[~train] + 1, strict=True))
    assert pairs == set(zip(held_users, held_items, strict=True))


def test_early_stopping_without_a_user_to_hold_out_is_a_clear_error():
    X = np.c_[np.arange(200), np.arange(200) % 50]  # one positive per user
    with pytest.raises(ValueError, match="early_stopping needs users with at least 3 positive"):
        MFRecommender(max_epochs=1, early_stopping=True).fit(X)
    MFRecommender(max_epochs=1, early_stopping=False).fit(X)


def test_auto_early_stopping_turns_on_with_enough_data():
    from sklrec.datasets import make_interactions

    X, _ = make_interactions(n_users=1000, n_items=200, interactions_per_user=10, random_state=0)
    model = MFRecommender(max_epochs=2, random_state=0).fit(X)
    assert "valid_ndcg@10" in model.net_.history[-1]
    model = MFRecommender(max_epochs=2, random_state=0).fit(X[:5000])
    assert "valid_ndcg@10" not in model.net_.history[-1]


@pytest.mark.parametrize("pretrain", [False, True])
def test_auto_batch_and_lr_follow_the_size_of_an_epoch(grouped, monkeypatch, pretrain):
    train, _ = grouped  # 1,800 positives: 9,000 samples an epoch
    params = dict(embedding_dim=4, hidden_dims=(8, 4), pretrain=pretrain, max_epochs=2)
    model = NeuMFRecommender(**params, early_stopping=False, random_state=0).fit(train)
    assert (model.net_.batch_size, model.net_.lr) == (4096, 0.01)
    # an epoch of at least _LARGE_EPOCH samples takes the larger batch at twice the rate
    monkeypatch.setattr("sklrec.base._training._LARGE_EPOCH", 5 * len(train))
    model.fit(train)
    assert (model.net_.batch_size, model.net_.lr) == (8192, 0.02)
    assert model.net_.history[-1, "train_batch_count"] == 2
    # the cosine schedule counted those batches: it ends at zero, not half way down
    assert model.net_.optimizer_.param_groups[0]["lr"] == pytest.approx(0, abs=1e-12)
    # partial_fit goes on at the rate of the batch in use
    model.partial_fit(train)
    assert model.net_.optimizer_.param_groups[0]["lr"] == 0.02
    # an epoch one sample short of it keeps the smaller batch
    monkeypatch.setattr("sklrec.base._training._LARGE_EPOCH", 5 * len(train) + 1)
    assert model.fit(train).net_.batch_size == 4096


@pytest.mark.parametrize(
    "batch_size, lr", [(256, 0.01), (4096, 0.01), (6144, 0.015), (8192, 0.02), (65536, 0.02)]
)
def test_auto_lr_grows_with_a_given_batch_between_the_auto_batches(grouped, batch_size, lr):
    train, _ = grouped
    model = GMFRecommender(embedding_dim=4, batch_size=batch_size, max_epochs=1, random_state=0)
    assert model.fit(train).net_.lr == pytest.approx(lr)
    # a given lr is used as it is, whatever the batch
    assert model.set_params(lr=0.003).fit(train).net_.lr == 0.003


def test_bad_or_unoffered_auto_is_a_clear_error(grouped):
    train, _ = grouped
    with pytest.raises(ValueError, match='batch_size must be "auto" or an integer'):
        MLPRecommender(batch_size="big").fit(train)
    with pytest.raises(ValueError, match='lr must be "auto" or a number'):
        MLPRecommender(lr="fast").fit(train)
    # MFRecommender keeps a fixed batch and rate
    for param in ("batch_size", "lr"):
        with pytest.raises(ValueError, match=f"{param} must be an integer|{param} must be a num"):
            MFRecommender(**{param: "auto"}).fit(train)


@pytest.mark.parametrize("cls", [MLPRecommender, NeuMFRecommender])
@pytest.mark.parametrize(
    "hidden_dims, match",
    [
        (16, "hidden_dims must be a non-empty sequence"),
        ((), "hidden_dims must be a non-empty sequence"),
        ((16.0, 8), "hidden_dims must be a non-empty sequence"),
        ((16, 0), "hidden_dims must be a non-empty sequence"),
        ((15, 8), "first entry .* is even"),
    ],
)
def test_bad_hidden_dims_is_a_clear_error_and_keeps_the_fitted_model(
    cls, hidden_dims, match, grouped
):
    train, _ = grouped
    model = cls(hidden_dims=(8, 4), max_epochs=1, random_state=0).fit(train)
    before = model.predict(train[:20])
    with pytest.raises(ValueError, match=match):
        model.set_params(hidden_dims=hidden_dims).fit(train)
    np.testing.assert_array_equal(model.predict(train[:20]), before)


def test_pretrain_starts_neumf_from_gmf_and_mlp():
    gmf, mlp = GMF(5, 6, 4), MLP(5, 6, (8, 4))
    neumf = NeuMF(5, 6, 4, (8, 4)).load_pretrained(gmf, mlp)
    users, items = torch.tensor([1, 2, 3]), torch.tensor([4, 5, 1])
    with torch.no_grad():
        expected = 0.5 * gmf(users, items) + 0.5 * mlp(users, items)
        torch.testing.assert_close(neumf(users, items), expected)


def test_neumf_tables_hold_the_gmf_block_then_the_mlp_block():
    # one table per side; the GMF block is drawn first, as when each tower had its own
    # tables, so a seed gives NeuMF the GMF weights it gives GMF
    torch.manual_seed(0)
    gmf = GMF(5, 6, 4)
    torch.manual_seed(0)
    neumf = NeuMF(5, 6, 4, (8, 4))
    assert neumf.user.weight.shape == (5, 4 + 4) and neumf.item.weight.shape == (6, 8)
    torch.testing.assert_close(neumf.user.weight[:, :4], gmf.user.weight, rtol=0, atol=0)
    torch.testing.assert_close(neumf.item.weight[:, :4], gmf.item.weight, rtol=0, atol=0)
    assert not neumf.user.weight[0].any() and not neumf.item.weight[0].any()  # padding rows


@pytest.mark.parametrize(
    "module",
    [
        GMF(7, 9, 4),
        MLP(7, 9, (8, 4)),
        MLP(7, 9, (6,)),
        NeuMF(7, 9, 4, (8, 6, 4)),
        MatrixFactorization(7, 9, 3),
        MatrixFactorization(7, 9, 3, bias=False),
    ],
    ids=lambda m: type(m).__name__ + ("-no-bias" if getattr(m, "bias", True) is False else ""),
)
def test_module_shapes_and_score_all(module):
    module.eval()
    users = torch.tensor([0, 1, 6])
    with torch.no_grad():
        assert module(users, torch.tensor([1, 2, 8])).shape == (3,)
        cands = torch.tensor([[1, 2], [3, 4], [5, 8]])
        assert module(users[:, None], cands).shape == (3, 2)
        everything = module.score_all(users)
        assert everything.shape == (3, 9)
        pairwise = module(users[:, None], torch.arange(9).expand(3, 9))
        torch.testing.assert_close(everything, pairwise, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("bias", [True, False])
def test_matrix_factorization_penalty_is_the_mean_squared_norm_of_the_rows_used(bias):
    torch.manual_seed(0)
    module = MatrixFactorization(7, 9, 3, bias=bias)
    if bias:
        for table in (module.user_bias, module.item_bias):
            torch.nn.init.normal_(table.weight)
    users, items = torch.tensor([1, 1, 6]), torch.tensor([2, 8, 2])
    expected = [
        module.user.weight[u].square().sum() + module.item.weight[i].square().sum()
        + (module.user_bias.weight[u, 0] ** 2 + module.item_bias.weight[i, 0] ** 2 if bias else 0)
        for u, i in zip(users.tolist(), items.tolist(), strict=True)
    ]  # fmt: skip
    torch.testing.assert_close(module.penalty(users, items), torch.stack(expected).mean())
    assert sum(p.numel() for p in module.parameters()) == (7 + 9) * 3 + (7 + 9 + 1) * bias


@pytest.mark.parametrize(
    "options, lowest",
    [
        ({"padding_idx": 0}, 0),
        ({"padding_idx": 0}, 1),  # a batch without the padding index skips the mask
        ({}, 0),
        ({"padding_idx": 0, "scale_grad_by_freq": True}, 0),
        ({"max_norm": 1.0}, 0),
    ],
    ids=["padding", "padding-absent", "no-padding", "scale-grad-by-freq", "max-norm"],
)
def test_cpu_embedding_matches_torch_embedding(options, lowest):
    torch.manual_seed(0)
    ours, theirs = Embedding(50, 6, **options), torch.nn.Embedding(50, 6, **options)
    theirs.load_state_dict(ours.state_dict())
    # more than 3,000 indices (where torch's CPU kernel sorts them), repeats and padding
    index = torch.randint(lowest, 50, (4000, 2))
    grad = torch.randn(4000, 2, 6)
    out_ours, out_theirs = ours(index), theirs(index)
    torch.testing.assert_close(out_ours, out_theirs, rtol=0, atol=0)
    out_ours.backward(grad)
    out_theirs.backward(grad)
    torch.testing.assert_close(ours.weight.grad, theirs.weight.grad, rtol=1e-5, atol=1e-5)
    if "padding_idx" in options:
        assert torch.count_nonzero(ours.weight.grad[0]) == 0


def test_padding_row_is_zero_and_stays_zero(grouped):
    train, _ = grouped
    model = NeuMFRecommender(embedding_dim=4, hidden_dims=(8, 4), max_epochs=3).fit(train)
    for name, p in model.net_.module_.named_parameters():
        if "user.weight" in name or "item.weight" in name:
            assert torch.count_nonzero(p[0]) == 0, name


def test_pretrain_fine_tunes_neumf_with_plain_sgd(grouped):
    train, _ = grouped
    model = NeuMFRecommender(
        embedding_dim=4, hidden_dims=(8, 4), pretrain=True, **{**FAST, "max_epochs": 2}
    ).fit(train)
    optimizer = model.net_.optimizer_
    assert type(optimizer) is torch.optim.SGD
    assert optimizer.defaults["momentum"] == 0
    assert model.n_iter_ == 2  # the NeuMF phase's epochs, not the halves' as well
    # the estimator's own optimizer is untouched for a fit without pre-training
    model.set_params(pretrain=False).fit(train)
    assert type(model.net_.optimizer_) is torch.optim.Adam
    with pytest.raises(ValueError, match="pretrain must be True or False; got 'yes'"):
        model.set_params(pretrain="yes").fit(train)


class _ReverseRanking(Callback):
    """Record the weights NeuMF starts from, then reverse its ranking for validation.

    The output layer is negated at the end of every epoch, before the
    validation score is taken, and restored before the next one trains.
    """

    def on_train_begin(self, net, **kwargs):
        self.start_ = {k: v.clone() for k, v in net.module_.state_dict().items()}

    def _flip(self, net):
        with torch.no_grad():
            net.module_.out.weight.neg_()
            net.module_.out.bias.neg_()

    def on_epoch_begin(self, net, **kwargs):
        if len(net.history) > 1:
            self._flip(net)

    def on_epoch_end(self, net, **kwargs):
        self._flip(net)


def test_pretrain_keeps_the_loaded_model_when_no_epoch_beats_it(grouped):
    train, _ = grouped
    spoiler = _ReverseRanking()
    model = NeuMFRecommender(
        embedding_dim=4,
        hidden_dims=(8, 4),
        pretrain=True,
        callbacks=[spoiler],
        **{**FAST, "max_epochs": 4},
    ).fit(train)
    # every epoch of the NeuMF phase ranked backwards on the validation split ...
    assert len(model.net_.history) >= 1
    # ... so the model is the one loaded from GMF and MLP, not its best epoch
    for name, value in model.net_.module_.state_dict().items():
        torch.testing.assert_close(value, spoiler.start_[name], msg=name)
    # without early stopping the last epoch stands, as always
    model.set_params(early_stopping=False).fit(train)
    assert not torch.equal(model.net_.module_.out.weight, spoiler.start_["out.weight"])


@pytest.mark.parametrize("pretrain", [False, True])
def test_zero_epochs_with_early_stopping(grouped, pretrain):
    train, _ = grouped
    model = NeuMFRecommender(
        embedding_dim=4, hidden_dims=(8, 4), pretrain=pretrain, max_epochs=0,
        early_stopping=True, random_state=0,
    ).fit(train)  # fmt: skip
    assert len(model.net_.history) == model.n_iter_ == 0
    assert np.isfinite(model.predict(train[:5])).all()
    # the documented use: partial_fit trains the initialised model one epoch per call
    before = model.predict(train[:50])
    model.partial_fit(train)
    assert model.n_iter_ == 1
    assert not np.allclose(model.predict(train[:50]), before)
