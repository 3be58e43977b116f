"""Time and peak memory of the synthetic-data generators at growing sizes.

For each ``--sizes`` entry ``USERSxITEMSxPER_USER``, a fresh process imports
sklrec, resets its resident-set high-water mark (``VmHWM``) and calls
``make_interactions`` (8 groups) or ``make_ratings`` with ``random_state=0``.
It prints one JSON line per size and generator: the rows made, the seconds,
and the peak memory beyond what the process held before the call (the
returned arrays included). The default sizes are MovieLens-1M's, a 30,000 x
10,000 catalogue, and MovieLens-20M's (about 20M rows).

    python benchmarks/generators.py [--sizes 6040x3706x166 ...] [--generators interactions]
"""

import argparse
import json
import subprocess
import sys
import time

from memory import _status_kib

SIZES = ("6040x3706x166", "30000x10000x100", "138493x26744x144")
GENERATORS = ("interactions", "ratings")


def _one(size, generator):
    from sklrec import datasets

    n_users, n_items, per_user = (int(part) for part in size.split("x"))
    make = {"interactions": datasets.make_interactions, "ratings": datasets.make_ratings}
    params = {"interactions": {"n_groups": 8, "interactions_per_user": per_user}}
    params["ratings"] = {"ratings_per_user": per_user}
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # resets VmHWM to the current resident set
    before = _status_kib("VmRSS") * 1024
    start = time.perf_counter()
    X, _ = make[generator](n_users, n_items, random_state=0, **params[generator])
    seconds = time.perf_counter() - start
    peak = _status_kib("VmHWM") * 1024 - before
    return {
        "benchmark": "generators",
        "generator": generator,
        "n_users": n_users,
        "n_items": n_items,
        "rows": len(X),
        "seconds": round(seconds, 2),
        "peak_beyond_import_mib": round(peak / 2**20, 1),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", nargs="+", default=list(SIZES))
    parser.add_argument("--generators", nargs="+", choices=GENERATORS, default=list(GENERATORS))
    parser.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one is not None:
        print(json.dumps(_one(*args.one)), flush=True)
        return
    for size in args.sizes:
        for generator in args.generators:
            # a fresh process per call, so that one call's peak cannot hide another's
            subprocess.run([sys.executable, __file__, "--one", size, generator], check=True)


if __name__ == "__main__":
    main()
