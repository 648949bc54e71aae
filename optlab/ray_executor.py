r"""Real asynchronous workers on Ray: :class:`RayAsync`, one process per worker, wall-clock time.

The simulated executor (:class:`optlab.parallel.SimulatedAsync`) models staleness inside one SPMD program: every
worker computes every round and a collective joins them, so stragglers still hold everyone back. Here every worker
is a Ray actor (its own process) that holds only its shard of the rows (the problem's :class:`~optlab.algorithm.Rows`
and its rows of the state) and the server is the calling process. The *same* :class:`~optlab.algorithm.Algorithm`
objects run; no solver code is written for this executor.

**Staleness rule** (the one of :class:`~optlab.parallel.SimulatedAsync`, with real arrival times). Worker ``w`` holds
the shared state :math:`\hat x_w` it last read and computes, with its own rows, the step at :math:`\hat x_w`
(*phase 1*): its local sums per reduce name and its new rows state. The server keeps per worker the last delivered
local sums (a table) and their ages in server updates. It collects deliveries as they arrive (``ray.wait``) and
updates once at least ``min_arrivals`` workers delivered since its last update and no worker's contribution would
become older than ``max_delay`` updates (a worker of age ``>= max_delay`` is waited for). The update (*phase 2*) is
the step at the server's current shared state with ``comm.reduce`` returning the table's totals; it runs on the
server with the problem's shared leaves and one zero row in place of every :class:`Rows` leaf (the row part of the
step is dead there: only the shared part of its output is kept). Each worker that delivered then reads the new shared
state and starts again. Inside phase 1 a worker's ``comm.reduce(name, local)`` returns ``local`` plus the other
workers' table entries as of its read (the totals it can know without waiting).

**Synchronous rounds.** With ``max_delay=0`` every worker is waited for every update: the synchronous method. Then,
and in every step that calls a barrier reduce (:attr:`Algorithm.fresh`, e.g. a line search), each ``comm.reduce`` of
phase 1 is a true all-reduce through a small Ray actor (the *hub*, an ``io_callback`` ordered in program order), so
the workers' states equal those of :class:`~optlab.parallel.Sync` to rounding; the server takes the shared state from
worker 0 (all workers compute the same shared part).

**Stochastic solvers** (SPDHG, SPDPEG, the stochastic ADMM baselines) sample in row blocks whose permutations
depend only on (seed, block, epoch); ``n_blocks`` defaults to the worker count and each worker holds whole blocks.
So ``RayAsync(W, 0)`` draws the samples of the *serial run with the same* ``n_blocks`` (``n_blocks=W`` unless given;
the serial default is 1, plain sampling, a different method) and gives its iterates to rounding, whether an update
is an epoch segment (its reduces are barriers) or one iteration (``segments`` = iterations per epoch).

**Faults.** A worker process that dies (``os.kill`` of its PID, a lost node) shows up as a failed delivery: the server
starts a new actor with the worker's shard and the server's copy of its rows state (updated at every delivery), sends
it the current shared state, and the run continues; ``trace.meta["restarts"]`` records it. A worker whose step raises
ends the run with :class:`WorkerError` carrying the worker's traceback and the server's last consistent state.

**Trace.** ``trace.times``: real wall seconds (worker start-up, compilation and metric evaluation excluded); metrics
are evaluated by the server on the full problem at the server's state (the rows state from its copies).
``trace.meta``: ``update_times`` (wall seconds of each server update), ``deliveries`` (per worker: wall times of its
deliveries), ``staleness_hist`` (age in updates of each table entry used by an update -> count), ``waited_for``
(per worker: updates at which the server waited for it because of ``max_delay``), ``restarts``, ``worker_pids``,
``server_overhead_us`` (median server time per update, waiting excluded), ``round_seconds`` (median phase-1 seconds
per worker, straggler delay included).

A local run: ``RayAsync(4, max_delay=2)`` starts Ray on this machine (or uses the running ``ray.init``). A cluster:
``RayAsync(8, max_delay=2, address="auto")`` on a node of the cluster (``ray start --head`` / ``ray start
--address=...``); every node needs optlab installed. Asynchronous proximal gradient with delayed gradients: Agarwal &
Duchi (NeurIPS 2011); asynchronous consensus ADMM: Zhang & Kwok (ICML 2014).
"""
from __future__ import annotations

import collections
import dataclasses
import functools
import os
import socket
import time
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import io_callback

from . import harness, validate
from .algorithm import Comm, is_rows
from .executor import n_rows, reduce_shapes, serial_metric, split_shared, warn_all_barrier
from .trace import Result, Trace

__all__ = ["RayAsync", "WorkerError", "init_ray", "running_worker_pids", "shutdown_workers"]

_INSTALL_HINT = 'RayAsync needs Ray: pip install "optlab[distributed]" (or pip install "ray>=2.9")'


def _import_ray():
    try:
        import ray  # noqa: PLC0415 - optional dependency, imported only when the executor is used
    except ImportError as err:
        raise ImportError(_INSTALL_HINT) from err
    return ray


