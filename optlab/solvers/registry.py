"""The registry of solvers: one entry per public solver, with a small test case.

Each :class:`SolverCase` knows how to build a small problem of its kind (seeded, any float dtype) and
an independent float64 reference value for it (scikit-learn, CVXPY, a closed form). The registry
drives ``optlab list``, the cross-solver contract test (``tests/test_contract.py``: converges, dtype
preserved, no recompilation on new data of the same shape, checkpoint round trip, jit/vmap mode) and
the GPU check script (``experiments/gpu_check.py``). A new solver joins by adding one entry.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Callable

import numpy as np

__all__ = ["SolverCase", "Case", "ParallelCase", "SOLVERS", "data_parallel"]


@dataclasses.dataclass(frozen=True)
class Case:
    """A built problem: ``solve(**harness_kwargs) -> Result`` and the float64 reference objective."""

    solve: Callable
    reference: float
    objective: str = "objective"     # the trace metric compared with ``reference``
    rtol: float = 1e-5               # relative accuracy expected after ``maxiter`` iterations (float64)
    maxiter: int = 2000


@dataclasses.dataclass(frozen=True)
class ParallelCase:
    """How the parallel contract (tests/parallel/test_parallel_contract.py) runs a data-parallel solver: its case's
    ``solve(parallel=executor, **kw)`` with ``Sync(4)`` must equal ``solve(**serial_kwargs)`` to rounding after
    ``iters`` iterations, ``SimulatedAsync(4, max_delay=0)`` must equal ``Sync(4)`` bit for bit, and
    ``SimulatedAsync(4, max_delay=3)`` with ``async_kwargs`` (e.g. a smaller step) must reach the case's reference
    within ``rtol`` after ``async_maxiter`` iterations (convex cases only: ``async_rtol=None`` skips that check)."""

    iters: int = 30
    serial_kwargs: dict = dataclasses.field(default_factory=dict)
    async_kwargs: dict = dataclasses.field(default_factory=dict)
    async_maxiter: int | None = None        # default: the case's maxiter
    async_rtol: float | None = 1e-3


@dataclasses.dataclass(frozen=True)
class SolverCase:
    name: str
    description: str
    reference: str                                  # the paper
    make: Callable[..., Case]                       # make(seed=0, dtype=np.float64, size="small") -> Case
    jit_capable: bool = True                        # solve(jit=True) returns a harness.JitRun
    parallel: ParallelCase | None = None            # data-parallel: runs under every executor of optlab.parallel


@functools.lru_cache(maxsize=None)
def _lasso_data(seed: int, size: str):
    """A seeded Lasso (5 true nonzeros, λ = 0.1·λ_max): ``(A, b, λ, F*)`` with F* from scikit-learn, computed once
    per (seed, size): the reference is the expensive part and every dtype/test reuses it."""
    from optlab.references import lasso_optimum

    n, d = {"small": (60, 30), "medium": (2000, 500), "large": (20000, 2000)}[size]
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, d))
    w = np.zeros(d)
    w[:5] = rng.normal(size=5) * 3
    b = A @ w + 0.1 * rng.normal(size=n)
    lam = 0.1 * np.max(np.abs(A.T @ b)) / n
    f_ref, _ = lasso_optimum(A, b, lam)
    return A, b, lam, f_ref


def _lasso_case(solver_name: str, n_blocks: int | None = None, **solver_kw):
    """The Lasso of :func:`_lasso_data` for ``solver(f, ℓ1, x0, **kw)``; with ``n_blocks``, its coefficients
    split into that many column blocks (``solver(f, [ℓ1] * n_blocks, blocks, **kw)``)."""
    def make(seed: int = 0, dtype=np.float64, size: str = "small") -> Case:
        import optlab as ol

        A, b, lam, f_ref = _lasso_data(seed, size)
        f = ol.losses.least_squares_objective(A.astype(dtype), b.astype(dtype))
        fn = getattr(ol, solver_name)
        g, x0 = ol.prox.l1(lam), np.zeros(A.shape[1], dtype)
        if n_blocks is not None:
            g, x0 = [g] * n_blocks, np.array_split(x0, n_blocks)

        def solve(step_scale=None, **kw):
            if step_scale is not None:  # a fraction of the default step 1/L (delayed gradients need a smaller one)
                kw["step"] = step_scale / float(f.lipschitz())
            return fn(f, g, x0, **{**solver_kw, **kw})

        return Case(solve=solve, reference=f_ref)

    return make


def _svm_data(seed: int, size: str):
    """The seeded binary classification set of the SVM and GIST cases (3 informative features, label noise)."""
    n, d = {"small": (120, 20), "medium": (5000, 200), "large": (50000, 500)}[size]
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, d))
    y = np.where(A[:, :3] @ np.array([1.0, -2.0, 1.5]) + 0.5 * rng.normal(size=n) > 0, 1.0, -1.0)
    return A, y


@functools.lru_cache(maxsize=None)
def _cached_reference(reference_fn, seed: int, size: str, lam: float) -> float:
    """``reference_fn(A, y, λ)[0]`` on :func:`_svm_data`, once per (function, seed, size, λ)."""
    A, y = _svm_data(seed, size)
    return float(reference_fn(A, y, lam)[0])


def _svm_case(solver_name: str, reference_fn: str, objective: str = "hinge", **solver_kw):
    """A penalised linear SVM (λ = 0.02) on :func:`_svm_data`: ``objective="hinge"`` gives ``solver(A, y, ℓ1, **kw)``
    (ℓ1-hinge; reference: the exact LP optimum, HiGHS), ``"squared_hinge"`` gives ``solver(f, ℓ1, x0)`` on the
    squared-hinge risk without intercept (reference: liblinear run to 1e-10)."""
    def make(seed: int = 0, dtype=np.float64, size: str = "small") -> Case:
        import optlab as ol
        from optlab import references

        A, y = _svm_data(seed, size)
        lam = 0.02
        f_ref = _cached_reference(getattr(references, reference_fn), seed, size, lam)
        fn = getattr(ol, solver_name)
        A = A.astype(dtype)
        if objective == "hinge":
            solve = functools.partial(fn, A, y, ol.prox.l1(lam), **solver_kw)
        else:
            f = ol.losses.squared_hinge_objective(A, y.astype(dtype))
            solve = functools.partial(fn, f, ol.prox.l1(lam), np.zeros(A.shape[1], dtype), **solver_kw)
        return Case(solve=solve, reference=f_ref, maxiter=3000 if objective == "hinge" else 2000)

    return make


@functools.lru_cache(maxsize=None)
def _ipdlam_data(seed: int, size: str):
    """``(X, y, λ, F*)`` of the iPDLAM case, computed once per (seed, size)."""
    from scipy.optimize import minimize
    from scipy.special import logsumexp

    n, d, C = {"small": (150, 6, 3), "medium": (5000, 50, 10), "large": (50000, 200, 10)}[size]
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = np.argmax(X @ rng.normal(size=(d, C)) + 0.5 * rng.normal(size=(n, C)), axis=1)
    y[:C] = np.arange(C)
    lam = 0.05

    def fun(theta):
        W, b = theta[: d * C].reshape(d, C), theta[d * C:]
        Z = X @ W + b
        P = np.exp(Z - logsumexp(Z, axis=1, keepdims=True))
        G = (P - np.eye(C)[y]) / n
        value = np.mean(logsumexp(Z, axis=1) - Z[np.arange(n), y]) + lam / 2 * np.sum(W**2)
        return value, np.concatenate([(X.T @ G + lam * W).ravel(), G.sum(0)])

    ref = minimize(fun, np.zeros(d * C + C), jac=True, method="L-BFGS-B",
                   options={"maxiter": 10000, "gtol": 1e-13, "ftol": 1e-16}).fun
    return X, y, lam, float(ref)


def _ipdlam_case(solver_name: str = "ipdlam", **solver_kw):
    """iPDLAM (or DLAM, iPDLAM with β = 0: β does not change Φ, so the reference is the same) on a network without
    hidden layer (layers [d, C]: one block (W, b), no a_l, ρ plays no role), i.e. ℓ2-regularised multinomial
    logistic regression, which is strongly convex in W; reference: SciPy L-BFGS in float64 on the same objective.
    The hidden-layer blocks are checked in tests/test_ipdlam.py (sufficient decrease of every block update) and on
    MNIST."""
    def make(seed: int = 0, dtype=np.float64, size: str = "small") -> Case:
        import optlab as ol

        X, y, lam, ref = _ipdlam_data(seed, size)
        d, C = X.shape[1], int(y.max()) + 1
        solve = functools.partial(getattr(ol, solver_name), X.astype(dtype), y, layers=[d, C],
                                  regularizers=ol.prox.l2sq(lam), **solver_kw)
        return Case(solve=solve, reference=float(ref), maxiter=1500)

    return make


@functools.lru_cache(maxsize=None)
def _bcd_reference(seed: int, size: str) -> float:
    """min over W of (k/2)‖Y − [X, 1]W‖² with 1/k = 1 + 1/γ + 1/ρ (γ = ρ = 1), by NumPy least squares."""
    X, y, _, _ = _ipdlam_data(seed, size)
    Y = np.eye(int(y.max()) + 1)[y]
    Xb = np.hstack([X, np.ones((X.shape[0], 1))])
    W, *_ = np.linalg.lstsq(Xb, Y, rcond=None)
    return float(0.5 / 3 * np.sum((Y - Xb @ W) ** 2))


def _bcd_case(seed: int = 0, dtype=np.float64, size: str = "small") -> Case:
    """BCD (Zeng et al.) on a network without hidden layer (layers [d, C], γ = ρ = 1, α = 5): the split objective
    ½‖V − Y‖² + γ/2‖V − U‖² + ρ/2‖U − [X, 1]W‖² is then a convex quadratic whose minimum over V, U (three springs
    in series) is (k/2)‖Y − [X, 1]W‖² with 1/k = 1 + 1/γ + 1/ρ; reference: that least-squares minimum (NumPy). The
    ReLU blocks are checked in tests/test_bcd.py (exact block prox, monotone objective)."""
    from optlab.solvers.baselines.bcd import bcd

    X, y, _, _ = _ipdlam_data(seed, size)
    solve = functools.partial(bcd, X.astype(dtype), y, layers=[X.shape[1], int(y.max()) + 1])
    return Case(solve=solve, reference=_bcd_reference(seed, size), maxiter=600)


def _structured_case(solver_name: str, maxiter: int, rtol: float, **solver_kw):
    """Graph-guided / fused regularised logistic regression on a seeded synthetic set (strongly convex, gamma = 0.1):
    the stochastic primal-dual solvers (SPDHG, SPDPEG). Reference: CVXPY (CLARABEL), cached on disk."""
    def make(seed: int = 0, dtype=np.float64, size: str = "small") -> Case:
        import optlab as ol
        from optlab.references import structured_optimum

        n, d = {"small": (200, 10), "medium": (5000, 100), "large": (50000, 300)}[size]
        rng = np.random.default_rng(seed)
        A = rng.normal(size=(n, d))
        y = np.where(A[:, :3] @ np.array([1.0, 1.0, -1.0]) + 0.5 * rng.normal(size=n) > 0, 1.0, -1.0)
        F = ol.operators.first_difference(d)
        mu, gamma = 0.05, 0.1
        f_ref, _ = structured_optimum(A, y, F, mu, gamma)
        solve = functools.partial(getattr(ol, solver_name), A.astype(dtype), y, F, mu, gamma=gamma, **solver_kw)
        return Case(solve=solve, reference=f_ref, rtol=rtol, maxiter=maxiter)

    return make


#: the named sizes (sequences × steps) of the ADMMiRNN cases
ADMM_IRNN_SIZES = {"small": (400, 2), "medium": (4000, 8), "large": (20000, 28)}


def admm_irnn_sequences(seed: int, n: int, T: int):
    """``n`` seeded noisy-label sequences of ``T`` steps: 2 features, label = sign of the feature-0 sum + the last
    feature 1 + N(0, 4) noise (so the loss has a positive floor)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, T, 2))
    y = ((X[:, :, 0].sum(1) + X[:, -1, 1] + 2.0 * rng.normal(size=n)) > 0).astype(int)
    return X, y


