"""The command line: list, reproduce lasso-demo --quick (CSV + PNG written), data list, errors; reproduce offline
on stand-in data with progress and times (issue 17)."""
import csv
import os
import subprocess
import sys
import time
from pathlib import Path

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


# --------------------------------------------------------------------------------- issue 17: offline reproduce
@pytest.fixture
def no_data(tmp_path, monkeypatch):
    """No data files anywhere (empty $OPTLAB_DATA and cache) and no downloads; the compilation cache stays put."""
    from optlab import _config

    monkeypatch.setenv("OPTLAB_COMPILATION_CACHE",
                       os.environ.get("OPTLAB_COMPILATION_CACHE") or str(_config.default_cache_dir()))
    monkeypatch.setenv("OPTLAB_DATA", str(tmp_path / "empty-data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("OPTLAB_OFFLINE", "1")
    return tmp_path / "out"


def _fake_experiments(monkeypatch):
    """Two tiny experiments: one on a missing LIBSVM set (a stand-in), one on a bundled set (real)."""
    import optlab.experiments as E
    from optlab.experiments._datasets import DataSets
    from optlab.experiments._progress import expect, step

    def on(name):
        def run(out, quick=False, seed=0):
            sets = DataSets(quick)
            expect(2)
            for part in ("first", "second"):
                step(f"{name} {part}")
                ds = sets.load(name)
            path = out / f"fake_{name}.csv"
            path.write_text(f"dataset,data\n{sets.label(name)},{sets.kind(name)}\n")
            assert ds.X.shape[0] > 0
            return {"files": [str(path)]}
        return run

    fakes = {n: E.Experiment(n, "fake", on(d), __name__) for n, d in (("uses-splice", "splice"),
                                                                        ("uses-diabetes", "diabetes"))}
    monkeypatch.setattr(E, "registry", lambda: dict(fakes))
    monkeypatch.setattr(E, "get", lambda n: fakes[n])


def test_reproduce_uses_stand_ins_says_so_once_and_times_each_experiment(no_data, monkeypatch, capsys):
    _fake_experiments(monkeypatch)
    assert cli.main(["reproduce", "all", "--quick", "--out", str(no_data)]) == 0
    out, err = capsys.readouterr()
    assert err == ""                                              # a note, not an error
    assert out.count("stand-in data of the same shape") == 1 and "'splice'" in out
    assert "uses-splice done in" in out and "(2 runs; data: stand-in: splice)" in out
    assert "uses-diabetes done in" in out and "(2 runs; data: real)" in out
    table = out[out.index("== 2 experiments"):].splitlines()
    assert table[1].split() == ["experiment", "time_s", "runs", "data"]
    assert table[-1].split()[0] == "total" and float(table[-1].split()[1]) >= 0
    assert (no_data / "fake_splice.csv").read_text().splitlines()[1] == "splice (stand-in),stand-in"
    assert (no_data / "fake_diabetes.csv").read_text().splitlines()[1] == "diabetes,real"


def test_reproduce_data_real_refuses_stand_ins(no_data, monkeypatch, capsys):
    _fake_experiments(monkeypatch)
    assert cli.main(["reproduce", "uses-splice", "--quick", "--data", "real", "--out", str(no_data)]) == 2
    err = capsys.readouterr().err
    assert "splice" in err and "not found" in err and len(err.strip().splitlines()) == 1


def test_progress_bar_counts_runs_and_names_the_current_one(capsys):
    from optlab.experiments._progress import experiment_bar, expect, step

    with experiment_bar("demo", enabled=True) as runs:
        expect(3)
        for label in ("run a", "run b", "run c"):
            step(label)
            print(f"printed during {label}")
    assert (runs.done, runs.total) == (3, 3)
    out, err = capsys.readouterr()
    assert "printed during run b" in out
    assert "demo" in err and "run b" in err and "3/3" in err
    step("outside a bar: nothing happens")


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("OPTLAB_TEST_REPRODUCE_ALL") != "1",
                    reason="runs every experiment in quick mode (10-25 min on 2 cores, beyond the CI budget); "
                           "set OPTLAB_TEST_REPRODUCE_ALL=1 to run it")
def test_reproduce_all_quick_offline_on_stand_in_data(no_data, monkeypatch, capsys):
    """Issue 17, must-show 2: with no data files and no network every experiment finishes; everything made from
    stand-in data says so (CSV column ``data``, dataset names, figure titles)."""
    import optlab.experiments as E
    import optlab.plot

    titles = {}
    save = optlab.plot.save

    def recording_save(fig, path, *a, **k):
        titles[Path(path).name] = fig._suptitle.get_text() if fig._suptitle else ""
        return save(fig, path, *a, **k)

    monkeypatch.setattr(optlab.plot, "save", recording_save)
    assert cli.main(["reproduce", "all", "--quick", "--out", str(no_data)]) == 0
    out, err = capsys.readouterr()
    assert "error" not in err.lower()
    assert out.count("stand-in data of the same shape") == 1
    synthetic_only = {"lasso-demo", "parallel"}
    figures_without_data_sets = {"pig_linear.png", "pig_beta.png", "pig_blocks.png"}
    for name in E.registry():
        line = next(ln for ln in out.splitlines() if ln.strip().startswith(f"{name} done in"))
        assert ("data: real" in line) == (name in synthetic_only), line
        files = out.split(line, 1)[1].split("==", 1)[0].split()
        files = [Path(f) for f in files if f.startswith(str(no_data))]
        assert files, name
        for f in files:
            assert f.stat().st_size > 0, f
            if name in synthetic_only:
                continue
            if f.suffix == ".csv":
                with open(f) as fh:
                    rows = list(csv.DictReader(fh))
                assert any(r["data"] == "stand-in" for r in rows), f
                for r in rows:
                    if "dataset" in r and r["data"] == "stand-in":
                        assert "(stand-in)" in r["dataset"], (f, r["dataset"])
            elif f.suffix == ".png" and f.name not in figures_without_data_sets:
                assert "STAND-IN DATA" in titles[f.name], f


def test_reproduce_all_releases_compiled_programs_after_each_experiment(no_data, monkeypatch, capsys):
    """`reproduce all` once died of the kernel's memory-map limit (every compiled program stays mapped): the CLI
    must drop JAX's compiled programs after every experiment, the failed ones included."""
    import jax

    import optlab.experiments as E

    _fake_experiments(monkeypatch)
    fakes = E.registry()

    def fails(out, quick=False, seed=0):
        raise RuntimeError("broken on purpose")

    fakes["fails"] = E.Experiment("fails", "fake", fails, __name__)
    monkeypatch.setattr(E, "registry", lambda: dict(fakes))
    monkeypatch.setattr(E, "get", lambda n: fakes[n])
    calls = []
    real = jax.clear_caches
    monkeypatch.setattr(jax, "clear_caches", lambda: (calls.append(1), real())[1])
    assert cli.main(["reproduce", "all", "--quick", "--out", str(no_data)]) != 0
    capsys.readouterr()
    assert len(calls) == 3
