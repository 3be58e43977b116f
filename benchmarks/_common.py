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