class WorkerError(RuntimeError):
    """A worker's step raised. ``worker``: its index; ``n_iter``: server updates completed; ``state``: the server's
    last consistent state (the algorithm's state, shared part and the rows state of the server's copies);
    ``remote_traceback``: the worker's traceback as text."""

    def __init__(self, message, *, worker: int, n_iter: int, state, remote_traceback: str):
        super().__init__(message)
        self.worker, self.n_iter, self.state, self.remote_traceback = worker, n_iter, state, remote_traceback


def _int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"RayAsync: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


@dataclasses.dataclass(frozen=True)
class RayAsync:
    """Real asynchronous workers with bounded staleness, one Ray actor (process) per worker (module docstring).

    Args:
        n_workers: number of worker processes (each gets a contiguous block of rows, sizes differing by at most one).
        max_delay: no contribution older than this many server updates is used (integer >= 0; 0 = synchronous).
        min_arrivals: the server updates once this many workers delivered since its last update (1..n_workers).
        address: ``None`` (the running ``ray.init``, else a local Ray), ``"auto"`` (the cluster this node belongs
            to) or ``"host:port"`` / ``"ray://host:port"`` of a cluster head (probed first: an address that does
            not answer within ``connect_timeout`` seconds is an error, not a hang).
        straggler: a real delay per round, ``{worker: seconds}`` (e.g. ``{0: 0.05}``): the worker sleeps that long
            in every phase 1. For experiments and tests; unrelated to the simulated speed model (``speeds``) of
            :class:`~optlab.parallel.SimulatedAsync`.
        shard_sizes: rows per worker (a sequence of positive integers summing to the row count) for unequal shards;
            default: as equal as possible.
        connect_timeout: seconds to wait for a cluster address, and for worker processes to start.
        max_restarts: restarts allowed per worker before the run fails.
        worker_cpus: Ray CPUs reserved per worker (default: 1, or less when the cluster has fewer CPUs than workers).
        defer_metrics: store the server state at log points and evaluate the metrics after the run (for timing:
            workers keep computing while the server evaluates metrics, which would give asynchronous runs free
            time); no ``callback`` then, and the objective's growth test is not applied during the run.
    """

    n_workers: int
    max_delay: int = 3
    min_arrivals: int = 1
    address: str | None = None
    straggler: Any = None
    shard_sizes: Any = None
    connect_timeout: float = 30.0
    max_restarts: int = 3
    worker_cpus: float | None = None
    defer_metrics: bool = False

    def __post_init__(self):
        _int("n_workers", self.n_workers, 1)
        _int("max_delay", self.max_delay, 0)
        if isinstance(self.min_arrivals, bool) or not isinstance(self.min_arrivals, (int, np.integer)) \
                or not 1 <= self.min_arrivals <= self.n_workers:
            raise ValueError(f"RayAsync: min_arrivals must be an integer in [1, n_workers={self.n_workers}], "
                             f"got {self.min_arrivals!r}")
        _int("max_restarts", self.max_restarts, 0)
        if self.address is not None and not (isinstance(self.address, str) and self.address):
            raise ValueError(f"RayAsync: address must be None, 'auto' or 'host:port', got {self.address!r}")
        if not (isinstance(self.connect_timeout, (int, float)) and self.connect_timeout > 0):
            raise ValueError(f"RayAsync: connect_timeout must be a number of seconds > 0, got {self.connect_timeout!r}")
        delays = dict(self.straggler or {})
        for w, s in delays.items():
            if isinstance(w, bool) or not isinstance(w, (int, np.integer)) or not 0 <= w < self.n_workers:
                raise ValueError(f"RayAsync: straggler keys must be worker indices in [0, {self.n_workers}), got {w!r}")
            if not (isinstance(s, (int, float, np.number)) and np.isfinite(s) and s >= 0):
                raise ValueError(f"RayAsync: straggler[{w}] must be a delay in seconds >= 0, got {s!r}")
        object.__setattr__(self, "straggler", tuple(sorted((int(w), float(s)) for w, s in delays.items())) or None)
        if self.shard_sizes is not None:
            sizes = tuple(self.shard_sizes)
            if len(sizes) != self.n_workers or any(isinstance(s, bool) or not isinstance(s, (int, np.integer))
                                                   or s < 1 for s in sizes):
                raise ValueError(f"RayAsync: shard_sizes must be {self.n_workers} positive integers (rows per "
                                 f"worker), got {self.shard_sizes!r}")
            object.__setattr__(self, "shard_sizes", tuple(int(s) for s in sizes))
        if self.worker_cpus is not None and not (isinstance(self.worker_cpus, (int, float)) and self.worker_cpus >= 0):
            raise ValueError(f"RayAsync: worker_cpus must be a number >= 0, got {self.worker_cpus!r}")
        _import_ray()

    def delay(self, worker: int) -> float:
        """The straggler delay (seconds per round) of ``worker``."""
        return dict(self.straggler or ()).get(worker, 0.0)

    def prepare(self, algorithm, state, problem):
        raise TypeError("RayAsync runs its own loop: call optlab.harness.solve(algorithm, state, problem, "
                        "executor=RayAsync(...)) or pass it as parallel= to a solver; it has no compiled step")

    def solve(self, algorithm, state, problem, **options) -> Result:
        """Run ``algorithm`` from ``state`` on ``problem``; the options of :func:`optlab.harness.run` (``maxiter``,
        ``log_every``, ``tol``, ``max_time``, ``metrics``, ``callback``, ``progress``, ``checkpoint``,
        ``checkpoint_every``, ``resume``, ``meta``). Returns the usual :class:`~optlab.trace.Result`."""
        return _Server(self, algorithm, state, problem, **options).run()


