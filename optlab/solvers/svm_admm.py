r"""Nonconvex-penalised linear SVM by ADMM (Guan, Qiao, Li, Sun, Ge, Lu; ICDM Workshops 2018; SPEC §1).

Problem, with labels :math:`b_i \in \{\pm1\}`, rows :math:`a_i` of :math:`A \in \mathbb{R}^{n\times d}` and an
intercept :math:`c`:

.. math:: \min_{w, c}\; \frac1n\sum_{i=1}^n \bigl(1 - b_i(a_i^\top w + c)\bigr)_+ + P(w),

with :math:`P` any :mod:`optlab.prox` penalty (``l1``, ``scad``, ``mcp``, ``lsp``, ``capped_l1`` ...).

Splitting (the paper's slack pair): :math:`H = \operatorname{diag}(b)A`, a copy :math:`z = w` and slacks
:math:`\xi, s \ge 0`,

.. math:: \min\; P(z) + \tfrac1n\mathbf 1^\top\xi \quad\text{s.t.}\quad w - z = 0,\;
          Hw + c\,b + \xi - s - \mathbf 1 = 0,\; \xi \ge 0,\; s \ge 0,

scaled augmented Lagrangian with penalties :math:`\rho_1` (on :math:`w = z`, scaled dual :math:`u_1`) and
:math:`\rho_2` (on the margin constraint, scaled dual :math:`u_2`), :math:`\rho = \rho_1/\rho_2`. One sweep:

1. :math:`(w, c)` jointly: :math:`\begin{bmatrix}H^\top H + \rho I & H^\top b\\ b^\top H & n\end{bmatrix}
   \begin{bmatrix}w\\c\end{bmatrix} = \begin{bmatrix}\rho(z - u_1) + H^\top t\\ b^\top t\end{bmatrix}`,
   :math:`t = \mathbf 1 + s - \xi - u_2`, solved with one factorisation of :math:`M = H^\top H + \rho I`
   (Cholesky; Woodbury with :math:`\rho I + HH^\top` when :math:`n < d`; or conjugate gradients) and a
   precomputed Schur complement for :math:`c`.
2. :math:`z = \operatorname{prox}_{P/\rho_1}(w + u_1)` — the *exact* prox of :math:`P` with step
   :math:`1/\rho_1` (for every step, nonconvex penalties included: :mod:`optlab.prox`).
3. :math:`(\xi, s)` jointly: with :math:`v = \mathbf 1 - Hw - c\,b - u_2` and :math:`\kappa = 1/(n\rho_2)`,
   :math:`e = \xi - s = v - \kappa` if :math:`v > \kappa`, :math:`0` if :math:`0 \le v \le \kappa`, :math:`v` if
   :math:`v < 0`; then :math:`\xi = e_+`, :math:`s = (-e)_+`.
4. :math:`u_1 \mathrel{+}= w - z`, :math:`u_2 \mathrel{+}= Hw + c\,b + \xi - s - \mathbf 1`.

Differences from the paper's released code, all **[ours]** (documented in SPEC §1 and the experiment README):

* the z-step is the exact prox of :math:`P/\rho_1` (the code passes :math:`\lambda/\rho_1` to the prox, which is
  wrong for SCAD and MCP);
* :math:`(w, c)` and :math:`(\xi, s)` are each minimised *jointly* (the code updates :math:`w` then :math:`c`, and
  :math:`\xi` then :math:`s`, one Gauss–Seidel pass each). Both joint updates are exact block minimisations of the
  augmented Lagrangian, so the method is a standard two-block ADMM (blocks :math:`(w, c)` and
  :math:`(z, \xi, s)`), which converges for convex :math:`P` for any :math:`\rho_1, \rho_2 > 0`; the joint
  :math:`c` costs one dot product per iteration (Schur complement precomputed);
* stopping on relative primal and dual residuals (Boyd et al. 2011, §3.3) instead of the relative objective
  change: ``kkt = max(‖r‖/max(‖Ax‖, ‖By‖, √n), ‖s‖/‖Aᵀλ‖) <= tol``;
* default penalties scaled to the problem, and residual balancing on their common scale (below).

**Penalty parameters.** The hinge term carries the factor :math:`1/n`, so the optimal margin multipliers
:math:`\rho_2 u_2` lie in :math:`[0, 1/n]`: the default is :math:`\rho_2 = 1/n` (so :math:`u_2 = O(1)`), and
:math:`\rho_1 = 0.3\,\rho_2\operatorname{tr}(A^\top A)/d` (0.3 times the mean eigenvalue of :math:`A^\top A`,
which balances the two terms of :math:`M`; the factor 0.3 is the best of a grid over {0.01, ..., 10} on
mushrooms, measured in the benchmark). With these defaults the ℓ1 problem reaches a 1e-4 relative gap to the
HiGHS optimum on heart_scale, mushrooms, a9a and standardised synthetic data without tuning, where
:math:`\rho_1 = \rho_2 = 1` leaves a large gap. ``adaptive_rho=True`` applies residual balancing
(Boyd et al. 2011, §3.4.1) to the *common scale* :math:`\tau` of :math:`(\rho_1, \rho_2) = \tau(\rho_1^0, \rho_2^0)`:
every ``adapt_every`` iterations, :math:`\tau` is doubled (halved) when the relative primal residual exceeds
``adapt_mu`` times the relative dual residual (or vice versa), and the scaled duals are rescaled by
:math:`1/2` (2). Since :math:`M` depends only on the *ratio* :math:`\rho_1/\rho_2`, this never refactorises.
Adaptation stops after ``adapt_until`` iterations, so the tail of the run is a fixed-penalty ADMM. It is off by
default: on the data sets above it drove :math:`\tau` down and slowed convergence of the objective
(e.g. mushrooms, 3,000 iterations: gap 3e-2 adaptive vs 4e-5 fixed). ``alpha`` is over-relaxation (default 1,
none; 1.6 did not help consistently on mushrooms).

**Nonconvex penalties.** ADMM has no convergence guarantee here (no block is smooth), and with a fixed
penalty it can cycle (seen: MCP and LSP on a noisy synthetic set, LSP on heart_scale: relative residuals stuck at
1e-3 to 1e-1). For nonconvex ``P`` the default is therefore an *increasing* penalty: after ``growth_start`` (500)
iterations :math:`\tau` is multiplied by ``rho_growth`` (1.002) per iteration, up to ``tau_max`` (100) and only
while the relative primal residual exceeds ``0.3·tol`` (a penalty method's rule: raise the penalty until the
constraints hold), again without refactorising. Growing past that point only slows the multipliers (MCP on
mushrooms, λ = 0.01: with unconditional growth the run crept towards its solution at 100× the penalties and ended
at 20,000 iterations; with the rule it stops in about 6,600). The factor 0.3 is the middle of {0.1, 0.3, 0.5}, all
of which converged on heart_scale, mushrooms and the noisy synthetic set for SCAD, MCP, LSP and capped-ℓ1; 1.0
let LSP cycle on the synthetic set. Known limit: after the growth, a run can
drift at constant speed towards a solution with the primal residual at 1e-11 and a flat dual residual (MCP on
mushrooms at λ = 0.0096: 7e-4, ends at ``maxiter``). A one-sided way back (halving τ while the primal residual is
far below tol and the dual one dominates) fixed that case but made the growth and the way back fight at tight
tolerances (SCAD from the LQA point, tol ≤ 1e-7, ended at maxiter), so it is not used.
The dual residual is scaled by :math:`\max\bigl(\sqrt{\|\rho_1u_1\|^2 + \|\rho_2H^\top u_2\|^2 +
(\rho_2\|A\|_{rms}\|u_2\|)^2},\ \|A\|_{rms}/\sqrt n\bigr)`: the first two terms cancel at a solution and are both
near zero for SCAD/MCP when the large weights sit where :math:`P' = 0`; the floor (the last term's value when every
margin multiplier :math:`\rho_2u_{2,i}` sits at its bound :math:`1/n`, the analogue of the primal floor
:math:`\sqrt n`) matters on separable data: a bounded penalty (SCAD, MCP, capped-ℓ1) then has solutions with
hinge loss 0, every margin > 1 and every weight where :math:`P' = 0`, at which *all* multipliers vanish and the
unfloored relative dual residual is 0/0 (it read 0.07–0.9 at an exact solution of MCP on mushrooms).

**Which stationary point.** For nonconvex ``P`` the point ADMM returns depends on the start and on ρ. From zeros
with the default ρ's, SCAD/MCP on mushrooms (λ = 0.01) end at stationary points with 23/29 features, while a warm
start from the ℓ1 solution at the same λ (``warm_start=`` the ℓ1 Result; the standard initial estimator of the
one-step/LLA literature: Zou & Li 2008, Fan, Xue & Zou 2014) ends at 5/15 features with lower SCAD/MCP objective
(experiments/README_svm_admm.md).

**Linear algebra.** ``linsolve="auto"`` picks Cholesky of :math:`A^\top A + \rho I` (note
:math:`H^\top H = A^\top A`) when :math:`d \le n`, Woodbury (Cholesky of :math:`\rho I + HH^\top`, :math:`n\times n`)
when :math:`n < d`, as long as :math:`\min(n, d) \le` ``max_dense`` (default 8192); otherwise ``"cg"``:
``cg_iters`` conjugate-gradient steps on :math:`M` per iteration, warm-started at the current :math:`w` (an
inexact ADMM). Sparse (SciPy) :math:`X` stays sparse (BCOO in JAX); the Gram matrix is formed by a
sparse-sparse product, so memory is :math:`O(\mathrm{nnz}(X) + \min(n, d)^2)` (CG: :math:`O(\mathrm{nnz}(X) + n + d)`).
Per iteration: one product :math:`Aw`, one product :math:`A^\top[\cdot,\cdot]` with two columns, and one
triangular solve pair (Woodbury: plus :math:`Hr` and :math:`H^\top(\cdot)`).

Example:
    >>> import numpy as np, optlab as ol
    >>> rng = np.random.default_rng(0); X = rng.normal(size=(200, 10))
    >>> y = np.where(X[:, 0] + 0.5 * rng.normal(size=200) > 0, "yes", "no")     # any two labels
    >>> res = ol.svm_admm(X, y, ol.prox.l1(lam=0.05), progress=False)
    >>> res.status, sorted(res.params), res.trace.meta["classes"]
    ('converged', ['b', 'w'], ['no', 'yes'])
"""
from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from jax import lax
from jax.experimental import sparse as jsparse

