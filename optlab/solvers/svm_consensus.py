r"""Global-consensus ADMM for the penalised linear SVM over blocks of rows: :func:`svm_consensus_admm`.

Every block keeps its own model, slacks and duals (in an :class:`optlab.algorithm.Rows` whose leading axis is the
block), the consensus is shared, and the only sums over blocks go through ``comm.reduce``: so the same step runs on
one device (:class:`optlab.parallel.Serial`, all blocks), on ``W`` workers (``Sync(W)``: ``B/W`` blocks each) and
under the simulated asynchronous executor (``SimulatedAsync``: a worker's contribution is computed from the
consensus it last read — the asynchronous consensus ADMM of Zhang & Kwok, ICML 2014). The linear algebra is the
one of :func:`optlab.svm_admm` (:mod:`.svm_linsolve`).
"""
from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from .. import harness, validate
from ..algorithm import Algorithm, Comm, Rows
from .svm_inputs import check_data, check_penalty, check_rho, nzf, predict, slack_prox
from .svm_linsolve import ATv, Av, choose_method, default_rhos, factored_solve, factorise, make_msolve, split_blocks

__all__ = ["svm_consensus_admm", "algorithm", "ConsensusState", "ConsensusProblem", "make_step", "build",
           "objective", "nzf"]


class ConsensusState(NamedTuple):
    z: jax.Array          # (d,) consensus model (shared)
    cz: jax.Array         # () consensus intercept (shared)
    blocks: Rows          # per block j (leading axis): w (d,), c (), e = xi - s (per,), u1 (d,), uc (), u2 (per,)
    k: jax.Array          # () int32


class ConsensusProblem(NamedTuple):
    blocks: Rows          # per block j: A (per, d), b (per,) ±1 (0 on padding rows), mask (per,), factor (f, f),
    #                       q = H_j^T b_j (d,), g = M_j^{-1} q (d,), schur = n_j + rho - q^T g ()
    penalty: Any
    rho1: jax.Array
    rho2: jax.Array
    n: jax.Array          # number of real rows
    n_blocks: jax.Array   # B (float): the consensus averages over all blocks
    a_rms: jax.Array      # sqrt(tr(A^T A) / d) (dual residual scale)


