"""Recommender-system splitters with scikit-learn's CV-splitter protocol.

Each splitter yields ``(train_index, test_index)`` arrays of row positions,
so it plugs into ``cross_validate``, ``GridSearchCV`` and friends unchanged.
Users with a single interaction stay entirely in the training part of the
per-user splitters (a test row of a user the model has never seen would
measure cold start, not ranking).
"""

import datetime
import inspect
import numbers
import warnings

import numpy as np
from sklearn.utils import check_random_state

from ._interactions import as_id_column, plain_column, show_ids, unique_inverse
from ._utils import check_int, check_real

__all__ = ["LeaveLastOut", "TemporalSplit", "UserHoldout"]


def _column(X, column, what):
    """One column of ``X`` (by position, or by name for a DataFrame)."""
    if hasattr(X, "iloc"):
        if isinstance(column, numbers.Integral):
            return plain_column(X.iloc[:, column])
        return plain_column(X[column])
    if not isinstance(column, numbers.Integral):
        raise ValueError(f"{what}={column!r} names a column, but X is not a DataFrame")
    arr = np.asarray(X, dtype=object) if isinstance(X, list) else np.asarray(X)
    if arr.ndim != 2 or column >= arr.shape[1]:
        raise ValueError(f"X has no column {column} (shape {arr.shape}) for {what}")
    return arr[:, column]


def _order_key(X, time_column):
    """Sort key of the rows: the time column, or row order when it is None."""
    if time_column is None:
        return np.arange(_n_rows(X))
    values = _column(X, time_column, "time_column")
    if values.dtype.kind in "mM":
        if np.isnat(values).any():
            raise ValueError(
                f"the time column contains NaT (missing times) in rows "
                f"{show_ids(np.flatnonzero(np.isnat(values)))}"
            )
        return values.view(np.int64)
    if values.dtype.kind in "iu":
        return values  # exact, where float64 would round large ticks
    try:
        values = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        values = _time_objects(values)
    if values.dtype.kind == "f" and np.isnan(values).any():
        raise ValueError(
            f"the time column contains NaN in rows {show_ids(np.flatnonzero(np.isnan(values)))}"
        )
    return values


def _time_objects(values):
    """Return the sort key of a time column that is not numeric.

    Dates and datetimes give their ticks (zoned ones in UTC), strings themselves.
    """
    values = np.asarray(values)
    if values.dtype.kind == "O" and len(values):
        if all(isinstance(v, datetime.date) for v in values):
            # numpy's note that zoned times become UTC: a UserWarning, a DeprecationWarning
            # before numpy 2
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                warnings.simplefilter("ignore", DeprecationWarning)
                return values.astype("datetime64[us]").view(np.int64)
    try:
        return as_id_column(values, "time")
    except ValueError as exc:
        raise ValueError(
            f"the time column must hold numbers, dates, datetimes or strings: {exc}"
        ) from None


def _n_rows(X):
    if hasattr(X, "shape"):
        return X.shape[0]
    try:
        return len(X)
    except TypeError:  # an array-like known only by __array__
        return len(np.asarray(X))


def _user_codes(X):
    users = as_id_column(_column(X, 0, "user column"), "user")
    return unique_inverse(users)[1]


def _user_timelines(X, time_column=None):
    """Each row's place in its user's history, in time order.

    Ties in ``time_column`` (and every row when it is None) keep row order.

    Returns
    -------
    users : ndarray of shape (n_samples,)
        The rows' users as codes 0, 1, ...
    position : ndarray of shape (n_samples,)
        0 for a user's first row, 1 for the next, and so on.
    length : ndarray of shape (n_samples,)
        The number of rows of the row's user.
    """
    users = _user_codes(X)
    n = len(users)
    order = np.lexsort((np.arange(n), _order_key(X, time_column), users))
    counts = np.bincount(users)
    start = (np.cumsum(counts) - counts)[users[order]]
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n) - start
    return users, position, counts[users]


class _Splitter:
    """What the splitters share: scikit-learn's ``repr`` and ``get_n_splits``."""

    def __repr__(self):
        names = inspect.signature(type(self).__init__).parameters
        args = ", ".join(f"{name}={getattr(self, name)!r}" for name in list(names)[1:])
        return f"{type(self).__name__}({args})"

    def get_n_splits(self, X=None, y=None, groups=None):
        """Return the number of splits.

        Parameters
        ----------
        X, y, groups : object
            Ignored; present for scikit-learn's splitter protocol.

        Returns
        -------
        n_splits : int
        """
        return getattr(self, "n_splits", 1)

    def split(self, X, y=None, groups=None):
        """Yield ``(train_index, test_index)`` pairs, ``get_n_splits()`` of them.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_columns)
            Interactions: user ids in column 0, item ids in column 1, then context.
        y, groups : object
            Ignored; present for scikit-learn's splitter protocol.

        Yields
        ------
        train_index, test_index : ndarray
            Row positions of the training and the test part.
        """
        yield from self._split(X)