from .. import harness, operators

__all__ = ["svm_admm", "SVMADMMState", "SVMADMMProblem", "make_step", "init", "build_problem",
           "encode_labels", "objective", "nzf"]


class SVMADMMState(NamedTuple):
    w: jax.Array          # (d,) primal block 1
    c: jax.Array          # () intercept
    z: jax.Array          # (d,) copy of w carrying the penalty (sparse for l1 / nonconvex)
    xi: jax.Array         # (n,) hinge slack
    s: jax.Array          # (n,) surplus slack
    u1: jax.Array         # (d,) scaled dual of w = z
    u2: jax.Array         # (n,) scaled dual of the margin constraint
    hte: jax.Array        # (d,) H^T (xi - s), kept so the dual residual needs no extra product
    htu: jax.Array        # (d,) H^T u2
    tau: jax.Array        # () common scale of (rho1, rho2) (residual balancing)
    k: jax.Array          # () iteration counter (int32)


class SVMADMMProblem(NamedTuple):
    A: Any                # (n, d) dense array or BCOO
    b: jax.Array          # (n,) labels in {-1, +1}
    penalty: Any          # optlab.prox penalty
    rho1: jax.Array       # base penalty on w = z
    rho2: jax.Array       # base penalty on the margin constraint
    factor: jax.Array     # Cholesky factor of M (d x d) or of rho I + H H^T (n x n); (1, 1) zeros for CG
    q: jax.Array          # (d,) H^T b = A^T 1
    g: jax.Array          # (d,) M^{-1} q
    schur: jax.Array      # () n - q^T g  (Schur complement of the intercept)
    ht1: jax.Array        # (d,) H^T 1 = A^T b
    adapt_mu: jax.Array   # residual balancing: ratio that triggers a change
    adapt_every: jax.Array  # int32
    adapt_until: jax.Array  # int32 (0: no adaptation)
    alpha: jax.Array      # over-relaxation in (0, 2)
    growth: jax.Array     # per-iteration factor of tau after growth_start (1: fixed penalties)
    growth_start: jax.Array  # int32
    tau_max: jax.Array    # cap of the growth
    a_rms: jax.Array      # sqrt(tr(A^T A) / d): rms singular value of A (dual residual scale)
    growth_tol: Any = 0.0  # the growth applies only while the relative primal residual exceeds this (svm_admm: tol)


