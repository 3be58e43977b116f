import hashlib
import http.server
import io
import threading
import zipfile

import numpy as np
import pytest

from sklrec import datasets
from sklrec.datasets import fetch_movielens, load_movielens, make_interactions, make_ratings


def test_make_interactions_shape_seed_and_groups():
    X, y = make_interactions(
        n_users=40, n_items=30, n_groups=3, interactions_per_user=5, noise=0.0, random_state=0
    )
    assert X.shape == (200, 3) and np.all(y == 1)
    X2, _ = make_interactions(
        n_users=40, n_items=30, n_groups=3, interactions_per_user=5, noise=0.0, random_state=0
    )
    np.testing.assert_array_equal(X, X2)
    # distinct items per user, and with no noise each user stays within one item group:
    # two users either share no item group or use the same one
    pairs = X[:, 0] * 1000 + X[:, 1]
    assert len(np.unique(pairs)) == len(pairs)
    with pytest.raises(ValueError, match="at least interactions_per_user"):
        make_interactions(n_items=10, n_groups=5, interactions_per_user=3)


def test_make_ratings_range_and_signal():
    X, y = make_ratings(n_users=50, n_items=40, random_state=0)
    assert X.shape == (1000, 3) and set(np.unique(y)) <= {1, 2, 3, 4, 5}
    assert y.std() > 0.5


@pytest.mark.parametrize("make", [make_interactions, make_ratings])
def test_generators_draw_in_slabs_of_users_without_changing_the_data(make, monkeypatch):
    # the users x items draw is made a slab of rows at a time to bound its memory; the
    # data must not depend on the slab size (one user at a time, a few, all at once)
    params = dict(n_users=37, n_items=60, random_state=3)
    outputs = []
    for entries in (1, 150, 2**22):
        monkeypatch.setattr(datasets, "_DRAW_ENTRIES", entries)
        outputs.append(make(**params))
    assert len(datasets._row_slabs(37, 60)) == 1
    for X, y in outputs[:2]:
        np.testing.assert_array_equal(X, outputs[-1][0])
        np.testing.assert_array_equal(y, outputs[-1][1])


FORMATS = {
    "u.data": "196\t242\t3\t881250949\n186\t302\t3\t891717742\n",
    "ml-1m.train.rating": "0\t32\t4\t978824330\n1\t5\t5\t978300760\n",
    "ratings.dat": "1::1193::5::978300760\n1::661::3::978302109\n",
    "ratings.csv": "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,4.5,964981247\n",
    "ml-100k.inter": "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
    "196\t242\t3\t881250949\n186\t302\t3\t891717742\n",
    "ml-100k.tsv": "user\titem\trating\ttimestamp\n"
    "196\t242\t3\t881250949\n186\t302\t3\t891717742\n",
}


@pytest.mark.parametrize(
    "make, params, match",
    [
        (make_interactions, {"n_users": 0}, "n_users must be an integer >= 1; got 0"),
        (make_interactions, {"n_groups": 2.5}, "n_groups must be an integer >= 1"),
        (make_interactions, {"noise": 1.5}, r"noise must be a number in \[0, 1\]; got 1.5"),
        (make_interactions, {"noise": "some"}, "noise must be a number"),
        (make_ratings, {"ratings_per_user": True}, "ratings_per_user must be an integer"),
        (make_ratings, {"noise": -0.1}, r"noise must be a number in \[0, inf\); got -0.1"),
        (make_ratings, {"noise": float("nan")}, "noise must be a number"),
        (
            make_ratings,
            {"n_items": 5, "ratings_per_user": 6},
            "ratings_per_user=6 is more than n_items=5",
        ),
    ],
)
def test_generators_name_a_bad_parameter(make, params, match):
    with pytest.raises(ValueError, match=match):
        make(**params)


@pytest.mark.parametrize("name", FORMATS)
def test_load_movielens_formats(tmp_path, name):
    path = tmp_path / name
    path.write_text(FORMATS[name])
    X, y = load_movielens(path)
    assert X.shape == (2, 3) and X.dtype == np.int64 and y.shape == (2,)
    assert X[0, 2] > 8e8 and y[0] >= 3
    # the file is parsed as a stream: Windows line ends and a last line without one too
    path.write_bytes(FORMATS[name].replace("\n", "\r\n").rstrip().encode())
    X2, y2 = load_movielens(path)
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(y2, y)


def test_load_movielens_errors(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(ValueError, match="cannot find"):
        load_movielens(path)
    path = tmp_path / "u.data"
    path.write_text("1\t2\t5\t881250949\n3\t4\n")  # a row cut short
    with pytest.raises(ValueError, match="u.data: not a ratings file"):
        load_movielens(path)
    path.write_text("\n")
    with pytest.raises(ValueError, match="u.data is empty"):
        load_movielens(path)
    path.write_text("\n \n\t\n")
    with pytest.raises(ValueError, match="u.data is empty"):
        load_movielens(path)
    path.write_text("userId\titemId\trating\ttimestamp\n")  # a header and no rows
    with pytest.raises(ValueError, match="u.data holds no ratings"):
        load_movielens(path)


@pytest.fixture
def served_zip(tmp_path, monkeypatch):
    """A tiny ML-100k-like archive served on loopback, with its real MD5."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("ml-100k/u.data", FORMATS["u.data"])
    payload = buf.getvalue()
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "ml-100k.zip").write_bytes(payload)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(tmp_path / "www"), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(datasets, "_BASE_URL", f"http://127.0.0.1:{server.server_port}/")
    md5 = hashlib.md5(payload).hexdigest()
    monkeypatch.setitem(datasets._MOVIELENS, "100k", ("ml-100k.zip", md5, "ml-100k/u.data"))
    yield tmp_path
    server.shutdown()
    server.server_close()


def test_fetch_movielens_downloads_once_and_checks(served_zip):
    home = served_zip / "cache"
    X, y = fetch_movielens("100k", data_home=home)
    assert X.shape == (2, 3) and (home / "ml-100k.zip").exists()
    (served_zip / "www" / "ml-100k.zip").unlink()  # the cache is used from now on
    X2, _ = fetch_movielens("100k", data_home=home, download_if_missing=False)
    np.testing.assert_array_equal(X, X2)
    (home / "ml-100k.zip").write_bytes(b"corrupt")
    with pytest.raises(OSError, match="MD5"):
        fetch_movielens("100k", data_home=home)


def test_fetch_movielens_rejects_a_bad_download(served_zip, monkeypatch):
    monkeypatch.setitem(datasets._MOVIELENS, "100k", ("ml-100k.zip", "0" * 32, "ml-100k/u.data"))
    with pytest.raises(OSError, match="checksum mismatch"):
        fetch_movielens("100k", data_home=served_zip / "cache2")
    assert not (served_zip / "cache2" / "ml-100k.zip").exists()
    with pytest.raises(OSError, match="not cached"):
        fetch_movielens("100k", data_home=served_zip / "cache3", download_if_missing=False)
    with pytest.raises(ValueError, match="unknown MovieLens variant"):
        fetch_movielens("7m")
