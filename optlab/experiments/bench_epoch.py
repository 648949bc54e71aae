"""Benchmark "SGD epoch": one per-sample epoch of optlab's stochastic methods against scikit-learn's SGDClassifier.

Problem: logistic loss on the a9a training rows (32,561 × 123, ``ol.data.load("a9a")``), float64, dense (the
matrix densified) and CSR (kept sparse: padded rows in optlab, CSR in scikit-learn). One *epoch* is one pass over
the rows in a fresh random order, one sample per step:

* scikit-learn: ``SGDClassifier(loss="log_loss", penalty=None | "l1", max_iter=1, tol=None,
  learning_rate="constant", shuffle=True)``, one ``fit`` (its Cython loop; the peer of the structured rows is the
  ℓ1 penalty, of the plain rows no penalty);
* optlab: ``ol.spdhg`` (batch size 1, μ = 1e-5) with ``F`` the first-difference matrix (a structured ℓ1 penalty
  μ‖Fx‖₁: per step the dual update ``Fx`` and the primal term ``Fᵀu`` over all d coordinates) and with ``F = 0``
  (1 × d zeros: plain logistic regression, the same problem as the unpenalised SGDClassifier); ``ol.stoc_admm``
  with the first-difference F.

Times: every fit is repeated ``repeats`` times after a warm-up (JAX compilation excluded); ``*_s`` is the median
wall time per epoch (optlab: the harness's solver time of ``epochs`` epochs / ``epochs``, metrics excluded), and
``*_cpu_s`` the smallest process CPU time per epoch (optlab: the difference of calls with ``epochs`` and with 1
epoch, so that the per-call set-up cancels), which is what to compare on a shared machine where wall time
mostly measures the other jobs.
``ratio`` = ours / SGDClassifier (wall), ``ratio_cpu`` likewise in CPU time.

Where the time goes (a9a, float64, 2-core AMD EPYC). One SPDHG step touches every coordinate (``Fx`` and the
clipped dual over the m = 122 rows of F, ``Fᵀu``, the primal and the averaged iterate over the d = 123 columns); one
SGDClassifier step only the ~14 nonzeros of its row (its ℓ1 penalty and averaging are lazy).

Beyond that work, XLA:CPU's runtime sets the price of a loop body (measured 2026-12-04 with scratch loops, load
< 1): it runs the kernels of a loop body in order, inline, only when the body has at most 8 of them, or every
buffer they touch holds at most 512 bytes, or each kernel depends on the one before; any other body goes through
its dataflow executor, at a fixed cost of about 0.3 µs per iteration on this machine. ``--threshold`` prints it
(:func:`threshold_rows`; 2026-12-04 20:28 UTC, load 0.0, a9a CSR, medians of 5): an 8-kernel SGD loop 4.9 ms per
epoch; with 1–4 extra independent scalar updates (9–12 kernels) 14.3–16.2 ms on JAX 0.10.2 (2.9–3.3×) and
15.4–18.3 ms on JAX 0.12.0.1 (3.2–3.8×). The thresholds are compile-time constants of
``xla::cpu::ThunkExecutor``: no flag changes them (``--xla_cpu_use_thunk_runtime=false``,
``--xla_cpu_multi_thread_eigen=false``, ``--xla_cpu_enable_concurrency_optimized_scheduler=false`` and ``taskset``
to one core were tried). spdhg's step is 14 kernels on dense rows and 16 on CSR (first-difference F, batch 1). A
rewrite that keeps the iterates bit for bit (step sizes and averaging fractions as per-segment tables, the last
steps stored once per segment, the padded row spread as a one-hot sum instead of a scatter) gets the CSR step to
8 kernels: 37 → 28 ms per epoch (scratch, not committed); the dense step stays at 10 (XLA lowers the dense row's
dot as three kernels) and gains nothing. The same work as a stand-alone 8-kernel loop takes 15–20 ms. So on CSR a
body in sequential mode still costs ≥ 3× SGDClassifier ℓ1's 4.5–4.8 ms: what is left is the O(m + d) work of each
step, which only an O(nnz) step could remove, and SPDHG's dual update reads all of ``Fx``. (Earlier versions of
this note found that "fewer kernels did not help": 17 → 10 kernels, still above the threshold of 8.)

The JAX release matters as much: on JAX 0.12.0.1 (Python 3.13, the same machine, 2026-12-04 18:37 UTC, load 0.9,
medians of 5) the dense spdhg epoch takes 18.4 ms (first-difference F; 0.89× SGDClassifier ℓ1, 20.7 ms) and 12.5 ms
(F = 0; 0.80×), against 40.1 / 36.7 ms (1.99× / 2.44×) on JAX 0.10.2 in the run just before it (load 0.7); CSR
36.1 ms (6.6×) against 38.2 ms (7.7×); stoc_admm 83 / 111 ms dense / CSR against 115 / 111 ms; the floor 7.3 ms
dense (10.6 on 0.10.2), 4.5 ms CSR (5.5). (stoc_admm before cf8630b, which computes its Vᵀr as r·V: 150 / 142 ms on
0.10.2 and 116 / 299 ms on 0.12 — XLA:CPU materialised Vᵀ on every step.)

The **floor** row (:func:`floor_row`) times the simplest per-sample method as a compiled JAX loop on the same rows,
stored as the stochastic solvers store them (dense, or padded rows): logistic SGD with a constant step, no penalty,
no averaging, O(nnz) work per step on padded rows (:func:`loop_floor_epoch`), against the unpenalised SGDClassifier
epoch. It is the limit of this design on the machine: no per-sample solver written as a ``lax.fori_loop`` body gets
below it. 2026-12-04, 17:11 UTC, quiet 2-core AMD EPYC (load 0.5–0.6), a9a 32,561 × 123, medians of 5: dense floor
10.5 ms vs SGDClassifier 14.2 ms (0.74×), CSR floor 3.8 ms vs 3.2 ms (1.20×); spdhg (F = 0) 35.4 ms dense (2.49×)
and 31.3 ms CSR (9.9×), spdhg (first-difference F) 38.9 ms dense (1.96× SGDClassifier ℓ1) and 36.0 ms CSR (7.5×).
So the loop design is not the limit: spdhg spends 3.4× the floor on dense rows and 8× on CSR, where its step
updates all d coordinates. A scratch variant of the dense loop with spdhg's per-step scalar work (√k step, the
burn-in average with ``where``) took 18 ms per 26,048 rows, 9.4 ms with the step sizes and averaging weights
precomputed as vectors (one run, quiet machine): that variant crossed the 8-kernel line described above; the same
precomputation inside spdhg itself (still 12 kernels) gained nothing (37.6 vs 38.4 ms, 2026-12-04).

Usage: ``python -m optlab.experiments.bench_epoch [--repeats 5] [--epochs 3] [--quick] [--threshold]`` (the rows come from
:func:`epoch_rows`; ``optlab bench peers`` prints them in its "SGD epoch" section).
"""
from __future__ import annotations