def _admm_irnn_data(seed: int, size: str):
    return admm_irnn_sequences(seed, *ADMM_IRNN_SIZES[size])


@functools.lru_cache(maxsize=None)
def _admm_irnn_reference(seed: int, size: str, iters: int) -> float:
    import optlab as ol

    X, y = _admm_irnn_data(seed, size)
    res = ol.admm_irnn(X, y, hidden=2, iters=iters, rho=10.0, rho_schedule=None, progress=False)
    return res.trace.last("train_loss")


def _admm_irnn_case(seed: int = 0, dtype=np.float64, size: str = "small") -> Case:
    """A 2-step tanh RNN (h = 2) on noisy labels (the loss cannot reach 0); objective: the forward-pass training
    loss; reference: a float64 run of the same length. Constant ρ = 10: the adaptive schedule's discrete decisions
    could fall on different iterations in float32 and float64, and smaller constant ρ lets the default iteration
    go uphill (measured in experiments/README_admm_irnn.md). ADMMiRNN is nonconvex and converges slowly here, so no
    solver-independent optimum is reachable in a test budget: the contract checks determinism, dtype fidelity, no
    recompilation, checkpoints and jit mode; convergence itself (monotone blocks, residuals → 0, forward pass =
    auxiliaries) is tested in tests/test_admm_irnn.py."""
    import optlab as ol

    X, y = _admm_irnn_data(seed, size)
    maxiter = 600
    solve = functools.partial(ol.admm_irnn, X.astype(dtype), y, hidden=2, rho=10.0, rho_schedule=None)
    return Case(solve=solve, reference=_admm_irnn_reference(seed, size, maxiter), objective="train_loss", rtol=1e-8,
                maxiter=maxiter)