@functools.lru_cache(maxsize=None)
def make_step(method: str = "cholesky", fit_intercept: bool = True, cg_iters: int = 10):
    """The pure ``step(state, problem, comm) -> (state, info)`` (cached per variant, hence hashable)."""
    msolve = make_msolve(method, cg_iters)

    def step(st: ConsensusState, pb: ConsensusProblem, comm: Comm):
        rho1, rho2 = pb.rho1, pb.rho2
        rho = rho1 / rho2
        kappa = 1 / (pb.n * rho2)
        z0, cz0 = st.z, st.cz

        def local(blk, data):
            """Steps 4 (the consensus duals, deferred to here), 1 and 2 of one block (see svm_consensus_admm)."""
            A, b, mask = data.A, data.b, data.mask
            u1 = blk.u1 + (blk.w - z0)
            uc = blk.uc + (blk.c - cz0)
            t = (1 - blk.e - blk.u2) * mask
            rw = rho * (z0 - u1) + ATv(A, b * t)
            w, c = factored_solve(msolve, data, rho, rw, rho * (cz0 - uc) + jnp.sum(b * t), blk.w, fit_intercept)
            m = b * (Av(A, w) + c)
            e = slack_prox(1 - m - blk.u2, kappa, mask)
            u2 = blk.u2 + (m + e - 1) * mask
            both = ATv(A, jnp.stack([b * (e - blk.e), b * u2], axis=1))
            new = Rows(w=w, c=c, e=e, u1=u1, uc=uc, u2=u2)
            return new, (m, both[:, 0], both[:, 1], jnp.sum(b * (e - blk.e)))

        blocks, (m, hde, htu, bde) = jax.vmap(local)(st.blocks, pb.blocks)
        # 3. the consensus: z = prox_{P/(B rho1)}(mean_j (w_j + u1_j)), cz = mean_j (c_j + uc_j)
        B = pb.n_blocks
        z = pb.penalty.prox(comm.reduce("consensus_w", jnp.sum(blocks.w + blocks.u1, axis=0)) / B, 1 / (B * rho1))
        dt = z.dtype
        cz = comm.reduce("consensus_c", jnp.sum(blocks.c + blocks.uc)) / B if fit_intercept else jnp.zeros((), dt)
        # residuals of the consensus problem (Boyd et al. 2011, §3.3 and §7.1), summed over the blocks
        w, c, e, u1, uc, u2 = blocks.w, blocks.c, blocks.e, blocks.u1, blocks.uc, blocks.u2
        mask = pb.blocks.mask
        r1, rc, r2 = w - z, c - cz, (m + e - 1) * mask
        sw, sc = -rho1 * (z - z0) + rho2 * hde, -rho1 * (cz - cz0) + rho2 * bde

        def sq(x):          # per-block squared norms, summed over this worker's blocks
            return jnp.sum(x * x)

        parts = jnp.stack([
            sq(r1) + sq(rc) + sq(r2),                                                # ||r||^2
            sq(sw) + sq(sc),                                                          # ||s||^2
            sq(w) + sq(c) + sq(m),                                                    # ||A x||^2
            jnp.sum(jnp.vdot(z, z) + cz**2 + jnp.sum(e * e, axis=1)),                 # ||B y||^2
            rho1**2 * (sq(u1) + sq(uc)) + rho2**2 * sq(htu) + (rho2 * pb.a_rms) ** 2 * sq(u2)])  # ||A^T lambda||^2
        sums = comm.reduce("residuals", parts)
        r_norm, s_norm = jnp.sqrt(sums[0]), jnp.sqrt(sums[1])
        pri_scale = jnp.maximum(jnp.sqrt(jnp.maximum(sums[2], sums[3])), jnp.sqrt(pb.n))
        dual_scale = jnp.maximum(jnp.sqrt(sums[4]), jnp.finfo(dt).tiny)
        r_rel, s_rel = r_norm / pri_scale, s_norm / dual_scale
        new = ConsensusState(z=z, cz=cz, blocks=blocks, k=st.k + 1)
        return new, {"primal_res": r_rel, "dual_res": s_rel, "kkt": jnp.maximum(r_rel, s_rel)}

    step.__name__ = f"svm_consensus_{method}{'_icpt' if fit_intercept else ''}_step"
    return step


def objective(state, problem, comm: Comm):
    """(1/n) Σ (1 − b_i(a_iᵀz + c̄))₊ + P(z) at the consensus (z, c̄)."""
    data = problem.blocks
    hinge = jnp.maximum(1 - data.b * (data.A @ state.z + state.cz), 0) * data.mask
    return comm.reduce("hinge", jnp.sum(hinge)) / problem.n + problem.penalty.value(state.z)


def _params(state):
    return {"w": state.z, "b": state.cz}


@functools.lru_cache(maxsize=None)
def algorithm(method: str = "cholesky", fit_intercept: bool = True, cg_iters: int = 10) -> Algorithm:
    """:func:`svm_consensus_admm` as an :class:`optlab.algorithm.Algorithm` (blocks in ``Rows``; stops on ``kkt``)."""
    return Algorithm(name="svm_consensus_admm", step=make_step(method, fit_intercept, cg_iters),
                     metrics=(("objective", objective), ("nzf", nzf)), params=_params, stop_metric="kkt",
                     predict=predict)


def build(X, b, penalty, n_blocks: int, *, rho1=None, rho2=None, linsolve="auto", max_dense=8192, dtype=None):
    """Split the rows into ``n_blocks`` blocks and factorise each: ``(state, problem, method, rows_per_block)``.

    The penalties default to those of :func:`optlab.svm_admm` on the whole data (``ρ`` is also the penalty of the
    intercept's consensus)."""
    n, d = X.shape
    X = np.asarray(X, np.float64)
    Xb, bb, maskb = split_blocks(X, np.asarray(b, np.float64), n_blocks)
    per = Xb.shape[1]
    sq_norm = float(np.sum(X * X))
    r1, r2 = default_rhos(sq_norm, n, d, rho1, rho2)
    rho = r1 / r2
    method = choose_method(linsolve, per, d, max_dense)

    def factor_block(Xj, bj, mj):                   # (L, q, g, schur) of one block
        L, minv = factorise(Xj, bj, rho, method)
        q = Xj.T @ (bj * bj)
        g = np.asarray(minv(q), np.float64).ravel()
        return L, q, g, float(mj.sum()) + rho - q @ g

    factors, qs, gs, schurs = zip(*map(factor_block, Xb, bb, maskb))
    f = lambda x: jnp.asarray(x, dtype)  # noqa: E731
    problem = ConsensusProblem(
        blocks=Rows(A=f(Xb), b=f(bb), mask=f(maskb), factor=f(np.stack(factors)), q=f(np.stack(qs)),
                    g=f(np.stack(gs)), schur=f(schurs)),
        penalty=penalty, rho1=f(r1), rho2=f(r2), n=f(n), n_blocks=f(n_blocks), a_rms=f(np.sqrt(sq_norm / d)))
    zd, zn, zb = jnp.zeros((n_blocks, d), dtype), jnp.zeros((n_blocks, per), dtype), jnp.zeros((n_blocks,), dtype)
    state = ConsensusState(z=jnp.zeros(d, dtype), cz=jnp.zeros((), dtype),
                           blocks=Rows(w=zd, c=zb, e=zn, u1=zd, uc=zb, u2=zn), k=jnp.zeros((), jnp.int32))
    return state, problem, method, per