import argparse
import functools
import os
import time
import warnings
from statistics import median

import numpy as np
import scipy.sparse as sp

__all__ = ["sgd_epoch_times", "optlab_epoch_times", "loop_floor_epoch", "floor_row", "epoch_rows", "a9a_rows",
           "loop_body_kernels", "threshold_epoch", "threshold_rows", "main"]

#: the weight μ of the structured penalty μ‖Fx‖₁ of the SPDHG rows (the GGLR setting of the SPDHG experiments)
MU = 1e-5


def _int32_csr(X):
    """CSR with 32-bit indices (scikit-learn's SGD refuses 64-bit ones)."""
    X = sp.csr_matrix(X, dtype=np.float64)
    return sp.csr_matrix((X.data, X.indices.astype(np.int32), X.indptr.astype(np.int32)), shape=X.shape)


def sgd_epoch_times(X, y, penalty, repeats: int = 5, seed: int = 0) -> tuple[float, float]:
    """``(median wall, min CPU)`` seconds of one ``SGDClassifier`` epoch (``max_iter=1``) on ``X, y``."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import SGDClassifier

    walls, cpus = [], []
    for r in range(repeats + 1):                     # the first fit warms caches and is not counted
        clf = SGDClassifier(loss="log_loss", penalty=penalty, max_iter=1, tol=None, learning_rate="constant",
                            eta0=0.01, shuffle=True, random_state=seed + r)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            t, c = time.perf_counter(), time.process_time()
            clf.fit(X, y)
            wall, cpu = time.perf_counter() - t, time.process_time() - c
        if r:
            walls.append(wall)
            cpus.append(cpu)
    return median(walls), min(cpus)


def optlab_epoch_times(fn, X, y, F, repeats: int = 5, epochs: int = 3, **kw) -> tuple[float, float]:
    """``(median wall, min CPU)`` seconds per epoch of the optlab solver ``fn(X, y, F, MU, epochs=...)`` with
    one harness step per epoch. Wall: the trace's solver time of ``epochs`` epochs / ``epochs`` (compile time and
    metrics excluded). CPU: the difference of the smallest process CPU times of a call with ``epochs`` epochs and
    of one with 1 epoch, / (``epochs`` - 1), so that the per-call set-up (validation, ‖F‖₂) cancels."""
    if epochs < 2:
        raise ValueError(f"epochs must be at least 2 (the CPU time is a difference of calls), got {epochs}")
    kw = {"progress": False, **kw}

    def call(e, seed):
        c = time.process_time()
        res = fn(X, y, F, MU, epochs=e, seed=seed, log_every=e, **kw)
        if res.n_iter != e:                          # a run that stopped early (diverged) times less than e epochs
            raise RuntimeError(f"{getattr(fn, '__name__', fn)}: {res.n_iter} of {e} epochs run ({res.status})")
        return time.process_time() - c, float(res.trace.times[-1]) / e

    call(1, 0), call(epochs, 0)                      # compile
    walls, cpu1, cpun = [], [], []
    for r in range(repeats):
        cpu1.append(call(1, r)[0])
        c, w = call(epochs, r)
        cpun.append(c)
        walls.append(w)
    return median(walls), max(min(cpun) - min(cpu1), 0.0) / (epochs - 1)


def loop_floor_epoch(data, order, step, w):
    r"""One epoch of the simplest per-sample method in a compiled JAX loop, the floor for optlab's per-sample
    solvers on this machine: logistic-loss SGD with a constant step, no penalty, no averaging,
    :math:`w \leftarrow w + \text{step}\; y_i a_i / (1 + e^{y_i a_i^\top w})` for :math:`i` in ``order``. ``data``:
    the rows as the stochastic solvers store them (``optlab.solvers._stochastic.prepare_data``): dense rows, or
    padded rows whose step touches only the row's stored entries (O(nnz))."""
    import jax
    import jax.numpy as jnp

    def body(t, w):
        i = order[t]
        v, yi = data.vals[i], data.y[i]
        if data.cols is None:
            return w + step * yi * v / (1 + jnp.exp(yi * (v @ w)))
        c = data.cols[i]
        return w.at[c].add(step * yi * v / (1 + jnp.exp(yi * (w[c] @ v))))

    return jax.lax.fori_loop(0, order.shape[0], body, w)


