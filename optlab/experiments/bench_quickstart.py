"""Benchmark (``optlab bench quickstart``): the README quick start run twice, each time in a new process, against
one persistent compilation cache (issue 17): the second process compiles from the cache.

The quick start: ``jax_enable_x64``, ``make_sparse_regression(n=500, d=1000, k=20, seed=0)``, ℓ1 level
``0.05·‖Aᵀb‖∞/n`` and ``ol.fista(least_squares_objective(A, b), prox.l1(lam), zeros(1000), maxiter=2000,
tol=1e-10)``. Each process reports the run's ``trace.meta["compile_time"]`` (the harness's warm-up call:
tracing, lowering and compiling or loading the loop and the metrics), its solve time (``trace.times[-1]``), the
wall time of the ``fista`` call, and from :mod:`jax.monitoring` the persistent cache's hits and misses and the
seconds spent in XLA compilation or cache loading (``backend_compile``) over the whole process.

By default the cache is a new temporary folder, so the first process starts cold (it compiles and writes the
cache) and the second one is the *second run in a new process*; ``--cache DIR`` uses (and keeps) ``DIR`` instead.
optlab writes every program that took at least :data:`optlab._config.MIN_COMPILE_TIME_S` to compile; faster ones
are compiled again in each process (they are the second process's misses).

Usage: ``optlab bench quickstart [--runs 2] [--cache DIR]``, or ``python -m optlab.experiments.bench_quickstart``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile

from ._child import run_child

_EVENTS = {"/jax/compilation_cache/cache_hits": "hits", "/jax/compilation_cache/cache_misses": "misses"}
_COMPILE = "/jax/core/compile/backend_compile_duration"


def _child() -> dict:
    """The quick start in this process; returns its times and the compilation cache's counts."""
    import time

    import jax
    import jax.monitoring as jm

    counts = {"hits": 0, "misses": 0, "backend_compile_s": 0.0}

    def event(name, **kw):
        if name in _EVENTS:
            counts[_EVENTS[name]] += 1

    def duration(name, secs, **kw):
        if name == _COMPILE:
            counts["backend_compile_s"] += secs

    jm.register_event_listener(event)
    jm.register_event_duration_secs_listener(duration)
    jax.config.update("jax_enable_x64", True)
    import numpy as np

    import optlab as ol

    ds = ol.data.make_sparse_regression(n=500, d=1000, k=20, seed=0)
    A, b = np.asarray(ds.X), np.asarray(ds.y)
    lam = 0.05 * np.max(np.abs(A.T @ b)) / len(b)
    f = ol.losses.least_squares_objective(A, b)
    t = time.perf_counter()
    res = ol.fista(f, ol.prox.l1(lam), np.zeros(1000), maxiter=2000, tol=1e-10, progress=False)
    wall = time.perf_counter() - t
    return {**counts, "compile_time": float(res.trace.meta["compile_time"]), "solve_s": float(res.trace.times[-1]),
            "wall_s": wall, "status": res.status, "n_iter": int(res.n_iter),
            "cache_dir": jax.config.jax_compilation_cache_dir, "load": os.getloadavg()[0]}


def _run_child(cache: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    env["OPTLAB_COMPILATION_CACHE"] = cache
    return run_child("optlab.experiments.bench_quickstart", env=env)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="optlab bench quickstart", description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=2, help="processes run one after another (default 2)")
    ap.add_argument("--cache", default=None, help="compilation cache folder (default: a new temporary folder)")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(_child()))
        return 0
    if args.runs < 1:
        ap.error("--runs must be >= 1")
    with tempfile.TemporaryDirectory(prefix="optlab-jax-cache-") as tmp:
        cache = args.cache or tmp
        print(f"compilation cache: {'a new temporary folder' if args.cache is None else cache}")
        print(f"{'process':>7} {'compile_time [s]':>17} {'XLA compile/load [s]':>21} {'cache hits':>11} "
              f"{'misses':>7} {'solve [s]':>10} {'fista() wall [s]':>17} {'status':>10} {'load':>5}")
        rows = []
        for i in range(args.runs):
            r = _run_child(cache)
            rows.append(r)
            print(f"{i + 1:>7} {r['compile_time']:>17.3f} {r['backend_compile_s']:>21.3f} {r['hits']:>11} "
                  f"{r['misses']:>7} {r['solve_s']:>10.3f} {r['wall_s']:>17.3f} {r['status']:>10} {r['load']:>5.1f}",
                  flush=True)
    if len(rows) > 1:
        first, last = rows[0], rows[-1]
        print(f"process {len(rows)} vs 1: compile_time {last['compile_time']:.3f} s vs {first['compile_time']:.3f} s "
              f"({first['compile_time'] / max(last['compile_time'], 1e-9):.1f}x less), {last['hits']} programs loaded "
              f"from the cache, {last['misses']} compiled (each under the cache's threshold)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
