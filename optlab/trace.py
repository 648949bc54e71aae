"""Convergence records: :class:`Trace` (what was logged) and :class:`Result` (what a solver returns).

A ``Trace`` holds one row per log point: the iteration count, the solver's wall time at that point
(compile time and metric evaluation excluded, see :mod:`optlab.harness`) and one value per metric.
It writes CSV/JSON and the *long* format used by benchopt (one row per solver, dataset, iteration,
time, metric, value), so traces of several runs concatenate into one table.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
from typing import Any, Callable

import numpy as np

__all__ = ["Trace", "Result", "STATUSES", "format_table", "write_table", "write_long_csv"]

#: The values ``Result.status`` can take.
STATUSES = ("converged", "stalled", "maxiter", "max_time", "diverged", "stopped", "interrupted")


def _jsonable(value: Any) -> Any:
    """Best-effort conversion of meta values (NumPy scalars, arrays, dtypes) to JSON types."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, bool, int)) or value is None:
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if hasattr(value, "shape") and hasattr(value, "tolist") and np.ndim(value) <= 1 and np.size(value) <= 64:
        return _jsonable(np.asarray(value).tolist())
    return str(value)


@dataclasses.dataclass
class Trace:
    """The convergence history of one run.

    Attributes:
        iters: iteration count at each log point, shape ``(m,)``.
        times: seconds of solver time at each log point (compile time and metric evaluation excluded).
        metrics: metric name -> values at the log points, each shape ``(m,)``. Step diagnostics that
            do not exist before the first iteration (e.g. a residual) are NaN at iteration 0.
        meta: run description: solver, parameters, dataset, dtype, device, seed, compile time, status.
    """

    iters: np.ndarray
    times: np.ndarray
    metrics: dict[str, np.ndarray]
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __len__(self) -> int:
        return int(len(self.iters))

    def __getitem__(self, name: str) -> np.ndarray:
        return self.metrics[name]

    def last(self, name: str) -> float:
        """The last logged value of metric ``name``."""
        return float(self.metrics[name][-1])

    def in_epochs(self) -> "Trace":
        """A copy whose iteration axis counts epochs: the stochastic solvers run ``segments`` harness steps per epoch
        (``meta["segments"]``, 1 when absent), so ``iters / segments`` is the number of passes over the data."""
        segments = self.meta.get("segments", 1)
        return Trace(np.asarray(self.iters, float) / segments, self.times, dict(self.metrics), dict(self.meta))

    @classmethod
    def empty(cls, names, meta=None) -> "Trace":
        return cls(np.zeros(0, np.int64), np.zeros(0), {n: np.zeros(0) for n in names}, dict(meta or {}))

    def append(self, iteration: int, time: float, values: dict[str, float]) -> None:
        """Add one log point (metrics never seen before are back-filled with NaN)."""
        m = len(self)
        for name in values:
            if name not in self.metrics:
                self.metrics[name] = np.full(m, np.nan)
        self.iters = np.append(self.iters, np.int64(iteration))
        self.times = np.append(self.times, float(time))
        for name, column in self.metrics.items():
            self.metrics[name] = np.append(column, float(values.get(name, np.nan)))

    def thinned(self, max_points: int = 500) -> "Trace":
        """A copy with at most ``max_points`` log points, spaced logarithmically in the row index (first and
        last kept), for compact CSV files of long every-iteration runs."""
        m = len(self)
        if m <= max_points:
            return Trace(self.iters.copy(), self.times.copy(), {k: v.copy() for k, v in self.metrics.items()},
                         dict(self.meta))
        keep = np.unique(np.concatenate([[0, m - 1], np.round(np.geomspace(1, m - 1, max_points - 1)).astype(int)]))
        return Trace(self.iters[keep], self.times[keep], {k: v[keep] for k, v in self.metrics.items()},
                     dict(self.meta))

    # ----------------------------------------------------------------------------------- output
    def to_dict(self) -> dict[str, Any]:
        return {
            "iters": self.iters.tolist(),
            "times": self.times.tolist(),
            "metrics": {k: [None if not math.isfinite(x) else x for x in v.tolist()] for k, v in self.metrics.items()},
            "meta": _jsonable(self.meta),
        }

    def to_json(self, path=None) -> str:
        """Serialise to JSON (NaN written as null); write to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=1)
        if path is not None:
            with open(path, "w") as fh:
                fh.write(text)
        return text

    @classmethod
    def from_json(cls, source) -> "Trace":
        """Read a trace written by :meth:`to_json` (a path or the JSON text)."""
        text = source
        if not str(source).lstrip().startswith("{"):
            with open(source) as fh:
                text = fh.read()
        d = json.loads(text)
        metrics = {k: np.array([np.nan if x is None else x for x in v], float) for k, v in d["metrics"].items()}
        return cls(np.asarray(d["iters"], np.int64), np.asarray(d["times"], float), metrics, d.get("meta", {}))

    def to_csv(self, path=None) -> str:
        """Wide CSV: columns ``iteration, time`` then one per metric."""
        buf = io.StringIO()
        writer = csv.writer(buf)
        names = list(self.metrics)
        writer.writerow(["iteration", "time", *names])
        for row in range(len(self)):
            writer.writerow([int(self.iters[row]), repr(float(self.times[row]))]
                            + [repr(float(self.metrics[n][row])) for n in names])
        text = buf.getvalue()
        if path is not None:
            with open(path, "w", newline="") as fh:
                fh.write(text)
        return text

    def long(self, **extra) -> list[dict[str, Any]]:
        """Long format rows ``(solver, dataset, iteration, time, metric, value, **extra)``."""
        solver = extra.pop("solver", self.meta.get("label", self.meta.get("solver", "")))
        dataset = extra.pop("dataset", self.meta.get("dataset", ""))
        rows = []
        for row in range(len(self)):
            for name, column in self.metrics.items():
                rows.append({"solver": solver, "dataset": dataset, "iteration": int(self.iters[row]),
                             "time": float(self.times[row]), "metric": name, "value": float(column[row]), **extra})
        return rows

    def to_frame(self):
        """The long format as a pandas DataFrame (pandas is optional)."""
        from ._optional import require  # noqa: PLC0415

        pd = require("pandas", extra="repro", purpose="Trace.to_frame")

        return pd.DataFrame(self.long())


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    """The union of the rows' keys, in first-seen order."""
    keys = list(rows[0])
    for r in rows[1:]:
        keys += [k for k in r if k not in keys]
    return keys


