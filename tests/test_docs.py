"""The code shown in README.md and docs/quickstart.md, and the examples, run as written.

Each file's ``python`` blocks run in order in one namespace, as a reader
would paste them. Blocks that need a downloaded ratings file or a GPU are
shown to readers but not run here; ``examples/ncf_movielens.py`` runs on a
small synthetic ratings file in MovieLens's layout. ``examples/quickstart.py``
is ``make demo``.
"""

import re
import runpy
from pathlib import Path

import numpy as np
import pytest

from sklrec.datasets import make_interactions

ROOT = Path(__file__).resolve().parents[1]


def _blocks(path):
    return re.findall(r"```python\n(.*?)```", (ROOT / path).read_text(), re.S)


def _runnable(code):
    needs_file = re.search(r"^[^#\n]*load_movielens\(", code, re.M)
    return not needs_file and 'device="cuda"' not in code


@pytest.mark.parametrize("path, n_runnable", [("README.md", 1), ("docs/quickstart.md", 13)])
def test_documented_code_runs(path, n_runnable, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = [code for code in _blocks(path) if _runnable(code)]
    # a changed fence or a new block must be looked at, not skipped unnoticed
    assert len(blocks) == n_runnable
    namespace = {}
    for code in blocks:
        exec(compile(code, str(ROOT / path), "exec"), namespace)


def test_search_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(ROOT / "examples" / "search.py"), run_name="__main__")
    printed = capsys.readouterr().out
    assert "grid search:" in printed and "optuna:" in printed


def test_ncf_example_runs_on_a_ratings_file(tmp_path, monkeypatch, capsys):
    X, _ = make_interactions(
        n_users=150, n_items=200, n_groups=3, interactions_per_user=12, random_state=0
    )
    path = tmp_path / "ratings.tsv"
    rows = "".join(f"{u}\t{i}\t4\t{int(t)}\n" for u, i, t in X)
    path.write_text("user\titem\trating\ttimestamp\n" + rows)
    monkeypatch.setattr("sys.argv", ["ncf_movielens.py", str(path)])
    runpy.run_path(str(ROOT / "examples" / "ncf_movielens.py"), run_name="__main__")
    printed = capsys.readouterr().out
    assert f"{len(X) - 150} training ratings, 150 held out" in printed
    lines = [line for line in printed.splitlines() if "HR@10" in line]
    assert [line.split(":")[0].strip() for line in lines] == [
        "popularity", "mf", "neumf", "neumf, recency-weighted"
    ]  # fmt: skip
    hit_rates = np.array([float(line.split("HR@10")[1].split()[0]) for line in lines])
    assert ((hit_rates >= 0) & (hit_rates <= 1)).all()