def _time_epoch(epoch, data, step, w0, rng, repeats: int):
    """Wall and CPU seconds of ``repeats`` calls ``epoch(data, order, step, w0)``, each on a fresh random order of
    the rows, after one more call that compiles and is not counted."""
    import jax
    import jax.numpy as jnp

    walls, cpus = [], []
    for r in range(repeats + 1):
        order = jnp.asarray(rng.permutation(data.y.shape[0]).astype(np.int32))
        t, c = time.perf_counter(), time.process_time()
        jax.block_until_ready(epoch(data, order, step, w0))
        if r:
            walls.append(time.perf_counter() - t)
            cpus.append(time.process_time() - c)
    return walls, cpus


def floor_row(X, y, problem: str, repeats: int = 5, step: float = 0.01, sgd_times=None) -> dict:
    """The "JAX loop floor" row beside the optlab rows of :func:`epoch_rows`: :func:`loop_floor_epoch` on the rows
    stored as the solvers store them (dense, or padded rows for SciPy sparse ``X``), compiled once, a fresh random
    order per repeat (median wall and smallest CPU seconds of one epoch), against the unpenalised SGDClassifier
    epoch (``sgd_times`` = its ``(wall, cpu)`` when already measured on the same rows, else measured here)."""
    import jax
    import jax.numpy as jnp

    from optlab.solvers._stochastic import get_loss, prepare_data

    y = np.asarray(y, np.float64)
    data = prepare_data(X, y, get_loss("logistic"), np.float64, layout="sparse" if sp.issparse(X) else "dense")
    epoch = jax.jit(loop_floor_epoch)
    rng = np.random.default_rng(0)
    w0 = jnp.zeros(X.shape[1])
    walls, cpus = _time_epoch(epoch, data, step, w0, rng, repeats)
    if sgd_times is None:
        sgd_times = sgd_epoch_times(_int32_csr(X) if sp.issparse(X) else np.asarray(X, np.float64), y, None, repeats)
    s_wall, s_cpu = sgd_times
    o_wall, o_cpu = median(walls), min(cpus)
    return {"problem": problem, "method": "JAX loop floor: logistic SGD, constant step, O(nnz) per step",
            "sgd_penalty": "None", "sgd_s": s_wall, "ours_s": o_wall, "ratio": o_wall / s_wall, "sgd_cpu_s": s_cpu,
            "ours_cpu_s": o_cpu, "ratio_cpu": o_cpu / s_cpu, "load": os.getloadavg()[0]}


