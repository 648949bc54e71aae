"""The one loop every solver runs through.

A solver is two pure functions (DESIGN.md): ``init(...) -> state`` and
``step(state, problem) -> (state, info)``, where ``problem`` is a pytree of everything the step reads
(data, penalties, step sizes) and ``info`` a dict of scalar diagnostics. :func:`run` drives ``step``:

* in compiled chunks of ``log_every`` iterations (one ``lax.while_loop`` per chunk, state buffers donated
  on accelerators); the tolerance and divergence tests run *inside* the chunk, so the run stops at the
  exact iteration where ``info[stop_metric] <= tol`` or where the state first becomes non-finite;
* at each log point it evaluates the metric functions (``name -> fn(state, problem)``, jitted, one
  device-to-host transfer per log point), appends a row to the :class:`~optlab.trace.Trace`, updates the
  progress bar, calls the user's callback and checks ``max_time``;
* compile time is measured by a warm-up call with zero iterations and reported in
  ``trace.meta["compile_time"]``; it is never part of ``trace.times``. Metric evaluation is excluded
  from ``trace.times`` as well (benchopt's convention), and reported as ``meta["metric_time"]``;
* a non-finite state stops the run with status ``"diverged"``; the returned state is the last finite one;
* optional checkpoints (``.npz``: state leaves, trace, iteration count; no pickle) and exact resume;
* matrix products on 32-bit inputs are traced with true float32 precision (``"highest"``) unless the caller
  chose a precision (``jax.default_matmul_precision``): JAX's default on NVIDIA Ampere and newer GPUs rounds
  float32 operands of a dot to TensorFloat-32 (10-bit mantissa). Measured on an H200 (paper_figs/gpu, run 3): a
  float32 ADMMiRNN run ends 3.4e-3 (relative) from its float64 reference under JAX's default or TF32, 5.6e-5
  under ``"highest"`` (CPU: 1.5e-5); ISTA and the SVM ADMM barely notice. No effect on CPUs or in float64. Opt in to the fast mode with ``with jax.default_matmul_precision("tensorfloat32"): ...``.

:func:`run_jit` is the fully-compiled variant: no host round trips, metrics into a preallocated buffer,
so it can be used inside ``jax.jit`` and ``jax.vmap`` (e.g. over a regularisation path).
"""
from __future__ import annotations

import functools
import json
import sys
import time
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from .parallel import Serial, as_executor
from .trace import Result, Trace, _jsonable

__all__ = ["run", "run_jit", "solve", "JitRun", "status_name", "save_checkpoint", "load_checkpoint"]

RUNNING, CONVERGED, DIVERGED = 0, 1, 2

#: Matmul precision for 32-bit inputs inside the loop when the caller set none (see the module docstring).
DEFAULT_MATMUL_PRECISION = "highest"