# ------------------------------------------------------------------------------------------- linear algebra
def _Av(A, x):
    return A @ x


def _ATv(A, y):
    # dense: operators.rmatvec computes y @ A (XLA-CPU copies A.T every loop iteration for A.T @ y)
    return (y.T @ A).T if isinstance(A, jsparse.BCOO) else operators.rmatvec(A, y)


def _cg(matvec, rhs, x0, iters):
    """``iters`` conjugate-gradient steps on an SPD system (fixed count: jit/vmap friendly)."""
    r = rhs - matvec(x0)
    tiny = jnp.finfo(rhs.dtype).tiny

    def body(_, carry):
        x, r, p, rr = carry
        Ap = matvec(p)
        alpha = rr / jnp.maximum(jnp.vdot(p, Ap), tiny)
        x = x + alpha * p
        r = r - alpha * Ap
        rr_new = jnp.vdot(r, r)
        p = r + (rr_new / jnp.maximum(rr, tiny)) * p
        return x, r, p, rr_new

    x, *_ = lax.fori_loop(0, iters, body, (x0, r, r, jnp.vdot(r, r)))
    return x


def _make_msolve(method: str, cg_iters: int):
    """``msolve(problem, rho, r, x0) -> M^{-1} r`` for M = A^T A + rho I."""
    def msolve(problem, rho, r, x0):
        A, b, L = problem.A, problem.b, problem.factor
        if method == "cholesky":
            return jax.scipy.linalg.cho_solve((L, True), r)
        if method == "woodbury":
            # (H^T H + rho I)^{-1} r = (r - H^T (rho I + H H^T)^{-1} H r) / rho
            hr = b * _Av(A, r)
            return (r - _ATv(A, b * jax.scipy.linalg.cho_solve((L, True), hr))) / rho
        return _cg(lambda x: _ATv(A, _Av(A, x)) + rho * x, r, x0, cg_iters)
    return msolve


