"""Small helpers shared across sklrec: seeding, devices, state rollback."""

import functools
import numbers
import os
import sys
import threading
from contextlib import contextmanager

import numpy as np
import torch
from sklearn.utils import check_random_state
from skorch.callbacks import Callback

__all__ = [
    "check_callbacks",
    "check_device",
    "check_int",
    "check_real",
    "draw_seed",
    "external_stacklevel",
    "is_auto",
    "keep_state_on_error",
    "seeded",
]


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def external_stacklevel():
    """Return the ``stacklevel`` of ``warnings.warn`` that names the first caller outside sklrec.

    Call it as an argument of ``warnings.warn``: level 1 is the function
    issuing the warning, and each sklrec frame above it adds one, so that
    the warning points at the user's line however deep inside sklrec
    (``predict``, a scorer, ``evaluate_ranking``) it was raised.
    """
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(
        _PACKAGE_DIR
    ):
        frame, level = frame.f_back, level + 1
    return level


def is_auto(value):
    """Whether a parameter is the string ``"auto"`` (and not an array or a number)."""
    return isinstance(value, str) and value == "auto"


def _or_auto(auto):
    return '"auto" or ' if auto else ""


def check_int(value, name, minimum=1, *, auto=False):
    """Return ``value`` as an int if it is an integer (not a bool) >= ``minimum``.

    With ``auto=True`` the string ``"auto"`` passes too and is returned as is.
    """
    if auto and is_auto(value):
        return value
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{name} must be {_or_auto(auto)}an integer >= {minimum}; got {value!r}")
    return int(value)


def check_bool(value, name):
    """Return ``value`` as a bool if it is ``True`` or ``False`` (NumPy's too)."""
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False; got {value!r}")
    return bool(value)


def check_sizes(value, name):
    """Return ``value`` as a tuple of ints if it is a non-empty 1-d sequence of integers >= 1.

    Otherwise raise a ``ValueError`` naming ``name`` (a bare integer, a float
    size or a nested list are errors, not silently converted).
    """
    try:
        sizes = () if isinstance(value, (str, bytes)) else tuple(value)
    except TypeError:  # not iterable: a bare number
        sizes = ()
    if not sizes or any(
        not isinstance(d, numbers.Integral) or isinstance(d, bool) or d < 1 for d in sizes
    ):
        raise ValueError(
            f"{name} must be a non-empty sequence of positive integers (layer sizes); "
            f"got {value!r}"
        )
    return tuple(int(d) for d in sizes)


def check_callbacks(callbacks):
    """Check that ``callbacks`` is None or a list of skorch callbacks.

    Each entry is a :class:`skorch.callbacks.Callback` instance or subclass,
    or a ``(name, callback)`` pair, the forms skorch takes.
    """
    if callbacks is None:
        return
    if not isinstance(callbacks, (list, tuple)):
        raise ValueError(
            f"callbacks must be None or a list of skorch callbacks; got {callbacks!r}"
        )
    for entry in callbacks:
        if not is_callback(_unwrap_callback(entry), Callback):
            raise ValueError(
                "callbacks must hold skorch Callback instances or classes, or (name, callback) "
                f"pairs; got {entry!r}"
            )


def _unwrap_callback(entry):
    # skorch takes a callback alone or as a (name, callback) pair
    if isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[0], str):
        return entry[1]
    return entry


def is_callback(callback, kind):
    """Whether ``callback`` is a ``kind`` instance or subclass (skorch takes either)."""
    if isinstance(callback, type):
        return issubclass(callback, kind)
    return isinstance(callback, kind)


def callback_objects(callbacks):
    """Return the callbacks of a checked list, unwrapped from ``(name, callback)`` pairs."""
    return [_unwrap_callback(entry) for entry in callbacks or ()]


def check_real(value, name, low, high=np.inf, *, low_closed=False, high_closed=False, auto=False):
    """Return ``value`` as a float if it is a real number (not a bool) in the interval.

    The interval runs from ``low`` to ``high``, each end open unless said
    closed; NaN is never inside. Otherwise raise a ``ValueError`` naming it.
    With ``auto=True`` the string ``"auto"`` passes too and is returned as is.
    """
    if auto and is_auto(value):
        return value
    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    above = real and (value >= low if low_closed else value > low)
    if not (above and (value <= high if high_closed else value < high)):
        interval = f"{'[' if low_closed else '('}{low}, {high}{']' if high_closed else ')'}"
        raise ValueError(f"{name} must be {_or_auto(auto)}a number in {interval}; got {value!r}")
    return float(value)


def keep_state_on_error(method):
    """Restore the estimator's attributes if ``method`` raises.

    A fitted model that is given bad input must stay as it was; validation
    sets ``n_features_in_`` and friends early, so roll everything back.
    """

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        state = self.__dict__.copy()
        try:
            return method(self, *args, **kwargs)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(state)
            raise

    return wrapper


def check_device(device):
    """Return ``torch.device(device)`` or raise a ``ValueError`` naming it."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(
            f"unknown device {device!r}: sklrec trains and scores on 'cpu' and 'cuda' "
            "devices ('cuda:1' picks a GPU)"
        ) from None
    if dev.type == "meta":
        raise ValueError(f"device={device!r} holds no data, so nothing can train on it")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} was asked for, but CUDA is not available")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} was asked for, but this machine has "
                f"{torch.cuda.device_count()} CUDA device(s)"
            )
    if dev.type not in ("cpu", "cuda"):
        # sampling and the metrics compute in float64, which MPS lacks; the other
        # accelerators are untested
        raise ValueError(
            f"device={device!r}: sklrec trains and scores on 'cpu' and 'cuda' devices only"
        )
    return dev


def draw_seed(random_state):
    """Return a 31-bit seed from ``random_state``, leaving global RNG state alone."""
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1)[0] >> 1)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


# torch has one global RNG per process, which module initialisation and dropout
# draw from: fits in threads of one process (Optuna's n_jobs, joblib's threading
# backend) take turns through their seeded blocks, or each would draw from another's
# seed and restore another's state
_SEEDED_LOCK = threading.RLock()


@contextmanager
def seeded(seed, device):
    """Seed torch inside the block and restore the global RNG state after it.

    One thread at a time holds a seeded block.
    """
    device = torch.device(device)
    devices = []
    if device.type == "cuda":  # plain "cuda" is the current device, not always cuda:0
        devices = [torch.cuda.current_device() if device.index is None else device.index]
    with _SEEDED_LOCK, torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


# Floats one scoring chunk may hold (128 MiB of float32): pairs x floats per pair
_SCORE_BUDGET = 2**25


def pairs_per_chunk(floats_per_pair):
    """Return the pairs one scoring call may take, holding at most ``_SCORE_BUDGET`` floats."""
    return max(1, _SCORE_BUDGET // max(1, floats_per_pair))


def scored_in_chunks(score, users, items, floats_per_pair):
    """Return ``score(users, items)`` of aligned index tensors, scored a chunk at a time."""
    step = pairs_per_chunk(floats_per_pair)
    parts = [score(users[s : s + step], items[s : s + step]) for s in range(0, len(users), step)]
    return torch.cat(parts)
