"""Peak memory of ``NeuMFRecommender.fit`` beyond its input, at growing data sizes.

For each ``--positives`` count, a fresh process builds synthetic data with
ML-1M's 3,706 items and 166 interactions per user (as ``throughput.py``
does; 6,040 users make 1M positives, larger counts more users), then fits one epoch of
``NeuMFRecommender`` with 4 negatives per positive. On CPU it reads the
process's resident-set high-water mark (``VmHWM``), reset just before
``fit``; on CUDA ``torch.cuda.max_memory_allocated``. The peak beyond what
the process held before ``fit`` is divided by the number of positives: the
epoch's index tensors grow with the data, the model does not. Prints one
JSON line per size.

    python benchmarks/memory.py [--device cuda] [--positives 1000000 4000000]
"""

import argparse
import json
import subprocess
import sys
import time

from _common import peak_rss, reset_peak_rss


def _one(positives, device, batch_size, early_stopping):
    import torch
    from throughput import PER_USER, ml1m_sized

    from sklrec import NeuMFRecommender

    X, _ = ml1m_sized(n_users=-(-positives // PER_USER))
    model = NeuMFRecommender(
        batch_size=batch_size, max_epochs=1, early_stopping=early_stopping, device=device,
        random_state=0,
    )  # fmt: skip
    model.fit(X[:2000])  # imports, allocator pools and first kernels
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        before = reset_peak_rss()
    start = time.perf_counter()
    model.fit(X)
    seconds = time.perf_counter() - start
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = peak_rss()
    extra = peak - before
    return {
        "benchmark": "memory",
        "device": device,
        "positives": len(X),
        "batch_size": batch_size,
        "early_stopping": early_stopping,
        "training_samples": len(X) * 5,
        "fit_peak_beyond_input_mib": round(extra / 2**20, 1),
        "bytes_per_positive": round(extra / len(X), 1),
        "fit_seconds": round(seconds, 2),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=8192)
    parser.add_argument("--positives", type=int, nargs="+", default=[1_000_000, 4_000_000])
    parser.add_argument("--early-stopping", action="store_true")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one is not None:
        one = _one(args.one, args.device, args.batch_size, args.early_stopping)
        print(json.dumps(one), flush=True)
        return
    for positives in args.positives:
        # a fresh process per size, so that one size's peak cannot hide another's
        command = [sys.executable, __file__, "--one", str(positives), "--device", args.device]
        command += ["--batch-size", str(args.batch_size)]
        command += ["--early-stopping"] * args.early_stopping
        subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
