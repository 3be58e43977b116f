"""Rating prediction on MovieLens: the AutoRec protocol and 5-fold cross-validation.

* ``--protocol holdout``: a 90/10 random split of the ratings with a fixed
  seed (the AutoRec paper's protocol); every regressor is fitted on the 90 %
  with its defaults (or ``--set`` overrides) and scored once, at the end of
  training, on the 10 %.
* ``--protocol cv``: ``cross_validate`` over 5 shuffled folds with a fixed
  seed, scoring RMSE and MAE.

Where ``scikit-surprise`` imports, its ``SVD`` runs on the very same split
or folds in the same run (``--model surprise-svd``). Prints one JSON line
per model: RMSE, MAE, fit seconds, epochs and seconds per epoch.

``--speed`` instead times I-AutoRec epochs through the estimator beside a
plain dense full-matrix PyTorch loop (the whole item x user matrix held in
memory, rows of it per batch) with the same sizes, in the same run.

    python benchmarks/rating_protocol.py --data /tmp/sklrec-data/ml-1m.tsv
    python benchmarks/rating_protocol.py --data /tmp/sklrec-data/ml-100k.tsv --protocol cv
    python benchmarks/rating_protocol.py --data /tmp/sklrec-data/ml-1m.tsv --model autorec \\
        --set hidden_units=300 --set max_epochs=30
    python benchmarks/rating_protocol.py --data /tmp/sklrec-data/ml-1m.tsv --speed
"""

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from _common import parse_sets
from sklearn.model_selection import KFold, cross_validate, train_test_split

from sklrec import AutoRecRegressor, BiasRegressor, DeepAutoEncoderRegressor, MFRegressor
from sklrec.datasets import load_movielens

MODELS = {
    "bias": BiasRegressor,
    "mf": MFRegressor,
    "autorec": AutoRecRegressor,
    "autorec-user": lambda **kw: AutoRecRegressor(based="user", **kw),
    "deep-ae": DeepAutoEncoderRegressor,
}
SEED = 0


def _rmse_mae(y_true, y_pred):
    error = np.asarray(y_pred, dtype=np.float64) - y_true
    return float(np.sqrt(np.mean(error**2))), float(np.mean(np.abs(error)))


def _surprise_svd(X_train, y_train, X_test):
    """Fit Surprise's SVD (its defaults) and predict ``X_test``; None without surprise."""
    try:
        from surprise import SVD, Dataset, Reader
    except ImportError:
        return None
    import pandas as pd

    frame = pd.DataFrame({"u": X_train[:, 0], "i": X_train[:, 1], "r": y_train})
    reader = Reader(rating_scale=(float(y_train.min()), float(y_train.max())))
    trainset = Dataset.load_from_df(frame, reader).build_full_trainset()
    algo = SVD(random_state=SEED)
    start = time.perf_counter()
    algo.fit(trainset)
    seconds = time.perf_counter() - start
    pred = np.array([algo.predict(u, i).est for u, i in X_test[:, :2]])
    return pred, seconds


def _epochs(model):
    history = getattr(getattr(model, "net_", None), "history", None)
    if not history:
        return None, None
    durations = history[:, "dur"]
    return len(history), float(np.mean(durations))


def run_holdout(name, make, X, y, dataset):
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.1, random_state=SEED)
    row = {"dataset": dataset, "protocol": "90/10 holdout", "model": name}
    if make is None:
        out = _surprise_svd(X_train, y_train, X_test)
        if out is None:
            return None
        pred, seconds = out
        epochs = sec_per_epoch = None
        row["params"] = "surprise.SVD defaults"
    else:
        model = make()
        start = time.perf_counter()
        model.fit(X_train, y_train)
        seconds = time.perf_counter() - start
        pred = model.predict(X_test)
        epochs, sec_per_epoch = _epochs(model)
        row["params"] = {k: v for k, v in model.get_params().items() if k != "callbacks"}
    rmse, mae = _rmse_mae(y_test, pred)
    row.update(rmse=round(rmse, 4), mae=round(mae, 4), fit_seconds=round(seconds, 1))
    row.update(epochs=epochs, seconds_per_epoch=sec_per_epoch and round(sec_per_epoch, 3))
    return row


