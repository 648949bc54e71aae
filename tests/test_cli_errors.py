"""The command line under bad input: one line with the fix on stderr, exit status 2, no traceback unless
``--debug``; ``--version``; ``list`` and ``data list|path|verify`` against independent sources.

Most cases call :func:`optlab.cli.main` in the test process (fast); a few run ``python -m optlab.cli`` in a
subprocess to check what a shell really sees. Every case runs under a time limit.
"""
from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest
from _time_limit import time_limit

import optlab
from optlab import cli
from optlab.data import download as dl

CASE_TIMEOUT_S = 120
PUBLIC_SOLVERS = ["ista", "fista", "gist", "svm_admm", "pig", "pig_blocks", "admm_irnn", "spdhg", "lpdhg", "spdpeg",
                  "egadm", "stoc_admm", "opg_admm", "rda_admm", "sag_admm", "ada_sadmm", "sgadm", "ipdlam", "dlam"]


@pytest.fixture(autouse=True)
def _case_time_limit(request):
    with time_limit(CASE_TIMEOUT_S, request.node.name):
        yield


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """A data folder holding only a (made-up) heart_scale, an empty cache, no network."""
    root = tmp_path / "data"
    (root / "libsvm").mkdir(parents=True)
    (root / "libsvm" / "heart_scale").write_text("1 1:0.5 13:1\n-1 2:0.25\n")
    monkeypatch.setenv("OPTLAB_DATA", str(root))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("OPTLAB_OFFLINE", "1")
    monkeypatch.delenv("OPTLAB_VERIFY", raising=False)

    def no_network(url, *a, **k):
        raise AssertionError(f"a test tried to download {url}")

    monkeypatch.setattr(dl, "urlopen", no_network)
    return root


