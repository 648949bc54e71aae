"""The registry of solvers: one entry per public solver, with a small test case.

Each :class:`SolverCase` knows how to build a small problem of its kind (seeded, any float dtype) and
an independent float64 reference value for it (scikit-learn, CVXPY, a closed form). The registry
drives ``optlab list``, the cross-solver contract test (``tests/test_contract.py``: converges, dtype
preserved, no recompilation on new data of the same shape, checkpoint round trip, jit/vmap mode) and
the GPU check script (``experiments/gpu_check.py``). A new solver joins by adding one entry.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np

__all__ = ["SolverCase", "Case", "SOLVERS"]


@dataclasses.dataclass(frozen=True)
class Case:
    """A built problem: ``solve(**harness_kwargs) -> Result`` and the float64 reference objective."""

    solve: Callable
    reference: float
    objective: str = "objective"     # the trace metric compared with ``reference``
    rtol: float = 1e-5               # relative accuracy expected after ``maxiter`` iterations (float64)
    maxiter: int = 2000


@dataclasses.dataclass(frozen=True)
class SolverCase:
    name: str
    description: str
    reference: str                                  # the paper
    make: Callable[..., Case]                       # make(seed=0, dtype=np.float64, size="small") -> Case
    jit_capable: bool = True                        # solve(jit=True) returns a harness.JitRun


def _lasso_case(solver_name: str, **solver_kw):
    def make(seed: int = 0, dtype=np.float64, size: str = "small") -> Case:
        import optlab as ol
        from optlab.references import lasso_optimum

        n, d = {"small": (60, 30), "medium": (2000, 500), "large": (20000, 2000)}[size]
        rng = np.random.default_rng(seed)
        A = rng.normal(size=(n, d))
        w = np.zeros(d)
        w[:5] = rng.normal(size=5) * 3
        b = A @ w + 0.1 * rng.normal(size=n)
        lam = 0.1 * np.max(np.abs(A.T @ b)) / n
        f_ref, _ = lasso_optimum(A, b, lam)
        f = ol.losses.least_squares_objective(A.astype(dtype), b.astype(dtype))
        g = ol.prox.l1(lam)
        fn = getattr(ol, solver_name)

        def solve(**kw):
            return fn(f, g, np.zeros(d, dtype), **{**solver_kw, **kw})

        return Case(solve=solve, reference=f_ref)

    return make


SOLVERS: dict[str, SolverCase] = {
    "ista": SolverCase("ista", "proximal gradient for f + g (baseline)", "forward-backward splitting",
                       _lasso_case("ista")),
    "fista": SolverCase("fista", "accelerated proximal gradient, optional backtracking (baseline)",
                        "Beck & Teboulle 2009", _lasso_case("fista")),
    "fista_bt": SolverCase("fista_bt", "FISTA with backtracking line search (baseline)", "Beck & Teboulle 2009",
                           _lasso_case("fista", backtracking=True)),
}