# ------------------------------------------------------------------------------------------------ the step
@functools.lru_cache(maxsize=None)
def make_step(method: str = "cholesky", fit_intercept: bool = True, cg_iters: int = 10):
    """The pure ``step(state, problem) -> (state, info)`` (cached per variant, hence hashable)."""
    msolve = _make_msolve(method, cg_iters)

    def step(st: SVMADMMState, pb: SVMADMMProblem):
        A, b = pb.A, pb.b
        dt = st.w.dtype
        n = b.shape[0]
        rho1, rho2 = st.tau * pb.rho1, st.tau * pb.rho2
        rho = pb.rho1 / pb.rho2
        # 1. (w, c): M w + q c = rho (z - u1) + H^T t,  q^T w + n c = b^T t,  t = 1 - (xi - s) - u2
        e_old = st.xi - st.s
        t = 1 - e_old - st.u2
        rw = rho * (st.z - st.u1) + (pb.ht1 - st.hte - st.htu)
        v = msolve(pb, rho, rw, st.w)
        if fit_intercept:
            c = (jnp.sum(b * t) - jnp.vdot(pb.q, v)) / pb.schur
            w = v - pb.g * c
        else:
            c = jnp.zeros((), dt)
            w = v
        m = b * (_Av(A, w) + c)                      # margins H w + c b
        # over-relaxation (Boyd et al. 2011, §3.4.3): alpha (w, m) + (1 - alpha) (z_k, 1 - e_k)
        al = pb.alpha
        w_h = al * w + (1 - al) * st.z
        m_h = al * m + (1 - al) * (1 - e_old)
        # 2. z: exact prox of P / rho1
        z = pb.penalty.prox(w_h + st.u1, 1 / rho1)
        # 3. (xi, s): prox of (1/(n rho2)) (.)_+ at v, split into its positive and negative parts
        kappa = 1 / (n * rho2)
        vv = 1 - m_h - st.u2
        e = jnp.where(vv > kappa, vv - kappa, jnp.where(vv < 0, vv, 0))
        xi, s = jnp.maximum(e, 0), jnp.maximum(-e, 0)
        # 4. duals
        r1 = w - z
        r2 = m + e - 1
        u1 = st.u1 + (w_h - z)
        u2 = st.u2 + (m_h + e - 1)
        both = _ATv(A, jnp.stack([b * e, b * u2], axis=1))
        hte, htu = both[:, 0], both[:, 1]
        # residuals (Boyd et al. 2011, §3.3): constraint [I; H~] x + [-I, 0; 0, I] (z, e) = (0, 1)
        r_norm = jnp.sqrt(jnp.vdot(r1, r1) + jnp.vdot(r2, r2))
        de = hte - st.hte
        sd_w = -rho1 * (z - st.z) + rho2 * de
        sd_c = rho2 * jnp.sum(b * (e - e_old)) if fit_intercept else jnp.zeros((), dt)
        s_norm = jnp.sqrt(jnp.vdot(sd_w, sd_w) + sd_c**2)
        tiny = jnp.finfo(dt).tiny
        pri_scale = jnp.maximum(jnp.sqrt(jnp.maximum(jnp.vdot(w, w) + jnp.vdot(m, m), jnp.vdot(z, z) + jnp.vdot(e, e))),
                                jnp.sqrt(jnp.asarray(n, dt)))
        # dual scale: the parts of A^T lambda separately (their sum -> 0 at a solution, since the (w, c) block
        # has no objective of its own), and rho2 ||u2|| times the rms singular value of A, because H^T u2 itself
        # nearly cancels for nonconvex P whose derivative vanishes at large |w_j| (SCAD, MCP)
        # floor a_rms/sqrt(n): the last term's value with every margin multiplier at its bound 1/n (the analogue of
        # the sqrt(n) floor of the primal scale); without it the test is 0/0 at solutions where every multiplier
        # vanishes (separable data, all margins > 1, all weights where P' = 0: MCP/SCAD on mushrooms)
        dual_scale = jnp.maximum(jnp.sqrt(rho1**2 * jnp.vdot(u1, u1) + rho2**2 * jnp.vdot(htu, htu)
                                          + (rho2 * pb.a_rms) ** 2 * jnp.vdot(u2, u2)),
                                 jnp.maximum(pb.a_rms / jnp.sqrt(jnp.asarray(n, dt)), tiny))
        r_rel, s_rel = r_norm / pri_scale, s_norm / dual_scale
        # residual balancing on the common scale tau (no refactorisation: M depends on rho1/rho2 only)
        k = st.k + 1
        due = (k % pb.adapt_every == 0) & (k <= pb.adapt_until)
        up = due & (r_rel > pb.adapt_mu * s_rel)
        down = due & (s_rel > pb.adapt_mu * r_rel)
        f = jnp.where(up, 2.0, jnp.where(down, 0.5, 1.0)).astype(dt)
        # increasing penalty for nonconvex P (see the module docstring): tau *= growth after growth_start
        # only while the relative primal residual exceeds the tolerance: growing rho forces w - z -> 0 (cycling
        # shows up as a persistent primal residual), but it also slows the multipliers, so once the constraints
        # hold it stops (else, e.g. MCP on mushrooms, the run creeps towards the solution at rho = tau_max rho^0)
        f = f * jnp.where((k > pb.growth_start) & (st.tau * pb.growth <= pb.tau_max) & (r_rel > pb.growth_tol),
                          pb.growth, 1).astype(dt)
        new = SVMADMMState(w=w, c=c, z=z, xi=xi, s=s, u1=u1 / f, u2=u2 / f, hte=hte, htu=htu / f,
                           tau=st.tau * f, k=k)
        info = {"primal_res": r_rel, "dual_res": s_rel, "r_abs": r_norm, "s_abs": s_norm, "kkt": jnp.maximum(r_rel, s_rel), "rho1": rho1,
                "rho2": rho2}
        return new, info

    step.__name__ = f"svm_admm_{method}{'_icpt' if fit_intercept else ''}_step"
    return step