def svm_consensus_admm(X, y, penalty, *, n_blocks=None, rho1=None, rho2=None, maxiter=10000, tol=1e-5,
                       fit_intercept=True, linsolve="auto", max_dense=8192, cg_iters=10, parallel=None, **run):
    r"""Penalised linear SVM by global-consensus ADMM over ``n_blocks`` blocks of rows (Boyd, Parikh, Chu,
    Peleato & Eckstein 2011, §7.1, with the slack splitting of Guan et al., ICDM Workshops 2018; asynchronous
    version under ``SimulatedAsync``: Zhang & Kwok, "Asynchronous distributed ADMM for consensus optimization",
    ICML 2014).

    Problem as :func:`optlab.svm_admm`: :math:`\min_{w,c}\frac1n\sum_i(1 - b_i(a_i^\top w + c))_+ + P(w)`. The rows
    are split into ``B`` contiguous blocks :math:`I_1, \dots, I_B` of ``ceil(n/B)`` rows (the last padded with
    masked zero rows). Block :math:`j` owns a model :math:`(w_j, c_j)`, slacks :math:`e_j = \xi_j - s_j` and
    scaled duals :math:`u_{1,j}` (of :math:`w_j = z`), :math:`u_{c,j}` (of :math:`c_j = \bar c`) and
    :math:`u_{2,j}` (of its margin constraint); the consensus :math:`(z, \bar c)` is shared:

    .. math:: \min\; P(z) + \tfrac1n\textstyle\sum_j\mathbf 1^\top\xi_j \quad\text{s.t.}\quad w_j = z,\;
              c_j = \bar c,\; H_jw_j + c_jb_j + \xi_j - s_j - \mathbf 1 = 0,\; \xi_j, s_j \ge 0 .

    With :math:`\rho = \rho_1/\rho_2` and :math:`t_j = \mathbf 1 - e_j - u_{2,j}`, one iteration is

    1. every block: :math:`\begin{bmatrix}H_j^\top H_j + \rho I & H_j^\top b_j\\ b_j^\top H_j & n_j + \rho
       \end{bmatrix}\begin{bmatrix}w_j\\c_j\end{bmatrix} = \begin{bmatrix}\rho(z - u_{1,j}) + H_j^\top t_j\\
       \rho(\bar c - u_{c,j}) + b_j^\top t_j\end{bmatrix}` (its own factor of :math:`H_j^\top H_j + \rho I`,
       computed once, and a Schur complement for :math:`c_j`);
    2. every block: :math:`e_j` by the hinge-slack prox of :func:`optlab.svm_admm` (step 3 there),
       :math:`u_{2,j} \mathrel{+}= H_jw_j + c_jb_j + e_j - \mathbf 1`;
    3. consensus (``comm.reduce`` over the blocks): :math:`z = \operatorname{prox}_{P/(B\rho_1)}\bigl(\frac1B
       \sum_j (w_j + u_{1,j})\bigr)`, :math:`\bar c = \frac1B\sum_j(c_j + u_{c,j})`;
    4. :math:`u_{1,j} \mathrel{+}= w_j - z`, :math:`u_{c,j} \mathrel{+}= c_j - \bar c` — done at the start of the
       block's next round with the consensus it reads then (the same iterates; under ``SimulatedAsync`` this makes
       the worker's round use the consensus it last read, up to ``max_delay`` iterations old).

    A two-block ADMM (blocks :math:`(w_j, c_j)_j` and :math:`(z, \bar c, e_j)_j`): for convex :math:`P` it
    converges for any :math:`\rho_1, \rho_2 > 0`; nonconvex penalties run with the fixed penalties (no guarantee).
    Stops when the relative primal and dual residuals of the consensus problem are both ``<= tol`` (``kkt``).
    With ``B = 1`` it is :func:`optlab.svm_admm` (fixed penalties) except that the intercept is also a consensus
    variable.

    Args:
        X: ``(n, d)`` dense array (a SciPy sparse matrix raises: pass ``X.toarray()``).
        y: ``(n,)`` labels taking exactly two values; the larger (``np.unique`` order) maps to +1.
        penalty: an :mod:`optlab.prox` penalty.
        n_blocks: number of blocks ``B`` (default: the executor's worker count, 1 without ``parallel``). Under an
            executor with ``W`` workers, ``B`` must be a multiple of ``W`` (each worker holds ``B/W`` blocks).
        rho1, rho2: the penalties (default: those of :func:`optlab.svm_admm` on the whole data, ``rho2 = 1/n``,
            ``rho1 = 0.3·rho2·tr(AᵀA)/d``).
        maxiter, tol, fit_intercept, linsolve, max_dense, cg_iters: as :func:`optlab.svm_admm` (the linear solver is
            chosen per block: Cholesky when ``d <= ceil(n/B)``, else Woodbury).
        **run: the harness options (``metrics``, ``log_every``, ``checkpoint``, ``jit`` ...) of
            :func:`optlab.harness.solve`.
        parallel: an executor of :mod:`optlab.parallel` (``Sync(W)``, ``SimulatedAsync(W, max_delay)``); adds the
            ``sim_time`` (simulated clock) and ``arrived`` diagnostics.

    Returns:
        :class:`optlab.Result` with ``params = {"w": z, "b": c̄}``, ``predict(X)`` giving ±1, trace metrics
        ``objective``, ``nzf``, ``primal_res``, ``dual_res``, ``kkt``; ``trace.meta["classes"]`` lists the labels
        mapped to −1, +1.

    Example:
        >>> import numpy as np, optlab as ol
        >>> rng = np.random.default_rng(0); X = rng.normal(size=(200, 10))
        >>> y = np.where(X[:, 0] + 0.5 * rng.normal(size=200) > 0, 1, -1)
        >>> res = ol.svm_consensus_admm(X, y, ol.prox.l1(lam=0.05), n_blocks=4, progress=False)
        >>> res.status, res.trace.meta["n_blocks"], res.trace.meta["rows_per_block"]
        ('converged', 4, 50)
    """
    check_penalty(penalty)
    executor = validate.executor(parallel)
    if sp.issparse(X):
        raise TypeError("svm_consensus_admm needs a dense X (the row blocks are stacked dense arrays); pass "
                        "X.toarray(), or use ol.svm_admm, which keeps X sparse")
    X, b, classes, dtype = check_data(X, y)
    n, d = X.shape
    check_rho("rho1", rho1)
    check_rho("rho2", rho2)
    maxiter = validate.count("maxiter", maxiter, minimum=1)
    cg_iters = validate.count("cg_iters", cg_iters, minimum=1)
    max_dense = validate.count("max_dense", max_dense, minimum=1)
    tol = validate.tolerance("tol", tol)
    B = validate.blocks(n_blocks, executor, n)
    state, problem, method, per = build(X, b, penalty, int(B), rho1=rho1, rho2=rho2, linsolve=linsolve,
                                        max_dense=max_dense, dtype=dtype)
    meta = {"penalty": repr(penalty), "dtype": str(np.dtype(dtype)), "n": n, "d": d, "sparse": False,
            "linsolve": method, "fit_intercept": bool(fit_intercept), "rho1": float(problem.rho1),
            "rho2": float(problem.rho2), "n_blocks": int(B), "rows_per_block": per, "padding_rows": per * B - n,
            "classes": classes.tolist()}
    return harness.solve(algorithm(method, bool(fit_intercept), int(cg_iters)), state, problem, executor=executor,
                         maxiter=maxiter, tol=tol, meta=meta, **run)