SOLVERS: dict[str, SolverCase] = {
    "admm_irnn": SolverCase("admm_irnn", "ADMM training of a tanh RNN (exact block minimisers, BPTT-free)",
                            "Tang et al., ECML-PKDD 2020 (arXiv:2006.05622)", _admm_irnn_case,
                            # nonconvex: no optimum to reach under delays; Sync(4) = serial, Async(0) = Sync
                            parallel=ParallelCase(async_rtol=None)),
    "spdhg": SolverCase("spdhg", "stochastic primal-dual hybrid gradient (graph-guided models), one step = one epoch",
                        "Qiao, Lin, Qin & Lu, Neurocomputing 2018 (arXiv:1801.06934)",
                        _structured_case("spdhg", 200, 2e-4, variant="sc_nonuniform"),
                        # Sync(4) samples one row of each of 4 blocks: the serial run with n_blocks=4; the bounded-delay
                        # check runs one iteration per harness step (segments = 50 iterations per epoch), so every
                        # gradient may be stale
                        parallel=ParallelCase(serial_kwargs={"n_blocks": 4}, async_kwargs={"segments": 50},
                                              async_maxiter=50 * 200)),
    "spdpeg": SolverCase("spdpeg", "stochastic primal-dual proximal extragradient, one step = one epoch",
                         "Lin, Qiao, Zhang, Feng & Zhang, Neurocomputing 2018",
                         _structured_case("spdpeg", 400, 1e-3, variant="sc_nonuniform"),
                         parallel=ParallelCase(serial_kwargs={"n_blocks": 4},
                                               async_kwargs={"batch_size": 5, "segments": 10}, async_maxiter=10 * 400)),
    "stoc_admm": SolverCase("stoc_admm", "stochastic ADMM, exact augmented term (baseline)",
                            "Ouyang, He, Tran & Gray, ICML 2013", _structured_case("stoc_admm", 150, 1e-3),
                            # O(1/sqrt(t)) decaying steps: a looser async_rtol (experiments/README_parallel.md)
                            parallel=ParallelCase(serial_kwargs={"n_blocks": 4},
                                                  async_kwargs={"batch_size": 5, "segments": 10},
                                                  async_maxiter=10 * 150, async_rtol=1e-2)),
    "opg_admm": SolverCase("opg_admm", "online proximal-gradient (linearised) stochastic ADMM (baseline)",
                           "Suzuki, ICML 2013", _structured_case("opg_admm", 150, 1e-3),
                           # as stoc_admm
                           parallel=ParallelCase(serial_kwargs={"n_blocks": 4},
                                                 async_kwargs={"batch_size": 5, "segments": 10},
                                                 async_maxiter=10 * 150, async_rtol=3e-2)),
    "gist": SolverCase("gist", "GIST: prox-gradient with BB step and non-monotone line search (baseline)",
                       # the line search is a barrier: every SimulatedAsync round is synchronous
                       "Gong et al., ICML 2013",
                       _svm_case("gist", "l1_squared_hinge_liblinear", "squared_hinge"), parallel=ParallelCase()),
    "svm_admm": SolverCase("svm_admm", "nonconvex-penalised linear SVM by ADMM (slack-pair splitting)",
                           "Guan et al., ICDM Workshops 2018", _svm_case("svm_admm", "svm_l1_hinge_lp")),
    "svm_consensus_admm": SolverCase("svm_consensus_admm", "penalised linear SVM by global-consensus ADMM over row "
                                     "blocks (asynchronous under SimulatedAsync)", "Boyd et al. 2011 §7.1; Zhang & "
                                     "Kwok, ICML 2014",
                                     _svm_case("svm_consensus_admm", "svm_l1_hinge_lp", n_blocks=4),
                                     parallel=ParallelCase()),
    "ista": SolverCase("ista", "proximal gradient for f + g (baseline)", "forward-backward splitting",
                       _lasso_case("ista"), parallel=ParallelCase(async_kwargs={"step_scale": 1 / 7})),
    "fista": SolverCase("fista", "accelerated proximal gradient, optional backtracking (baseline)",
                        "Beck & Teboulle 2009", _lasso_case("fista"),
                        # FISTA's momentum (t_k - 1)/t_{k+1} -> 1 amplifies delayed gradients: with max_delay=3 it
                        # diverges even at small steps (experiments/README_parallel.md)
                        parallel=ParallelCase(async_rtol=None)),
    "fista_bt": SolverCase("fista_bt", "FISTA with backtracking line search (baseline)", "Beck & Teboulle 2009",
                           _lasso_case("fista", backtracking=True),
                           # the line search is a barrier: every SimulatedAsync round is synchronous
                           parallel=ParallelCase()),
    "pig": SolverCase("pig", "proximal inertial gradient (iPiano), constant/diminishing inertia", "Sun, Qiao & Li 2019 "
                      "(arXiv:1801.07389)", _lasso_case("pig", beta=0.5),
                      # delayed gradients: step (1 - β)/(L(1 + 2·max_delay)) = 0.5/(7L)
                      parallel=ParallelCase(async_kwargs={"step_scale": 0.5 / 7})),
    "pig_jacobi": SolverCase("pig_jacobi", "Jacobi multi-block proximal inertial gradient (blocks over workers)",
                             "Sun, Qiao & Li 2019 (arXiv:1801.07389)", _lasso_case("pig_jacobi", 6),
                             parallel=ParallelCase(async_maxiter=4000)),
    "ipdlam": SolverCase("ipdlam", "inertial proximal alternating minimisation for MLP training (penalty form)",
                         "Qiao, Sun, Pan & Li, ICASSP 2021", _ipdlam_case("ipdlam", beta=0.5), parallel=ParallelCase()),
    "dlam": SolverCase("dlam", "iPDLAM without inertia (β = 0): proximal alternating minimisation for MLPs",
                       "Qiao, Sun, Pan & Li, ICASSP 2021", _ipdlam_case("dlam"), parallel=ParallelCase()),
    "bcd": SolverCase("bcd", "three-splitting block coordinate descent for MLPs, closed-form blocks (baseline)",
                      "Zeng, Lau, Lin & Yao, ICML 2019", _bcd_case, parallel=ParallelCase()),
    "pig_blocks": SolverCase("pig_blocks", "multi-block proximal inertial gradient, cyclic or random blocks",
                             "Sun, Qiao & Li 2019 (arXiv:1801.07389)",
                             _lasso_case("pig_blocks", 3, order="random", seed=0)),
}


def data_parallel() -> dict[str, SolverCase]:
    """The registry entries that run under every executor of :mod:`optlab.parallel`."""
    return {name: case for name, case in SOLVERS.items() if case.parallel is not None}
