r"""What a method is, independent of how it is run: :class:`Algorithm`, :class:`Rows` and :class:`Comm`.

A method is written once, as pure functions over a ``state`` and a ``problem`` (pytrees):

* ``step(state, problem, comm) -> (state, info)``: one iteration. Every sum over data rows that the update needs
  goes through ``comm.reduce(name, local_sum)``: the method computes the sum over the rows it holds and the
  executor (:mod:`optlab.parallel`) says what the total is — the sum itself on one device (:class:`Serial`), a
  ``psum`` over the workers (:class:`Sync`), the last delivered sums of each worker (the simulated asynchronous
  executor, or real asynchronous workers). ``info`` is a dict of scalar diagnostics.
* ``metrics``: ``name -> fn(state, problem, comm)``, evaluated at log points (objective, residuals ...).
* ``params(state)``: what the user gets back as ``Result.params``.
* which leaves are per-row data: every subtree wrapped in :class:`Rows` (in the problem: the data rows; in the
  state: per-sample variables such as duals or slacks) has the data rows on its leading axis. Executors split
  those rows over workers (padding with zero rows where the row count is not a multiple of the worker count: a
  method whose sums would count a zero row carries a per-row ``weight`` of ones in its :class:`Rows`, which
  padding sets to zero). Everything else is shared (replicated on every worker).

A reduce name is a label of one communicated quantity (``"grad"``, ``"gram"`` ...). For the asynchronous
executors a name called at the top level of the step is *stale-able*: a worker contributes the sum it computed at
the shared state it last read. A name listed in :attr:`Algorithm.fresh` (e.g. the objective values of a line
search, which may be called inside a loop) is always formed from every worker's current contribution — a barrier;
a step that calls one waits for every worker, so the asynchronous executors run it as a synchronous round.

What a step costs a worker (the simulated clock of :mod:`optlab.parallel`): by default a step sums over all its
rows, so a worker's step costs its share of the rows and shrinks as the rows are split over more workers. A
sampling method (stochastic mini-batch iterations) says so with :attr:`Algorithm.minibatch`: each iteration draws a
fixed number of rows from every sampling block a worker holds, so its cost does not shrink with the worker count.

``optlab.harness.solve(algorithm, state, problem, executor=...)`` runs it (the harness's one loop).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import jax

__all__ = ["Algorithm", "MiniBatchWork", "Rows", "Comm", "serial_comm", "is_rows"]


@jax.tree_util.register_pytree_node_class
class Rows:
    """A container of arrays whose leading axis runs over data rows (samples); executors shard it by rows.

    ``Rows(A=A, y=y, weight=w)``; fields are read as attributes (``rows.A``) and replaced with
    :meth:`replace`. In serial runs it is an ordinary pytree node.
    """

    __slots__ = ("_fields",)

    def __init__(self, **fields):
        object.__setattr__(self, "_fields", dict(fields))

    def __getattr__(self, name):
        try:
            return self._fields[name]
        except KeyError:
            raise AttributeError(f"Rows has no field {name!r} (fields: {', '.join(self._fields)})") from None

    def __setattr__(self, name, value):
        raise AttributeError("Rows is immutable; use rows.replace(name=value)")

    def replace(self, **changes) -> "Rows":
        unknown = set(changes) - set(self._fields)
        if unknown:
            raise AttributeError(f"Rows has no field(s) {sorted(unknown)}")
        return Rows(**{**self._fields, **changes})

    def keys(self):
        return tuple(self._fields)

    def __repr__(self):
        shapes = ", ".join(f"{k}={getattr(v, 'shape', v)}" for k, v in self._fields.items())
        return f"Rows({shapes})"

    def tree_flatten(self):
        keys = tuple(self._fields)
        return tuple(self._fields[k] for k in keys), keys

    @classmethod
    def tree_unflatten(cls, keys, children):
        return cls(**dict(zip(keys, children)))


def is_rows(x) -> bool:
    return isinstance(x, Rows)


class Comm(NamedTuple):
    """What an executor gives a step: ``reduce(name, local_sum) -> total``, this worker's index and the count."""

    reduce: Callable[[str, Any], Any]
    worker: Any = 0
    n_workers: int = 1


def _identity_reduce(name, local_sum):
    del name
    return local_sum


#: The single-process communicator: the local sum is the total.
serial_comm = Comm(reduce=_identity_reduce, worker=0, n_workers=1)


def _state_params(state):
    return state


class MiniBatchWork(NamedTuple):
    """The work of one step of a sampling method, for the simulated clock (:attr:`Algorithm.minibatch`).

    One step is ``iterations`` mini-batch iterations; each draws the same number of rows (the method's batch size)
    from every sampling block of ``block_rows`` rows, whatever the worker count. A worker holding ``rows_w`` rows
    (``rows_w / block_rows`` whole blocks) therefore costs ``speed_w · iterations · rows_w / block_rows`` per step:
    one time unit is one block's mini-batch on a speed-1 worker (``Sync(1)`` with one block: one unit per
    iteration). A harness step of several iterations is charged ``iterations`` of them (a shorter last segment of
    an epoch is charged as a whole one).
    """

    iterations: int
    block_rows: int


@dataclasses.dataclass(frozen=True)
class Algorithm:
    """A method as pure functions (see the module docstring). Instances must be hashable and equal across calls
    with the same configuration (build them in an ``lru_cache``-d factory) so compiled loops are reused.

    Attributes:
        name: the solver's name (``trace.meta["solver"]``).
        step: ``step(state, problem, comm) -> (state, info)``.
        metrics: tuple of ``(name, fn(state, problem, comm))`` pairs evaluated at log points.
        params: ``params(state)`` for ``Result.params``.
        stop_metric: the ``info`` entry compared with ``tol`` (``None``: no tolerance test).
        fresh: reduce names that asynchronous executors always form from current contributions (a barrier).
        predict: ``predict(params, X)`` for ``Result.predict`` (models), or ``None``.
        growth_limit: for methods whose objective must not grow much (descent methods): a logged ``objective``
            above ``F0 + growth_limit·|F0|`` stops the run as ``"diverged"`` (see :func:`optlab.harness.run`).
        stationarity: ``fn(state, problem, comm) -> scalar``, the method's optimality residual (e.g. the norm of
            the proximal-gradient mapping). When the tolerance test fires, the run is ``"converged"`` only if this
            residual fell well below its starting value, else ``"stalled"`` (the iterate stopped moving without
            becoming stationary, e.g. with a far too small step).
        minibatch: ``None`` (default) for a step that sums over all its rows: the simulated clock charges a worker
            ``speed_w · rows_w / n`` per step (one unit = one pass over the data). A :class:`MiniBatchWork` for a
            sampling method, whose per-worker work per iteration does not shrink as rows are split over more workers
            (the clock then charges ``speed_w · iterations · blocks_w``; see :class:`MiniBatchWork`).
    """

    name: str
    step: Callable
    metrics: tuple = ()
    params: Callable = _state_params
    stop_metric: str | None = "rel_change"
    fresh: frozenset = frozenset()
    predict: Callable | None = None
    growth_limit: float | None = None
    stationarity: Callable | None = None
    minibatch: MiniBatchWork | None = None

    def metric_dict(self) -> dict:
        return dict(self.metrics)
