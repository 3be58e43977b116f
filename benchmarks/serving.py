"""Serving a pickled recommender: loading it, its first request and the ones after.

Each model is fitted (one epoch: the figures are about speed, not quality)
on the synthetic data of MovieLens-1M size that ``throughput.py`` uses,
pickled, and then served by a fresh process, as a server starting up would
be. That process times:

* ``import sklrec`` and ``pickle.load`` of the model;
* the first ``recommend([user], k=10)`` and ``predict`` of one row, which
  pay for whatever the first call sets up;
* ``--requests`` single-user ``recommend`` calls and as many one-row
  ``predict`` calls after them, for random users (median and 99th percentile);
* one ``recommend`` of ``--batch-users`` users at once.

Prints one JSON line per model, with the pickle's size.

    python benchmarks/serving.py [--models popularity mf neumf] [--device cuda]
"""

import argparse
import json
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

MODELS = ("popularity", "mf", "neumf")


def _fitted(name, device):
    from throughput import ml1m_sized

    from sklrec import MFRecommender, NeuMFRecommender, PopularityRecommender

    X, _ = ml1m_sized()
    if name == "popularity":
        return PopularityRecommender().fit(X)
    model = {"mf": MFRecommender, "neumf": NeuMFRecommender}[name]
    return model(max_epochs=1, early_stopping=False, device=device, random_state=0).fit(X)


def _milliseconds(seconds):
    return round(1e3 * seconds, 3)


def _serve(path, requests, batch_users):
    """Time a fresh process loading the pickle at ``path`` and answering requests."""
    start = time.perf_counter()
    import sklrec  # noqa: F401  (the import a server pays once)

    imported = time.perf_counter()
    with open(path, "rb") as file:
        model = pickle.load(file)
    loaded = time.perf_counter()
    users, items = model.users_, model.items_
    rng = np.random.default_rng(0)
    asked = users[rng.integers(len(users), size=requests + 1)]
    rows = np.column_stack([asked, items[rng.integers(len(items), size=requests + 1)]])
    width = model.n_features_in_
    rows = np.column_stack([rows, np.zeros((len(rows), width - 2), dtype=rows.dtype)])

    def each(call, args):
        seconds = []
        for arg in args:
            begin = time.perf_counter()
            call(arg)
            seconds.append(time.perf_counter() - begin)
        return np.asarray(seconds)

    first_recommend = each(lambda user: model.recommend([user], k=10), asked[:1])[0]
    first_predict = each(lambda row: model.predict(row[None]), rows[:1])[0]
    recommend = each(lambda user: model.recommend([user], k=10), asked[1:])
    predict = each(lambda row: model.predict(row[None]), rows[1:])
    batch = users[:batch_users]
    begin = time.perf_counter()
    model.recommend(batch, k=10)
    batch_seconds = time.perf_counter() - begin
    return {
        "import_seconds": round(imported - start, 3),
        "load_seconds": round(loaded - imported, 3),
        "first_recommend_ms": _milliseconds(first_recommend),
        "first_predict_ms": _milliseconds(first_predict),
        "recommend_one_user_ms_median": _milliseconds(np.median(recommend)),
        "recommend_one_user_ms_p99": _milliseconds(np.quantile(recommend, 0.99)),
        "predict_one_row_ms_median": _milliseconds(np.median(predict)),
        "predict_one_row_ms_p99": _milliseconds(np.quantile(predict, 0.99)),
        "batch_users": len(batch),
        "recommend_batch_seconds": round(batch_seconds, 3),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--batch-users", type=int, default=1000)
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve is not None:
        print(json.dumps(_serve(args.serve, args.requests, args.batch_users)), flush=True)
        return
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            path = Path(tmp) / f"{name}.pkl"
            with open(path, "wb") as file:
                pickle.dump(_fitted(name, args.device), file)
            # a fresh process, so that the first request pays what a server's would
            command = [sys.executable, __file__, "--serve", str(path)]
            command += ["--requests", str(args.requests), "--batch-users", str(args.batch_users)]
            served = subprocess.run(command, check=True, capture_output=True, text=True)
            row = {"benchmark": "serving", "model": name, "device": args.device}
            row["pickle_mib"] = round(path.stat().st_size / 2**20, 2)
            row.update(json.loads(served.stdout.splitlines()[-1]))
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
