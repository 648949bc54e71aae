"""The command line: list, reproduce lasso-demo --quick (CSV + PNG written), data list, errors."""
import csv
import subprocess
import sys
import time

import pytest

from optlab import cli


def test_list_names_solvers_and_experiments(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "fista" in out and "lasso-demo" in out


def test_data_list(capsys):
    assert cli.main(["data", "list"]) == 0
    names = [ln.split()[0] for ln in capsys.readouterr().out.splitlines() if ln.strip()]
    assert "a9a" in names and "mnist" in names and "a9a.t" not in names


def test_unknown_experiment_is_a_clear_error(capsys):
    assert cli.main(["reproduce", "lasso-dem"]) == 2
    err = capsys.readouterr().err
    assert "Did you mean 'lasso-demo'" in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_reproduce_lasso_demo_quick_under_a_minute(tmp_path):
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "optlab.cli", "reproduce", "lasso-demo", "--quick",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr
    assert elapsed < 60, elapsed
    png = tmp_path / "lasso-demo.png"
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"
    with open(tmp_path / "lasso-demo_summary.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["solver"] for r in rows} == {"ISTA", "FISTA", "FISTA (backtracking)"}
    # FISTA reaches the 1e-8 relative gap on both problems in quick mode
    assert all(r["iters_to_1e-8"] for r in rows if r["solver"].startswith("FISTA"))
    with open(tmp_path / "lasso-demo_traces.csv") as fh:
        header = next(csv.reader(fh))
    assert header[:6] == ["solver", "dataset", "iteration", "time", "metric", "value"]