# --------------------------------------------------------------------------------------------------- metrics
def objective(state, problem):
    """(1/n) Σ (1 − b_i(a_iᵀz + c))₊ + P(z) at the returned model (z, c)."""
    m = problem.b * (_Av(problem.A, state.z) + state.c)
    return jnp.mean(jnp.maximum(1 - m, 0)) + problem.penalty.value(state.z)


def nzf(state, problem):
    """Percentage of nonzero features of the returned model z."""
    return 100.0 * jnp.mean((state.z != 0).astype(state.z.dtype))


def init(problem: SVMADMMProblem, warm_start=None) -> SVMADMMState:
    """Zeros (SPEC §1), or a warm start: a previous :class:`SVMADMMState`, a Result, or ``{"w", "b"}``."""
    A, b = problem.A, problem.b
    n, d = A.shape
    dt = b.dtype
    zd, zn = jnp.zeros(d, dt), jnp.zeros(n, dt)
    if warm_start is None:
        return SVMADMMState(w=zd, c=jnp.zeros((), dt), z=zd, xi=zn, s=zn, u1=zd, u2=zn, hte=zd, htu=zd,
                            tau=jnp.ones((), dt), k=jnp.zeros((), jnp.int32))
    ws = getattr(warm_start, "state", warm_start)
    if isinstance(ws, SVMADMMState):
        if ws.w.shape != (d,) or ws.u2.shape != (n,):
            raise ValueError(f"warm_start: state for a ({ws.u2.shape[0]}, {ws.w.shape[0]}) problem, "
                             f"this one is ({n}, {d})")
        return jax.tree.map(lambda x: jnp.asarray(x, dtype=dt) if jnp.issubdtype(x.dtype, jnp.floating) else x,
                            ws._replace(k=jnp.zeros((), jnp.int32)))
    if isinstance(ws, dict) and "w" in ws:
        w = jnp.asarray(ws["w"], dt)
        if w.shape != (d,):
            raise ValueError(f"warm_start['w'] must have shape ({d},), got {w.shape}")
        c = jnp.asarray(ws.get("b", 0.0), dt).reshape(())
        m = b * (_Av(A, w) + c)
        e = 1 - m                                     # primal-feasible slacks for (w, c)
        xi, s = jnp.maximum(e, 0), jnp.maximum(-e, 0)
        return SVMADMMState(w=w, c=c, z=w, xi=xi, s=s, u1=zd, u2=zn, hte=_ATv(A, b * e), htu=zd,
                            tau=jnp.ones((), dt), k=jnp.zeros((), jnp.int32))
    raise TypeError("warm_start must be None, a Result or SVMADMMState of svm_admm, or a dict {'w': ..., 'b': ...}")


