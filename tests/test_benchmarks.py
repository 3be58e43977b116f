"""The benchmark scripts run end to end on small data and print the figures they promise.

They time and size real workloads, so their own numbers are not checked here
(docs/benchmarks.md holds them); what is checked is that every figure is
printed, of the right kind, and that the quality figures are the ones the
library's own metrics give.
"""

import importlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from sklrec import MFRecommender, PopularityRecommender
from sklrec.datasets import load_movielens, make_interactions
from sklrec.metrics import evaluate_ranking
from sklrec.model_selection import LeaveLastOut
from sklrec.optim import LazyAdam

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def bench(monkeypatch):
    """Import a script of benchmarks/ as a module (they import each other by name)."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    return importlib.import_module


def _json_lines(text):
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def _ratings_file(directory, name="ratings.tsv"):
    X, _ = make_interactions(
        n_users=60, n_items=200, n_groups=2, interactions_per_user=10, random_state=0
    )
    path = directory / name
    path.write_text("".join(f"{u}\t{i}\t{1 + (u + i) % 5}\t{t}\n" for u, i, t in X))
    return path, X


@pytest.fixture
def small_throughput_data(bench, monkeypatch):
    throughput = bench("throughput")
    for name, value in {"N_USERS": 40, "N_ITEMS": 160, "PER_USER": 12}.items():
        monkeypatch.setattr(throughput, name, value)
    return throughput


def test_throughput_prints_every_figure(small_throughput_data, capsys):
    small_throughput_data.main(["--batch-sizes", "64,256", "--repeats", "2"])
    rows = _json_lines(capsys.readouterr().out)
    assert rows[0]["benchmark"] == "throughput" and rows[0]["positives"] == 40 * 12
    per_batch = [row for row in rows if "batch_size" in row and "repeats" in row]
    assert [row["batch_size"] for row in per_batch] == [64, 256]
    for row in per_batch:
        assert (
            len(row["fit_seconds_each"]) == len(row["hand_written_fused_adam_seconds_each"]) == 2
        )
        assert row["fit_over_hand_written_fused_adam"] >= 0
        assert row["estimator_samples_per_s"] >= 0
    (defaults,) = [row for row in rows if row.get("defaults")]
    assert defaults["over_per_sample_dataloader"] >= 0
    (ranking,) = [row for row in rows if "rank_all_items_all_users_seconds" in row]
    assert ranking["shape"] == [40, 10]


def test_fit_overhead_prints_the_time_outside_the_epoch(small_throughput_data, bench, capsys):
    overhead = bench("fit_overhead")  # its data are throughput.py's (made small here)
    overhead.main(["--repeats", "2", "--batch-size", "256"])
    (row,) = _json_lines(capsys.readouterr().out)
    assert row["positives"] == 40 * 12 and len(row["outside_epoch_seconds"]) == 2
    assert row["outside_epoch_seconds_median"] >= 0


def test_serving_prints_a_row_per_model(small_throughput_data, bench, capsys):
    bench("serving").main(["--requests", "5", "--batch-users", "7"])
    rows = _json_lines(capsys.readouterr().out)  # each served by a fresh process
    assert [row["model"] for row in rows] == ["popularity", "mf", "neumf"]
    for row in rows:
        assert row["batch_users"] == 7 and row["pickle_mib"] > 0
        for key in ("import_seconds", "load_seconds", "recommend_batch_seconds"):
            assert row[key] >= 0
        for call in ("recommend_one_user", "predict_one_row"):
            assert 0 <= row[f"{call}_ms_median"] <= row[f"{call}_ms_p99"]


def test_table_scaling_prints_a_row_per_setting(bench, capsys):
    bench("table_scaling").main(
        ["--sizes", "50x40,90x30", "--batch-sizes", "16", "--steps", "2", "--repeats", "1"]
    )
    rows = _json_lines(capsys.readouterr().out)
    settings = [(r["users"], r["model"], r["optimizer"]) for r in rows]
    assert settings == [
        (users, model, optimizer)
        for users in (50, 90)
        for model in ("mf", "neumf")
        for optimizer in ("adam", "lazy_adam")
    ]
    for row in rows:
        assert row["batch_size"] == 16 and row["ms_per_step"] > 0 and row["samples_per_s"] > 0


def test_table_scaling_builds_the_estimators_optimizers(bench):
    # the optimiser and gradients each name gives, as a fitted estimator has them
    scaling = bench("table_scaling")
    cpu = torch.device("cpu")
    for name, optimizer_class, sparse in [
        ("adam", torch.optim.Adam, False),
        ("lazy_adam", LazyAdam, True),
    ]:
        module = scaling.build("mf", 5, 4)
        optimizer = scaling.optimizer_for(name, "mf", module, cpu, 2048)
        assert type(optimizer) is optimizer_class and module.user.sparse is sparse
        fitted = MFRecommender(optimizer=name, max_epochs=1).fit(
            make_interactions(
                n_users=20, n_items=15, n_groups=2, interactions_per_user=4, random_state=0
            )[0]
        )
        assert optimizer.defaults == fitted.net_.optimizer_.defaults | {"lr": 0.005}


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="reads Linux's /proc")
@pytest.mark.parametrize("early_stopping", [False, True])
def test_memory_prints_the_peak_per_positive(bench, capfd, early_stopping):
    args = ["--positives", "2000", "4000", "--batch-size", "1024"]
    bench("memory").main(args + ["--early-stopping"] * early_stopping)
    rows = _json_lines(capfd.readouterr().out)  # printed by one child process per size
    assert [row["positives"] for row in rows] == [2000 + 158, 4000 + 150]  # 166 per user
    for row in rows:
        assert row["early_stopping"] is early_stopping
        assert row["fit_peak_beyond_input_mib"] >= 0 and row["bytes_per_positive"] >= 0
        assert row["training_samples"] == row["positives"] * 5


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="reads Linux's /proc")
def test_data_at_scale_prints_a_row_per_call(bench, capfd, tmp_path):
    path, X = _ratings_file(tmp_path, "u.data")
    bench("data_at_scale").main(
        ["--sizes", "30x80x5", "--generators", "ratings", "--files", str(path), "--csv-rows", "9"]
    )
    rows = _json_lines(capfd.readouterr().out)  # printed by one child process per call
    made = [(row.get("generator") or row["file"], row["rows"]) for row in rows]
    assert made == [("ratings", 150), ("u.data", len(X)), ("ratings.csv", 9)]
    for row in rows:
        assert row["seconds"] >= 0 and row["peak_beyond_import_mib"] >= 0


def test_the_synthetic_ratings_csv_loads_as_written(bench, tmp_path):
    path = tmp_path / "ratings.csv"
    bench("data_at_scale").write_ratings_csv(path, 25, chunk=10)
    X, y = load_movielens(path)
    assert X.shape == (25, 3) and set(y) <= {0.5 * r for r in range(1, 11)}
    assert X[:, 2].min() >= 789_652_009


def test_ncf_protocol_scores_with_the_library_metrics(bench, tmp_path, capsys):
    path, X = _ratings_file(tmp_path)
    ncf = bench("ncf_protocol")
    ncf.main(["--data", str(path), "--model", "popularity"])
    (row,) = _json_lines(capsys.readouterr().out)
    train, test = next(LeaveLastOut(time_column=2).split(X))
    expected = evaluate_ranking(
        PopularityRecommender().fit(X[train]), X[test], k=10, n_negatives=99, random_state=0
    )
    assert row["n_train"] == len(train) and row["n_test"] == len(test)
    assert row["HR@10"] == pytest.approx(expected["hit_rate"], abs=5e-5)
    assert row["NDCG@10"] == pytest.approx(expected["ndcg"], abs=5e-5)


@pytest.mark.parametrize(
    "options",
    [
        ["--model", "neumf", "--max-epochs", "2", "--trace"],
        ["--model", "mf", "--max-epochs", "1", "--recency-weights", "2"],
        ["--model", "gmf", "--max-epochs", "1", "--search-strength", "0,2"],
    ],
    ids=["neumf-trace", "recency", "search"],
)
def test_ncf_protocol_options_run_on_both_layouts(bench, tmp_path, capsys, options):
    path, _ = _ratings_file(tmp_path)
    split = tmp_path / "ncf-official"  # the NCF paper's layout: its own train/test files
    split.mkdir()
    rows = path.read_text().splitlines()
    (split / "ml-1m.train.rating").write_text("\n".join(rows[60:]) + "\n")
    (split / "ml-1m.test.rating").write_text("\n".join(rows[:60]) + "\n")
    for data in (path, split):
        bench("ncf_protocol").main(["--data", str(data), "--threads", "1", *options])
        (row,) = _json_lines(capsys.readouterr().out)
        assert 0 <= row["NDCG@10"] <= row["HR@10"] <= 1
        assert row["fit_seconds"] >= 0


def test_rating_protocol_prints_a_row_per_model(bench, tmp_path, capsys):
    path, _ = _ratings_file(tmp_path)
    rating = bench("rating_protocol")
    rating.main(["--data", str(path), "--model", "bias"])
    rating.main(["--data", str(path), "--model", "mf", "autorec", "--set", "max_epochs=2"])
    rows = _json_lines(capsys.readouterr().out)
    assert [row["model"] for row in rows] == ["bias", "mf", "autorec"]
    for row in rows:
        assert np.isfinite(row["rmse"]) and 0 < row["mae"] <= row["rmse"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal without CUDA")
def test_gpu_checks_refuse_to_run_without_cuda(tmp_path):
    run = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_checks.sh"), str(tmp_path / "out")],
        cwd=ROOT, env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 1
    assert "CUDA is not available: nothing to check here" in run.stderr
    assert not list((tmp_path / "out").iterdir())  # no step ran