# ============================================================================================ connection
def _probe(address: str, timeout: float) -> None:
    """Fail fast (within ``timeout`` seconds) when a ``host:port`` address does not accept connections."""
    target = address[len("ray://"):] if address.startswith("ray://") else address
    host, _, port = target.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"RayAsync: address must be 'auto' or 'host:port' (or 'ray://host:port'), got {address!r}")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as err:
        raise ConnectionError(f"RayAsync: the Ray cluster at {address!r} does not answer ({err}; waited at most "
                              f"{timeout:g} s). Start it with `ray start --head` on that node, or check the "
                              "address (a node of the cluster can use address='auto').") from err


def init_ray(**kwargs):
    """``ray.init(**kwargs)`` without JAX's fork warnings: ray.init starts its daemons through subprocess (fork, then
    exec at once), and JAX's at-fork hook warns "os.fork() was called ... will likely lead to a deadlock" for each of
    them, although no child runs JAX (or any Python) code before its exec. Only that message is silenced, only here."""
    ray = _import_ray()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called", category=RuntimeWarning)
        return ray.init(**kwargs)


def _connect(executor: RayAsync):
    ray = _import_ray()
    address = executor.address
    if address not in (None, "auto"):
        _probe(address, executor.connect_timeout)
    if ray.is_initialized():
        return ray
    kwargs = {"include_dashboard": False, "log_to_driver": True}
    if address is None:
        kwargs["num_cpus"] = max(os.cpu_count() or 1, 1)
    else:
        kwargs["address"] = address
    try:
        init_ray(**kwargs)
    except ConnectionError as err:
        raise ConnectionError(f"RayAsync: cannot connect to the Ray cluster at {address!r} ({err}); for a local run "
                              "leave address=None, for a cluster start it with `ray start --head`") from err
    return ray


# ================================================================================================ actors
class _Hub:
    """All-reduce point of the synchronous rounds: ``allreduce(key, worker, value)`` returns, to every worker, the sum
    of the ``n`` workers' values under ``key`` (in worker order). A worker restarted mid-round sends its values again;
    a completed key answers from its stored total."""

    def __init__(self):
        self.slots: dict = {}

    async def allreduce(self, key, n, worker, value):
        import asyncio  # noqa: PLC0415 - inside the actor process

        slot = self.slots.get(key)
        if slot is None:
            slot = self.slots[key] = {"values": {}, "event": asyncio.Event(), "total": None}
        if slot["total"] is None:
            slot["values"][worker] = value
            if len(slot["values"]) == n:
                total = slot["values"][0]
                for w in range(1, n):
                    total = total + slot["values"][w]
                slot["total"] = total
                slot["values"] = {}
                slot["event"].set()
        await slot["event"].wait()
        return slot["total"]

    async def forget(self, run, before):
        for key in [k for k in self.slots if k[0] == run and k[1] < before or k[0] != run]:
            del self.slots[key]

    async def ping(self):
        return os.getpid()


#: In a worker process: the hub, the run and round of the current phase 1, and per-name call counters.
_CONTEXT: dict = {}


def _hub_exchange(name, local):
    """Host side of a synchronous-round reduce (runs in the worker process, in program order)."""
    ray = _import_ray()
    ctx = _CONTEXT
    count = ctx["counts"][name] = ctx["counts"].get(name, 0) + 1
    local = np.asarray(local)
    total = ray.get(ctx["hub"].allreduce.remote((ctx["run"], ctx["round"], name, count), ctx["n"], ctx["worker"],
                                                local))
    return np.asarray(total, dtype=local.dtype).reshape(local.shape)


@functools.lru_cache(maxsize=None)
def _phase1(algorithm, n_workers: int, exchange: bool):
    """The worker's step at the state it read: ``(state, problem, others, worker) -> (locals, state, info)``.
    ``exchange``: every reduce is an all-reduce through the hub; otherwise ``local + others[name]``."""
    def fn(state, problem, others, worker):
        locals_ = {}

        def reduce(name, local):
            local = jnp.asarray(local)
            if exchange:
                total = io_callback(functools.partial(_hub_exchange, name),
                                    jax.ShapeDtypeStruct(local.shape, local.dtype), local, ordered=True)
                if name not in algorithm.fresh:
                    locals_[name] = local
                return total
            locals_[name] = local
            return local + others[name].astype(local.dtype)

        new_state, info = algorithm.step(state, problem, Comm(reduce, worker, n_workers))
        return locals_, new_state, info

    return jax.jit(fn)