def run_cv(name, make, X, y, dataset):
    folds = list(KFold(5, shuffle=True, random_state=SEED).split(X))
    row = {"dataset": dataset, "protocol": "5-fold cv", "model": name}
    if make is None:
        rmse, mae, seconds = [], [], []
        for train, test in folds:
            out = _surprise_svd(X[train], y[train], X[test])
            if out is None:
                return None
            r, m = _rmse_mae(y[test], out[0])
            rmse.append(r), mae.append(m), seconds.append(out[1])
        row["params"] = "surprise.SVD defaults"
    else:
        scores = cross_validate(
            make(),
            X,
            y,
            cv=folds,
            scoring=("neg_root_mean_squared_error", "neg_mean_absolute_error"),
        )
        rmse = -scores["test_neg_root_mean_squared_error"]
        mae = -scores["test_neg_mean_absolute_error"]
        seconds = scores["fit_time"]
    row.update(
        rmse=round(float(np.mean(rmse)), 4),
        rmse_std=round(float(np.std(rmse)), 4),
        mae=round(float(np.mean(mae)), 4),
        fit_seconds=round(float(np.mean(seconds)), 1),
    )
    return row


def run_speed(X, y, dataset, epochs):
    """Seconds per I-AutoRec epoch: the estimator beside a dense full-matrix loop."""
    X_train, _, y_train, _ = train_test_split(X, y, test_size=0.1, random_state=SEED)
    model = AutoRecRegressor(max_epochs=epochs, random_state=SEED)
    start = time.perf_counter()
    model.fit(X_train, y_train)
    fit_seconds = time.perf_counter() - start
    _, per_epoch = _epochs(model)

    # the plain implementation: the whole item x user matrix dense, rows sliced per batch
    users = np.unique(X_train[:, 0], return_inverse=True)[1]
    items, item_index = np.unique(X_train[:, 1], return_inverse=True)
    n_users = users.max() + 1
    torch.manual_seed(SEED)
    ratings = torch.zeros(len(items), n_users)
    ratings[item_index, users] = torch.as_tensor(y_train, dtype=torch.float32)
    observed = ratings != 0
    encoder = torch.nn.Linear(n_users, model.hidden_units)
    decoder = torch.nn.Linear(model.hidden_units, n_users)
    params = [*encoder.parameters(), *decoder.parameters()]
    opt = torch.optim.Adam(params, lr=model.lr, weight_decay=model.weight_decay)
    bs = model.batch_size
    durations = []
    for _ in range(epochs):
        start = time.perf_counter()
        for batch in torch.randperm(len(items)).split(bs):
            x, mask = ratings[batch], observed[batch]
            out = decoder(torch.sigmoid(encoder(x)))
            loss = ((out - x) ** 2 * mask).sum() / mask.sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
        durations.append(time.perf_counter() - start)
    return {
        "dataset": dataset,
        "benchmark": "I-AutoRec seconds per epoch",
        "epochs": epochs,
        "estimator_seconds_per_epoch": round(per_epoch, 3),
        "estimator_fit_seconds": round(fit_seconds, 2),
        "dense_loop_seconds_per_epoch": round(float(np.mean(durations)), 3),
        "ratio_estimator_to_dense": round(per_epoch / float(np.mean(durations)), 3),
        "threads": torch.get_num_threads(),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, nargs="+", help="MovieLens rating files")
    parser.add_argument(
        "--model",
        nargs="+",
        default=["bias", "mf", "autorec", "deep-ae", "surprise-svd"],
        choices=[*MODELS, "surprise-svd"],
    )
    parser.add_argument("--protocol", nargs="+", default=["holdout"], choices=["holdout", "cv"])
    parser.add_argument("--set", action="append", default=[], help="param=value for the models")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--speed", action="store_true", help="time I-AutoRec epochs instead")
    parser.add_argument("--speed-epochs", type=int, default=5)
    args = parser.parse_args(argv)
    overrides = parse_sets(args.set)
    warnings.simplefilter("ignore", UserWarning)  # unknown ids in the test split
    for path in args.data:
        X, y = load_movielens(path)
        dataset = Path(path).stem
        if args.speed:
            print(json.dumps(run_speed(X, y, dataset, args.speed_epochs)), flush=True)
            continue
        for name in args.model:
            if name == "surprise-svd":
                make = None
            else:
                params = dict(overrides)
                if name != "bias":
                    params.setdefault("random_state", SEED)
                    params.setdefault("device", args.device)
                make = lambda name=name, params=params: MODELS[name](**params)  # noqa: E731
            for protocol in args.protocol:
                run = run_holdout if protocol == "holdout" else run_cv
                row = run(name, make, X, y, dataset)
                if row is None:
                    print(json.dumps({"model": name, "skipped": "scikit-surprise not installed"}))
                else:
                    print(json.dumps(row, default=str), flush=True)


if __name__ == "__main__":
    main()
