"""Packaging: the experiments live inside the package (an unrelated ``experiments/`` folder cannot shadow them),
optional dependencies fail with the extra to install, and the persistent compilation cache serves a second
process."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from optlab import cli


def test_an_unrelated_experiments_package_on_the_path_is_not_imported(tmp_path, monkeypatch, capsys):
    poison = tmp_path / "experiments"
    poison.mkdir()
    (poison / "__init__.py").write_text("raise ImportError('the unrelated experiments package was imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "experiments", raising=False)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    assert "lasso-demo" in out and "svm-admm" in out and "pig" in out
    assert "experiments" not in sys.modules


def test_missing_optional_package_names_the_extra(monkeypatch):
    import numpy as np

    from optlab.trace import Trace

    monkeypatch.setitem(sys.modules, "pandas", None)   # makes `import pandas` fail as if it were not installed
    trace = Trace(iters=np.array([0, 1]), times=np.array([0.0, 0.1]), metrics={"objective": np.array([2.0, 1.0])})
    with pytest.raises(ModuleNotFoundError, match=r"optlab\[repro\]") as info:
        trace.to_frame()
    assert info.value.name == "pandas"


def test_a_missing_dependency_inside_an_optional_package_is_not_relabelled(tmp_path, monkeypatch):
    from optlab._optional import require

    (tmp_path / "optlab_fake_pkg.py").write_text("import optlab_no_such_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError) as info:
        require("optlab_fake_pkg", extra="repro", purpose="a test")
    assert info.value.name == "optlab_no_such_dependency" and "optlab[" not in str(info.value)


_PROBE = textwrap.dedent("""
    import json, sys
    import jax
    events = []
    jax.monitoring.register_event_listener(lambda name, **kw: events.append(name))
    import numpy as np
    import optlab as ol

    rng = np.random.default_rng(0)
    A, b = rng.standard_normal((40, 30)), rng.standard_normal(40)
    res = ol.fista(ol.losses.least_squares_objective(A, b), ol.prox.l1(0.1), np.zeros(30), maxiter=50)
    print(json.dumps({"dir": jax.config.jax_compilation_cache_dir,
                      "hits": events.count("/jax/compilation_cache/cache_hits"),
                      "misses": events.count("/jax/compilation_cache/cache_misses"),
                      "compile_time": res.trace.meta["compile_time"]}))
""")


def _probe(setting, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    env["OPTLAB_COMPILATION_CACHE"] = setting
    env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"   # cache every program, however fast it compiled
    proc = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=300, env=env,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_second_process_compiles_from_the_persistent_cache(tmp_path):
    cache = tmp_path / "cache"
    first = _probe(str(cache), tmp_path)
    assert first["dir"] == str(cache) and first["misses"] >= 1, first
    assert any(cache.iterdir()), "the first process wrote nothing to the cache"
    second = _probe(str(cache), tmp_path)
    assert second["misses"] == 0 and second["hits"] >= first["misses"], (first, second)


def test_cache_folder_follows_the_environment(tmp_path, monkeypatch):
    from optlab import _config

    for off in ("0", "off", "False"):
        assert _config.enable_compilation_cache({"OPTLAB_COMPILATION_CACHE": off}) is None
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert _config.default_cache_dir() == tmp_path / "optlab" / "jax-cache"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert str(_config.default_cache_dir()) == os.path.join(os.path.expanduser("~"), ".cache", "optlab", "jax-cache")


@pytest.mark.slow
def test_quickstart_second_process_loads_from_the_cache(tmp_path):
    """The README quick start (optlab bench quickstart's measurement) in two new processes on one empty cache: the
    first compiles and writes, the second loads its programs and spends less time compiling; same run."""
    from optlab.experiments import bench_quickstart

    cache = str(tmp_path / "cache")
    first = bench_quickstart._run_child(cache)
    second = bench_quickstart._run_child(cache)
    assert first["cache_dir"] == cache and first["hits"] == 0 and first["misses"] >= 1, first
    assert second["hits"] >= 1 and second["backend_compile_s"] < first["backend_compile_s"], (first, second)
    assert second["compile_time"] < first["compile_time"], (first, second)
    assert first["status"] == second["status"] == "converged" and first["n_iter"] == second["n_iter"]
