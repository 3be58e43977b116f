"""Synthetic interaction data with a known answer, and MovieLens readers.

MovieLens may not be redistributed, so sklrec ships no copy of it:
:func:`fetch_movielens` downloads a release from GroupLens into a cache (as
``sklearn.datasets.fetch_*`` do) and checks its checksum, and
:func:`load_movielens` reads the files a user already has.
"""

import hashlib
import io
import os
import shutil
import urllib.request
import warnings
import zipfile
from pathlib import Path

import numpy as np
from sklearn.utils import check_random_state

from ._utils import check_int, check_real

__all__ = ["fetch_movielens", "load_movielens", "make_interactions", "make_ratings"]


# entries of a users x items draw made at a time (32 MiB of float64), so that the
# generators' memory stays bounded whatever the size of the catalogue. numpy fills a
# 2-d draw row by row, so drawing it in slabs of rows gives the same numbers.
_DRAW_ENTRIES = 2**22


def _row_slabs(n_rows, n_cols):
    """Slices of ``range(n_rows)`` holding about ``_DRAW_ENTRIES`` entries each."""
    step = max(1, _DRAW_ENTRIES // max(n_cols, 1))
    return [slice(start, min(start + step, n_rows)) for start in range(0, n_rows, step)]


def _timestamps(n_users, per_user, rng):
    """Return a random order of each user's rows, as integer timestamps."""
    return (np.argsort(rng.random((n_users, per_user)), axis=1) + 1_000_000).ravel()


def make_interactions(
    n_users=100,
    n_items=50,
    *,
    n_groups=4,
    interactions_per_user=10,
    noise=0.1,
    random_state=None,
):
    """Implicit feedback with planted groups that popularity cannot recover.

    Users and items fall into ``n_groups`` groups. Each user interacts with
    ``interactions_per_user`` distinct items, taken from its own group with
    probability ``1 - noise`` and from the whole catalogue otherwise, in both
    cases in proportion to a Zipf-like item popularity. A model that learns
    the groups ranks a user's held-out items high; a popularity ranking only
    finds the share of them that happens to be globally popular.

    Parameters
    ----------
    n_users : int, default=100
    n_items : int, default=50
    n_groups : int, default=4
        Must leave each group at least ``interactions_per_user`` items.
    interactions_per_user : int, default=10
    noise : float, default=0.1
        Probability weight of the out-of-group items, in [0, 1].
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    X : ndarray of shape (n_users * interactions_per_user, 3)
        Columns: user id, item id, timestamp (a random order per user, so
        that :class:`~sklrec.model_selection.LeaveLastOut` holds out a
        random item of each user).
    y : ndarray of shape (n_users * interactions_per_user,)
        All ones: every row is a positive interaction.

    Examples
    --------
    >>> from sklrec.datasets import make_interactions
    >>> X, y = make_interactions(n_users=10, n_items=20, n_groups=2, random_state=0)
    >>> X.shape, y.shape
    ((100, 3), (100,))
    """
    n_users = check_int(n_users, "n_users")
    n_items = check_int(n_items, "n_items")
    n_groups = check_int(n_groups, "n_groups")
    per_user = check_int(interactions_per_user, "interactions_per_user")
    noise = check_real(noise, "noise", 0, 1, low_closed=True, high_closed=True)
    if n_items // n_groups < per_user:
        raise ValueError(
            f"each of the n_groups={n_groups} groups of the {n_items} items must hold at "
            f"least interactions_per_user={per_user} items"
        )
    rng = check_random_state(random_state)
    user_group = rng.permutation(n_users) % n_groups
    item_group = rng.permutation(n_items) % n_groups
    popularity = 1.0 / (1.0 + rng.permutation(n_items)) ** 0.8
    background = noise * popularity / popularity.sum()  # every user's out-of-group weight
    items = np.empty((n_users, per_user), dtype=np.intp)
    for rows in _row_slabs(n_users, n_items):
        within = popularity * (item_group[None, :] == user_group[rows, None])
        within /= within.sum(axis=1, keepdims=True)
        weights = (1 - noise) * within + background
        # Gumbel top-k: per-user weighted draw of distinct items in one shot
        with np.errstate(divide="ignore"):
            keys = np.log(weights) - np.log(-np.log(rng.random(weights.shape)))
        items[rows] = np.argpartition(-keys, per_user - 1, axis=1)[:, :per_user]
    users = np.repeat(np.arange(n_users), per_user)
    X = np.column_stack([users, items.ravel(), _timestamps(n_users, per_user, rng)])
    return X.astype(np.int64), np.ones(len(X))


def make_ratings(
    n_users=100,
    n_items=50,
    *,
    n_factors=3,
    ratings_per_user=20,
    noise=0.3,
    random_state=None,
):
    """Explicit 1-5 ratings from a planted low-rank model with biases.

    ``rating = clip(round(3.5 + b_u + b_i + p_u . q_i + noise), 1, 5)`` for
    ``ratings_per_user`` distinct random items per user.

    Parameters
    ----------
    n_users : int, default=100
    n_items : int, default=50
    n_factors : int, default=3
        Rank of the planted interaction term.
    ratings_per_user : int, default=20
        At most ``n_items``.
    noise : float, default=0.3
        Standard deviation of the Gaussian noise before rounding.
    random_state : int, RandomState instance or None, default=None

    Returns
    -------
    X : ndarray of shape (n_users * ratings_per_user, 3)
        Columns: user id, item id, timestamp.
    y : ndarray of shape (n_users * ratings_per_user,)
        Ratings in {1, ..., 5}.

    Examples
    --------
    >>> from sklrec.datasets import make_ratings
    >>> X, y = make_ratings(n_users=20, n_items=30, random_state=0)
    >>> X.shape, float(y.min()) >= 1, float(y.max()) <= 5
    ((400, 3), True, True)
    """
    n_users = check_int(n_users, "n_users")
    n_items = check_int(n_items, "n_items")
    n_factors = check_int(n_factors, "n_factors")
    per_user = check_int(ratings_per_user, "ratings_per_user")
    noise = check_real(noise, "noise", 0, low_closed=True)
    if per_user > n_items:
        raise ValueError(f"ratings_per_user={per_user} is more than n_items={n_items}")
    rng = check_random_state(random_state)
    items = np.empty((n_users, per_user), dtype=np.intp)
    for rows in _row_slabs(n_users, n_items):
        draw = rng.random((rows.stop - rows.start, n_items))
        items[rows] = np.argpartition(draw, per_user - 1, axis=1)[:, :per_user]
    users = np.repeat(np.arange(n_users), per_user)
    items = items.ravel()
    p = rng.normal(scale=0.8 / np.sqrt(n_factors), size=(n_users, n_factors))
    q = rng.normal(scale=0.8 / np.sqrt(n_factors), size=(n_items, n_factors)) * np.sqrt(n_factors)
    b_u, b_i = rng.normal(scale=0.4, size=n_users), rng.normal(scale=0.5, size=n_items)
    raw = 3.5 + b_u[users] + b_i[items] + (p[users] * q[items]).sum(axis=1)
    y = np.clip(np.round(raw + rng.normal(scale=noise, size=len(raw))), 1, 5)
    X = np.column_stack([users, items, _timestamps(n_users, per_user, rng)])
    return X.astype(np.int64), y


# -- MovieLens -----------------------------------------------------------------------
# MD5 sums published by GroupLens next to each archive
_MOVIELENS = {
    "100k": ("ml-100k.zip", "0e33842e24a9c977be4e0107933c0723", "ml-100k/u.data"),
    "1m": ("ml-1m.zip", "c4d9eecfca2ab87c1945afe126590906", "ml-1m/ratings.dat"),
    "10m": ("ml-10m.zip", "ce571fd55effeba0271552578f2648bd", "ml-10M100K/ratings.dat"),
    "20m": ("ml-20m.zip", "cd245b17a1ae2cc31bb14903e1204af3", "ml-20m/ratings.csv"),
    "25m": ("ml-25m.zip", "6b51fb2759a8657d3bfcbfc42b592ada", "ml-25m/ratings.csv"),
}
_BASE_URL = "https://files.grouplens.org/datasets/movielens/"


def get_data_home(data_home=None):
    """Return the cache folder: ``data_home``, ``$SKLREC_DATA`` or ``~/sklrec_data``."""
    home = data_home or os.environ.get("SKLREC_DATA") or Path("~") / "sklrec_data"
    home = Path(home).expanduser()
    home.mkdir(parents=True, exist_ok=True)
    return home


def _md5(path):
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_movielens(variant="100k", *, data_home=None, download_if_missing=True):
    """Download (once) and load a MovieLens ratings release from GroupLens.

    The archive is cached under ``data_home`` and its MD5 sum checked
    against the one GroupLens publishes before it is used.

    Parameters
    ----------
    variant : {"100k", "1m", "10m", "20m", "25m"}, default="100k"
    data_home : str or path, default=None
        Cache folder; defaults to ``$SKLREC_DATA`` or ``~/sklrec_data``.
    download_if_missing : bool, default=True
        If False, raise ``OSError`` when the archive is not cached.

    Returns
    -------
    X : ndarray of shape (n_ratings, 3)
        User id, item id, timestamp.
    y : ndarray of shape (n_ratings,)
        Ratings.
    """
    if variant not in _MOVIELENS:
        raise ValueError(f"unknown MovieLens variant {variant!r}; choose from {list(_MOVIELENS)}")
    name, md5, member = _MOVIELENS[variant]
    archive = get_data_home(data_home) / name
    if not archive.exists():
        if not download_if_missing:
            raise OSError(f"{archive} is not cached and download_if_missing=False")
        partial = archive.with_suffix(".part")
        with urllib.request.urlopen(_BASE_URL + name, timeout=60) as response:
            with open(partial, "wb") as f:
                shutil.copyfileobj(response, f)
        got = _md5(partial)
        if got != md5:
            partial.unlink()
            raise OSError(f"checksum mismatch for {name}: MD5 {got}, expected {md5}")
        partial.replace(archive)
    elif _md5(archive) != md5:
        raise OSError(f"the cached {archive} is corrupt (MD5 mismatch); delete it and retry")
    with zipfile.ZipFile(archive) as z:
        return _parse_ratings(
            lambda: io.TextIOWrapper(z.open(member), encoding="latin-1"), Path(member).name
        )


def load_movielens(path):
    """Read MovieLens ratings from a file a user already has.

    Understands ML-100k ``u.data`` (and the NCF paper's ``.rating`` files),
    ML-1M/10M ``ratings.dat``, ``ratings.csv`` of the later releases,
    RecBole ``.inter`` files, and tab-separated files with a
    ``user item rating timestamp`` header (as written by the project's
    ``get_movielens.sh``).

    Parameters
    ----------
    path : str or path

    Returns
    -------
    X : ndarray of shape (n_ratings, 3)
        User id, item id, timestamp (int64).
    y : ndarray of shape (n_ratings,)
        Ratings (float64).
    """
    path = Path(path)
    return _parse_ratings(lambda: open(path, encoding="latin-1"), path.name)


def _parse_ratings(open_text, filename):
    """Parse a ratings file, read as a stream (never whole) from ``open_text()``.

    ``open_text`` returns a fresh text stream from the start of the file each
    call: one read finds the layout in the first line, a second parses the rows.
    """
    with open_text() as f:
        first = f.readline().rstrip("\r\n")
        if not first.strip() and not any(line.strip() for line in f):
            raise ValueError(f"{filename} is empty")
    double_colon = "::" in first
    if double_colon:
        sep = "\t"
    elif filename.endswith(".csv"):
        sep = ","
    else:
        sep = "\t"
    header = first.replace("::", "\t").split(sep)
    has_header = not header[0].strip().lstrip("-").isdigit()
    columns = [0, 1, 2, 3]
    if has_header:
        names = [h.strip().split(":")[0].lower() for h in header]
        wanted = (
            ("user_id", "userid", "user"),
            ("item_id", "movieid", "itemid", "item", "movie_id"),
            ("rating",),
            ("timestamp",),
        )
        try:
            columns = [next(names.index(a) for a in alias if a in names) for alias in wanted]
        except StopIteration:
            raise ValueError(
                f"{filename}: cannot find user, item, rating and timestamp columns in the "
                f"header {header}"
            ) from None
    try:
        with open_text() as f, warnings.catch_warnings():
            # a file with no rows gets the error below, not numpy's warning as well
            warnings.filterwarnings("ignore", "loadtxt: input contained no data", UserWarning)
            # numpy's parser takes one-character separators: ML-1M's "::" becomes a tab
            lines = (line.replace("::", "\t") for line in f) if double_colon else f
            data = np.loadtxt(
                lines,
                delimiter=sep,
                skiprows=int(has_header),
                usecols=columns,
                dtype=np.float64,
                ndmin=2,
            )
    except ValueError as error:
        raise ValueError(
            f"{filename}: not a ratings file of the known layouts ({error})"
        ) from None
    if not len(data):
        raise ValueError(f"{filename} holds no ratings")
    X = data[:, [0, 1, 3]].astype(np.int64)
    return X, data[:, 2]