@functools.lru_cache(maxsize=None)
def _phase2(algorithm, n_workers: int):
    """The server's update: the step at its state with ``comm.reduce`` returning the table totals. Returns only the
    shared part of the new state (and the info): the row part of the step at the placeholder row is then dead code
    that XLA removes (consensus SVM ADMM, one 2,000 × 123 block: 501 -> 33 µs per update, measured at load 16)."""
    def fn(state, problem, totals):
        def reduce(name, local):
            return totals[name].astype(jnp.result_type(local))

        new_state, info = algorithm.step(state, problem, Comm(reduce, 0, n_workers))
        return split_shared(new_state)[0], info

    return jax.jit(fn)


@functools.lru_cache(maxsize=None)
def _server_metrics(items: tuple):
    def fn(state, problem):
        return {name: metric(state, problem) for name, metric in items}

    return jax.jit(fn)


def _host(tree):
    """Leaves as NumPy arrays (PRNG keys kept as JAX arrays), for sending between processes."""
    return jax.tree.map(lambda x: x if harness._key_leaf(x) else np.asarray(jax.device_get(x)), tree)


class _Packed:
    """A pytree sent between processes as its tree structure and leaves (:class:`Rows` nodes do not pickle)."""

    def __init__(self, tree):
        self.leaves, self.treedef = jax.tree.flatten(tree)

    def unpack(self):
        return jax.tree.unflatten(self.treedef, self.leaves)


class _Worker:
    """A worker process: holds its shard of the rows (problem and state); runs phase 1 on request."""

    def __init__(self):
        self.cache: dict = {}

    def pid(self):
        return os.getpid()

    def setup(self, config):
        jax.config.update("jax_enable_x64", config["x64"])
        self.cfg = config
        config = {k: v.unpack() if isinstance(v, _Packed) else v for k, v in config.items()}
        self.problem = config["problem"]
        self.rows = config["rows"]
        self.template = config["template"]
        key = (config["algorithm"], config["n_workers"], config["exchange"],
               jax.tree.structure(config["template"]), jax.tree.structure(config["problem"]),
               tuple((np.shape(x), str(jnp.result_type(x))) for x in jax.tree.leaves((config["template"],
                                                                                       config["problem"]))))
        if key not in self.cache:
            fn = _phase1(config["algorithm"], config["n_workers"], config["exchange"])
            state = _assemble(self.template, config["shared"], self.rows)
            self.cache[key] = fn.lower(state, self.problem, config["others"], np.int32(config["worker"])).compile()
        self.compiled = self.cache[key]
        return os.getpid()


    def compute(self, round_index, shared, others):
        t0 = time.perf_counter()
        cfg = self.cfg
        if cfg["delay"] > 0:
            time.sleep(cfg["delay"])
        _CONTEXT.update(hub=cfg["hub"], run=cfg["run"], round=round_index, n=cfg["n_workers"],
                        worker=cfg["worker"], counts={})
        state = _assemble(self.template, shared, self.rows)
        locals_, new_state, info = self.compiled(state, self.problem, others, np.int32(cfg["worker"]))
        new_shared, _ = split_shared(new_state)
        self.rows = _rows_nodes(new_state)
        out = {"locals": _host(locals_), "rows": _Packed(_host(self.rows)), "seconds": 0.0}
        if cfg["exchange"]:
            out["shared"], out["info"] = _host(new_shared), _host(info)
        out["seconds"] = time.perf_counter() - t0
        return out


def _rows_nodes(state) -> tuple:
    return tuple(node for node in jax.tree.flatten(state, is_leaf=is_rows)[0] if is_rows(node))


def _assemble(template, shared, rows_nodes):
    """The state of ``template``'s structure with the shared leaves ``shared`` and the Rows nodes ``rows_nodes``."""
    nodes, treedef = jax.tree.flatten(template, is_leaf=is_rows)
    s, r = iter(shared), iter(rows_nodes)
    return treedef.unflatten([next(r) if is_rows(n) else next(s) for n in nodes])


def _slice_rows(tree, start, stop):
    return jax.tree.map(lambda node: jax.tree.map(lambda x: x[start:stop], node) if is_rows(node) else node,
                        tree, is_leaf=is_rows)


def _concat_rows(pieces: list):
    """Rows nodes of every worker (lists of tuples of Rows) -> one tuple of Rows with the rows concatenated."""
    return tuple(jax.tree.map(lambda *xs: np.concatenate(xs), *nodes) for nodes in zip(*pieces))


# ================================================================================================ pool
_POOL: dict = {"session": None, "idle": [], "hub": None, "running": []}


def _session(ray):
    return ray.get_runtime_context().get_job_id()


