import numpy as np
import pytest

from sklrec.model_selection import LeaveLastOut, TemporalSplit, UserHoldout

X = np.array([[1, 10, 5], [1, 11, 1], [2, 10, 3], [1, 12, 9], [2, 13, 2], [3, 10, 4], [2, 11, 8]])


def _check_partition(train, test, n):
    assert len(np.intersect1d(train, test)) == 0
    np.testing.assert_array_equal(np.sort(np.r_[train, test]), np.arange(n))


def test_leave_last_out_by_time_and_by_row_order():
    train, test = next(LeaveLastOut(time_column=2).split(X))
    _check_partition(train, test, len(X))
    assert test.tolist() == [3, 6]  # user 1 at t=9, user 2 at t=8; user 3 has one row
    _, test = next(LeaveLastOut().split(X))
    assert test.tolist() == [3, 6]
    _, test = next(LeaveLastOut(n_test=2, time_column=2).split(X))
    assert test.tolist() == [0, 2, 3, 6]
    assert LeaveLastOut().get_n_splits() == 1


def test_leave_last_out_ties_follow_row_order_and_dataframes():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"user": ["a", "a", "b", "b"], "item": [1, 2, 1, 3], "ts": [5, 5, 1, 2]})
    _, test = next(LeaveLastOut(time_column="ts").split(frame))
    assert test.tolist() == [1, 3]


def test_time_columns_of_datetime_dtypes_split_as_their_ticks():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    seconds = rng.permutation(10**9 + np.arange(40) * 3600)
    users = np.repeat(np.arange(8), 5)
    frame = pd.DataFrame({"user": users, "item": np.arange(40), "ts": seconds})
    stamps = pd.to_datetime(seconds, unit="s")
    hours = pd.PeriodIndex(stamps, freq="h")  # one hour apart: the order of the seconds
    zoned = stamps.tz_localize("Europe/Paris")
    for times in (stamps, zoned, pd.array(seconds, dtype="Int64"), hours):
        timed = frame.assign(ts=times)
        for cv in (LeaveLastOut(n_test=2, time_column="ts"), TemporalSplit(time_column=2)):
            pairs = zip(cv.split(frame), cv.split(timed), strict=True)
            for (train, test), (train_t, test_t) in pairs:
                np.testing.assert_array_equal(train_t, train)
                np.testing.assert_array_equal(test_t, test)

    missing = frame.assign(ts=stamps.where(np.arange(40) != 7, pd.NaT))
    with pytest.raises(ValueError, match=r"NaT \(missing times\) in rows \[7\]"):
        next(LeaveLastOut(time_column="ts").split(missing))
    # a nullable integer column's NA, on pandas 2 (objects) as on 3 (floats)
    missing = frame.assign(ts=pd.array(seconds, dtype="Int64"))
    missing.loc[5, "ts"] = pd.NA
    for cv in (LeaveLastOut(time_column="ts"), TemporalSplit(time_column="ts")):
        with pytest.raises(ValueError, match=r"time column contains NaN in rows \[5\]"):
            next(cv.split(missing))
        with pytest.raises(ValueError, match=r"time column contains NaN in rows \[3\]"):
            next(cv.split(frame.assign(ts=hours.where(np.arange(40) != 3))))


def test_time_columns_of_date_objects():
    import datetime

    day = datetime.date(2020, 1, 1)
    at = [day, day.replace(day=3), day.replace(day=2), day, day.replace(day=5)]
    # a zoned datetime counts in UTC: 02:00 in UTC+3 is 23:00 the day before
    at[3] = datetime.datetime(2020, 1, 2, 2, tzinfo=datetime.timezone(datetime.timedelta(hours=3)))
    rows = [[1, "a"], [1, "b"], [2, "a"], [2, "b"], [3, "c"]]
    X = [[*row, when] for row, when in zip(rows, at, strict=True)]
    _, test = next(LeaveLastOut(time_column=2).split(X))
    assert test.tolist() == [1, 2]
    # ISO 8601 strings (an object column of str) sort as the times they name
    as_text = np.array([[*row, when.isoformat()] for row, when in zip(rows, at, strict=True)])
    as_text[3, 2] = "2020-01-01T23:00:00"  # the zoned time, in UTC
    for column in (as_text.astype(object), as_text):
        _, test = next(LeaveLastOut(time_column=2).split(column))
        assert test.tolist() == [1, 2]
    X[0][2] = (2020, 1, 1)
    with pytest.raises(ValueError, match="time column must hold numbers, dates, datetimes or str"):
        next(LeaveLastOut(time_column=2).split(X))
    X[0][2] = None
    with pytest.raises(ValueError, match=r"missing values \(None, NaN or NA; rows \[0\]\)"):
        next(TemporalSplit(time_column=2).split(X))


def test_user_holdout_per_user_fraction_and_seed():
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(20), rng.integers(1, 12, size=20))
    Xu = np.c_[users, np.arange(len(users))]
    cv = UserHoldout(test_size=0.3, n_splits=3, random_state=0)
    splits = list(cv.split(Xu))
    assert len(splits) == cv.get_n_splits() == 3
    counts = np.bincount(users)
    for train, test in splits:
        _check_partition(train, test, len(users))
        held = np.bincount(users[test], minlength=20)
        expected = np.where(counts > 1, np.clip(np.rint(counts * 0.3), 1, counts - 1), 0)
        np.testing.assert_array_equal(held, expected)
    assert not np.array_equal(splits[0][1], splits[1][1])
    again = list(UserHoldout(test_size=0.3, n_splits=3, random_state=0).split(Xu))
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(splits, again, strict=True))


def test_temporal_split():
    train, test = next(TemporalSplit(test_size=0.3).split(X))
    _check_partition(train, test, len(X))
    assert sorted(X[test, 2]) == [8, 9]
    assert X[train, 2].max() < X[test, 2].min()


@pytest.mark.parametrize(
    "cv, match",
    [
        (LeaveLastOut(n_test=0), "n_test"),
        (UserHoldout(test_size=1.5), "test_size"),
        (TemporalSplit(time_column=7), "no column 7"),
        (LeaveLastOut(time_column="ts"), "not a DataFrame"),
    ],
)
def test_bad_parameters(cv, match):
    with pytest.raises(ValueError, match=match):
        next(cv.split(X))


@pytest.mark.parametrize(
    "cv, match",
    [
        (LeaveLastOut(n_test=3), "no user has more than n_test=3 interactions"),
        (UserHoldout(), "no user has two or more interactions"),
    ],
)
def test_per_user_splits_refuse_an_empty_test_part(cv, match):
    # users 1 and 2 have three rows each, user 3 one
    with pytest.raises(ValueError, match=match):
        next(cv.split(X if isinstance(cv, LeaveLastOut) else X[[0, 2, 5]]))


def test_temporal_split_needs_two_rows():
    with pytest.raises(ValueError, match="at least 2 rows to split; got 1"):
        next(TemporalSplit().split(X[:1]))


def test_repr_shows_every_parameter_as_scikit_learn_splitters_do():
    assert repr(LeaveLastOut(time_column=2)) == "LeaveLastOut(n_test=1, time_column=2)"
    assert repr(UserHoldout(0.1, random_state=3)) == (
        "UserHoldout(test_size=0.1, n_splits=1, random_state=3)"
    )
    assert (
        repr(TemporalSplit(time_column="ts")) == "TemporalSplit(test_size=0.2, time_column='ts')"
    )
