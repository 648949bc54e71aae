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
  ``trace.meta["compile_time"]``; it is never part of ``trace.times``. The warm-up call is made once per chunk
  program in a process (a refit with the same shapes, e.g. in a grid search, skips it; should its program have to
  be compiled after all, the first chunk runs again and the first try counts as compile time). Metric evaluation
  is excluded from ``trace.times`` as well (benchopt's convention), and reported as ``meta["metric_time"]``;
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

import contextlib
import functools
import hashlib
import json
import os
import signal
import sys
import tempfile
import threading
import time
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from . import validate
from .executor import STATIONARITY, Serial, as_executor
from .trace import Result, Trace, _jsonable

__all__ = ["run", "run_jit", "solve", "JitRun", "status_name", "save_checkpoint", "load_checkpoint",
           "CheckpointError", "fingerprint", "release_compiled_programs"]

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
    """Arrays with fixed (non-weak) dtypes, so the compiled loop carry has a stable type. A JAX array that already
    has one is kept as it is (arrays are immutable; :func:`run` copies before donating buffers)."""
    on_host = _host_backend()

    def fix(x):
        if isinstance(x, np.ndarray):   # never weak, never a key; on a CPU the compiled loop takes them as they are
            if on_host and x.dtype == jax.dtypes.canonicalize_dtype(x.dtype):
                return x
            return jnp.array(x, dtype=jnp.result_type(x))
        if jax.dtypes.issubdtype(jnp.result_type(x), jax.dtypes.prng_key):
            return x
        if isinstance(x, jax.Array) and not x.weak_type:
            return x
        return jnp.array(x, dtype=jnp.result_type(x))
    return jax.tree.map(fix, tree)


def _nan_value(s):
    return np.nan if jnp.issubdtype(s.dtype, jnp.inexact) else 0


def _nan_info(step, state, problem):
    """An info dict of the right shapes and dtypes, NaN (or 0 for integers) before the first step (traceable:
    :func:`run_jit` calls it inside its compiled loop)."""
    _, shapes = jax.eval_shape(_traced_once(step), state, problem)
    return jax.tree.map(lambda s: jnp.full(s.shape, _nan_value(s), s.dtype), shapes)


def _aval_key(x):
    """What ``jax.eval_shape`` and ``jax.jit`` see of a leaf: its type, shape, dtype, weak type and (JAX arrays) its
    sharding."""
    if isinstance(x, jax.Array):
        try:
            sharding = x.sharding
        except Exception:  # noqa: BLE001 - a tracer (run called inside a trace) has none
            sharding = None
        return type(x), x.shape, x.dtype, bool(getattr(x, "weak_type", False)), sharding
    if isinstance(x, (np.ndarray, np.generic)):
        return type(x), x.shape, x.dtype, False
    return type(x), tuple(np.shape(x)), str(jnp.result_type(x))


def _signature(state, problem):
    """``(tree structure, leaf keys)`` of ``(state, problem)`` (:func:`_aval_key`), or None when a leaf or static
    pytree data is unhashable."""
    leaves, treedef = jax.tree.flatten((state, problem))
    sig = (treedef, tuple(_aval_key(x) for x in leaves))
    try:
        hash(sig)
    except TypeError:
        return None
    return sig


#: ``(step, tree structure, leaf types) -> info shapes``: :func:`run` traces a step once per signature for its
#: initial info, not once per call (a grid search refits the same step hundreds of times).
_INFO_SHAPES: dict = {}


#: Entries each process-wide memo of this module keeps (oldest dropped first).
_MEMO_MAX = 256


def _remember(memo: dict, key, value) -> None:
    """``memo[key] = value``, dropping the oldest entry when ``memo`` holds :data:`_MEMO_MAX`."""
    if len(memo) >= _MEMO_MAX:
        memo.pop(next(iter(memo)), None)
    memo[key] = value


def _info_shapes(step, state, problem, signature=False):
    """``jax.eval_shape`` of the step's info, remembered per step and input signature (:func:`_signature`; pass it
    when already computed, None when unhashable)."""
    signature = _signature(state, problem) if signature is False else signature
    try:
        key = (step, signature)
        hash(key)
    except TypeError:
        key = None
    if signature is None or key is None:    # an unhashable step or static pytree data: trace every time
        return jax.eval_shape(step, state, problem)[1]
    shapes = _INFO_SHAPES.get(key)
    if shapes is None:
        shapes = jax.eval_shape(_traced_once(step), state, problem)[1]   # the trace the chunk reuses
        _remember(_INFO_SHAPES, key, shapes)
    return shapes


def _host_nan_info(step, state, problem, signature=False):
    """:func:`_nan_info` for the host loop: built in NumPy (no eager JAX operations, each of which a fresh process
    would compile) from the remembered shapes (:func:`_info_shapes`), moved to the device in one transfer except on a
    CPU (:func:`_host_backend`)."""
    shapes = _info_shapes(step, state, problem, signature)
    info = jax.tree.map(lambda s: np.full(s.shape, _nan_value(s), s.dtype), shapes)
    return info if _host_backend() else jax.device_put(info)


def _host_backend() -> bool:
    """True on a CPU backend, where the compiled loop takes NumPy arrays as they are: passing them costs less than
    a ``jax.device_put`` beforehand (tens of microseconds of Python per array, ~20 arrays per small fit)."""
    return jax.default_backend() == "cpu"


def _match_mesh(info, state):
    """Replicate ``info`` on the mesh of a state placed by :func:`optlab.parallel.place` (parallel solvers): the
    chunk returns its info there, and an info of other shardings would make the second chunk compile again."""
    leaves = jax.tree.leaves(state)
    sharding = getattr(leaves[0], "sharding", None) if leaves else None
    if not isinstance(sharding, jax.sharding.NamedSharding):
        return info
    return jax.device_put(info, jax.sharding.NamedSharding(sharding.mesh, jax.sharding.PartitionSpec()))


# ---------------------------------------------------------------------------------- the chunk loop
def _traced_once(step):
    """``jax.jit(step)``, one per step: every call of it inside a trace (the chunk's loop, the info shapes of
    :func:`_info_shapes`) reuses JAX's one trace of ``step`` per input signature instead of tracing it again. The
    compiled chunk calls it as a nested program, which XLA inlines (the same operations as a direct call)."""
    try:
        return _jitted_step(step)
    except TypeError:           # an unhashable step: a new wrapper (JAX then traces it per use)
        return jax.jit(step)


@functools.lru_cache(maxsize=512)
def _jitted_step(step):
    return jax.jit(step)


def _float_bound(tree):
    """``max |x|`` over every entry of every floating leaf: finite exactly when all entries are (``max`` propagates
    ``NaN``, and ``|x|`` cannot overflow)."""
    maxima = [jnp.max(jnp.abs(x)) for x in jax.tree.leaves(tree) if _is_float(x) and np.size(x)]
    return functools.reduce(jnp.maximum, maxima) if maxima else jnp.zeros(())


def _chunk(step, stop_metric, state, info, problem, n_steps, tol):
    """Run up to ``n_steps`` iterations of ``step``; stop early on tolerance or a non-finite state.

    Returns ``(state, info, steps_taken, status)``; on divergence ``state`` is the last finite one (and ``info``
    its diagnostics), ``steps_taken`` the iterations up to it.

    The loop tests per iteration one number for finiteness, :func:`_float_bound` of the new state, and keeps no copy
    of the previous state (the per-entry test and the select that would keep the last finite state cost about as
    much as a whole iteration of a small problem: the SVM ADMM on heart_scale runs 8.8 µs per iteration instead of
    15–17 µs on a CPU). When an iteration ``j`` gives a non-finite state, the chunk is run again from its start for
    ``j − 1`` iterations, which ends at the last finite state; the iteration is deterministic, and should a rerun
    still meet a non-finite state (a non-deterministic reduction on an accelerator), it is shortened again.
    """
    step = _traced_once(step)

    def cond(carry):
        i, limit, done, alarm, _, _ = carry
        return (i < limit) & ~done & ~alarm

    def body(carry):
        i, limit, _, _, state, info = carry
        new_state, new_info = step(state, problem)
        new_state = jax.tree.map(lambda new, old: new.astype(old.dtype), new_state, state)
        new_info = jax.tree.map(lambda new, old: jnp.asarray(new).astype(old.dtype), new_info, info)
        alarm = ~jnp.isfinite(_float_bound(new_state))
        done = jnp.array(False) if stop_metric is None else new_info[stop_metric] <= tol
        return i + 1, limit, done, alarm, new_state, new_info

    def attempt_cond(carry):
        return carry[0]                                  # another attempt is due

    def attempt(carry):
        _, limit, _, diverged, _, _, _ = carry
        zero, false = jnp.zeros((), jnp.int32), jnp.array(False)
        steps, _, done, alarm, new_state, new_info = lax.while_loop(
            cond, body, (zero, limit, false, false, state, info))
        # after an alarm at iteration `steps`: again from the chunk's start, one iteration short of it
        return alarm, steps - 1, done, diverged | alarm, steps, new_state, new_info

    false = jnp.array(False)
    carry = (jnp.array(True), jnp.asarray(n_steps, jnp.int32), false, false, jnp.zeros((), jnp.int32), state, info)
    _, _, done, diverged, steps, state, info = lax.while_loop(attempt_cond, attempt, carry)
    status = jnp.where(diverged, DIVERGED, jnp.where(done, CONVERGED, RUNNING)).astype(jnp.int32)
    return state, info, steps, status


def _float_dtype():
    """float64 when x64 is enabled, else float32 (the widest float JAX will hold)."""
    return jax.dtypes.canonicalize_dtype(jnp.float64)


def _donating_backend() -> bool:
    return jax.default_backend() not in ("cpu",)


_chunk_plain = jax.jit(_chunk, static_argnums=(0, 1))
_chunk_donate = jax.jit(_chunk, static_argnums=(0, 1), donate_argnums=(2, 3))

#: Chunk programs this process has compiled (keys of :func:`_warm_key`, insertion order): :func:`run` makes its
#: zero-iteration warm-up call only for a new one. A grid search refits one program hundreds of times, and the
#: warm-up call of a compiled chunk is pure dispatch (about 0.2 ms of CPU per heart_scale fit, 5 % of the fit).
_WARM_CHUNKS: dict = {}
#: Lowerings and XLA compilations (or persistent-cache loads) so far in this process (:func:`_count_compiles`).
_COMPILES = [0]
_COMPILE_EVENTS = ("/jax/core/compile/jaxpr_to_mlir_module_duration", "/jax/core/compile/backend_compile_duration")


def release_compiled_programs() -> None:
    """Drop every compiled program of this process (``jax.clear_caches()``, the harness's memo of warmed chunk
    programs, a garbage collection); the persistent compilation cache on disk is not affected.

    XLA:CPU keeps every compiled program mapped into the process (about nine memory maps each) for as long as its
    jitted function lives, and the kernel caps a process at ``vm.max_map_count`` maps (65,530 by default). A long
    experiment compiles thousands of distinct programs (tuning grids × methods × data sets): on 2026-12-03 a full
    ``optlab reproduce all`` died with "LLVM compilation error: Cannot allocate memory" and a segmentation fault. The
    CLI calls this after every experiment, the largest experiments after every data set."""
    import gc

    jax.clear_caches()
    _WARM_CHUNKS.clear()
    gc.collect()


def _count_compiles(name, duration, **kwargs):
    if name in _COMPILE_EVENTS:
        _COMPILES[0] += 1


jax.monitoring.register_event_duration_secs_listener(_count_compiles)


def _warm_key(chunk, step, stop_metric, signature):
    """What selects the compiled chunk program: the jitted function (donating or not), its static arguments, the
    input signature (:func:`_signature`; the info's types follow from it) and the settings that enter a trace here
    (matmul precision, 64-bit mode). None when something is unhashable (then :func:`run` always warms up)."""
    if signature is None:
        return None
    key = (chunk, step, stop_metric, signature, jax.default_matmul_precision.value, jax.config.jax_enable_x64)
    try:
        hash(key)
    except TypeError:
        return None
    return key


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
    """``name -> float`` of a dict of scalars (NaN for a non-scalar). On a CPU each array is read directly (what
    ``jax.device_get`` does there too, less its tree walk and its asynchronous copies, which only help a device)."""
    host = tree if _host_backend() else jax.device_get(tree)
    values = {}
    for k, v in host.items():
        v = np.asarray(v)
        values[k] = float(v.reshape(-1)[0]) if v.size == 1 else float("nan")
    return values


# ------------------------------------------------------------------------------------ checkpoints
def _key_leaf(x) -> bool:
    return jax.dtypes.issubdtype(jnp.result_type(x), jax.dtypes.prng_key)


def fingerprint(step, problem) -> str:
    """A digest of what a checkpoint belongs to: the step function's name, the problem's tree structure, and every
    problem leaf's shape, dtype and values (SHA-256). A resume with other data, parameters or solver is refused."""
    digest = hashlib.sha256()
    for attr in ("__module__", "__qualname__", "__name__"):
        digest.update(str(getattr(step, attr, repr(step))).encode())
    leaves, treedef = jax.tree.flatten(problem)
    digest.update(str(treedef).encode())
    for leaf in leaves:
        if _key_leaf(leaf):
            leaf = jax.random.key_data(leaf)
        arr = np.asarray(jax.device_get(leaf))
        digest.update(f"{arr.shape}{arr.dtype}".encode())
        digest.update(np.ascontiguousarray(arr).tobytes())
    return digest.hexdigest()


def save_checkpoint(path, state, trace: Trace, n_iter: int, status: str = "maxiter", fingerprint: str = "") -> None:
    """Write ``state`` (pytree leaves), the trace, the iteration count and the problem's :func:`fingerprint` to
    ``path`` (``.npz``), atomically: the data go to a temporary file in the same folder, which is flushed, synced to
    disk and then renamed over ``path`` — a kill at any moment leaves either the previous checkpoint or the new one,
    never a partial file.

    PRNG key leaves are stored as their raw key data. No pickle is used: every entry is a plain numeric or unicode
    array. ``status`` is stored for information only; :func:`load_checkpoint` never trusts it.
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
    arrays["fingerprint"] = np.array(fingerprint)
    arrays["trace_iters"] = trace.iters
    arrays["trace_times"] = trace.times
    arrays["trace_names"] = np.array(list(trace.metrics), dtype=str) if trace.metrics else np.zeros(0, "U1")
    for j, values in enumerate(trace.metrics.values()):
        arrays[f"trace_metric_{j}"] = values
    arrays["trace_meta"] = np.array(json.dumps(_jsonable(trace.meta)))
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable (not possible on every platform)
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed from: unreadable, of another solver or problem, or inconsistent."""


def load_checkpoint(path, template_state, *, fingerprint: str | None = None, maxiter: int | None = None):
    """Read and validate a checkpoint written by :func:`save_checkpoint`.

    ``template_state`` is a state of the same solver and problem (e.g. from its ``init``); its tree structure, shapes
    and dtypes are checked against the file, as are the problem ``fingerprint`` (when given), the finiteness of every
    floating state array, the iteration count (``0 <= n_iter <= maxiter``, equal to the trace's last log point) and
    the trace's shape. The stored status is not returned: a resumed run decides its status afresh.
    Returns ``(state, trace, n_iter)``; raises :class:`CheckpointError` (a ``ValueError``) with the reason.
    """
    leaves, treedef = jax.tree.flatten(template_state)
    try:
        f = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise
    except Exception as err:  # noqa: BLE001 - any unreadable file is the same problem for the user
        raise CheckpointError(f"resume: {path} is not a readable optlab checkpoint ({type(err).__name__}: {err}); "
                              "it may be truncated or not a checkpoint — resume from another file or start afresh") \
            from err
    with f:
        try:
            files = set(f.files)
            required = {"n_iter", "trace_iters", "trace_times", "trace_names", "trace_meta"}
            if not required <= files:
                raise CheckpointError(f"resume: {path} lacks {sorted(required - files)}; it is not a complete optlab "
                                      "checkpoint")
            stored_fp = str(f["fingerprint"]) if "fingerprint" in files else ""
            if fingerprint is not None and stored_fp and stored_fp != fingerprint:
                raise CheckpointError(f"resume: {path} was written for another problem or solver (its data, "
                                      "parameters or method differ from this call's); resume with the same call "
                                      "that wrote it, or start afresh")
            stored = [k for k in files if k.startswith("state_")]
            if len(stored) != len(leaves):
                raise CheckpointError(f"resume: checkpoint {path} holds {len(stored)} state arrays but this solver's "
                                      f"state has {len(leaves)}; it was written by another solver or configuration")
            new_leaves = []
            for i, leaf in enumerate(leaves):
                data = f[f"state_{i}"]
                if _key_leaf(leaf):
                    new_leaves.append(jax.random.wrap_key_data(jnp.asarray(data), impl=str(f[f"keyimpl_{i}"])))
                    continue
                if data.shape != tuple(jnp.shape(leaf)) or data.dtype != jnp.result_type(leaf):
                    raise CheckpointError(
                        f"resume: state array {i} in {path} has shape {data.shape} and dtype {data.dtype}, expected "
                        f"{tuple(jnp.shape(leaf))} and {jnp.result_type(leaf)}; the problem or dtype differs from the "
                        "checkpointed run")
                if np.issubdtype(data.dtype, np.inexact) and not np.all(np.isfinite(data)):
                    raise CheckpointError(f"resume: state array {i} in {path} is not finite (NaN or Inf); this file "
                                          "cannot be a state the harness saved — start afresh")
                new_leaves.append(jnp.asarray(data))
            names = [str(n) for n in f["trace_names"]]
            metrics = {n: np.array(f[f"trace_metric_{j}"]) for j, n in enumerate(names)}
            meta = json.loads(str(f["trace_meta"]))
            trace = Trace(np.array(f["trace_iters"]), np.array(f["trace_times"]), metrics, meta)
            n_iter = int(f["n_iter"])
        except CheckpointError:
            raise
        except Exception as err:  # noqa: BLE001
            raise CheckpointError(f"resume: {path} is damaged ({type(err).__name__}: {err}); resume from another "
                                  "file or start afresh") from err
    m = len(trace.iters)
    if m == 0 or len(trace.times) != m or any(len(v) != m for v in trace.metrics.values()):
        raise CheckpointError(f"resume: the trace in {path} is inconsistent (log points of unequal length)")
    if n_iter < 0 or int(trace.iters[-1]) != n_iter:
        raise CheckpointError(f"resume: {path} says n_iter={n_iter} but its trace ends at iteration "
                              f"{int(trace.iters[-1])}; the file is inconsistent")
    if maxiter is not None and n_iter > maxiter:
        raise CheckpointError(f"resume: {path} is at iteration {n_iter}, beyond maxiter={maxiter}; pass a larger "
                              "maxiter to continue it")
    return jax.tree.unflatten(treedef, new_leaves), trace, n_iter


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
        meta: dict | None = None, predict_fn: Callable | None = None,
        growth_limit: float | None = None, stationarity: Callable | None = None) -> Result:
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
        max_time: stop with status ``"max_time"`` once the solver time (compile excluded) exceeds it. Chunks are
            sized from the measured time per iteration so the deadline is overrun by about one iteration at most.
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
        growth_limit: a logged ``objective`` above ``F0 + growth_limit·|F0|`` (``F0`` the starting objective) counts
            as divergence, as does a non-finite ``objective``: status ``"diverged"``, and the returned state is the
            one at the last log point whose objective was finite and not exploding.
        stationarity: ``fn(state, problem) -> scalar``, an optimality residual. When the tolerance test fires, the
            status is ``"converged"`` only if the residual is at most ``max(sqrt(tol), sqrt(eps))`` times its value at
            the start (``eps`` of the state's float type), else ``"stalled"``: the iterate stopped moving without
            becoming stationary (e.g. a step far too small for the problem's curvature).

    Statuses: ``"converged"`` (the tolerance test passed with a finite objective and, where the method has a
    stationarity residual, the residual fell), ``"stalled"``, ``"maxiter"``, ``"max_time"``,
    ``"diverged"``, ``"stopped"`` (the callback), ``"interrupted"`` (Ctrl-C: the loop stops at the next log point,
    writes its checkpoint, and returns).
    """
    maxiter = validate.count("maxiter", maxiter, minimum=0)
    log_every = max(1, maxiter // 100) if log_every is None else validate.count("log_every", log_every, minimum=1)
    checkpoint_every = validate.count("checkpoint_every", checkpoint_every, minimum=1)
    tol = validate.tolerance("tol", tol)
    if max_time is not None and not (isinstance(max_time, (int, float, np.number)) and max_time > 0):
        raise ValueError(f"max_time must be a number of seconds > 0, got {max_time!r}")
    if growth_limit is not None and not growth_limit > 1:
        raise ValueError(f"growth_limit must be > 1 (a factor on the starting objective), got {growth_limit!r}")
    metric_items = _metric_items(metrics)
    params_fn = params if params is not None else (lambda s: s)

    state = _strong(state)
    problem = jax.tree.map(lambda x: x, problem)
    signature = _signature(state, problem)
    info = _match_mesh(_host_nan_info(step, state, problem, signature), state)
    device = str(jax.devices()[0])
    base_meta = {"device": device, "backend": jax.default_backend(), "log_every": log_every,
                 "maxiter": maxiter, "tol": float(tol), "stop_metric": stop_metric}
    base_meta.update(meta or {})
    fp = fingerprint(step, problem) if (checkpoint is not None or resume is not None) else ""

    n_iter, status, elapsed = 0, "maxiter", 0.0
    if resume is not None:
        state, trace, n_iter = load_checkpoint(resume, state, fingerprint=fp, maxiter=maxiter)
        elapsed = float(trace.times[-1]) if len(trace) else 0.0
        trace.meta.update({k: v for k, v in base_meta.items() if k not in ("compile_time",)})
        trace.meta["resumed_from_iter"] = n_iter
    else:
        trace = Trace.empty([], base_meta)
    donating = _donating_backend()
    if donating:  # the caller keeps its arrays: the loop below donates the buffers it is given
        state = jax.tree.map(lambda x: x if _key_leaf(x) else jnp.copy(x), state)
    chunk = _chunk_donate if donating else _chunk_plain
    tol_arr = np.asarray(tol, dtype=_float_dtype())   # NumPy scalars: no eager JAX operation per run

    # Warm-up: compile the chunk and the metrics with zero iterations; time it as compile time. A chunk program this
    # process compiled before needs no warm-up call (zero iterations return the state as it is); should it be
    # compiled after all (a setting the key misses), the first chunk below notices and runs again (not on a
    # donating backend, which keeps no copy of the state: there it always warms up).
    warm_key = _warm_key(chunk, step, stop_metric, signature)
    warm = donating or warm_key not in _WARM_CHUNKS
    t0 = time.perf_counter()
    if warm:
        state, info, _, _ = chunk(step, stop_metric, state, info, problem, np.int32(0), tol_arr)
    values0 = _eval_metrics_jit(metric_items, state, problem)
    record0 = _to_host_scalars({**values0, **info})  # waits for both programs (one host sync, not two)
    compile_time = time.perf_counter() - t0
    if warm and warm_key is not None:
        _remember(_WARM_CHUNKS, warm_key, True)
    recheck = not warm        # the first chunk: was it compiled after all?
    trace.meta["compile_time"] = trace.meta.get("compile_time", 0.0) + compile_time

    stationarity_items = (("stationarity", stationarity),) if stationarity is not None else ()
    stationarity0 = (_to_host_scalars(_eval_metrics_jit(stationarity_items, state, problem))["stationarity"]
                     if stationarity is not None and resume is None else None)
    metric_time = 0.0
    if resume is None:
        trace.append(0, 0.0, record0)
    objective0 = record0.get("objective", float("nan")) if resume is None else \
        float(trace.metrics["objective"][0]) if "objective" in trace.metrics else float("nan")
    # the state at the last log point whose objective was finite and not exploding (returned on divergence)
    good = (jax.tree.map(jnp.copy, state) if donating else state, n_iter)

    bar = _progress_bar(progress, maxiter, base_meta.get("solver"))
    if bar is not None:
        bar.update(n_iter)
    n_logs, remaining, next_log = 0, maxiter - n_iter, n_iter + log_every
    per_iter = None  # measured seconds per iteration, for sizing chunks under max_time
    with _interrupt_guard() as interrupted:
        while remaining > 0:
            n_steps = min(next_log - n_iter, remaining)
            if max_time is not None:
                # size the chunk so the deadline is overrun by at most about one iteration
                fit = 1 if per_iter is None else max(1, int((max_time - elapsed) / per_iter))
                n_steps = min(n_steps, fit)
            compiles = _COMPILES[0]
            t0 = time.perf_counter()
            out = chunk(step, stop_metric, state, info, problem, np.int32(n_steps), tol_arr)
            steps, code = jax.device_get(out[2:])  # waits for the chunk to finish
            spent = time.perf_counter() - t0
            if recheck:
                recheck = False
                if _COMPILES[0] != compiles:     # it compiled: that was compile time; again, now compiled
                    trace.meta["compile_time"] += spent
                    t0 = time.perf_counter()
                    out = chunk(step, stop_metric, state, info, problem, np.int32(n_steps), tol_arr)
                    steps, code = jax.device_get(out[2:])
                    spent = time.perf_counter() - t0
            state, info = out[0], out[1]
            elapsed += spent
            if int(steps) > 0:
                per_iter = spent / int(steps)
            n_iter += int(steps)
            remaining = maxiter - n_iter if code == RUNNING else 0
            out_of_time = max_time is not None and elapsed >= max_time
            if remaining > 0 and n_iter < next_log and not out_of_time and not interrupted():
                continue  # a chunk cut short for the deadline: no log point yet
            next_log = n_iter + log_every

            t0 = time.perf_counter()
            record = _to_host_scalars({**_eval_metrics_jit(metric_items, state, problem), **info})
            metric_time += time.perf_counter() - t0
            trace.append(n_iter, elapsed, record)
            n_logs += 1

            if code == CONVERGED:
                status = "converged"
            elif code == DIVERGED:
                status = "diverged"
            objective = record.get("objective")
            if objective is not None and code != DIVERGED:
                exploded = growth_limit is not None and np.isfinite(objective0) and \
                    objective > objective0 + growth_limit * max(abs(objective0), np.finfo(float).tiny)
                if not np.isfinite(objective) or exploded:
                    # a non-finite or exploding objective: diverged, back to the last good log point
                    trace.meta["diverged_at"] = n_iter
                    status, remaining = "diverged", 0
                    state, n_iter = good
                else:
                    good = (jax.tree.map(jnp.copy, state) if donating else state, n_iter)
            if bar is not None:
                bar.update(int(steps))
                shown = {k: record[k] for k in list(record)[:3]}
                bar.set_postfix({k: f"{v:.3e}" for k, v in shown.items()}, refresh=False)
            if out_of_time and remaining > 0:
                status, remaining = "max_time", 0
            if interrupted() and remaining > 0:
                status, remaining = "interrupted", 0
            if callback is not None and remaining > 0 and callback(n_iter, record, state) is True:
                status, remaining = "stopped", 0
            if checkpoint is not None and n_logs % checkpoint_every == 0 and remaining > 0:
                trace.meta["status"] = status
                save_checkpoint(checkpoint, state, trace, n_iter, "maxiter", fp)
        if bar is not None:
            bar.close()

        if status == "converged" and stationarity is not None:
            final = _to_host_scalars(_eval_metrics_jit(stationarity_items, state, problem))["stationarity"]
            eps = float(np.finfo(_state_float_dtype(state)).eps)
            limit = max(np.sqrt(tol), np.sqrt(eps))
            start = stationarity0 if stationarity0 is not None else float("nan")
            trace.meta["stationarity"] = {"start": start, "end": final, "limit": limit}
            if not np.isfinite(final) or (np.isfinite(start) and start > 0 and final > limit * start):
                status = "stalled"
        trace.meta["status"] = status
        trace.meta["n_iter"] = n_iter
        trace.meta["metric_time"] = trace.meta.get("metric_time", 0.0) + metric_time
        if checkpoint is not None:
            save_checkpoint(checkpoint, state, trace, n_iter, status, fp)
    return Result(params=params_fn(state), trace=trace, n_iter=n_iter, converged=status == "converged",
                  status=status, state=state, predict_fn=predict_fn)


def _state_float_dtype(state):
    floats = [jnp.result_type(x) for x in jax.tree.leaves(state) if _is_float(x)]
    return floats[0] if floats else jnp.float64


@contextlib.contextmanager
def _interrupt_guard():
    """While the loop runs, a first Ctrl-C (SIGINT) only sets a flag: the loop stops at the next log point, writes its
    checkpoint and returns with status ``"interrupted"``; a second Ctrl-C interrupts at once. Outside the main thread
    (where Python does not deliver signals) nothing is installed."""
    flag = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield flag.is_set
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        if flag.is_set():
            signal.signal(signal.SIGINT, previous if callable(previous) else signal.default_int_handler)
            raise KeyboardInterrupt
        flag.set()

    try:
        signal.signal(signal.SIGINT, handler)
    except ValueError:  # not allowed here (e.g. an embedded interpreter)
        yield flag.is_set
        return
    try:
        yield flag.is_set
    finally:
        signal.signal(signal.SIGINT, previous)


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
    if hasattr(executor, "solve"):
        # an executor with its own loop (real asynchronous workers, optlab.parallel.RayAsync) runs the whole solve
        return executor.solve(algorithm, state, problem, jit=jit, maxiter=maxiter, log_every=log_every, tol=tol,
                              max_time=max_time, metrics=metrics, callback=callback, progress=progress,
                              checkpoint=checkpoint, checkpoint_every=checkpoint_every, resume=resume, meta=meta)
    prepared = executor.prepare(algorithm, state, problem)
    all_metrics = dict(prepared.metrics)
    stationarity = all_metrics.pop(STATIONARITY, None)
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
               resume=resume, meta=full_meta, predict_fn=algorithm.predict, growth_limit=algorithm.growth_limit,
               stationarity=stationarity)
