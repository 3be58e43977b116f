"""The code shown in README.md and docs/quickstart.md, and the examples, run as written.

Each file's ``python`` blocks run in order in one namespace, as a reader
would paste them. Blocks that need a downloaded ratings file or a GPU are
shown to readers but not run here, nor is ``examples/ncf_movielens.py``
(MovieLens); ``examples/quickstart.py`` is ``make demo``.
"""

import re
import runpy
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _blocks(path):
    return re.findall(r"```python\n(.*?)```", (ROOT / path).read_text(), re.S)


def _runnable(code):
    needs_file = re.search(r"^[^#\n]*load_movielens\(", code, re.M)
    return not needs_file and 'device="cuda"' not in code


@pytest.mark.parametrize("path, n_runnable", [("README.md", 1), ("docs/quickstart.md", 6)])
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