def _methods(d: int):
    import optlab as ol

    D = ol.operators.first_difference(d)
    return (("spdhg (F = 0: plain logistic)", ol.spdhg, np.zeros((1, d)), None),
            ("spdhg (F = first difference)", ol.spdhg, D, "l1"),
            ("stoc_admm (F = first difference)", ol.stoc_admm, D, "l1"))


def epoch_rows(X, y, problem: str, repeats: int = 5, epochs: int = 3, methods=None) -> list[dict]:
    """The "SGD epoch" rows of one data set: per optlab method ``problem``, ``method``, ``sgd_penalty``,
    ``sgd_s``, ``ours_s``, ``ratio`` (wall), ``sgd_cpu_s``, ``ours_cpu_s``, ``ratio_cpu`` and ``load`` (1-minute
    load average after the row). ``X`` dense or SciPy sparse (kept as given), ``y`` ±1.

    ``methods``: ``(label, solver, F, SGDClassifier penalty)`` tuples; default: SPDHG with F = 0 against no
    penalty, SPDHG and STOC-ADMM with the first-difference F against the ℓ1 penalty."""
    y = np.asarray(y, np.float64)
    Xs = _int32_csr(X) if sp.issparse(X) else np.asarray(X, np.float64)
    sgd = {}
    rows = []
    for label, fn, F, penalty in (methods if methods is not None else _methods(X.shape[1])):
        if penalty not in sgd:
            sgd[penalty] = sgd_epoch_times(Xs, y, penalty, repeats)
        s_wall, s_cpu = sgd[penalty]
        o_wall, o_cpu = optlab_epoch_times(fn, X, y, F, repeats, epochs)
        rows.append({"problem": problem, "method": label, "sgd_penalty": str(penalty), "sgd_s": s_wall,
                     "ours_s": o_wall, "ratio": o_wall / s_wall, "sgd_cpu_s": s_cpu, "ours_cpu_s": o_cpu,
                     "ratio_cpu": o_cpu / s_cpu, "load": os.getloadavg()[0]})
    return rows