# ------------------------------------------------------------------------------------------- input checks
def encode_labels(y):
    """Map two-valued labels to ±1: returns ``(b, classes)`` with ``classes[0] -> -1``, ``classes[1] -> +1``."""
    y = np.asarray(y)
    if y.ndim != 1:
        y = y.reshape(-1) if y.ndim == 2 and 1 in y.shape else None
        if y is None:
            raise ValueError("y must be a 1-d array of labels")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise ValueError("y contains NaN or Inf; labels must be two distinct finite values")
    try:
        classes = np.unique(y)
    except TypeError as err:
        raise TypeError(f"y: labels must be comparable (numbers or strings), got {err}") from err
    if classes.size != 2:
        raise ValueError(f"y must take exactly two distinct values (only binary classification is supported), "
                         f"got {classes.size}: "
                         f"{classes[:5].tolist()}{' ...' if classes.size > 5 else ''}")
    return np.where(y == classes[1], 1.0, -1.0), classes


def _check_X(X):
    if isinstance(X, jsparse.BCOO):
        raise TypeError("X: pass a SciPy sparse matrix (CSR/CSC) or a dense array, not a BCOO")
    if sp.issparse(X):
        if X.ndim != 2:
            raise ValueError("X must be 2-d")
        if X.dtype.kind not in "fiub":
            raise TypeError(f"X must be numeric, got dtype {X.dtype}")
        operators.check_finite("X", X)
        dtype = X.dtype if X.dtype.kind == "f" else np.dtype(jnp.result_type(float))
        return X, dtype
    arr = X if isinstance(X, jax.Array) else np.asarray(X)
    if arr.dtype.kind == "c" or arr.dtype.kind == "O" or arr.dtype.kind not in "fiub":
        raise TypeError(f"X must be a real numeric array, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"X must be a 2-d array (n_samples, n_features), got shape {arr.shape}")
    operators.check_finite("X", arr)
    dtype = arr.dtype if arr.dtype.kind == "f" else np.dtype(jnp.result_type(float))
    return arr, dtype


def _check_rho(name, value):
    if value is None:
        return None
    v = operators.concrete(value)
    if v is None:
        raise ValueError(f"{name} must be a concrete number: the factorisation depends on rho1/rho2 "
                         "(vmap over the penalty's parameters instead)")
    if not (np.ndim(v) == 0 and np.isreal(v) and np.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a finite scalar > 0, got {value!r} (or None for the problem-scaled default)")
    return value


def _cholesky(M, what):
    try:
        L = np.linalg.cholesky(np.asarray(M, np.float64))
    except np.linalg.LinAlgError as err:
        raise ValueError(f"Cholesky of {what} failed ({err}); increase rho1/rho2") from err
    return L


def build_problem(X, b, penalty, *, rho1=None, rho2=None, linsolve="auto", max_dense=8192, cg_iters=10,
                  adaptive_rho=False, adapt_mu=10.0, adapt_every=10, adapt_until=2000, alpha=1.0, rho_growth=1.0, growth_start=0,
                  tau_max=1e3, growth_tol=0.0, dtype=None):
    """Factorise and assemble the :class:`SVMADMMProblem`; returns ``(problem, method)``.

    ``X`` is a dense NumPy/JAX array or a SciPy sparse matrix (never densified); ``b`` holds ±1.
    """
    n, d = X.shape
    dtype = np.dtype(dtype)
    is_sparse = sp.issparse(X)
    if is_sparse:
        Xc = sp.csr_matrix(X, dtype=np.float64)
        sq_norm = float(Xc.multiply(Xc).sum())
        col_sum = np.asarray(Xc.sum(axis=0)).ravel()
        xtb = np.asarray(Xc.T @ b).ravel()
    else:
        Xc = np.asarray(X, np.float64)
        sq_norm = float(np.sum(Xc * Xc))
        col_sum, xtb = Xc.sum(axis=0), Xc.T @ b
    if linsolve == "auto":
        if min(n, d) > max_dense:
            linsolve = "cg"
        else:
            linsolve = "cholesky" if d <= n else "woodbury"
    if linsolve not in ("cholesky", "woodbury", "cg"):
        raise ValueError(f"linsolve must be 'auto', 'cholesky', 'woodbury' or 'cg', got {linsolve!r}")
    mean_eig = sq_norm / d
    r2 = 1.0 / n if rho2 is None else float(rho2)
    r1 = 0.3 * (mean_eig if mean_eig > 0 else 1.0) * r2 if rho1 is None else float(rho1)
    rho = r1 / r2

    if linsolve == "cholesky":
        G = (Xc.T @ Xc).toarray() if is_sparse else Xc.T @ Xc
        G[np.diag_indices(d)] += rho
        L64 = _cholesky(G, "A^T A + rho I")
        Minv = lambda r: sla.cho_solve((L64, True), r)  # noqa: E731
    elif linsolve == "woodbury":
        K = (Xc @ Xc.T).toarray() if is_sparse else Xc @ Xc.T
        K = (b[:, None] * K) * b[None, :]
        K[np.diag_indices(n)] += rho
        L64 = _cholesky(K, "rho I + H H^T")

        def Minv(r):
            hr = b * (Xc @ r)
            return (r - Xc.T @ (b * sla.cho_solve((L64, True), hr))) / rho
    else:
        L64 = np.zeros((1, 1))
        op = spla.LinearOperator((d, d), matvec=lambda x: Xc.T @ (Xc @ x) + rho * x, dtype=np.float64)
        Minv = lambda r: spla.cg(op, r, rtol=1e-12, maxiter=20 * d)[0]  # noqa: E731
    L = jnp.asarray(L64, dtype)
    q = col_sum
    g = np.asarray(Minv(q), np.float64).ravel()
    schur = float(n - q @ g)
    A = operators.as_jax(Xc, dtype)
    f = lambda x: jnp.asarray(x, dtype)  # noqa: E731
    problem = SVMADMMProblem(
        A=A, b=f(b), penalty=penalty, rho1=f(r1), rho2=f(r2), factor=L, q=f(q), g=f(g), schur=f(schur),
        ht1=f(xtb), adapt_mu=f(adapt_mu), adapt_every=jnp.asarray(max(int(adapt_every), 1), jnp.int32),
        adapt_until=jnp.asarray(int(adapt_until) if adaptive_rho else 0, jnp.int32), alpha=f(alpha),
        growth=f(rho_growth), growth_start=jnp.asarray(int(growth_start), jnp.int32),
        tau_max=f(tau_max), a_rms=f(np.sqrt(mean_eig)), growth_tol=f(growth_tol))
    return problem, linsolve


# ------------------------------------------------------------------------------------------------ public API
def _predict(params, X):
    X = operators.as_jax(X) if sp.issparse(X) else jnp.asarray(X)
    return jnp.sign(_Av(X, params["w"].astype(X.dtype)) + params["b"])


def svm_admm(X, y, penalty, *, rho1=None, rho2=None, maxiter=10000, tol=1e-5, fit_intercept=True,
             adaptive_rho=False, adapt_mu=10.0, adapt_every=10, adapt_until=2000, alpha=1.0, rho_growth=None,
             growth_start=500, tau_max=1e2, linsolve="auto",
             max_dense=8192, cg_iters=10, warm_start=None, log_every=None, max_time=None, metrics=None,
             callback=None, progress=None, checkpoint=None, resume=None, jit=False, parallel=None):
    r"""Linear SVM with a (nonconvex) penalty by ADMM: :math:`\min_{w,c} \frac1n\sum_i(1 - b_i(a_i^\top w + c))_+ + P(w)`.

    See the module docstring for the splitting, the updates and the defaults.

    Args:
        X: ``(n, d)`` data: NumPy/JAX array or SciPy sparse matrix (kept sparse). Its float dtype is the working
            dtype (float32 or float64; integers are promoted).
        y: ``(n,)`` labels taking exactly two values; the larger (``np.unique`` order) maps to +1.
        penalty: an :mod:`optlab.prox` penalty, e.g. ``ol.prox.scad(lam=2**-6, a=3.7)``.
        rho1, rho2: ADMM penalties on ``w = z`` and on the margin constraint; default ``rho2 = 1/n``,
            ``rho1 = 0.3·rho2·tr(AᵀA)/d``. Any ``rho1 > 0`` is valid for every penalty (the z-step is the exact
            prox even where ``P/rho1`` makes the subproblem nonconvex, e.g. MCP with ``γ <= 1/rho1``).
        maxiter, tol: stop when the relative primal and dual residuals are both ``<= tol`` (status
            ``"converged"``) or after ``maxiter`` iterations.
        fit_intercept: also fit ``c`` (unpenalised).
        adaptive_rho, adapt_mu, adapt_every, adapt_until: residual balancing of the common scale of
            ``(rho1, rho2)`` every ``adapt_every`` iterations up to iteration ``adapt_until`` (off by default).
        alpha: over-relaxation parameter in (0, 2) (1: none).
        rho_growth, growth_start, tau_max: increasing penalty (default 1.002 per iteration after 500 iterations,
            up to 100× the initial penalties and only while the relative primal residual exceeds ``0.3·tol``, for
            nonconvex penalties; 1.0, i.e. fixed, for convex ones).
        linsolve, max_dense, cg_iters: ``"auto" | "cholesky" | "woodbury" | "cg"`` (see module docstring).
        warm_start: a previous :class:`optlab.Result` (or its state) of this solver on a problem of the same
            shape (e.g. the previous ``lam`` of a path), or ``{"w": w, "b": c}``.
        metrics, callback, log_every, max_time, progress, checkpoint, resume: see :func:`optlab.harness.run`.
        jit: run the fully compiled loop (:func:`optlab.harness.run_jit`) and return its ``JitRun`` (usable
            under ``jax.vmap`` over the penalty's parameters); the model is ``.state.z``, ``.state.c``.
        parallel: ``ol.parallel.Sync(W)`` or ``Async(W, max_delay, ...)``: global-consensus ADMM over ``W`` row
            shards, one per device (:mod:`optlab.solvers.svm_admm_parallel`; dense ``X``, fixed penalties; adds the
            ``sim_time`` metric; the model is ``.state.z``, ``.state.cz`` with ``jit=True``).

    Returns:
        :class:`optlab.Result` with ``params = {"w": z, "b": c}`` (``z`` is the exactly sparse copy of ``w``),
        ``predict(X)`` giving ±1 and ``trace`` metrics ``objective``, ``nzf`` (% nonzero features),
        ``primal_res``, ``dual_res``, ``kkt``, ``rho1``, ``rho2``. ``trace.meta["classes"]`` lists the labels
        mapped to −1, +1.
    """
    if not (hasattr(penalty, "prox") and hasattr(penalty, "value")):
        raise TypeError(f"penalty must be an optlab.prox penalty (e.g. ol.prox.mcp(lam=0.01, gamma=3.0)), "
                        f"got {type(penalty).__name__}")
    X, dtype = _check_X(X)
    n, d = X.shape
    if n < 2:
        raise ValueError(f"X must have at least 2 samples (rows), got {n}")
    if d < 1:
        raise ValueError("X must have at least 1 feature (column), got 0")
    b, classes = encode_labels(y)
    if b.shape[0] != n:
        raise ValueError(f"X has {n} rows but y has {b.shape[0]} labels")
    _check_rho("rho1", rho1)
    _check_rho("rho2", rho2)
    for name, v in (("maxiter", maxiter), ("adapt_every", adapt_every)):
        if int(v) < 1:
            raise ValueError(f"{name} must be >= 1, got {v}")
    if parallel is not None:
        from . import svm_admm_parallel
        return svm_admm_parallel.solve(
            X, b, classes, penalty, parallel, rho1=rho1, rho2=rho2, maxiter=maxiter, tol=tol,
            fit_intercept=fit_intercept, adaptive_rho=adaptive_rho, alpha=alpha, rho_growth=rho_growth,
            linsolve=linsolve, max_dense=max_dense, cg_iters=cg_iters, warm_start=warm_start, log_every=log_every,
            max_time=max_time, metrics=metrics, callback=callback, progress=progress, checkpoint=checkpoint,
            resume=resume, jit=jit, dtype=dtype)
    if rho_growth is None:
        rho_growth = 1.0 if getattr(penalty, "is_convex", True) else 1.002
    if not float(rho_growth) >= 1:
        raise ValueError(f"rho_growth must be >= 1, got {rho_growth}")
    if not 0 < float(alpha) < 2:
        raise ValueError(f"alpha (over-relaxation) must be in (0, 2), got {alpha}")
    if not (float(adapt_mu) > 1):
        raise ValueError(f"adapt_mu must be > 1, got {adapt_mu}")
    if not sp.issparse(X) and isinstance(X, jax.Array):
        X = np.asarray(X)
    if jnp.dtype(dtype) == jnp.float64 and not jax.config.jax_enable_x64:
        dtype = np.dtype(np.float32)
    problem, method = build_problem(X, b, penalty, rho1=rho1, rho2=rho2, linsolve=linsolve, max_dense=max_dense,
                                    cg_iters=cg_iters, adaptive_rho=adaptive_rho, adapt_mu=adapt_mu,
                                    adapt_every=adapt_every, adapt_until=adapt_until, alpha=alpha,
                                    rho_growth=rho_growth, growth_start=growth_start, tau_max=tau_max,
                                    growth_tol=0.3 * float(tol or 0.0),
                                    dtype=dtype)
    step = make_step(method, bool(fit_intercept), int(cg_iters))
    state = init(problem, warm_start)
    all_metrics = {"objective": objective, "nzf": nzf}
    all_metrics.update(metrics or {})
    if jit:
        return harness.run_jit(step, state, problem, maxiter=maxiter, log_every=log_every, tol=tol,
                               stop_metric="kkt", metrics=all_metrics)
    meta = {"solver": "svm_admm", "penalty": repr(penalty), "dtype": str(np.dtype(dtype)), "n": n, "d": d,
            "sparse": bool(sp.issparse(X)), "linsolve": method, "fit_intercept": bool(fit_intercept),
            "rho1": float(problem.rho1), "rho2": float(problem.rho2), "adaptive_rho": bool(adaptive_rho),
            "classes": classes.tolist()}
    return harness.run(step, state, problem, maxiter=maxiter, log_every=log_every, tol=tol, stop_metric="kkt",
                       max_time=max_time, metrics=all_metrics, params=lambda s: {"w": s.z, "b": s.c},
                       callback=callback, progress=progress, checkpoint=checkpoint, resume=resume, meta=meta,
                       predict_fn=_predict)