class LeaveLastOut(_Splitter):
    """Hold out the last ``n_test`` interactions of every user.

    "Last" follows ``time_column`` (ties broken by row order), or row order
    when it is None. Users with at most ``n_test`` interactions keep them
    all for training.

    Parameters
    ----------
    n_test : int, default=1
        Interactions held out per user.
    time_column : int or str, default=None
        Position (or DataFrame name) of the column that orders the rows.

    Examples
    --------
    >>> from sklrec.model_selection import LeaveLastOut
    >>> X = [[1, "a", 10], [1, "b", 30], [1, "c", 20], [2, "a", 5], [2, "c", 7]]
    >>> train, test = next(LeaveLastOut(time_column=2).split(X))
    >>> test.tolist()
    [1, 4]
    """

    def __init__(self, n_test=1, *, time_column=None):
        self.n_test = n_test
        self.time_column = time_column

    def _split(self, X):
        check_int(self.n_test, "n_test")
        _, position, length = _user_timelines(X, self.time_column)
        from_end = length - position  # 1 for a user's last row, 2 for the one before...
        test = (from_end <= self.n_test) & (length > self.n_test)
        if not test.any():
            raise ValueError(
                f"no user has more than n_test={self.n_test} interactions, so the test part "
                "would be empty; lower n_test"
            )
        yield np.flatnonzero(~test), np.flatnonzero(test)


class UserHoldout(_Splitter):
    """Hold out a random fraction of every user's interactions.

    Parameters
    ----------
    test_size : float, default=0.2
        Fraction of each user's interactions held out (rounded, at least one
        for every user with two or more interactions, never all of them).
    n_splits : int, default=1
        Independent random splits, as ``ShuffleSplit`` yields.
    random_state : int, RandomState instance or None, default=None

    Examples
    --------
    >>> from sklrec.model_selection import UserHoldout
    >>> X = [[u, i] for u in range(3) for i in range(5)]
    >>> train, test = next(UserHoldout(test_size=0.4, random_state=0).split(X))
    >>> len(train), len(test)
    (9, 6)
    """

    def __init__(self, test_size=0.2, *, n_splits=1, random_state=None):
        self.test_size = test_size
        self.n_splits = n_splits
        self.random_state = random_state

    def _split(self, X):
        size = check_real(self.test_size, "test_size", 0, 1)
        n_splits = check_int(self.n_splits, "n_splits")
        users = _user_codes(X)
        n = len(users)
        counts = np.bincount(users)
        n_test = np.where(counts > 1, np.clip(np.rint(counts * size), 1, counts - 1), 0)
        if not n_test.any():
            raise ValueError(
                "no user has two or more interactions, so the test part would be empty"
            )
        rng = check_random_state(self.random_state)
        for _ in range(n_splits):
            order = np.lexsort((rng.random(n), users))
            position = np.arange(n) - (np.cumsum(counts) - counts)[users[order]]
            test = position < n_test[users[order]]
            yield np.sort(order[~test]), np.sort(order[test])


class TemporalSplit(_Splitter):
    """Hold out the most recent fraction of all interactions (a global cut).

    Parameters
    ----------
    test_size : float, default=0.2
        Fraction of rows, the latest by ``time_column``, held out.
    time_column : int or str, default=2
        Position (or DataFrame name) of the timestamp column.

    Examples
    --------
    >>> from sklrec.model_selection import TemporalSplit
    >>> X = [[1, "a", 3], [2, "b", 1], [1, "c", 4], [2, "a", 2], [3, "a", 5]]
    >>> train, test = next(TemporalSplit(test_size=0.4).split(X))
    >>> test.tolist()
    [2, 4]
    """

    def __init__(self, test_size=0.2, *, time_column=2):
        self.test_size = test_size
        self.time_column = time_column

    def _split(self, X):
        size = check_real(self.test_size, "test_size", 0, 1)
        key = _order_key(X, self.time_column)
        n = len(key)
        if n < 2:
            raise ValueError(f"TemporalSplit needs at least 2 rows to split; got {n}")
        n_test = int(np.clip(np.rint(n * size), 1, n - 1))
        order = np.lexsort((np.arange(n), key))
        yield np.sort(order[: n - n_test]), np.sort(order[n - n_test :])
