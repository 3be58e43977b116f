"""Training and ranking speed of NeuMFRecommender beside plain PyTorch loops.

Synthetic data of MovieLens-1M size (6,040 users, 3,706 items, about 1M
positives), 4 negatives per positive: an epoch is about 5M samples. In one
run it measures, at each batch size:

* the estimator: ``fit`` with ``max_epochs=1`` timed end to end (validation,
  id mapping, CSR building, net construction and the epoch itself);
* a hand-written vectorised loop over the same ``sklrec.modules.NeuMF``:
  negatives drawn with one vectorised call per epoch, a permutation, slices;

then the per-sample ``Dataset`` + ``DataLoader`` style many tutorials use (at
batch 256, on a slice of the epoch), the estimator with its default settings,
and the time to rank every item for every user (``recommend(all users, k=10)``).
Prints JSON lines.

The loops being compared run in turn, ``--repeats`` times over, and each
figure is the median of its repeats: on a shared machine one timing can be
off by 1.7 x, and a ratio of two single timings by more. Beside the ratio of
the medians it prints the ratio of the fastest timings, which a slow spell
that hits one side's repeats more than the other's moves less, and the median
of the ratios within each repeat: the machine's slow spells last several
fits, so the two sides of one repeat mostly share one.

    python benchmarks/throughput.py [--batch-sizes 256,1024,8192,65536] [--repeats 3]
                                    [--device cuda]
"""

import argparse
import json
import time

import numpy as np
import torch
from torch import nn

from sklrec import NeuMFRecommender
from sklrec.datasets import make_interactions
from sklrec.modules import NeuMF

N_USERS, N_ITEMS, PER_USER, N_NEG = 6040, 3706, 166, 4


def ml1m_sized(n_users=None, seed=0):
    """The synthetic data of MovieLens-1M's size (``n_users`` users: more or fewer rows)."""
    return make_interactions(
        n_users=n_users or N_USERS, n_items=N_ITEMS, n_groups=8, interactions_per_user=PER_USER,
        random_state=seed,
    )  # fmt: skip


def emit(**row):
    print(json.dumps(row), flush=True)


def timed(fn, device):
    """``(seconds, fn())``, the device synchronised on both sides of the call."""
    sync(device)
    start = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - start, out


def paired_median(a, b):
    """Median over repeats of ``a[i] / b[i]``."""
    return float(np.median(np.asarray(a) / np.asarray(b)))


def sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def hand_written_epoch(users, items, pos_keys, batch_size, device, seed, fused=False):
    """One epoch the way a careful PyTorch user writes it by hand.

    ``fused=True`` gives it the fused Adam kernel the estimator uses, so that
    the comparison isolates what the estimator adds. Returns the seconds of
    the epoch, negative sampling included, model construction not.
    """
    gen = torch.Generator(device=device).manual_seed(seed)
    torch.manual_seed(seed)
    model = NeuMF(N_USERS + 1, N_ITEMS + 1).to(device)
    opt = torch.optim.Adam(
        model.parameters(),
        lr=0.001,
        weight_decay=NeuMFRecommender().weight_decay,  # the estimator's default, like for like
        **({"fused": True} if fused else {}),
    )
    loss_fn = nn.BCEWithLogitsLoss()
    sync(device)
    start = time.perf_counter()
    neg_users = users.repeat(N_NEG)
    neg_items = torch.randint(1, N_ITEMS + 1, neg_users.shape, generator=gen, device=device)
    while True:  # redraw the negatives that hit a positive
        keys = neg_users * (N_ITEMS + 1) + neg_items
        pos = torch.searchsorted(pos_keys, keys).clamp_max(len(pos_keys) - 1)
        bad = pos_keys[pos] == keys
        if not bad.any():
            break
        neg_items[bad] = torch.randint(
            1, N_ITEMS + 1, (int(bad.sum()),), generator=gen, device=device
        )
    u = torch.cat([users, neg_users])
    i = torch.cat([items, neg_items])
    y = torch.cat(
        [torch.ones(len(users), device=device), torch.zeros(len(neg_users), device=device)]
    )
    perm = torch.randperm(len(u), generator=gen, device=device)
    u, i, y = u[perm], i[perm], y[perm]
    for s in range(0, len(u), batch_size):
        opt.zero_grad()
        loss = loss_fn(model(u[s : s + batch_size], i[s : s + batch_size]), y[s : s + batch_size])
        loss.backward()
        opt.step()
    sync(device)
    return time.perf_counter() - start


class PerSampleDataset(torch.utils.data.Dataset):
    """The tutorial style: one (user, item, label) triple per ``__getitem__``."""

    def __init__(self, users, items, labels):
        self.users, self.items, self.labels = users, items, labels

    def __len__(self):
        return len(self.users)

    def __getitem__(self, index):
        return self.users[index], self.items[index], self.labels[index]