def a9a_rows(repeats: int = 5, epochs: int = 3, methods=None) -> list[dict]:
    """:func:`epoch_rows` on a9a's training rows, dense and CSR, each followed (default ``methods``) by the
    :func:`floor_row` of its layout; an empty list (with a message) when ``ol.data.load("a9a")`` finds no file."""
    import optlab as ol

    try:
        ds = ol.data.load("a9a")
    except Exception as exc:  # noqa: BLE001 - a missing file is reported, not fatal
        print(f"[skip] SGD epoch: a9a: {str(exc).splitlines()[0]}")
        return []
    X = _int32_csr(ds.X)
    n, d = X.shape
    rows = []
    for data, layout in ((X.toarray(), "dense"), (X, "CSR")):
        problem = f"a9a {layout} {n}x{d}"
        rows += epoch_rows(data, ds.y, problem, repeats, epochs, methods)
        if methods is None:      # the unpenalised SGDClassifier epoch of the spdhg (F = 0) row, not measured again
            plain = next(r for r in rows if r["problem"] == problem and r["sgd_penalty"] == "None")
            rows.append(floor_row(data, ds.y, problem, repeats, sgd_times=(plain["sgd_s"], plain["sgd_cpu_s"])))
    return rows


def format_rows(rows: list[dict]) -> list[dict]:
    """The rows as table cells (milliseconds, ratios with two decimals)."""
    ms = lambda v: f"{1e3 * v:.1f}"  # noqa: E731
    return [{"problem": r["problem"], "optlab method": r["method"], "SGDClassifier": f"penalty={r['sgd_penalty']}",
             "SGD ms": ms(r["sgd_s"]), "ours ms": ms(r["ours_s"]), "ratio": f"{r['ratio']:.2f}",
             "SGD cpu ms": ms(r["sgd_cpu_s"]), "ours cpu ms": ms(r["ours_cpu_s"]),
             "ratio cpu": f"{r['ratio_cpu']:.2f}", "load": f"{r['load']:.1f}"} for r in rows]


def loop_body_kernels(compiled_text: str) -> int | None:
    """The number of kernels (thunks) in the body of the first ``while`` loop of a compiled XLA:CPU program's text
    (``jax.jit(f).lower(...).compile().as_text()``): its instructions other than parameters, constants, tuples,
    tuple element reads and bitcasts. ``None`` when the text has no loop body it can read (the format is XLA's)."""
    import re

    m = re.search(r"body=%?([\w.\-]+)", compiled_text)
    if m is None:
        return None
    head = re.search(r"^%?" + re.escape(m.group(1)) + r" .*\{$", compiled_text, re.M)
    if head is None:
        return None
    end = compiled_text.find("\n}", head.end())
    free = ("get-tuple-element", "constant", "parameter", "tuple", "bitcast")
    ops = re.findall(r"= \S+ ([\w\-]+)\(", compiled_text[head.end():end])
    return sum(op not in free for op in ops)


def threshold_epoch(data, order, step, w, extras: int = 0):
    r"""The floor's SGD epoch written as 8 kernels per step on padded rows (the row's gradient spread into a zero
    vector, then added), carrying ``extras`` more float scalars that each step updates independently
    (:math:`s \leftarrow 1.0001 s + 1`). Returns ``(w, scalars)``. Each extra scalar is one more kernel in the loop body
    (XLA does not fuse them with the vector work): the probe of XLA:CPU's 8-kernel threshold (module docstring)."""
    import jax
    import jax.numpy as jnp

    d = w.shape[0]

    def body(t, carry):
        x, scalars = carry
        i = order[t]
        v, yi, c = data.vals[i], data.y[i], data.cols[i]
        g = jnp.zeros(d, x.dtype).at[c].add(yi * v / (1 + jnp.exp(yi * (x[c] @ v))))
        return x + step * g, tuple(s * 1.0001 + 1.0 for s in scalars)

    scalars = tuple(jnp.zeros((), w.dtype) + j for j in range(extras))
    return jax.lax.fori_loop(0, order.shape[0], body, (w, scalars))