def format_table(rows: list[dict[str, Any]]) -> str:
    """A plain-text table (left-aligned columns, header first) of ``rows``; missing cells are blank."""
    if not rows:
        raise ValueError("format_table: rows is empty; nothing to print")
    keys = _columns(rows)
    widths = {k: max(len(str(k)), *(len(str(r.get(k, ""))) for r in rows)) for k in keys}
    lines = ["  ".join(str(k).ljust(widths[k]) for k in keys)]
    lines += ["  ".join(str(r.get(k, "")).ljust(widths[k]) for k in keys) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def write_table(rows: list[dict[str, Any]], path) -> str:
    """Write ``rows`` (one dict per table row) to the CSV file ``path`` and return :func:`format_table`'s text."""
    write_long_csv(rows, path)
    return format_table(rows)


def write_long_csv(rows: list[dict[str, Any]], path) -> None:
    """Write long-format rows (from several :meth:`Trace.long` calls) to one CSV file."""
    if not rows:
        raise ValueError("write_long_csv: rows is empty; run at least one solver first")
    keys = _columns(rows)
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


@dataclasses.dataclass
class Result:
    """What every solver returns.

    Attributes:
        params: the solution as a pytree (linear models: ``{"w": ..., "b": ...}``; gradient methods: ``x``).
        trace: the :class:`Trace`.
        n_iter: iterations run (accepted steps; a diverged step is not counted).
        converged: whether the tolerance test was met.
        status: one of ``"converged"``, ``"maxiter"``, ``"max_time"``, ``"diverged"``, ``"stopped"``.
        state: the solver's final (last finite) state; pass it to ``resume`` or inspect it.
    """

    params: Any
    trace: Trace
    n_iter: int
    converged: bool
    status: str
    state: Any
    predict_fn: Callable | None = dataclasses.field(default=None, repr=False)

    def predict(self, X):
        """Model output for inputs ``X`` (solvers that train a model only)."""
        if self.predict_fn is None:
            raise AttributeError(f"{self.trace.meta.get('solver', 'this solver')} has no predict(); "
                                 "use result.params")
        return self.predict_fn(self.params, X)
