"""Helpers shared by the benchmark scripts (run as ``python benchmarks/<script>.py``)."""

import ast


def parse_sets(pairs):
    """Turn ``["key=value", ...]`` from ``--set`` into estimator parameters.

    Values are read as Python literals where they parse (``300``, ``1e-3``,
    ``(64, 32)``, ``False``) and kept as strings otherwise (``item``).
    """
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set takes param=value; got {pair!r}")
        try:
            params[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[key] = value
    return params


def _status_kib(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def reset_peak_rss():
    """Reset the resident-set high-water mark (Linux); return the resident set now, bytes."""
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")  # resets VmHWM to the current resident set
    return _status_kib("VmRSS") * 1024


def peak_rss():
    """Return this process's resident-set high-water mark (``VmHWM``), bytes."""
    return _status_kib("VmHWM") * 1024
