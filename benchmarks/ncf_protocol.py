"""The NCF evaluation protocol for any sklrec recommender.

Leave-last-out per user (by timestamp), every rating a positive, each
held-out item ranked against 99 negatives drawn with a fixed seed among the
items the user never rated. HR@10 and NDCG@10 are measured once, on the model
as ``fit`` leaves it (its last epoch, or the epoch its early stopping chose on
a split of the *training* data), never at the best epoch on the test set.

``--data`` is either a directory holding the NCF paper's own split
(``ml-1m.train.rating`` / ``ml-1m.test.rating``, as written by
``get_movielens.sh`` under ``ncf-official/``), or a ratings file that
:func:`sklrec.datasets.load_movielens` reads, split leave-last-out here.

Prints one JSON line. ``--trace`` adds the test HR@10 after every epoch (and
before the first one) for diagnosis: a curve to read, never a figure to report.
``--recency-weights S`` fits with ``sample_weight=recency_weights(X_train,
time_column=2, strength=S)``: each user's recent training interactions weigh
more (the timestamps of the training rows only; the model is unchanged).
``--search-strength S1,S2,...`` picks the strength from the training rows
alone: ``GridSearchCV(RecencyWeighted(model, time_column=2))`` with an inner
leave-last-out split of ``X_train`` (HR@10 against 99 sampled negatives),
then refits the best on all of ``X_train``.

    python benchmarks/ncf_protocol.py --data /tmp/sklrec-data/ncf-official --model neumf
    python benchmarks/ncf_protocol.py --data /tmp/sklrec-data/ml-100k.tsv --model mf
    python benchmarks/ncf_protocol.py --data /tmp/sklrec-data/ml-100k.tsv --set n_iter_no_change=5
    python benchmarks/ncf_protocol.py --data /tmp/sklrec-data/ncf-official --recency-weights 2
    python benchmarks/ncf_protocol.py --data /tmp/sklrec-data/ml-100k.tsv --search-strength 0,1,2,4
"""

import argparse
import json
import time
from pathlib import Path

import torch
from _common import parse_sets
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import Callback

from sklrec import (
    GMFRecommender,
    MFRecommender,
    MLPRecommender,
    NeuMFRecommender,
    PopularityRecommender,
)
from sklrec.compose import RecencyWeighted
from sklrec.datasets import load_movielens
from sklrec.metrics import evaluate_ranking, make_ranking_scorer
from sklrec.model_selection import LeaveLastOut
from sklrec.preprocessing import recency_weights

MODELS = {
    "neumf": NeuMFRecommender,
    "gmf": GMFRecommender,
    "mlp": MLPRecommender,
    "mf": MFRecommender,
    "mf-bpr": lambda **kw: MFRecommender(loss="bpr", **kw),
    "popularity": PopularityRecommender,
}


def load_split(path):
    path = Path(path)
    if path.is_dir():
        X_train, _ = load_movielens(path / "ml-1m.train.rating")
        X_test, _ = load_movielens(path / "ml-1m.test.rating")
        return X_train, X_test, "ncf-official ml-1m"
    X, _ = load_movielens(path)
    train, test = next(LeaveLastOut(time_column=2).split(X))
    return X[train], X[test], f"{path.name} leave-last-out"