def _actor_classes(ray):
    if "classes" not in _POOL:
        _POOL["classes"] = (ray.remote(max_restarts=0)(_Worker), ray.remote(max_restarts=0)(_Hub))
    return _POOL["classes"]


def _reset_pool_if_new_session(ray):
    session = _session(ray)
    if _POOL["session"] != session:
        _POOL.update(session=session, idle=[], hub=None, running=[])


def _hub(ray):
    if _POOL["hub"] is None:
        _, hub_cls = _actor_classes(ray)
        _POOL["hub"] = hub_cls.options(num_cpus=0, max_concurrency=10_000).remote()
    return _POOL["hub"]


def running_worker_pids() -> list[int]:
    """PIDs of the worker processes of the run in progress (in worker order), e.g. for fault-injection tests."""
    return list(_POOL["running"])


def shutdown_workers() -> None:
    """Stop the idle worker processes kept for reuse between runs (and the hub)."""
    ray = _import_ray()
    if ray.is_initialized():
        for actor in [a for _, a in _POOL["idle"]] + ([_POOL["hub"]] if _POOL["hub"] is not None else []):
            try:
                ray.kill(actor)
            except Exception:  # noqa: BLE001 - already gone
                pass
    _POOL.update(idle=[], hub=None, running=[])


# ================================================================================================ server
class _Server:
    """One run of :class:`RayAsync`: starts the workers, runs the server loop, returns the Result."""

    def __init__(self, executor: RayAsync, algorithm, state, problem, *, maxiter=1000, log_every=None, tol=0.0,
                 max_time=None, metrics=None, callback=None, progress=None, checkpoint=None, checkpoint_every=1,
                 resume=None, meta=None, jit=False):
        if jit:
            raise ValueError("RayAsync runs real worker processes, not one compiled loop: jit=True is not "
                             "available; drop jit= or use Sync/SimulatedAsync")
        self.ex, self.alg, self.W = executor, algorithm, executor.n_workers
        self.maxiter = validate.count("maxiter", maxiter, minimum=0)
        self.log_every = max(1, self.maxiter // 100) if log_every is None else \
            validate.count("log_every", log_every, minimum=1)
        self.checkpoint_every = validate.count("checkpoint_every", checkpoint_every, minimum=1)
        self.tol = validate.tolerance("tol", tol)
        if max_time is not None and not (isinstance(max_time, (int, float, np.number)) and max_time > 0):
            raise ValueError(f"max_time must be a number of seconds > 0, got {max_time!r}")
        if executor.defer_metrics and callback is not None:
            raise ValueError("RayAsync(defer_metrics=True) evaluates metrics after the run, so a callback cannot see "
                             "them; drop callback= or defer_metrics=")
        self.max_time, self.callback, self.checkpoint, self.resume = max_time, callback, checkpoint, resume
        self.user_metrics = harness._metric_items(metrics)
        self.meta = meta or {}
        self.progress = progress

        n = n_rows(problem)
        W = self.W
        if n < W:
            raise ValueError(f"RayAsync: {W} workers but only {n} rows to split (data rows, or blocks for block "
                             f"methods); use at most {n} workers")
        if executor.shard_sizes is not None:
            if sum(executor.shard_sizes) != n:
                raise ValueError(f"RayAsync: shard_sizes {list(executor.shard_sizes)} sum to "
                                 f"{sum(executor.shard_sizes)}, but the problem has {n} rows")
            sizes = executor.shard_sizes
        else:
            sizes = tuple(len(part) for part in np.array_split(np.arange(n), W))
        self.n, self.bounds = n, np.concatenate([[0], np.cumsum(sizes)]).astype(int)
        self.state0, self.problem = harness._strong(state), problem
        self.shapes, self.barrier = reduce_shapes(algorithm, state, problem)
        if self.barrier and W > 1 and executor.max_delay > 0:
            warn_all_barrier(algorithm, executor)       # every step exchanges: the Sync run, as SimulatedAsync says
        self.exchange = executor.max_delay == 0 or self.barrier

    # --------------------------------------------------------------------------------------- helpers
    def _full_state(self, shared, rows_copies):
        return _assemble(self.state0, shared, _concat_rows(rows_copies))

    def _start_worker(self, ray, w, rows, shared, actor=None):
        worker_cls, _ = _actor_classes(ray)
        if actor is None:
            idle = _POOL["idle"]
            actor = idle.pop()[1] if idle else worker_cls.options(num_cpus=self.cpus).remote()
        lo, hi = self.bounds[w], self.bounds[w + 1]
        config = {"x64": bool(jax.config.jax_enable_x64), "algorithm": self.alg, "n_workers": self.W,
                  "exchange": self.exchange, "worker": w, "delay": self.ex.delay(w), "hub": self.hub,
                  "run": self.run_id, "problem": _Packed(_host(_slice_rows(self.problem, lo, hi))),
                  "rows": _Packed(rows), "template": _Packed(_host(_slice_rows(self.state0, lo, hi))),
                  "shared": shared,
                  "others": self._others(w)}
        return actor, actor.setup.remote(config)

    def _others(self, w):
        return {name: self.totals[name] - self.table[name][w] for name in self.shapes}

    def _submit(self, w):
        fut = self.actors[w].compute.remote(self.k, self.shared_ref, self._others(w))
        self.inflight[fut] = w
        self.read_at[w] = self.k

    def _restart(self, ray, w, err):
        self.restart_count[w] += 1
        if self.restart_count[w] > self.ex.max_restarts:
            raise RuntimeError(f"RayAsync: worker {w} died {self.restart_count[w]} times (last: {err}); "
                               f"max_restarts={self.ex.max_restarts} reached") from err
        old_pid = self.pids[w]
        try:
            ray.kill(self.actors[w])
        except Exception:  # noqa: BLE001 - already dead
            pass
        t0 = time.perf_counter()
        actor, ready = self._start_worker(ray, w, self.rows[w], self.shared, actor=None)
        self.actors[w] = actor
        self.pids[w] = ray.get(ready, timeout=max(self.ex.connect_timeout, 120))
        _POOL["running"][w] = self.pids[w]
        self.restarts.append({"worker": w, "iteration": self.k, "time": self._now(), "old_pid": old_pid,
                              "new_pid": self.pids[w], "restart_seconds": time.perf_counter() - t0,
                              "reason": type(err).__name__})
        self._submit(w)

    def _now(self):
        return self.elapsed + (time.perf_counter() - self.t_mark)

    def _raise_worker_error(self, w, err):
        cause = getattr(err, "cause", None)
        text = str(err)
        raise WorkerError(f"RayAsync: worker {w} raised at server update {self.k + 1} "
                          f"({type(cause).__name__ if cause is not None else type(err).__name__}); the server state "
                          f"is the one after update {self.k} (WorkerError.state). Worker traceback:\n{text}",
                          worker=w, n_iter=self.k, state=self._full_state(self.shared, self.rows),
                          remote_traceback=text) from err

    # ------------------------------------------------------------------------------------------- run
    def run(self) -> Result:
        ray = _connect(self.ex)
        _reset_pool_if_new_session(ray)
        W, alg = self.W, self.alg
        if self.ex.worker_cpus is not None:
            self.cpus = float(self.ex.worker_cpus)
        else:
            total = float(ray.cluster_resources().get("CPU", 1.0))
            self.cpus = min(1.0, total / W)
        # idle workers reserving another CPU share would block the placement of this run's: stop them
        keep = [(c, a) for c, a in _POOL["idle"] if c == self.cpus]
        for c, actor in _POOL["idle"]:
            if c != self.cpus:
                ray.kill(actor)
        _POOL["idle"] = keep
        self.hub = _hub(ray)
        self.run_id = f"{os.getpid()}-{time.time_ns()}"

        fp = harness.fingerprint(alg.step, self.problem) if (self.checkpoint or self.resume) else ""
        state, n_iter = self.state0, 0
        base_meta = {"solver": alg.name, "parallel": repr(self.ex), "device": "ray", "backend": jax.default_backend(),
                     "log_every": self.log_every, "maxiter": self.maxiter, "tol": float(self.tol),
                     "stop_metric": alg.stop_metric, "executor": "RayAsync", "n_workers": W,
                     "max_delay": self.ex.max_delay, "min_arrivals": self.ex.min_arrivals,
                     "synchronous_rounds": bool(self.exchange), "shard_sizes": np.diff(self.bounds).tolist(),
                     "straggler": {str(w): s for w, s in (self.ex.straggler or ())}}
        base_meta.update(self.meta)
        if self.resume is not None:
            state, trace, n_iter = harness.load_checkpoint(self.resume, state, fingerprint=fp, maxiter=self.maxiter)
            trace.meta.update({k: v for k, v in base_meta.items() if k != "compile_time"})
            trace.meta["resumed_from_iter"] = n_iter
            self.elapsed = float(trace.times[-1]) if len(trace) else 0.0
        else:
            trace = Trace.empty([], base_meta)
            self.elapsed = 0.0

        shared, _ = split_shared(state)
        self.shared = _host(shared)
        self.rows = [_host(_rows_nodes(_slice_rows(state, self.bounds[w], self.bounds[w + 1]))) for w in range(W)]
        self.table = {k: np.zeros((W,) + s.shape, s.dtype) for k, s in self.shapes.items()}
        self.totals = {k: np.zeros(s.shape, s.dtype) for k, s in self.shapes.items()}
        self.k = n_iter
        D = 0 if self.exchange else self.ex.max_delay
        min_arrivals = W if self.exchange else self.ex.min_arrivals
        age = np.full(W, D, np.int64)
        entry_read = np.full(W, n_iter, np.int64)   # the update index whose state each table entry was computed at
        self.read_at = np.full(W, n_iter, np.int64)
        self.inflight, self.restarts, self.restart_count = {}, [], [0] * W
        deliveries = [[] for _ in range(W)]
        round_seconds = [[] for _ in range(W)]
        waited_for = [[] for _ in range(W)]
        staleness = collections.Counter()
        update_times, server_times = [], []

        # ---- start the workers and compile (excluded from the clock)
        t_setup = time.perf_counter()
        self.actors, readies = [], []
        for w in range(W):
            actor, ready = self._start_worker(ray, w, self.rows[w], self.shared)
            self.actors.append(actor)
            readies.append(ready)
        ok = False
        try:
            try:
                self.pids = ray.get(readies, timeout=max(self.ex.connect_timeout, 120))
            except ray.exceptions.GetTimeoutError as err:
                raise RuntimeError(f"RayAsync: {W} worker processes did not start within "
                                   f"{max(self.ex.connect_timeout, 120):g} s; the cluster may lack CPUs "
                                   f"({ray.cluster_resources().get('CPU')}) — pass worker_cpus=0 or fewer "
                                   "workers") from err
            _POOL["running"] = list(self.pids)
            dummy_state = _slice_rows(self.state0, 0, 1)
            dummy_problem = _slice_rows(self.problem, 0, 1)
            server_step, dummy_rows = None, _rows_nodes(dummy_state)
            if not self.exchange:
                server_step = _phase2(alg, W).lower(dummy_state, dummy_problem, self.totals).compile()
            metric_items = tuple((name, serial_metric(fn)) for name, fn in alg.metrics) + self.user_metrics
            metrics_fn = _server_metrics(metric_items)
            values0 = metrics_fn(self._full_state(self.shared, self.rows), self.problem)
            jax.block_until_ready(values0)
            trace.meta["compile_time"] = trace.meta.get("compile_time", 0.0) + time.perf_counter() - t_setup
            if n_iter == 0:
                record0 = harness._to_host_scalars(values0)
                trace.append(0, 0.0, record0)
            objective0 = float(trace.metrics["objective"][0]) if "objective" in trace.metrics else float("nan")

            status, metric_time, n_logs = "maxiter", 0.0, 0
            good = (self.shared, [r for r in self.rows], self.k)
            next_log = self.k + self.log_every
            self.t_mark = time.perf_counter()
            self.shared_ref = ray.put(self.shared)
            for w in range(W):
                self._submit(w)
            info, snapshots = {}, []
            with harness._interrupt_guard() as interrupted:
                while self.k < self.maxiter and status == "maxiter":
                    t_update = time.perf_counter()
                    arrived, forced_wait, wait_s = [], None, 0.0
                    while True:
                        forced = [w for w in range(W) if age[w] >= D and w not in arrived]
                        if len(arrived) >= min_arrivals and forced_wait is None:
                            forced_wait = list(forced)
                        if len(arrived) >= min_arrivals and not forced:
                            break
                        tw = time.perf_counter()
                        ready, _ = ray.wait(list(self.inflight), num_returns=1)
                        more, _ = ray.wait(list(self.inflight), num_returns=len(self.inflight), timeout=0)
                        wait_s += time.perf_counter() - tw
                        for fut in dict.fromkeys(ready + more):
                            w = self.inflight.pop(fut)
                            try:
                                out = ray.get(fut)
                            except ray.exceptions.RayActorError as err:
                                self._restart(ray, w, err)
                                continue
                            except ray.exceptions.RayTaskError as err:
                                self._raise_worker_error(w, err)
                            # deliver: the table entry, the server's copy of the worker's rows state
                            for name, value in out["locals"].items():
                                self.totals[name] = self.totals[name] + (value - self.table[name][w])
                                self.table[name][w] = value
                            self.rows[w] = out["rows"].unpack()
                            entry_read[w] = self.read_at[w]
                            arrived.append(w)
                            deliveries[w].append(self._now())
                            round_seconds[w].append(out["seconds"])
                            if self.exchange:
                                exchanged = out
                    ts = time.perf_counter()
                    # ---- the server update (phase 2)
                    if self.exchange:
                        new_shared, info = exchanged["shared"], exchanged["info"]
                    else:
                        # exact totals from the table (the running sums above only decide nothing)
                        self.totals = {k: v.sum(axis=0) for k, v in self.table.items()}
                        new_shared, info = server_step(_assemble(dummy_state, self.shared, dummy_rows),
                                                       dummy_problem, self.totals)
                        new_shared = _host(new_shared)
                        info = _host(info)
                    for w in range(W):
                        staleness[int(self.k - entry_read[w])] += 1
                    for w in forced_wait or ():
                        waited_for[w].append(self.k + 1)
                    age = np.where(np.isin(np.arange(W), arrived), 0, age + 1)
                    self.k += 1
                    if self.exchange and self.k % 64 == 0:
                        self.hub.forget.remote(self.run_id, self.k - 1)
                    finite = all(np.all(np.isfinite(x)) for x in jax.tree.leaves(new_shared)
                                 if np.issubdtype(np.asarray(x).dtype, np.inexact))
                    if not finite:
                        trace.meta["diverged_at"] = self.k
                        status = "diverged"
                        self.k -= 1
                        break
                    self.shared = new_shared
                    self.shared_ref = ray.put(self.shared)
                    stop_value = info.get(alg.stop_metric) if alg.stop_metric else None
                    if stop_value is not None and float(np.asarray(stop_value)) <= self.tol:
                        status = "converged"
                    server_times.append(time.perf_counter() - ts)
                    now = time.perf_counter()
                    update_times.append(now - t_update)
                    out_of_time = self.max_time is not None and self._now() >= self.max_time
                    log_now = self.k >= next_log or status != "maxiter" or self.k >= self.maxiter or out_of_time \
                        or interrupted()
                    if not log_now:
                        for w in arrived:
                            self._submit(w)
                        continue
                    arrived_now = arrived
                    # ---- log point (its time excluded from the clock)
                    self.elapsed += now - self.t_mark
                    next_log = self.k + self.log_every
                    tm = time.perf_counter()
                    full = None
                    n_logs += 1
                    if self.ex.defer_metrics:
                        # evaluated after the run: workers keep computing while the server evaluates metrics, so
                        # a pause here would hand the asynchronous runs free time
                        snapshots.append((self.k, self.elapsed, {**harness._to_host_scalars(info),
                                                                 "arrived": float(len(arrived))},
                                          self.shared, list(self.rows)))
                        record = None
                    else:
                        full = self._full_state(self.shared, self.rows)
                        record = harness._to_host_scalars(metrics_fn(full, self.problem))
                        record.update(harness._to_host_scalars(info))
                        record["arrived"] = float(len(arrived))
                        trace.append(self.k, self.elapsed, record)
                    metric_time += time.perf_counter() - tm
                    objective = record.get("objective") if record is not None else None
                    if objective is not None:
                        exploded = alg.growth_limit is not None and np.isfinite(objective0) and objective > \
                            objective0 + alg.growth_limit * max(abs(objective0), np.finfo(float).tiny)
                        if not np.isfinite(objective) or exploded:
                            trace.meta["diverged_at"] = self.k
                            status = "diverged"
                            self.shared, self.rows, self.k = good[0], list(good[1]), good[2]
                        else:
                            good = (self.shared, list(self.rows), self.k)
                    if status == "maxiter" and self.k < self.maxiter:
                        if out_of_time:
                            status = "max_time"
                        elif interrupted():
                            status = "interrupted"
                        elif self.callback is not None and self.callback(self.k, record, full) is True:
                            status = "stopped"
                    if self.checkpoint is not None and n_logs % self.checkpoint_every == 0 and status == "maxiter" \
                            and self.k < self.maxiter:
                        trace.meta["status"] = status
                        full = self._full_state(self.shared, self.rows) if full is None else full
                        harness.save_checkpoint(self.checkpoint, full, trace, self.k, "maxiter", fp)
                    if status == "maxiter" and self.k < self.maxiter:
                        for w in arrived_now:
                            self._submit(w)
                    self.t_mark = time.perf_counter()
            ok = True
        finally:
            self._finish(ray, ok)

        for k, t, info_record, shared, rows in snapshots:
            record = harness._to_host_scalars(metrics_fn(self._full_state(shared, rows), self.problem))
            trace.append(k, t, {**record, **info_record})
        full = self._full_state(self.shared, self.rows)
        trace.meta.update({
            "status": status, "n_iter": self.k, "metric_time": trace.meta.get("metric_time", 0.0) + metric_time,
            "update_times": [float(t) for t in update_times],
            "deliveries": [[float(t) for t in d] for d in deliveries],
            "staleness_hist": {str(a): int(c) for a, c in sorted(staleness.items())},
            "waited_for": waited_for, "restarts": self.restarts, "worker_pids": list(self.pids),
            "server_overhead_us": float(np.median(server_times) * 1e6) if server_times else float("nan"),
            "round_seconds": [float(np.median(r)) if r else float("nan") for r in round_seconds],
        })
        if self.checkpoint is not None:
            harness.save_checkpoint(self.checkpoint, full, trace, self.k, status, fp)
        return Result(params=alg.params(full), trace=trace, n_iter=self.k, converged=status == "converged",
                      status=status, state=full, predict_fn=alg.predict)

    def _finish(self, ray, ok: bool):
        """Back to the pool after a clean run (pending phase-1 results are drained); killed otherwise."""
        _POOL["running"] = []
        if ok:
            try:
                ray.get(list(self.inflight), timeout=60)
                _POOL["idle"].extend((self.cpus, actor) for actor in self.actors)
                return
            except Exception:  # noqa: BLE001 - a dead or stuck worker: kill them all below
                pass
        for actor in getattr(self, "actors", []):
            try:
                ray.kill(actor)
            except Exception:  # noqa: BLE001
                pass
        if self.exchange and _POOL["hub"] is not None:
            # workers blocked in an all-reduce of the failed round: a fresh hub for the next run
            try:
                ray.kill(_POOL["hub"])
            except Exception:  # noqa: BLE001
                pass
            _POOL["hub"] = None
