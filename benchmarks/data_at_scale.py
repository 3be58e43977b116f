"""Time and peak memory of making and loading interaction data at growing sizes.

* ``--sizes USERSxITEMSxPER_USER ...``: ``make_interactions`` (8 groups) and
  ``make_ratings`` with ``random_state=0``. The default sizes are
  MovieLens-1M's, a 30,000 x 10,000 catalogue, and MovieLens-20M's (about
  20M rows).
* ``--files PATH ...``: ``load_movielens`` on MovieLens files you have.
* ``--csv-rows N``: ``load_movielens`` on a ``ratings.csv`` of ``N`` random
  rows in the layout of MovieLens-20M/25M, written to a temporary folder
  first (25,000,000 is MovieLens-25M's size).

Each call runs in a fresh process, which imports sklrec, resets its
resident-set high-water mark (``VmHWM``), makes the call and prints one JSON
line: the rows, the seconds, and the peak memory beyond what the process
held before the call (the returned arrays included).

    python benchmarks/data_at_scale.py [--sizes 6040x3706x166 ...] [--files PATH ...]
                                       [--csv-rows 25000000]
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import peak_rss, reset_peak_rss

SIZES = ("6040x3706x166", "30000x10000x100", "138493x26744x144")
GENERATORS = ("interactions", "ratings")


def _call(what, arg):
    """Return ``(rows, description)`` of one call: a generator's or a file's."""
    from sklrec import datasets

    if what == "load":
        X, _ = datasets.load_movielens(arg)
        return len(X), {"file": Path(arg).name}
    n_users, n_items, per_user = (int(part) for part in arg.split("x"))
    if what == "interactions":
        X, _ = datasets.make_interactions(
            n_users, n_items, n_groups=8, interactions_per_user=per_user, random_state=0
        )
    else:
        X, _ = datasets.make_ratings(n_users, n_items, ratings_per_user=per_user, random_state=0)
    return len(X), {"generator": what, "n_users": n_users, "n_items": n_items}


def _one(what, arg):
    import sklrec  # noqa: F401  (imported before the peak is reset)

    before = reset_peak_rss()
    start = time.perf_counter()
    rows, row = _call(what, arg)
    seconds = time.perf_counter() - start
    peak = peak_rss() - before
    return {
        "benchmark": "data_at_scale",
        **row,
        "rows": rows,
        "seconds": round(seconds, 2),
        "peak_beyond_import_mib": round(peak / 2**20, 1),
    }


def write_ratings_csv(path, n_rows, chunk=1_000_000):
    """Write ``n_rows`` random ratings in MovieLens-25M's ``ratings.csv`` layout."""
    rng = np.random.default_rng(0)
    with open(path, "w") as f:
        f.write("userId,movieId,rating,timestamp\n")
        for start in range(0, n_rows, chunk):
            n = min(chunk, n_rows - start)
            columns = (
                rng.integers(1, 162_542, n).astype(str),
                rng.integers(1, 209_172, n).astype(str),
                (rng.integers(1, 11, n) / 2).astype(str),
                rng.integers(789_652_009, 1_574_327_703, n).astype(str),
            )
            rows = columns[0]
            for column in columns[1:]:
                rows = np.char.add(np.char.add(rows, ","), column)
            f.write("\n".join(rows.tolist()) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="*", default=None)
    parser.add_argument("--generators", nargs="+", choices=GENERATORS, default=list(GENERATORS))
    parser.add_argument("--files", nargs="+", default=[])
    parser.add_argument("--csv-rows", type=int)
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one is not None:
        print(json.dumps(_one(*args.one)), flush=True)
        return
    sizes = args.sizes
    if sizes is None:  # the default sizes, unless only files were asked for
        sizes = [] if args.files or args.csv_rows else list(SIZES)
    calls = [(generator, size) for size in sizes for generator in args.generators]
    calls += [("load", path) for path in args.files]
    with tempfile.TemporaryDirectory() as tmp:
        if args.csv_rows:
            path = Path(tmp) / "ratings.csv"
            write_ratings_csv(path, args.csv_rows)
            calls.append(("load", str(path)))
        for what, arg in calls:
            # a fresh process per call, so that one call's peak cannot hide another's
            subprocess.run([sys.executable, __file__, "--one", what, arg], check=True)


if __name__ == "__main__":
    main()