def _matmul_precision(fn):
    """Trace and run ``fn`` under the caller's ``jax.default_matmul_precision`` if one is set, else under
    :data:`DEFAULT_MATMUL_PRECISION` (true float32: no silent TF32 on GPUs)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        chosen = jax.default_matmul_precision.value
        with jax.default_matmul_precision(DEFAULT_MATMUL_PRECISION if chosen is None else chosen):
            return fn(*args, **kwargs)

    return wrapper
_STATUS_CODES = {0: "maxiter", 1: "converged", 2: "diverged"}


def status_name(code) -> str:
    """Status string of a :class:`JitRun` status code (0 maxiter, 1 converged, 2 diverged)."""
    return _STATUS_CODES[int(code)]


# --------------------------------------------------------------------------------- pytree helpers
def _is_float(x) -> bool:
    return jnp.issubdtype(jnp.result_type(x), jnp.inexact)


def all_finite(tree) -> jax.Array:
    """True when every floating leaf of ``tree`` is finite (integer and key leaves are ignored)."""
    flags = [jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree) if _is_float(x)]
    return jnp.all(jnp.stack(flags)) if flags else jnp.array(True)


def _select(pred, on_true, on_false):
    return jax.tree.map(lambda a, b: jnp.where(pred, a, b), on_true, on_false)


def _strong(tree):
    """Arrays with fixed (non-weak) dtypes, so the compiled loop carry has a stable type."""
    def fix(x):
        if jax.dtypes.issubdtype(jnp.result_type(x), jax.dtypes.prng_key):
            return x
        return jnp.array(x, dtype=jnp.result_type(x))
    return jax.tree.map(fix, tree)


def _nan_info(step, state, problem):
    """An info dict of the right shapes and dtypes, NaN (or 0 for integers) before the first step."""
    _, shapes = jax.eval_shape(step, state, problem)
    return jax.tree.map(
        lambda s: jnp.full(s.shape, jnp.nan if jnp.issubdtype(s.dtype, jnp.inexact) else 0, s.dtype), shapes)


def _match_mesh(info, state):
    """Replicate ``info`` on the mesh of a state placed by :func:`optlab.parallel.place` (parallel solvers): the
    chunk returns its info there, and an info of other shardings would make the second chunk compile again."""
    leaves = jax.tree.leaves(state)
    sharding = getattr(leaves[0], "sharding", None) if leaves else None
    if not isinstance(sharding, jax.sharding.NamedSharding):
        return info
    return jax.device_put(info, jax.sharding.NamedSharding(sharding.mesh, jax.sharding.PartitionSpec()))


# ---------------------------------------------------------------------------------- the chunk loop
def _chunk(step, stop_metric, state, info, problem, n_steps, tol):
    """Run up to ``n_steps`` iterations of ``step``; stop early on tolerance or a non-finite state.

    Returns ``(state, info, steps_taken, status)``; on divergence ``state`` is the last finite one.
    """
    def cond(carry):
        i, status, _, _ = carry
        return (i < n_steps) & (status == RUNNING)

    def body(carry):
        i, _, state, info = carry
        new_state, new_info = step(state, problem)
        new_state = jax.tree.map(lambda new, old: new.astype(old.dtype), new_state, state)
        new_info = jax.tree.map(lambda new, old: jnp.asarray(new).astype(old.dtype), new_info, info)
        ok = all_finite(new_state)
        state = _select(ok, new_state, state)
        info = _select(ok, new_info, info)
        if stop_metric is None:
            converged = jnp.array(False)
        else:
            converged = ok & (new_info[stop_metric] <= tol)
        status = jnp.where(ok, jnp.where(converged, CONVERGED, RUNNING), DIVERGED).astype(jnp.int32)
        return i + ok.astype(i.dtype), status, state, info

    init = (jnp.zeros((), jnp.int32), jnp.array(RUNNING, jnp.int32), state, info)
    steps, status, state, info = lax.while_loop(cond, body, init)
    return state, info, steps, status


def _float_dtype():
    """float64 when x64 is enabled, else float32 (the widest float JAX will hold)."""
    return jax.dtypes.canonicalize_dtype(jnp.float64)


def _donating_backend() -> bool:
    return jax.default_backend() not in ("cpu",)


_chunk_plain = jax.jit(_chunk, static_argnums=(0, 1))
_chunk_donate = jax.jit(_chunk, static_argnums=(0, 1), donate_argnums=(2, 3))


def _eval_metrics(metric_items, state, problem):
    return {name: fn(state, problem) for name, fn in metric_items}


_eval_metrics_jit = jax.jit(_eval_metrics, static_argnums=(0,))


def _metric_items(metrics) -> tuple:
    if metrics is None:
        return ()
    if not isinstance(metrics, dict):
        raise TypeError(f"metrics must be a dict name -> fn(state, problem), got {type(metrics).__name__}")
    for name, fn in metrics.items():
        if not callable(fn):
            raise TypeError(f"metrics[{name!r}] must be callable fn(state, problem) -> scalar")
    return tuple(metrics.items())


def _to_host_scalars(tree: dict) -> dict[str, float]:
    host = jax.device_get(tree)
    return {k: float(np.asarray(v).reshape(-1)[0]) if np.size(v) == 1 else float("nan")
            for k, v in host.items()}


# ------------------------------------------------------------------------------------ checkpoints
def _key_leaf(x) -> bool:
    return jax.dtypes.issubdtype(jnp.result_type(x), jax.dtypes.prng_key)


def save_checkpoint(path, state, trace: Trace, n_iter: int, status: str = "maxiter") -> None:
    """Write ``state`` (pytree leaves), the trace and the iteration count to ``path`` (``.npz``).

    PRNG key leaves are stored as their raw key data. No pickle is used: every entry is a plain
    numeric or unicode array.
    """
    arrays: dict[str, np.ndarray] = {}
    for i, leaf in enumerate(jax.tree.leaves(state)):
        if _key_leaf(leaf):
            arrays[f"state_{i}"] = np.asarray(jax.random.key_data(leaf))
            arrays[f"keyimpl_{i}"] = np.array(str(jax.random.key_impl(leaf)))
        else:
            arrays[f"state_{i}"] = np.asarray(leaf)
    arrays["n_iter"] = np.array(n_iter, np.int64)
    arrays["status"] = np.array(status)
    arrays["trace_iters"] = trace.iters
    arrays["trace_times"] = trace.times
    arrays["trace_names"] = np.array(list(trace.metrics), dtype=str) if trace.metrics else np.zeros(0, "U1")
    for j, values in enumerate(trace.metrics.values()):
        arrays[f"trace_metric_{j}"] = values
    arrays["trace_meta"] = np.array(json.dumps(_jsonable(trace.meta)))
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def load_checkpoint(path, template_state):
    """Read a checkpoint written by :func:`save_checkpoint`.

    ``template_state`` is a state of the same solver and problem (e.g. from its ``init``); its tree
    structure, shapes and dtypes are checked against the file. Returns ``(state, trace, n_iter, status)``.
    """
    leaves, treedef = jax.tree.flatten(template_state)
    with np.load(path, allow_pickle=False) as f:
        stored = [k for k in f.files if k.startswith("state_")]
        if len(stored) != len(leaves):
            raise ValueError(f"resume: checkpoint {path} holds {len(stored)} state arrays but this solver's "
                             f"state has {len(leaves)}; was it written by another solver or problem?")
        new_leaves = []
        for i, leaf in enumerate(leaves):
            data = f[f"state_{i}"]
            if _key_leaf(leaf):
                new_leaves.append(jax.random.wrap_key_data(jnp.asarray(data), impl=str(f[f"keyimpl_{i}"])))
                continue
            if data.shape != tuple(jnp.shape(leaf)) or data.dtype != jnp.result_type(leaf):
                raise ValueError(f"resume: state array {i} in {path} has shape {data.shape} and dtype {data.dtype}, "
                                 f"expected {tuple(jnp.shape(leaf))} and {jnp.result_type(leaf)}; the problem "
                                 "or dtype differs from the checkpointed run")
            new_leaves.append(jnp.asarray(data))
        names = [str(n) for n in f["trace_names"]]
        metrics = {n: np.array(f[f"trace_metric_{j}"]) for j, n in enumerate(names)}
        meta = json.loads(str(f["trace_meta"]))
        trace = Trace(np.array(f["trace_iters"]), np.array(f["trace_times"]), metrics, meta)
        n_iter, status = int(f["n_iter"]), str(f["status"])
    return jax.tree.unflatten(treedef, new_leaves), trace, n_iter, status


# ------------------------------------------------------------------------------------------ run()
def _progress_bar(progress, total, desc):
    if progress is None:
        progress = sys.stderr.isatty()
    if not progress:
        return None
    from tqdm.auto import tqdm  # noqa: PLC0415

    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)


@_matmul_precision
def run(step: Callable, state, problem, *, maxiter: int = 1000, log_every: int | None = None,
        tol: float = 0.0, stop_metric: str | None = None, max_time: float | None = None,
        metrics: dict[str, Callable] | None = None, params: Callable | None = None,
        callback: Callable | None = None, progress: bool | None = None,
        checkpoint=None, checkpoint_every: int = 1, resume=None,
        meta: dict | None = None, predict_fn: Callable | None = None) -> Result:
    """Run ``step`` from ``state`` until a stopping rule fires; return a :class:`~optlab.trace.Result`.

    Args:
        step: pure ``step(state, problem) -> (state, info)``; a hashable function (module-level
            functions are; a new lambda per call recompiles).
        state: the initial state pytree (from the solver's ``init``); not modified.
        problem: pytree of everything ``step`` reads; arrays in it are traced, so a new problem with the
            same shapes and dtypes reuses the compiled loop.
        maxiter: total iteration budget (counted from the start of a resumed run).
        log_every: iterations per compiled chunk = spacing of log points (default: about 100 log points).
        tol, stop_metric: stop with status ``"converged"`` at the first iteration where
            ``info[stop_metric] <= tol``. ``stop_metric=None`` disables the test.
        max_time: stop with status ``"max_time"`` once the solver time (compile excluded) exceeds it;
            checked at log points.
        metrics: ``name -> fn(state, problem)`` evaluated (jitted) at every log point including iteration 0.
        params: ``fn(state) -> params`` for ``Result.params`` (default: the state itself).
        callback: ``callback(iteration, record, state)`` at every log point; ``record`` maps metric names
            to floats; returning ``True`` stops the run with status ``"stopped"``.
        progress: tqdm bar; default on when stderr is a terminal.
        checkpoint, checkpoint_every: write a checkpoint to this ``.npz`` path every ``checkpoint_every``
            log points and at the end.
        resume: a checkpoint path to continue from; ``state`` then serves as the structure template.
        meta: extra fields for ``trace.meta`` (solver name, parameters, dataset ...).
        predict_fn: ``fn(params, X)`` that ``Result.predict`` calls, for solvers that train a model.
    """
    maxiter = int(maxiter)
    if maxiter < 0:
        raise ValueError(f"maxiter must be >= 0, got {maxiter}")
    if log_every is None:
        log_every = max(1, maxiter // 100)
    log_every = int(log_every)
    if log_every < 1:
        raise ValueError(f"log_every must be >= 1, got {log_every}")
    if max_time is not None and not max_time > 0:
        raise ValueError(f"max_time must be > 0 seconds, got {max_time}")
    metric_items = _metric_items(metrics)
    params_fn = params if params is not None else (lambda s: s)

    state = _strong(state)
    problem = jax.tree.map(lambda x: x, problem)
    info = _match_mesh(_nan_info(step, state, problem), state)
    device = str(jax.devices()[0])
    base_meta = {"device": device, "backend": jax.default_backend(), "log_every": log_every,
                 "maxiter": maxiter, "tol": float(tol), "stop_metric": stop_metric}
    base_meta.update(meta or {})

    n_iter, status, elapsed = 0, "maxiter", 0.0
    if resume is not None:
        state, trace, n_iter, status = load_checkpoint(resume, state)
        elapsed = float(trace.times[-1]) if len(trace) else 0.0
        trace.meta.update({k: v for k, v in base_meta.items() if k not in ("compile_time",)})
        trace.meta["resumed_from_iter"] = n_iter
    else:
        trace = Trace.empty([], base_meta)
    # The caller keeps its arrays: the loop below may donate the buffers it is given.
    state = jax.tree.map(lambda x: x if _key_leaf(x) else jnp.copy(x), state)

    chunk = _chunk_donate if _donating_backend() else _chunk_plain
    tol_arr = jnp.asarray(tol, dtype=_float_dtype())

    # Warm-up: compile the chunk and the metrics with zero iterations; time it as compile time.
    t0 = time.perf_counter()
    state, info, _, _ = chunk(step, stop_metric, state, info, problem, jnp.int32(0), tol_arr)
    values0 = _eval_metrics_jit(metric_items, state, problem)
    jax.block_until_ready((state, values0))
    compile_time = time.perf_counter() - t0
    trace.meta["compile_time"] = trace.meta.get("compile_time", 0.0) + compile_time

    metric_time = 0.0
    if resume is None:
        record = _to_host_scalars(values0)
        record.update(_to_host_scalars(info))
        trace.append(0, 0.0, record)

    bar = _progress_bar(progress, maxiter, base_meta.get("solver"))
    if bar is not None:
        bar.update(n_iter)
    n_logs = 0
    if status in ("converged", "diverged", "stopped"):
        remaining = 0
    else:
        remaining = maxiter - n_iter
        status = "maxiter"
    while remaining > 0:
        n_steps = min(log_every, remaining)
        t0 = time.perf_counter()
        state, info, steps, code = chunk(step, stop_metric, state, info, problem, jnp.int32(n_steps), tol_arr)
        steps, code = jax.device_get((steps, code))  # waits for the chunk to finish
        elapsed += time.perf_counter() - t0
        n_iter += int(steps)
        remaining = maxiter - n_iter if code == RUNNING else 0

        t0 = time.perf_counter()
        record = _to_host_scalars(_eval_metrics_jit(metric_items, state, problem))
        record.update(_to_host_scalars(info))
        metric_time += time.perf_counter() - t0
        trace.append(n_iter, elapsed, record)
        n_logs += 1

        if code == CONVERGED:
            status = "converged"
        elif code == DIVERGED:
            status = "diverged"
        if bar is not None:
            bar.update(int(steps))
            shown = {k: record[k] for k in list(record)[:3]}
            bar.set_postfix({k: f"{v:.3e}" for k, v in shown.items()}, refresh=False)
        if max_time is not None and elapsed >= max_time and remaining > 0:
            status, remaining = "max_time", 0
        if callback is not None and callback(n_iter, record, state) is True and remaining > 0:
            status, remaining = "stopped", 0
        if checkpoint is not None and n_logs % int(checkpoint_every) == 0 and remaining > 0:
            trace.meta["status"] = status
            save_checkpoint(checkpoint, state, trace, n_iter, "maxiter")
    if bar is not None:
        bar.close()

    trace.meta["status"] = status
    trace.meta["n_iter"] = n_iter
    trace.meta["metric_time"] = trace.meta.get("metric_time", 0.0) + metric_time
    if checkpoint is not None:
        save_checkpoint(checkpoint, state, trace, n_iter, status)
    return Result(params=params_fn(state), trace=trace, n_iter=n_iter, converged=status == "converged",
                  status=status, state=state, predict_fn=predict_fn)


# -------------------------------------------------------------------------------------- run_jit()
class JitRun(NamedTuple):
    """Output of :func:`run_jit` (a pytree: it can be returned from ``jit`` and ``vmap``).

    ``history[name][j]`` is the metric at iteration ``iters[j]``; log points after the stop hold NaN and
    ``iters`` -1. ``status`` is 0 (maxiter), 1 (converged) or 2 (diverged); see :func:`status_name`.
    """

    state: Any
    n_iter: jax.Array
    status: jax.Array
    iters: jax.Array
    history: dict


def _run_jit_impl(step, stop_metric, metric_items, maxiter, log_every, state, problem, tol):
    info = _nan_info(step, state, problem)
    n_logs = -(-maxiter // log_every)
    names_probe = jax.eval_shape(lambda s, p: {**_eval_metrics(metric_items, s, p), **info}, state, problem)

    def record(state, info):
        vals = {**_eval_metrics(metric_items, state, problem), **info}
        return {k: jnp.asarray(v).reshape(()) for k, v in vals.items()}

    history0 = {k: jnp.full((n_logs + 1,), jnp.nan, dtype=jnp.result_type(float)) for k in names_probe}
    first = record(state, info)
    history0 = {k: v.at[0].set(first[k].astype(v.dtype)) for k, v in history0.items()}
    iters0 = jnp.full((n_logs + 1,), -1, jnp.int32).at[0].set(0)

    def body(j, carry):
        state, info, n_iter, status, iters, history = carry
        n_steps = jnp.minimum(log_every, maxiter - n_iter)
        active = status == RUNNING
        new_state, new_info, steps, code = _chunk(step, stop_metric, state, info, problem,
                                                  jnp.where(active, n_steps, 0), tol)
        n_iter = n_iter + steps
        status = jnp.where(active, code, status).astype(jnp.int32)
        vals = record(new_state, new_info)
        history = {k: v.at[j + 1].set(jnp.where(active, vals[k].astype(v.dtype), v[j + 1]))
                   for k, v in history.items()}
        iters = iters.at[j + 1].set(jnp.where(active, n_iter, -1))
        return new_state, new_info, n_iter, status, iters, history

    carry = (state, info, jnp.zeros((), jnp.int32), jnp.array(RUNNING, jnp.int32), iters0, history0)
    state, info, n_iter, status, iters, history = lax.fori_loop(0, n_logs, body, carry)
    return JitRun(state, n_iter, status, iters, history)


_run_jit_compiled = jax.jit(_run_jit_impl, static_argnums=(0, 1, 2, 3, 4))


@_matmul_precision
def run_jit(step: Callable, state, problem, *, maxiter: int, log_every: int | None = None,
            tol=0.0, stop_metric: str | None = None, metrics: dict[str, Callable] | None = None) -> JitRun:
    """Fully compiled run: same iteration and stopping rules as :func:`run`, no host round trips.

    Usable under ``jax.jit`` and ``jax.vmap`` (the problem may carry batched leaves, e.g. the ``lam`` of a
    penalty). There is no wall clock, progress bar, callback or checkpoint in this mode.
    """
    maxiter = int(maxiter)
    log_every = max(1, maxiter // 100) if log_every is None else int(log_every)
    if maxiter < 1 or log_every < 1:
        raise ValueError(f"maxiter and log_every must be >= 1, got {maxiter} and {log_every}")
    tol = jnp.asarray(tol, dtype=_float_dtype())
    return _run_jit_compiled(step, stop_metric, _metric_items(metrics), maxiter, log_every,
                             _strong(state), problem, tol)


# ------------------------------------------------------------------------------------------ solve()
def solve(algorithm, state, problem, *, executor=None, jit: bool = False, maxiter: int = 1000,
          log_every: int | None = None, tol: float = 0.0, max_time: float | None = None,
          metrics: dict[str, Callable] | None = None, callback: Callable | None = None,
          progress: bool | None = None, checkpoint=None, checkpoint_every: int = 1, resume=None,
          meta: dict | None = None):
    """Run an :class:`optlab.algorithm.Algorithm` from ``state`` on ``problem`` with an executor.

    The one entry point every solver goes through: the executor (``None`` = :class:`optlab.parallel.Serial`,
    or ``Sync(n)``, ``SimulatedAsync(n, max_delay)`` ...) turns the algorithm into a plain
    ``step(state, problem)``; :func:`run` (or :func:`run_jit` with ``jit=True``) drives it.

    Args:
        algorithm: the method (its step, metrics, params, stop metric).
        state, problem: the algorithm's initial state and problem pytrees.
        executor: how to run it (see :mod:`optlab.parallel`); also accepted under ``parallel=`` by solvers.
        jit: return a :class:`JitRun` from the fully compiled loop (usable under ``jax.jit``/``jax.vmap``).
        metrics: extra ``name -> fn(state, problem)`` of the algorithm's own state and problem.
        maxiter, log_every, tol, max_time, callback, progress, checkpoint, checkpoint_every, resume: see :func:`run`.
        meta: extra ``trace.meta`` fields (parameters, dataset ...).
    """
    executor = as_executor(executor)
    prepared = executor.prepare(algorithm, state, problem)
    all_metrics = dict(prepared.metrics)
    for name, fn in _metric_items(metrics):
        all_metrics[name] = prepared.user_metric(fn)
    if jit:
        if checkpoint is not None or resume is not None:
            raise ValueError("jit=True runs the whole loop as one compiled call, so it cannot write or read "
                             "checkpoints; drop checkpoint=/resume= or use jit=False")
        return run_jit(prepared.step, prepared.state, prepared.problem, maxiter=maxiter, log_every=log_every,
                       tol=tol, stop_metric=algorithm.stop_metric, metrics=all_metrics)
    full_meta = {"solver": algorithm.name, "parallel": None if isinstance(executor, Serial) else repr(executor)}
    full_meta.update(meta or {})
    return run(prepared.step, prepared.state, prepared.problem, maxiter=maxiter, log_every=log_every, tol=tol,
               stop_metric=algorithm.stop_metric, max_time=max_time, metrics=all_metrics, params=prepared.params,
               callback=callback, progress=progress, checkpoint=checkpoint, checkpoint_every=checkpoint_every,
               resume=resume, meta=full_meta, predict_fn=algorithm.predict)
