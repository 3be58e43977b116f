#!/usr/bin/env bash
# Everything that needs a GPU, in one run of a few minutes: the tests marked
# `gpu` (skipped without CUDA), then the GPU figures of docs/benchmarks.md.
#
#     bash benchmarks/gpu_checks.sh [OUTDIR]
#
# Run from the repository root with sklrec importable (installed, or the root on
# PYTHONPATH) and a CUDA build of torch. Each step has its own time limit, so
# one that hangs cannot take the others with it. Logs and JSON lines go to
# OUTDIR (default: gpu-checks/); the figures are also printed.
set -u
out=${1:-gpu-checks}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
py=${PYTHON:-python3}

step() {  # step NAME SECONDS CMD...: run CMD with a limit, log to $out/NAME.log
    local name=$1 limit=$2
    shift 2
    echo "== $name: $*"
    timeout "$limit" "$@" > "$out/$name.log" 2>&1
    local rc=$?
    tail -n 40 "$out/$name.log"
    echo "== $name: exit $rc"
    return 0
}

$py - <<'EOF' || exit 1
import sklearn, skorch, torch
print("torch", torch.__version__, "sklearn", sklearn.__version__, "skorch", skorch.__version__)
if not torch.cuda.is_available():
    raise SystemExit("CUDA is not available: nothing to check here")
print("device", torch.cuda.get_device_name(0))
EOF

step gpu_tests 180 $py -m pytest -q -m gpu -p no:cacheprovider -o addopts="" tests
# the issue's figure: a 5M-sample epoch at batch 65,536 (and the default batch beside it)
step throughput 200 $py benchmarks/throughput.py --device cuda --batch-sizes 65536,8192 --repeats 3
step fit_overhead 60 $py benchmarks/fit_overhead.py --device cuda --repeats 5
step memory 100 $py benchmarks/memory.py --device cuda
step serving 90 $py benchmarks/serving.py --device cuda
step table_scaling 60 $py benchmarks/table_scaling.py --device cuda --batch-sizes 65536 --steps 20