def threshold_rows(X, y, problem: str, repeats: int = 5, step: float = 0.01, extras=(0, 1, 2, 3, 4)) -> list[dict]:
    """The "loop threshold" table: :func:`threshold_epoch` on the padded rows of sparse ``X`` for each number of extra
    scalars: kernels in the compiled loop body (:func:`loop_body_kernels`), median wall and smallest CPU seconds of one
    epoch (compile excluded, a fresh random order per repeat), and the time over the 0-extras loop's."""
    import jax
    import jax.numpy as jnp

    from optlab.solvers._stochastic import get_loss, prepare_data

    data = prepare_data(sp.csr_matrix(X), np.asarray(y, np.float64), get_loss("logistic"), np.float64,
                        layout="sparse")
    rng = np.random.default_rng(0)
    w0 = jnp.zeros(X.shape[1])
    rows = []
    for k in extras:
        epoch = jax.jit(functools.partial(threshold_epoch, extras=k))
        order = jnp.asarray(rng.permutation(X.shape[0]).astype(np.int32))
        kernels = loop_body_kernels(epoch.lower(data, order, step, w0).compile().as_text())
        walls, cpus = _time_epoch(epoch, data, step, w0, rng, repeats)
        rows.append({"problem": problem, "extra_scalars": k, "kernels": kernels, "wall_s": median(walls),
                     "cpu_s": min(cpus), "load": os.getloadavg()[0]})
    for r in rows:
        r["vs_no_extras"] = r["wall_s"] / rows[0]["wall_s"]
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="bench_epoch", description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--epochs", type=int, default=3, help="epochs per optlab call (one harness step each)")
    p.add_argument("--quick", action="store_true", help="2 repeats, 2 epochs per call")
    p.add_argument("--threshold", action="store_true",
                   help="only the loop-threshold table (threshold_rows: 0-4 extra scalars in an 8-kernel loop)")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats, args.epochs = 2, 2

    import jax

    jax.config.update("jax_enable_x64", True)
    from optlab.trace import format_table

    load = os.getloadavg()[0]
    if args.threshold:
        import optlab as ol

        ds = ol.data.load("a9a")
        rows = threshold_rows(ds.X, ds.y, f"a9a CSR {ds.X.shape[0]}x{ds.X.shape[1]}", args.repeats)
        print("Loop threshold (XLA:CPU runs a loop body of at most 8 kernels in order; more go through its dataflow "
              "executor)")
        print(format_table([{"problem": r["problem"], "extra scalars": r["extra_scalars"], "kernels": r["kernels"],
                             "ms": f"{1e3 * r['wall_s']:.1f}", "cpu ms": f"{1e3 * r['cpu_s']:.1f}",
                             "vs 0 extras": f"{r['vs_no_extras']:.2f}", "load": f"{r['load']:.1f}"} for r in rows]))
        print(f"machine: {os.cpu_count()} CPUs, jax {jax.__version__}, 1-min load average {load:.2f} at start, "
              f"{os.getloadavg()[0]:.2f} at end")
        return 0
    rows = a9a_rows(args.repeats, args.epochs)
    if rows:
        print("SGD epoch (one per-sample pass, logistic loss; ratio = ours / SGDClassifier)")
        print(format_table(format_rows(rows)))
    print(f"machine: {os.cpu_count()} CPUs, jax {jax.__version__}, 1-min load average {load:.2f} at start, "
          f"{os.getloadavg()[0]:.2f} at end")
    return 0


if __name__ == "__main__":
    main()
