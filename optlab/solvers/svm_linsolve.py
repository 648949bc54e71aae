r"""The linear algebra of the SVM ADMM solvers (:func:`optlab.svm_admm`, :func:`optlab.svm_consensus_admm`).

Both solve, once per iteration, a system with :math:`M = H^\top H + \rho I` where :math:`H = \operatorname{diag}(b)A`
(so :math:`H^\top H = A^\top A`) and :math:`\rho = \rho_1/\rho_2`: the serial solver with the whole data, the
consensus solver with each block of rows. This module holds what they share:

* the problem-scaled penalties (:func:`default_rhos`): :math:`\rho_2 = 1/n` and
  :math:`\rho_1 = 0.3\,\rho_2\operatorname{tr}(A^\top A)/d`;
* the choice of solver (:func:`choose_method`): Cholesky of :math:`M` (:math:`d \le` rows), Woodbury (Cholesky of
  :math:`\rho I + HH^\top`, :math:`\text{rows} < d`) while :math:`\min(\text{rows}, d) \le` ``max_dense``, else
  ``cg_iters`` conjugate-gradient steps on :math:`M` warm-started at the current :math:`w` (an inexact ADMM);
* the float64 factorisation on the host (:func:`factorise`) and the JAX solve with it (:func:`make_msolve`; with
  the intercept's Schur complement: :func:`factored_solve`);
* the split of the rows into equal blocks padded with zero rows (:func:`split_blocks`).

Woodbury identity: :math:`(H^\top H + \rho I)^{-1}r = \bigl(r - H^\top(\rho I + HH^\top)^{-1}Hr\bigr)/\rho`.
A SciPy sparse :math:`X` stays sparse (BCOO in JAX) and its Gram matrix is a sparse-sparse product, so memory is
:math:`O(\mathrm{nnz}(X) + \min(n, d)^2)` (CG: :math:`O(\mathrm{nnz}(X) + n + d)`). Per solve: one triangular solve
pair (Woodbury: plus :math:`Hr` and :math:`H^\top(\cdot)`; CG: two products per step).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from jax import lax
from jax.experimental import sparse as jsparse

from .. import operators

__all__ = ["METHODS", "default_rhos", "choose_method", "cholesky", "factorise", "spectral", "split_blocks", "Av",
           "ATv", "cg", "make_msolve", "factored_solve"]

METHODS = ("cholesky", "woodbury", "cg")


# ---------------------------------------------------------------------------------------------- host side
def default_rhos(sq_norm: float, n: int, d: int, rho1=None, rho2=None) -> tuple[float, float]:
    """``(rho1, rho2)``: the given values, or ``rho2 = 1/n`` and ``rho1 = 0.3·rho2·mean_eig``, with
    ``mean_eig = ‖A‖_F²/d`` the mean eigenvalue of ``AᵀA`` (1 for all-zero data)."""
    mean_eig = sq_norm / d
    r2 = 1.0 / n if rho2 is None else float(rho2)
    r1 = 0.3 * (mean_eig if mean_eig > 0 else 1.0) * r2 if rho1 is None else float(rho1)
    return r1, r2


def choose_method(linsolve: str, rows: int, d: int, max_dense: int) -> str:
    """Resolve ``linsolve="auto"`` for a system over ``rows`` data rows and ``d`` features; check the name."""
    if linsolve == "auto":
        if min(rows, d) > max_dense:
            return "cg"
        return "cholesky" if d <= rows else "woodbury"
    if linsolve not in METHODS:
        raise ValueError(f"linsolve must be 'auto', 'cholesky', 'woodbury' or 'cg', got {linsolve!r}")
    return linsolve


def cholesky(M, what: str) -> np.ndarray:
    """Lower Cholesky factor (float64) of ``M``, or a ValueError saying which matrix failed and what to do."""
    try:
        return np.linalg.cholesky(np.asarray(M, np.float64))
    except np.linalg.LinAlgError as err:
        raise ValueError(f"Cholesky of {what} failed ({err}); increase rho1/rho2") from err


def factorise(X, b, rho: float, method: str):
    """``(L, minv)`` for ``M = XᵀX + ρI`` in float64 on the host.

    ``X`` is a float64 NumPy array or SciPy CSR matrix (kept sparse: the Gram matrix is a sparse-sparse product),
    ``b`` the ±1 labels (0 on padding rows). ``L`` is the Cholesky factor of ``M`` (``"cholesky"``) or of
    ``ρI + HHᵀ`` (``"woodbury"``), or a ``(1, 1)`` zero array (``"cg"``); ``minv(r) = M⁻¹r`` (for the intercept's
    Schur complement, computed once).
    """
    n, d = X.shape
    if method == "cholesky":
        G = (X.T @ X).toarray() if sp.issparse(X) else X.T @ X
        G[np.diag_indices(d)] += rho
        L = cholesky(G, "A^T A + rho I")
        return L, lambda r: sla.cho_solve((L, True), r)
    if method == "woodbury":
        K = (X @ X.T).toarray() if sp.issparse(X) else X @ X.T
        K = (b[:, None] * K) * b[None, :]
        K[np.diag_indices(n)] += rho
        L = cholesky(K, "rho I + H H^T")

        def minv(r):
            return (r - X.T @ (b * sla.cho_solve((L, True), b * (X @ r)))) / rho

        return L, minv
    op = spla.LinearOperator((d, d), matvec=lambda x: X.T @ (X @ x) + rho * x, dtype=np.float64)
    return np.zeros((1, 1)), lambda r: spla.cg(op, r, rtol=1e-12, maxiter=20 * d)[0]


def spectral(X):
    """``(V, λ)``: the eigendecomposition ``XᵀX = V diag(λ) Vᵀ`` in float64 (``λ`` clipped at 0), for a penalty
    ratio ρ that changes during the run (``M⁻¹ = V diag(1/(λ + ρ)) Vᵀ`` for every ρ > 0, no refactorisation).
    ``X``: a float64 NumPy array or SciPy sparse matrix (the ``d × d`` Gram matrix is formed)."""
    G = (X.T @ X).toarray() if sp.issparse(X) else X.T @ X
    lam, V = np.linalg.eigh(np.asarray(G, np.float64))
    return V, np.maximum(lam, 0.0)


def split_blocks(X: np.ndarray, b: np.ndarray, n_blocks: int):
    """Contiguous blocks of ``ceil(n/n_blocks)`` rows, the last padded with zero rows.

    Returns ``(Xb (B, per, d), bb (B, per), mask (B, per))``: labels 0 and mask 0 on padding rows.
    """
    n, d = X.shape
    per = -(-n // n_blocks)
    pad = per * n_blocks - n
    Xp = np.concatenate([X, np.zeros((pad, d))])
    bp = np.concatenate([b, np.zeros(pad)])
    mask = np.concatenate([np.ones(n), np.zeros(pad)])
    return Xp.reshape(n_blocks, per, d), bp.reshape(n_blocks, per), mask.reshape(n_blocks, per)


# ----------------------------------------------------------------------------------------------- JAX side
def Av(A, x):
    """``A @ x`` (dense or BCOO)."""
    return A @ x


def ATv(A, y):
    """``Aᵀ y``; dense: :func:`optlab.operators.rmatvec` computes ``y @ A`` (XLA-CPU copies ``A.T`` every loop
    iteration for ``A.T @ y``)."""
    return (y.T @ A).T if isinstance(A, jsparse.BCOO) else operators.rmatvec(A, y)


def cg(matvec, rhs, x0, iters: int):
    """``iters`` conjugate-gradient steps on an SPD system (a fixed count: jit/vmap friendly)."""
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


def make_msolve(method: str, cg_iters: int):
    """``msolve(A, b, L, rho, r, x0) -> M⁻¹ r`` with ``M = AᵀA + ρI`` and the factor ``L`` of :func:`factorise`
    (``x0``: the CG start)."""
    def msolve(A, b, L, rho, r, x0):
        if method == "cholesky":
            return jax.scipy.linalg.cho_solve((L, True), r)
        if method == "woodbury":
            hr = b * Av(A, r)
            return (r - ATv(A, b * jax.scipy.linalg.cho_solve((L, True), hr))) / rho
        return cg(lambda x: ATv(A, Av(A, x)) + rho * x, r, x0, cg_iters)
    return msolve


def factored_solve(msolve, pb, rho, rw, bt, w0, fit_intercept: bool):
    """``(w, c)`` of the ``(w, c)`` step of both solvers with the factor of :func:`factorise`: ``M v = r_w`` by
    ``msolve``, then ``c = (bt − qᵀv)/schur`` and ``w = v − g c`` (``pb``: ``A``, ``b``, ``factor``, ``q``, ``g``,
    ``schur`` of the system; ``bt`` the intercept's right-hand side; ``w0`` the CG start)."""
    v = msolve(pb.A, pb.b, pb.factor, rho, rw, w0)
    if not fit_intercept:
        return v, jnp.zeros((), v.dtype)
    c = (bt - jnp.vdot(pb.q, v)) / pb.schur
    return v - pb.g * c, c
