"""What ``fit`` spends outside its training epochs, on data of MovieLens-1M size.

The same synthetic data as ``throughput.py`` (about 1M positives).
``NeuMFRecommender(max_epochs=1)`` is fitted ``--repeats`` times. For each
fit it takes the wall time of ``fit`` less the epoch's own ``dur`` from the
net's history. The rest is the fixed cost of a fit: input checks, id mapping,
the training matrix, the negative-sampling index and the net's construction.
On a GPU this is the part that the device does not speed up: an H100 epoch of
the NCF benchmark is a few tenths of a second. Prints one JSON line.

    python benchmarks/fit_overhead.py [--device cuda] [--repeats 5]
"""

import argparse
import json
import time

import numpy as np
from throughput import ml1m_sized

from sklrec import NeuMFRecommender


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=65536)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    X, _ = ml1m_sized()
    model = NeuMFRecommender(
        batch_size=args.batch_size, max_epochs=1, early_stopping=False, device=args.device,
        random_state=0,
    )  # fmt: skip
    model.fit(X[:2000])  # warm-up: imports and first kernels
    outside = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        model.fit(X)
        outside.append(time.perf_counter() - start - model.net_.history[-1, "dur"])
    print(
        json.dumps(
            {
                "benchmark": "fit_overhead",
                "device": args.device,
                "positives": len(X),
                "outside_epoch_seconds_median": round(float(np.median(outside)), 3),
                "outside_epoch_seconds": [round(s, 3) for s in outside],
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
