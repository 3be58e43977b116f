"""LazyAdam: Adam's update on the rows a batch touches, and nowhere else."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import train_test_split

from sklrec import (
    BiasRegressor,
    MFRegressor,
    PopularityRecommender,
)
from sklrec.datasets import make_ratings
from sklrec.metrics import evaluate_ranking
from sklrec.modules import MatrixFactorization
from sklrec.optim import LazyAdam, sparse_gradients

from .test_neumf import MODELS


def _pair(weight_decay, lazy_sparse=True, seed=0):
    """Two equal MF modules: one with sparse embedding gradients under LazyAdam, one under Adam."""
    torch.manual_seed(seed)
    lazy = MatrixFactorization(7, 5, embedding_dim=3)
    dense = MatrixFactorization(7, 5, embedding_dim=3)
    dense.load_state_dict(lazy.state_dict())
    sparse_gradients(lazy, lazy_sparse)
    kwargs = dict(lr=0.05, weight_decay=weight_decay)
    return (
        lazy,
        LazyAdam(lazy.parameters(), **kwargs),
        dense,
        torch.optim.Adam(dense.parameters(), **kwargs),
    )


def _train(module, optimizer, users, items, steps):
    for _ in range(steps):
        optimizer.zero_grad()
        torch.nn.functional.binary_cross_entropy_with_logits(
            module(users, items), torch.arange(len(users)).remainder(2).float()
        ).backward()
        optimizer.step()


@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
def test_is_adam_where_every_row_is_touched_every_step(weight_decay):
    # every row but the padding one in every batch, some twice (their entries sum): no
    # row is skipped, so the lazy update is Adam's (the padding row stays zero in both)
    lazy, lazy_opt, dense, dense_opt = _pair(weight_decay)
    start = {name: t.clone() for name, t in lazy.state_dict().items()}
    users = torch.tensor([1, 2, 3, 4, 5, 6, 6, 1])
    items = torch.tensor([1, 2, 3, 4, 4, 4, 1, 2])
    _train(lazy, lazy_opt, users, items, steps=5)
    _train(dense, dense_opt, users, items, steps=5)
    assert lazy.user.weight.grad.is_sparse
    for (name, got), want in zip(
        lazy.state_dict().items(), dense.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(got, want)
        assert not got.equal(start[name]), name


def test_leaves_untouched_rows_and_their_moments_alone():
    lazy, lazy_opt, dense, dense_opt = _pair(0.01)
    _train(lazy, lazy_opt, torch.tensor([1, 2, 3, 4, 5, 6]), torch.tensor([1, 2, 3, 4, 1, 2]), 3)
    _train(dense, dense_opt, torch.tensor([1, 2, 3, 4, 5, 6]), torch.tensor([1, 2, 3, 4, 1, 2]), 3)
    before = {name: t.clone() for name, t in lazy.state_dict().items()}
    moments = lazy_opt.state[lazy.user.weight]["exp_avg"].clone()
    # users 5 and 6 and items 3 and 4 sit out two steps
    _train(lazy, lazy_opt, torch.tensor([1, 2, 3, 4]), torch.tensor([1, 2, 1, 2]), 2)
    _train(dense, dense_opt, torch.tensor([1, 2, 3, 4]), torch.tensor([1, 2, 1, 2]), 2)
    after = lazy.state_dict()
    torch.testing.assert_close(after["user.weight"][5:], before["user.weight"][5:], rtol=0, atol=0)
    torch.testing.assert_close(after["item.weight"][3:], before["item.weight"][3:], rtol=0, atol=0)
    np.testing.assert_array_equal(lazy_opt.state[lazy.user.weight]["exp_avg"][5:], moments[5:])
    assert not after["user.weight"][1:5].equal(before["user.weight"][1:5])
    # Adam moves the resting rows by their momentum
    assert not dense.state_dict()["user.weight"][5:].equal(before["user.weight"][5:])


def test_the_padding_row_stays_zero():
    lazy, lazy_opt, _, _ = _pair(0.01)
    _train(lazy, lazy_opt, torch.tensor([0, 1, 2, 0]), torch.tensor([1, 0, 2, 3]), 3)
    assert not lazy.user.weight[0].any() and not lazy.item.weight[0].any()
    assert not lazy.user_bias.weight[0].any()


def test_dense_gradients_get_torch_adam_exactly():
    # with dense embedding gradients every parameter is Adam's, bit for bit
    lazy, lazy_opt, dense, dense_opt = _pair(0.01, lazy_sparse=False)
    users, items = torch.tensor([1, 2, 3]), torch.tensor([1, 1, 2])
    _train(lazy, lazy_opt, users, items, steps=4)
    _train(dense, dense_opt, users, items, steps=4)
    for got, want in zip(lazy.state_dict().values(), dense.state_dict().values(), strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


def test_refuses_a_gradient_sparse_in_more_than_rows():
    param, dense = torch.nn.Parameter(torch.zeros(3, 2)), torch.nn.Parameter(torch.ones(2))
    optimizer = LazyAdam([param, dense])
    param.grad = torch.eye(3, 2).to_sparse()  # two sparse dimensions, not rows
    dense.grad = torch.ones(2)
    with pytest.raises(ValueError, match="one sparse dimension"):
        optimizer.step()
    # before any update
    assert dense.tolist() == [1.0, 1.0] and not optimizer.state


def test_state_pickles_and_resumes():
    lazy, lazy_opt, _, _ = _pair(0.01)
    users, items = torch.tensor([1, 2, 3]), torch.tensor([1, 1, 2])
    _train(lazy, lazy_opt, users, items, steps=2)
    copy, copy_opt = pickle.loads(pickle.dumps((lazy, lazy_opt)))
    _train(lazy, lazy_opt, users, items, steps=2)
    _train(copy, copy_opt, users, items, steps=2)
    for got, want in zip(copy.state_dict().values(), lazy.state_dict().values(), strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


# test_neumf's models (early stopping on this tiny data), trained with LazyAdam
LAZY = {
    name: clone(MODELS[name]).set_params(optimizer="lazy_adam")
    for name in ("mf-bce", "neumf", "neumf-pretrain")
}


def _tables(model):
    return [m for m in model.net_.module_.modules() if isinstance(m, torch.nn.Embedding)]


@pytest.mark.parametrize("name", LAZY)
def test_recommenders_learn_with_it(name, grouped):
    train, test = grouped
    est = LAZY[name]
    model = clone(est).fit(train)
    # pre-training's NeuMF phase runs on plain SGD, over dense gradients
    assert all(table.sparse != (name == "neumf-pretrain") for table in _tables(model))
    hit_rate = evaluate_ranking(model, test)["hit_rate"]
    popularity = evaluate_ranking(PopularityRecommender().fit(train), test)["hit_rate"]
    # the margins test_neumf asks of Adam
    assert hit_rate > 0.7 and hit_rate > popularity + 0.3, (hit_rate, popularity)
    # seeded, picklable and trainable further, as with any optimizer
    np.testing.assert_array_equal(clone(est).fit(train).predict(test), model.predict(test))
    served = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(served.predict(test), model.predict(test))
    model.partial_fit(train)
    served.partial_fit(train)
    np.testing.assert_array_equal(served.predict(test), model.predict(test))


def test_another_optimizer_takes_dense_gradients_again(grouped):
    train, _ = grouped
    model = clone(LAZY["mf-bce"]).set_params(max_epochs=2).fit(train)
    assert model.net_.module_.user.weight.grad.is_sparse
    model.set_params(optimizer="adam").fit(train)
    assert not any(table.sparse for table in _tables(model))
    assert model.net_.module_.user.weight.grad.layout == torch.strided


def test_the_regressor_learns_with_it():
    X, y = make_ratings(
        n_users=200, n_items=60, ratings_per_user=40, n_factors=3, noise=0.3, random_state=0
    )
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
    model = MFRegressor(embedding_dim=8, max_epochs=30, optimizer="lazy_adam", random_state=0)
    model.fit(X_train, y_train)
    assert model.net_.module_.user.weight.grad.is_sparse
    rmse = np.sqrt(np.mean((model.predict(X_test) - y_test) ** 2))
    bias = BiasRegressor().fit(X_train, y_train).predict(X_test)
    assert rmse < np.sqrt(np.mean((bias - y_test) ** 2)) - 0.05