def run(capsys, argv):
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------------------------- bad input: exit 2
BAD = {
    "no-command": ([], "required: COMMAND"),
    "unknown-command": (["frob"], "invalid choice: 'frob'"),
    "unknown-option": (["list", "--frob"], "unrecognized arguments: --frob"),
    "list-extra-argument": (["list", "extra"], "unrecognized arguments: extra"),
    "reproduce-no-name": (["reproduce"], "required: name"),
    "reproduce-typo": (["reproduce", "lasso-dem"], "Did you mean 'lasso-demo'"),
    "reproduce-bad-seed": (["reproduce", "lasso-demo", "--seed", "abc"], "invalid int value: 'abc'"),
    "reproduce-float-seed": (["reproduce", "lasso-demo", "--seed", "1.5"], "invalid int value: '1.5'"),
    "bench-no-name": (["bench"], "required: name"),
    "bench-unknown": (["bench", "nosuch"], "unknown benchmark 'nosuch'"),
    "data-no-action": (["data"], "required: action"),
    "data-bad-action": (["data", "lst"], "invalid choice: 'lst'"),
    "data-path-no-name": (["data", "path"], "needs a data set name"),
    "data-path-unknown": (["data", "path", "nosuch"], "unknown data set 'nosuch'"),
    "data-path-typo": (["data", "path", "mushroom"], "Did you mean 'mushrooms'"),
    "data-path-missing": (["data", "path", "a9a"], "'a9a' is missing"),
    "data-path-missing-online-only": (["data", "path", "real-sim"], "'real-sim' is missing"),
    "data-path-no-file": (["data", "path", "digits"], "has no data file"),
    "data-fetch-offline": (["data", "fetch", "w8a"], "not found"),
    "data-fetch-unknown": (["data", "fetch", "nosuch"], "unknown data set"),
    "data-describe-unknown": (["data", "describe", "nosuch"], "unknown data set"),
    "data-verify-unknown": (["data", "verify", "nosuch"], "unknown data set"),
    "data-verify-missing": (["data", "verify", "splice"], "not found"),
    "data-verify-tampered": (["data", "verify", "heart_scale"], "does not match the registry"),
    "data-list-extra": (["data", "list", "a9a"], "takes no name"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_with_a_fix_and_exit_2(capsys, case):
    argv, needle = BAD[case]
    code, out, err = run(capsys, argv)
    assert code == 2, (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("optlab: error: ") and " fix: " in lines[0], lines[0]
    assert needle in lines[0]
    assert "Traceback" not in err and "usage:" not in err


def test_tampered_data_names_the_opt_out(capsys):
    code, _, err = run(capsys, ["data", "verify", "heart_scale"])
    assert code == 2 and "verify=False" in err and "OPTLAB_VERIFY=0" in err and "heart_scale" in err


@pytest.mark.parametrize("argv", [["--debug", "data", "path", "a9a"], ["data", "path", "a9a", "--debug"],
                                  ["data", "--debug", "verify", "heart_scale"], ["--debug", "reproduce", "nosuch"]])
def test_debug_shows_the_traceback(capsys, argv):
    code, _, err = run(capsys, argv)
    assert code == 2
    assert "Traceback (most recent call last)" in err
    assert err.strip().splitlines()[-1].startswith("optlab: error: ")


def test_debug_with_an_argument_error_shows_the_usage(capsys):
    code, _, err = run(capsys, ["--debug", "data", "lst"])
    assert code == 2 and "usage:" in err and "invalid choice" in err


def test_an_unexpected_error_is_exit_1_one_line_asking_for_a_report(capsys, monkeypatch):
    def broken(args):
        raise RuntimeError("solver exploded")

    monkeypatch.setattr(cli, "_cmd_list", broken)
    code, _, err = run(capsys, ["list"])
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "unexpected RuntimeError: solver exploded" in err and "--debug" in err
    code, _, err = run(capsys, ["list", "--debug"])
    assert code == 1 and "Traceback" in err


def test_ctrl_c_is_exit_130_without_traceback(capsys, monkeypatch):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_cmd_list", interrupted)
    code, _, err = run(capsys, ["list"])
    assert code == 130 and err.strip() == "optlab: interrupted"


def test_a_missing_package_says_what_to_install(capsys, monkeypatch):
    def needs_cvxpy(args):
        import importlib
        importlib.import_module("cvxpy_not_installed_here")

    monkeypatch.setattr(cli, "_cmd_list", needs_cvxpy)
    code, _, err = run(capsys, ["list"])
    assert code == 2 and "pip install cvxpy_not_installed_here" in err


def test_a_foreign_experiments_package_is_ignored(capsys, monkeypatch, tmp_path):
    """issue 17: an unrelated experiments/ package first on the path does not shadow optlab.experiments."""
    fake = tmp_path / "elsewhere" / "experiments"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    for mod in [m for m in sys.modules if m == "experiments" or m.startswith("experiments.")]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.syspath_prepend(str(fake.parent))
    code, out, _ = run(capsys, ["list"])
    assert code == 0 and "lasso-demo" in out


# ---------------------------------------------------------------------------------------------- good input
def test_version(capsys):
    code, out, err = run(capsys, ["--version"])
    assert code == 0 and out.strip() == f"optlab {optlab.__version__}"


def test_help_is_exit_0(capsys):
    code, out, _ = run(capsys, ["--help"])
    assert code == 0 and "reproduce" in out and "data" in out


def test_list_shows_every_public_solver_experiment_and_benchmark(capsys):
    from optlab import experiments

    code, out, _ = run(capsys, ["list"])
    assert code == 0
    section = out.split("Experiments")[0]
    listed = [ln.split()[0] for ln in section.splitlines()[1:] if ln.strip()]
    exported = [n for n in optlab.__all__ if inspect.isfunction(getattr(optlab, n))
                and getattr(optlab, n).__module__.startswith("optlab.solvers")]
    assert listed == exported
    assert set(PUBLIC_SOLVERS) <= set(listed)
    assert "fista_bt" not in listed  # a registry test case, not a public function
    for name in experiments.registry():
        assert f"  {name} " in out
    for bench in Path(experiments.__file__).parent.glob("bench_*.py"):
        assert bench.stem[len("bench_"):] in out


def test_data_list_shows_size_source_and_local_availability(capsys, isolated):
    import optlab.data as od

    code, out, _ = run(capsys, ["data", "list"])
    assert code == 0
    rows = {ln.split()[0]: ln for ln in out.splitlines()[1:] if ln.strip() and not ln.startswith("looked")}
    assert set(rows) == set(od.list_datasets())
    assert "a9a.t" not in rows and "w8a.t" not in rows
    assert "32,561 x 123" in rows["a9a"] and "LIBSVM site (https)" in rows["a9a"]
    assert "270 x 13" in rows["heart_scale"]
    # only heart_scale is in the data folder of this test
    assert " yes " in rows["heart_scale"] and " no " in rows["a9a"] and " no " in rows["mnist"]
    assert "bundled" in rows["iris"] and "generated" in rows["synthetic_regression"]
    (isolated / "libsvm" / "a9a").write_text("1 1:1\n")
    _, out, _ = run(capsys, ["data", "list"])
    a9a = next(ln for ln in out.splitlines() if ln.startswith("a9a "))
    assert "yes (optional a9a.t missing)" in a9a


def test_data_path_of_a_local_file(capsys, isolated):
    code, out, err = run(capsys, ["data", "path", "heart_scale"])
    assert code == 0 and out.strip() == str(isolated / "libsvm" / "heart_scale") and not err


def test_data_verify_reports_and_opt_out_does_not_apply_to_verify(capsys, monkeypatch):
    """`data verify` always checks (it is the check); OPTLAB_VERIFY=0 does not silence it."""
    monkeypatch.setenv("OPTLAB_VERIFY", "0")
    code, _, err = run(capsys, ["data", "verify", "heart_scale"])
    assert code == 2 and "does not match" in err
    code, out, err = run(capsys, ["data", "verify", "all"])
    assert code == 2 and "a9a" in out and "not local" in out and "heart_scale" in err


# ------------------------------------------------------------------------------------------- subprocesses
def _shell(args, env_extra=None, cwd=None):
    env = dict(os.environ, **(env_extra or {}))
    root = Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = os.pathsep.join([str(root), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run([sys.executable, "-m", "optlab.cli", *args], capture_output=True, text=True,
                          timeout=CASE_TIMEOUT_S - 10, env=env, cwd=cwd)


@pytest.mark.parametrize("args, code", [(["data", "path", "real-sim"], 2), (["reproduce", "nosuch"], 2),
                                        (["data", "lst"], 2), (["--version"], 0)])
def test_what_a_shell_sees(args, code, tmp_path):
    proc = _shell(args, cwd=tmp_path)
    assert proc.returncode == code, proc.stderr
    if code:
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("optlab: error: ") and "Traceback" not in proc.stderr
    else:
        assert proc.stdout.strip() == f"optlab {optlab.__version__}"


def test_debug_in_a_shell_prints_the_traceback(tmp_path):
    proc = _shell(["--debug", "data", "path", "real-sim"], cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" in proc.stderr and "CLIError" in proc.stderr


def test_data_fetch_and_describe(capsys, isolated):
    code, out, _ = run(capsys, ["data", "fetch", "heart_scale"])  # already local: nothing downloaded
    assert code == 0 and out.strip() == str(isolated / "libsvm" / "heart_scale")
    code, out, _ = run(capsys, ["data", "fetch", "iris"])
    assert code == 0 and "nothing to fetch" in out
    code, out, _ = run(capsys, ["data", "describe", "a9a"])
    assert code == 0 and "a9a.t" in out and "content digest pinned" in out and "not found" in out