class TestTrace(Callback):
    """Record the test HR@10 before training (``start``) and after every epoch.

    A pre-trained NeuMF passes its callbacks to the NeuMF phase only, so there
    ``start`` is the model loaded from GMF and MLP.
    """

    def __init__(self, X_test, seed):
        self.X_test = X_test
        self.seed = seed

    def _hr(self, net):
        scores = evaluate_ranking(
            net.recommender_, self.X_test, k=10, n_negatives=99, random_state=self.seed,
            metrics=("hit_rate",),
        )  # fmt: skip
        return round(scores["hit_rate"], 4)

    def on_train_begin(self, net, **kwargs):
        self.start_, self.epochs_ = self._hr(net), []

    def on_epoch_end(self, net, **kwargs):
        self.epochs_.append(self._hr(net))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", choices=MODELS, default="neumf")
    parser.add_argument("--embedding-dim", type=int)
    parser.add_argument("--hidden-dims", type=lambda s: tuple(int(v) for v in s.split(",")))
    parser.add_argument("--pretrain", action="store_true")
    parser.add_argument("--max-epochs", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--weight-decay", type=float)
    parser.add_argument("--n-negatives", type=int, help="training negatives per positive")
    parser.add_argument("--early-stopping", choices=("auto", "on", "off"))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--eval-negatives", type=int, default=99)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument(
        "--set", action="append", default=[], help="param=value, any other model parameter"
    )
    parser.add_argument(
        "--trace", action="store_true", help="also print the test HR@10 of every epoch"
    )
    parser.add_argument(
        "--recency-weights",
        type=float,
        metavar="STRENGTH",
        help="fit with sample_weight=recency_weights(X_train, 2, strength=STRENGTH)",
    )
    parser.add_argument(
        "--search-strength",
        type=lambda s: [float(v) for v in s.split(",")],
        metavar="S1,S2,...",
        help="choose the recency strength by an inner leave-last-out search on X_train",
    )
    args = parser.parse_args(argv)
    if args.search_strength and (args.recency_weights is not None or args.trace):
        parser.error("--search-strength excludes --recency-weights and --trace")
    if args.threads:
        torch.set_num_threads(args.threads)

    X_train, X_test, protocol = load_split(args.data)
    params = {
        "embedding_dim": args.embedding_dim,
        "hidden_dims": args.hidden_dims,
        "pretrain": args.pretrain or None,
        "max_epochs": args.max_epochs,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "weight_decay": args.weight_decay,
        "n_negatives": args.n_negatives,
        "early_stopping": {"on": True, "off": False}.get(args.early_stopping, args.early_stopping),
    }
    params = {k: v for k, v in params.items() if v is not None}
    params.update(parse_sets(args.set))
    trace = TestTrace(X_test, args.seed) if args.trace else None
    if trace is not None:
        params["callbacks"] = [("test_trace", trace)]
    if args.model != "popularity":
        params.update(device=args.device, random_state=args.seed)
    model = MODELS[args.model](**params)

    weights = None
    if args.recency_weights is not None:
        weights = recency_weights(X_train, time_column=2, strength=args.recency_weights)
    search = None
    if args.search_strength:
        search = GridSearchCV(
            RecencyWeighted(model, time_column=2),
            {"strength": args.search_strength},
            scoring=make_ranking_scorer("hit_rate", k=10, n_negatives=99, random_state=args.seed),
            cv=LeaveLastOut(time_column=2),
        )
    start = time.perf_counter()
    if search is None:
        model.fit(X_train, sample_weight=weights)
    else:
        model = search.fit(X_train).best_estimator_.estimator_
    fit_seconds = time.perf_counter() - start
    scores = evaluate_ranking(
        model,
        X_test,
        metrics=("hit_rate", "ndcg"),
        k=10,
        n_negatives=args.eval_negatives,
        random_state=args.seed,
    )
    out = {
        "benchmark": "ncf_protocol",
        "protocol": protocol,
        "model": args.model,
        "params": {k: v for k, v in model.get_params().items() if k != "callbacks"},
        "n_train": len(X_train),
        "n_test": len(X_test),
        "HR@10": round(scores["hit_rate"], 4),
        "NDCG@10": round(scores["ndcg"], 4),
        "fit_seconds": round(fit_seconds, 2),
        "recency_weights": args.recency_weights,
        **(
            {}
            if search is None
            else {
                "searched_strength": search.best_params_["strength"],
                "inner_hr@10": [round(v, 4) for v in search.cv_results_["mean_test_score"]],
            }
        ),
        "torch_threads": torch.get_num_threads(),
        "device": args.device,
    }
    if hasattr(model, "net_"):
        hist = model.net_.history
        epochs = len(hist)
        samples = len(X_train) * (model.n_negatives + (model.get_params().get("loss") != "bpr"))
        out["epochs"] = epochs
        # what "auto" resolved to
        out["net_batch_size"], out["net_lr"] = model.net_.batch_size, model.net_.lr
        out["train_samples_per_s"] = round(samples * epochs / sum(hist[:, "dur"]))
        if "valid_ndcg@10" in hist[-1]:
            out["valid_ndcg@10"] = [round(v, 4) for v in hist[:, "valid_ndcg@10"]]
    if trace is not None:
        out["trace_test_hr@10"] = {"start": trace.start_, "epochs": trace.epochs_}
    print(json.dumps(out), flush=True)
    return out


if __name__ == "__main__":
    main()
