"""Training step time as the embedding tables grow: Adam against LazyAdam.

A dense Adam step reads and writes every row of every embedding table (the
gradient, both moments and the weights), however few rows the batch looked
up; past a few hundred thousand rows that, not the batch, sets the step time.
``optimizer="lazy_adam"`` (``sklrec.optim.LazyAdam``) updates only the rows a
batch touches. This times one training step of the modules the estimators
train (MF with 32 factors, NeuMF-8 with MLP 64-32-16-8), on random batches of
(user, item) pairs and labels, with the optimisers built as the estimators
build them (their class, weight decay 1e-6, fused Adam where torch has it, and
the rate of the batch). Each row is
the median of ``--repeats`` timings of ``--steps`` steps, after warm-up steps.
Prints JSON lines.

    python benchmarks/table_scaling.py [--sizes 6040x3706,138493x26744,1000000x100000]
        [--models mf,neumf] [--batch-sizes 2048,8192] [--optimizers adam,lazy_adam]
        [--steps 30] [--repeats 3] [--device cuda]
"""

import argparse
import json
import statistics
import time

import torch

from sklrec import MFRecommender, NeuMFRecommender
from sklrec.modules import MatrixFactorization, NeuMF
from sklrec.optim import _takes_sparse_gradients, sparse_gradients

SIZES = "6040x3706,138493x26744,1000000x100000"  # ML-1M, ML-20M, a million users


def build(model, n_users, n_items):
    """The module an estimator of ``model``'s defaults builds (row 0: unknown ids)."""
    if model == "mf":
        return MatrixFactorization(n_users + 1, n_items + 1, embedding_dim=32)
    return NeuMF(n_users + 1, n_items + 1, embedding_dim=8, hidden_dims=(64, 32, 16, 8))


def optimizer_for(name, model, module, device, batch_size):
    """The optimiser ``model``'s estimator builds for ``optimizer=name``, over ``module``.

    Its class, weight decay, fused kernel and rate at ``batch_size`` come from the
    estimator's own training machinery, and the tables' gradients are made sparse
    where the class wants them, as the estimators' nets do.
    """
    est = {"mf": MFRecommender, "neumf": NeuMFRecommender}[model](optimizer=name)
    cls = est._optimizer_class()
    kwargs = est._optimizer_kwargs(device, cls)
    sparse_gradients(module, _takes_sparse_gradients(cls))
    return cls(
        module.parameters(),
        lr=est._lr(batch_size),
        **{key.removeprefix("optimizer__"): value for key, value in kwargs.items()},
    )


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(model, optimizer_name, n_users, n_items, batch_size, steps, repeats, device):
    """Median seconds per step over ``repeats`` runs of ``steps`` steps."""
    torch.manual_seed(0)
    module = build(model, n_users, n_items).to(device)
    optimizer = optimizer_for(optimizer_name, model, module, device, batch_size)
    generator = torch.Generator(device=device).manual_seed(0)
    n_batches = steps * (repeats + 1)
    users = torch.randint(
        1, n_users + 1, (n_batches, batch_size), device=device, generator=generator
    )
    items = torch.randint(
        1, n_items + 1, (n_batches, batch_size), device=device, generator=generator
    )
    labels = (
        torch.rand((n_batches, batch_size), device=device, generator=generator).lt(0.2).float()
    )

    def run(first):
        for b in range(first, first + steps):
            optimizer.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(
                module(users[b], items[b]), labels[b]
            )
            loss.backward()
            optimizer.step()

    run(0)  # warm-up: optimiser state, kernels, allocator
    timings = []
    for repeat in range(1, repeats + 1):
        sync(device)
        start = time.perf_counter()
        run(repeat * steps)
        sync(device)
        timings.append((time.perf_counter() - start) / steps)
    return statistics.median(timings)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=SIZES, help="USERSxITEMS,...")
    parser.add_argument("--models", default="mf,neumf")
    parser.add_argument("--batch-sizes", default="2048,8192")
    parser.add_argument("--optimizers", default="adam,lazy_adam")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    for size in args.sizes.split(","):
        n_users, n_items = (int(n) for n in size.lower().split("x"))
        for model in args.models.split(","):
            for batch_size in (int(b) for b in args.batch_sizes.split(",")):
                for name in args.optimizers.split(","):
                    seconds = time_steps(
                        model, name, n_users, n_items, batch_size, args.steps, args.repeats, device
                    )
                    row = dict(
                        benchmark="table_scaling",
                        model=model,
                        users=n_users,
                        items=n_items,
                        batch_size=batch_size,
                        optimizer=name,
                        ms_per_step=round(seconds * 1e3, 3),
                        samples_per_s=round(batch_size / seconds),
                        device=str(device),
                        torch_threads=torch.get_num_threads(),
                    )
                    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