def dataloader_samples_per_s(users, items, n_samples, seed):
    """Per-sample Dataset + DataLoader at batch 256, negatives drawn in advance."""
    rng = np.random.default_rng(seed)
    u = np.r_[users, np.repeat(users, N_NEG)][:n_samples]
    i = np.r_[items, rng.integers(1, N_ITEMS + 1, len(users) * N_NEG)][:n_samples]
    y = np.r_[np.ones(len(users)), np.zeros(len(users) * N_NEG)][:n_samples].astype(np.float32)
    loader = torch.utils.data.DataLoader(PerSampleDataset(u, i, y), batch_size=256, shuffle=True)
    torch.manual_seed(seed)
    model = NeuMF(N_USERS + 1, N_ITEMS + 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.001)
    loss_fn = nn.BCEWithLogitsLoss()
    start = time.perf_counter()
    for bu, bi, by in loader:
        opt.zero_grad()
        loss_fn(model(bu, bi), by.float()).backward()
        opt.step()
    return n_samples / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch-sizes", default="256,1024,8192,65536")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dataloader-samples", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="timings per figure (median)")
    args = parser.parse_args(argv)
    device = args.device

    X, _ = ml1m_sized(seed=args.seed)
    emit(
        benchmark="throughput",
        positives=len(X),
        samples_per_epoch=len(X) * (1 + N_NEG),
        device=device,
        torch_threads=torch.get_num_threads(),
        torch=torch.__version__,
    )
    # the same data for the hand-written loops: 1-based indices (ids are 0..n-1 here)
    users = torch.as_tensor(X[:, 0] + 1, device=device)
    items = torch.as_tensor(X[:, 1] + 1, device=device)
    pos_keys = torch.sort(users * (N_ITEMS + 1) + items).values

    # warm-up: the first optimizer import pulls in torch._dynamo (seconds, once a process)
    NeuMFRecommender(max_epochs=1, device=device).fit(X[:2000])
    hand_written_epoch(users[:2000], items[:2000], pos_keys, 256, device, args.seed)

    n = len(X) * (1 + N_NEG)
    for batch_size in (int(b) for b in args.batch_sizes.split(",")):
        est = NeuMFRecommender(
            batch_size=batch_size, max_epochs=1, early_stopping=False, device=device,
            random_state=args.seed,
        )  # fmt: skip
        fit, epoch, hand, fused = [], [], [], []
        for _ in range(args.repeats):  # in turn, so that a slow spell hits all of them
            fit.append(timed(lambda est=est: est.fit(X), device)[0])
            epoch.append(est.net_.history[-1, "dur"])
            hand.append(hand_written_epoch(users, items, pos_keys, batch_size, device, args.seed))
            fused.append(
                hand_written_epoch(users, items, pos_keys, batch_size, device, args.seed, True)
            )
        fit_s, hand_s, fused_s = np.median(fit), np.median(hand), np.median(fused)
        emit(
            batch_size=batch_size,
            repeats=args.repeats,
            estimator_fit_seconds=round(fit_s, 3),
            estimator_epoch_seconds=round(float(np.median(epoch)), 3),
            estimator_samples_per_s=round(n / fit_s),
            hand_written_seconds=round(hand_s, 3),
            hand_written_samples_per_s=round(n / hand_s),
            fit_over_hand_written=round(fit_s / hand_s, 3),
            hand_written_fused_adam_seconds=round(fused_s, 3),
            fit_over_hand_written_fused_adam=round(fit_s / fused_s, 3),
            # fastest against fastest: each side's timing least disturbed by the machine
            fastest_fit_over_fastest_fused_adam=round(min(fit) / min(fused), 3),
            # each repeat's own ratio (its two timings ran moments apart), then the median
            paired_fit_over_fused_adam=round(paired_median(fit, fused), 3),
            fit_seconds_each=[round(t, 3) for t in fit],
            hand_written_fused_adam_seconds_each=[round(t, 3) for t in fused],
        )

    est = NeuMFRecommender(
        max_epochs=1, early_stopping=False, device=device, random_state=args.seed
    )
    loader, default = [], []
    for _ in range(args.repeats):
        if torch.device(device).type == "cpu":
            loader.append(
                dataloader_samples_per_s(
                    X[:, 0] + 1, X[:, 1] + 1, args.dataloader_samples, args.seed
                )
            )
        default.append(n / timed(lambda: est.fit(X), device)[0])
    default_rate = float(np.median(default))
    if loader:
        rate = float(np.median(loader))
        emit(
            per_sample_dataloader_batch_size=256,
            samples_per_s=round(rate),
            samples_per_s_each=[round(r) for r in loader],
        )
    emit(
        defaults=True,
        batch_size=est.net_.batch_size,  # what "auto" chose for this data
        lr=est.net_.lr,
        fit_seconds_one_epoch=round(n / default_rate, 3),
        samples_per_s=round(default_rate),
        samples_per_s_each=[round(r) for r in default],
        over_per_sample_dataloader=round(default_rate / rate, 2) if loader else None,
        # fastest against fastest, as for the fit ratios above
        fastest_over_fastest_per_sample_dataloader=(
            round(max(default) / max(loader), 2) if loader else None
        ),
        paired_over_per_sample_dataloader=(
            round(paired_median(default, loader), 2) if loader else None
        ),
    )

    # the top 10 items for every user, as a served model computes them
    timings = [timed(lambda: est.recommend(est.users_, k=10), device) for _ in range(args.repeats)]
    rank = [seconds for seconds, _ in timings]
    emit(
        rank_all_items_all_users_seconds=round(float(np.median(rank)), 3),
        rank_seconds_each=[round(t, 3) for t in rank],
        users=len(est.users_),
        items=len(est.items_),
        shape=list(timings[-1][1].shape),
    )


if __name__ == "__main__":
    main()
