"""Paper experiments: each module registers one or more experiments that ``optlab reproduce NAME`` runs.

An experiment is a function ``run(out: pathlib.Path, quick: bool, seed: int) -> dict`` that builds its
problems, runs solvers and baselines through the harness, writes CSV (long format) and PNG files into
``out`` and returns a summary (file paths and the table it printed). Full runs write into ``paper_figs/``;
``--quick`` runs are small enough for CI.

Experiments load their data through :class:`optlab.experiments._datasets.DataSets`: where a data set is missing, a
quick run uses generated stand-in data of the same shape (:mod:`optlab.data.standin`) and labels every table, CSV
(column ``data``) and figure made from it "stand-in". They announce each run with
:func:`optlab.experiments._progress.step`, which the command line shows as one progress bar per experiment.
"""
from __future__ import annotations

import dataclasses
import importlib
import pkgutil
from pathlib import Path
from typing import Callable

__all__ = ["Experiment", "register", "registry", "get"]


@dataclasses.dataclass(frozen=True)
class Experiment:
    name: str
    description: str
    run: Callable[..., dict]
    module: str


_REGISTRY: dict[str, Experiment] = {}


def register(name: str, description: str):
    """Decorator: add ``fn(out, quick, seed) -> dict`` to the registry under ``name``."""
    def deco(fn):
        if name in _REGISTRY and _REGISTRY[name].module != fn.__module__:
            raise ValueError(f"experiment {name!r} registered twice ({_REGISTRY[name].module}, {fn.__module__})")
        _REGISTRY[name] = Experiment(name, description, fn, fn.__module__)
        return fn
    return deco


def _load_all() -> None:
    for info in pkgutil.iter_modules([str(Path(__file__).parent)]):
        if info.name.startswith(("bench_", "gpu_", "_")):
            continue
        importlib.import_module(f"{__name__}.{info.name}")


def registry() -> dict[str, Experiment]:
    """All registered experiments, by name."""
    _load_all()
    return dict(sorted(_REGISTRY.items()))


def get(name: str) -> Experiment:
    reg = registry()
    if name not in reg:
        import difflib

        close = difflib.get_close_matches(name, reg, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown experiment {name!r}; known: {', '.join(reg)}.{hint}")
    return reg[name]
