"""`optlab reproduce parallel` is a list of method entries: a new method is one more `Method` (here a tiny Lasso by
data-parallel ISTA), and the tables, speed-ups and figures follow. Without Ray the real-async rows are skipped with a
message; with Ray they are checked in tests/parallel/ray_suite.py (Ray runs in a process of its own)."""
import csv
import sys

import jax
import numpy as np
import pytest

import optlab as ol
from optlab.references import lasso_optimum

pytestmark = pytest.mark.skipif(len(jax.devices()) < 4, reason="needs 4 (simulated) devices")


def _lasso_setup(quick, seed):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(82, 6))         # 82 rows: uneven shards over 4 workers
    b = A @ np.array([1.0, -2.0, 0.0, 0.0, 0.5, 0.0]) + 0.1 * rng.normal(size=82)
    lam = 0.05
    return {"data": "tiny lasso 82x6", "A": A, "b": b, "lam": lam, "f_star": lasso_optimum(A, b, lam)[0]}


def _lasso_run(ctx, executor, quick, iter_scale=1):
    f = ol.losses.least_squares_objective(ctx["A"], ctx["b"])
    res = ol.ista(f, ol.prox.l1(ctx["lam"]), np.zeros(6), step=1 / (7 * f.lipschitz()), maxiter=round(400 * iter_scale),
                  tol=0, log_every=4, progress=False, parallel=executor)
    res.trace.metrics["rel_gap"] = np.maximum(res.trace["objective"] - ctx["f_star"], 0) / ctx["f_star"]
    return res.trace


LASSO = dict(key="lasso", title="ISTA, Lasso", setup=_lasso_setup, run=_lasso_run, target=1e-6,
             units=lambda ctx, W: 82)


def test_a_new_method_is_one_more_entry(tmp_path, monkeypatch, capsys):
    import optlab.experiments.parallel as E

    monkeypatch.setattr(E, "METHODS", [E.Method(**LASSO)])
    monkeypatch.setitem(sys.modules, "ray", None)           # Ray not installed: its rows are skipped, said so
    out = E.run(tmp_path, quick=True, seed=0)
    assert "ray is not installed" in capsys.readouterr().out and not out["ray_summary"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"parallel_{n}" for n in ("traces.csv", "summary.csv", "convergence.png", "convergence.pdf", "speedup.png",
                                  "speedup.pdf"))
    for name in ("parallel_traces.csv", "parallel_summary.csv", "parallel_convergence.png", "parallel_speedup.png"):
        assert (tmp_path / name).stat().st_size > 0
    with open(tmp_path / "parallel_summary.csv") as fh:
        rows = {(r["speeds"], r["executor"]): r for r in csv.DictReader(fh)}
    assert set(rows) == {(s, e) for s in ("uniform", "straggler") for e in ("Sync(1)", "Sync(4)", "Async(4, D=3)")}
    assert all(r["method"] == "lasso" and r["sim_time_to_target"] for r in rows.values())
    assert float(rows["uniform", "Sync(1)"]["speedup"]) == 1.0
    # equal speeds: every worker arrives at once, so Async is Sync; one shard costs ceil(82/4)/82 of a gradient
    sync, asyn = rows["uniform", "Sync(4)"], rows["uniform", "Async(4, D=3)"]
    assert sync["sim_time_to_target"] == asyn["sim_time_to_target"]
    assert float(sync["sim_time_to_target"]) == pytest.approx(int(sync["iters_to_target"]) * 21 / 82, rel=1e-3)
    # a straggler paces Sync; Async waits for it every fourth round only
    assert float(rows["straggler", "Async(4, D=3)"]["sim_time_to_target"]) < float(
        rows["straggler", "Sync(4)"]["sim_time_to_target"])
    assert len(out["traces"]) == 6
