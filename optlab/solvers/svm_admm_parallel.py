r"""Global-consensus ADMM for the penalised linear SVM over row shards: ``ol.svm_admm(..., parallel=...)``.

Problem as in :mod:`.svm_admm`: :math:`\min_{w,c}\frac1n\sum_i(1 - b_i(a_i^\top w + c))_+ + P(w)`. The rows are split
into ``W`` contiguous shards :math:`I_1,\dots,I_W` (``ceil(n/W)`` rows each; the last shard is padded with zero rows
that are masked out, so any ``n`` works). Worker ``j`` owns a local model :math:`(w_j, c_j)`, its slack pair
:math:`\xi_j, s_j \ge 0` (as :math:`e_j = \xi_j - s_j`) and the scaled duals :math:`u_{1,j}` (of :math:`w_j = z`),
:math:`u_{c,j}` (of :math:`c_j = \bar c`) and :math:`u_{2,j}` (of its margin constraint); the consensus
:math:`(z, \bar c)` is shared (Boyd et al. 2011, §7.1 global consensus, with the slack splitting of Guan et al. 2018):

.. math:: \min\; P(z) + \tfrac1n\textstyle\sum_j\mathbf 1^\top\xi_j \quad\text{s.t.}\quad w_j = z,\; c_j = \bar c,\;
          H_jw_j + c_jb_j + \xi_j - s_j - \mathbf 1 = 0,\; \xi_j, s_j \ge 0 .

With :math:`\rho = \rho_1/\rho_2`, :math:`t_j = \mathbf 1 - e_j - u_{2,j}`, one iteration is

1. every worker (in parallel): :math:`\begin{bmatrix}H_j^\top H_j + \rho I & H_j^\top b_j\\ b_j^\top H_j & n_j + \rho
   \end{bmatrix}\begin{bmatrix}w_j\\c_j\end{bmatrix} = \begin{bmatrix}\rho(z - u_{1,j}) + H_j^\top t_j\\
   \rho(\bar c - u_{c,j}) + b_j^\top t_j\end{bmatrix}` (its own Cholesky / Woodbury factor, computed once, and a
   Schur complement for :math:`c_j`; ``linsolve="cg"`` runs CG on its block);
2. worker: :math:`e_j` by the hinge-slack prox of :mod:`.svm_admm` (step 3 there), :math:`u_{2,j} \mathrel{+}=
   H_jw_j + c_jb_j + e_j - \mathbf 1`;
3. consensus (collectives): :math:`z = \operatorname{prox}_{P/(W\rho_1)}\bigl(\frac1W\sum_j (w_j + u_{1,j})\bigr)`,
   :math:`\bar c = \frac1W\sum_j(c_j + u_{c,j})` (``psum`` over the ``"workers"`` axis);
4. :math:`u_{1,j} \mathrel{+}= w_j - z`, :math:`u_{c,j} \mathrel{+}= c_j - \bar c`.

This is a two-block ADMM (blocks :math:`(w_j, c_j)_j` and :math:`(z, \bar c, e_j)_j`), so for convex :math:`P` it
converges for any :math:`\rho_1, \rho_2 > 0`. It is a *different* iteration from the serial :func:`optlab.svm_admm`
(which has no local copies), with the same minimiser: ``Sync(W)`` reaches the serial optimum, and with
``W = 1`` it is the serial method except that the intercept is also a consensus variable. The
implementation does step 4 at the start of the worker's next round (it needs the new :math:`z`, which the worker
reads then), which leaves the iterates unchanged and makes the asynchronous version below a one-line change.

**Asynchronous** (``Async``; the model of :mod:`optlab.parallel`): the server keeps the last contribution
:math:`(w_j + u_{1,j}, c_j + u_{c,j})` each worker delivered (a table) and forms :math:`(z, \bar c)` from the table
whenever the partial barrier (``min_arrivals``) and the staleness bound (``max_delay``) allow. A worker that
delivered reads the new consensus, does step 4 with it and its next round (steps 1–2) while the server goes on; so
its next contribution is computed from a consensus up to ``max_delay`` iterations old. This is the asynchronous
consensus ADMM of Zhang & Kwok (ICML 2014) with the dual update done on the worker; ``max_delay = 0`` is ``Sync``
exactly. Simulated time: worker ``j`` needs ``speed_j · rows_j / n`` units per round (``sim_time`` metric).

Penalties: the serial defaults (``rho2 = 1/n``, ``rho1 = 0.3·rho2·tr(AᵀA)/d`` on the whole data) and the same
``ρ`` for the intercept's consensus. Fixed penalties only: ``adaptive_rho``, ``rho_growth > 1`` and ``alpha ≠ 1``
are rejected (rescaling the duals of late workers would need one more message); nonconvex penalties run with a
fixed penalty (no convergence guarantee). Stopping: relative primal and dual residuals of the consensus problem
(Boyd et al. 2011, §3.3 and §7.1) ``<= tol``. Dense ``X`` only (a SciPy sparse ``X`` raises; pass ``X.toarray()``).
"""
from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg as sla
from jax import lax

from .. import parallel as par
from . import svm_admm as serial

__all__ = ["ConsensusState", "ConsensusProblem", "build", "make_step", "metrics"]


class ConsensusState(NamedTuple):
    z: jax.Array          # (d,) consensus (replicated)
    cz: jax.Array         # () consensus intercept
    w: jax.Array          # (W, d) local models
    c: jax.Array          # (W,) local intercepts
    e: jax.Array          # (W, n_w) xi - s per worker
    m: jax.Array          # (W, n_w) margins H_j w_j + c_j b_j
    u1: jax.Array         # (W, d) scaled duals of w_j = z
    uc: jax.Array         # (W,) scaled duals of c_j = cz
    u2: jax.Array         # (W, n_w) scaled duals of the margin constraints
    htu: jax.Array        # (W, d) H_j^T u2_j (dual-residual scale)
    z_read: jax.Array     # (W, d) consensus each worker read last
    cz_read: jax.Array    # (W,)
    table: jax.Array      # (W, d) last delivered w_j + u1_j
    ctable: jax.Array     # (W,) last delivered c_j + uc_j
    ready: jax.Array      # (W,) simulated time each worker's round finishes
    age: jax.Array        # (W,) server iterations since each worker last delivered
    clock: jax.Array      # () simulated time of the last server iteration
    k: jax.Array          # () int32


class _Shard(NamedTuple):     # what msolve of svm_admm reads: A, b, factor
    A: jax.Array
    b: jax.Array
    factor: jax.Array


class ConsensusProblem(NamedTuple):
    A: jax.Array          # (W n_w, d) rows, sharded
    b: jax.Array          # (W n_w,) labels ±1, 0 on padding rows
    mask: jax.Array       # (W n_w,) 1 for real rows
    factor: jax.Array     # (W f, f) stacked per-worker Cholesky factors
    q: jax.Array          # (W, d) H_j^T b_j
    g: jax.Array          # (W, d) M_j^{-1} q_j
    schur: jax.Array      # (W,) n_j + rho - q_j^T g_j
    penalty: Any
    rho1: jax.Array
    rho2: jax.Array
    n: jax.Array          # number of real rows
    a_rms: jax.Array
    tau: jax.Array        # (W,) simulated seconds per round
    max_delay: jax.Array  # () int32 (traced: changing it does not recompile)
    min_arrivals: jax.Array  # () int32


#: shardings of the state: the consensus and the clock replicated, everything per worker sharded
STATE_SPEC = ConsensusState(*([par.REPLICATED] * 2 + [par.SHARDED] * 12 + [par.REPLICATED] * 4))


def _split(x, W):
    return x.reshape((W, -1) + x.shape[1:])


@functools.lru_cache(maxsize=None)
def make_step(method: str, fit_intercept: bool, cg_iters: int, n_workers: int, asynchronous: bool):
    """The pure step (cached per configuration). ``Sync`` runs the asynchronous code with every worker arriving."""
    msolve = serial._make_msolve(method, cg_iters)
    S, R = par.SHARDED, par.REPLICATED
    W = n_workers

    def worker(st, arrived, pb):
        """One server iteration seen from one worker (leading axis 1 on every per-worker array)."""
        me = lax.axis_index(par.AXIS)
        go = arrived[me]
        A, b, mask = pb.A, pb.b, pb.mask
        dt = A.dtype
        w0, c0, e0, m0, u10, uc0, u20 = st.w[0], st.c[0], st.e[0], st.m[0], st.u1[0], st.uc[0], st.u2[0]
        zr, czr = st.z_read[0], st.cz_read[0]
        rho1, rho2 = pb.rho1, pb.rho2
        rho = rho1 / rho2
        # 4. (deferred) dual step of the consensus constraints with the consensus this worker read
        u1 = u10 + (w0 - zr)
        uc = uc0 + (c0 - czr)
        # 1. (w_j, c_j)
        t = (1 - e0 - u20) * mask
        rw = rho * (zr - u1) + serial._ATv(A, b * t)
        v = msolve(_Shard(A, b, pb.factor), rho, rw, w0)
        if fit_intercept:
            c = (rho * (czr - uc) + jnp.sum(b * t) - jnp.vdot(pb.q[0], v)) / pb.schur[0]
            w = v - pb.g[0] * c
        else:
            c, w = jnp.zeros((), dt), v
        m = b * (serial._Av(A, w) + c)
        # 2. slacks and margin duals (padding rows stay at zero)
        kappa = 1 / (pb.n * rho2)
        vv = 1 - m - u20
        e = jnp.where(vv > kappa, vv - kappa, jnp.where(vv < 0, vv, 0)) * mask
        u2 = u20 + (m + e - 1) * mask
        both = serial._ATv(A, jnp.stack([b * (e - e0), b * u2], axis=1))
        hde, htu = both[:, 0], both[:, 1]
        bde = jnp.sum(b * (e - e0))
        # workers that did not arrive keep everything (their round is still running)
        sel = lambda new, old: jnp.where(go, new, old)  # noqa: E731
        w, c, e, m, u1, uc, u2 = (sel(w, w0), sel(c, c0), sel(e, e0), sel(m, m0), sel(u1, u10), sel(uc, uc0),
                                  sel(u2, u20))
        htu = sel(htu, st.htu[0])
        hde, bde = sel(hde, jnp.zeros_like(hde)), sel(bde, jnp.zeros_like(bde))
        table = sel(w + u1, st.table[0])
        ctable = sel(c + uc, st.ctable[0])
        # 3. consensus from the table
        z = pb.penalty.prox(lax.psum(table, par.AXIS) / W, 1 / (W * rho1))
        cz = lax.psum(ctable, par.AXIS) / W if fit_intercept else jnp.zeros((), dt)
        z_read = sel(z, zr)
        cz_read = sel(cz, czr)
        # residuals of the consensus problem (Boyd et al. 2011, §3.3 / §7.1)
        dz, dcz = z - st.z, cz - st.cz
        r1, rc, r2 = w - z, c - cz, (m + e - 1) * mask
        sw, sc = -rho1 * dz + rho2 * hde, -rho1 * dcz + rho2 * bde
        parts = jnp.stack([
            jnp.vdot(r1, r1) + rc**2 + jnp.vdot(r2, r2),                         # ||r||^2
            jnp.vdot(sw, sw) + sc**2,                                              # ||s||^2
            jnp.vdot(w, w) + c**2 + jnp.vdot(m, m),                                # ||A x||^2
            jnp.vdot(z, z) + cz**2 + jnp.vdot(e, e),                               # ||B y||^2
            rho1**2 * (jnp.vdot(u1, u1) + uc**2) + rho2**2 * jnp.vdot(htu, htu)
            + (rho2 * pb.a_rms) ** 2 * jnp.vdot(u2, u2)])                          # ||A^T lambda||^2
        sums = lax.psum(parts, par.AXIS)
        new = st._replace(w=w[None], c=c[None], e=e[None], m=m[None], u1=u1[None], uc=uc[None], u2=u2[None],
                          htu=htu[None], z_read=z_read[None], cz_read=cz_read[None], table=table[None],
                          ctable=ctable[None])
        return new, z, cz, sums

    local = STATE_SPEC
    problem_spec = ConsensusProblem(S, S, S, S, S, S, S, R, R, R, R, R, R, R, R)
    spmd_round = par.spmd(worker, W, (local, R, problem_spec), (local, R, R, R))

    def step(st: ConsensusState, pb: ConsensusProblem):
        arrived, clock, ready, age = par.server_round(asynchronous, st, pb.tau, pb.max_delay, pb.min_arrivals)
        new, z, cz, sums = spmd_round(st, arrived, pb)
        dt = z.dtype
        r_norm, s_norm = jnp.sqrt(sums[0]), jnp.sqrt(sums[1])
        pri_scale = jnp.maximum(jnp.sqrt(jnp.maximum(sums[2], sums[3])), jnp.sqrt(pb.n))
        dual_scale = jnp.maximum(jnp.sqrt(sums[4]), jnp.finfo(dt).tiny)
        r_rel, s_rel = r_norm / pri_scale, s_norm / dual_scale
        new = new._replace(z=z, cz=cz, ready=ready, age=age, clock=clock, k=st.k + 1)
        info = {"primal_res": r_rel, "dual_res": s_rel, "kkt": jnp.maximum(r_rel, s_rel), "sim_time": clock,
                "arrived": jnp.sum(arrived).astype(jnp.int32)}
        return new, info

    step.__name__ = f"svm_admm_consensus_{method}_{'async' if asynchronous else 'sync'}{W}_step"
    return step


@functools.lru_cache(maxsize=None)
def metrics(n_workers: int) -> dict:
    """``objective`` (hinge + penalty at the consensus (z, cz), summed over the shards) and ``nzf``."""
    S, R = par.SHARDED, par.REPLICATED

    def worker(z, cz, A, b, mask):
        return lax.psum(jnp.sum(jnp.maximum(1 - b * (A @ z + cz), 0) * mask), par.AXIS)

    hinge_sum = par.spmd(worker, n_workers, (R, R, S, S, S), R)

    def objective(st, pb):
        return hinge_sum(st.z, st.cz, pb.A, pb.b, pb.mask) / pb.n + pb.penalty.value(st.z)

    def nzf(st, pb):
        return 100.0 * jnp.mean((st.z != 0).astype(st.z.dtype))

    return {"objective": objective, "nzf": nzf}


def _factorise(Xj, bj, rho, method):
    """Per-shard factor (float64): Cholesky of A_jᵀA_j + ρI, or of ρI + H_jH_jᵀ (Woodbury), or none (CG)."""
    if method == "cholesky":
        G = Xj.T @ Xj
        G[np.diag_indices_from(G)] += rho
        L = serial._cholesky(G, "A_j^T A_j + rho I")
        return L, lambda r: sla.cho_solve((L, True), r)
    if method == "woodbury":
        K = (bj[:, None] * (Xj @ Xj.T)) * bj[None, :]
        K[np.diag_indices_from(K)] += rho
        L = serial._cholesky(K, "rho I + H_j H_j^T")
        return L, lambda r: (r - Xj.T @ (bj * sla.cho_solve((L, True), bj * (Xj @ r)))) / rho
    d = Xj.shape[1]
    M = Xj.T @ Xj + rho * np.eye(d)
    return np.zeros((1, 1)), lambda r: np.linalg.solve(M, r)


def build(X, b, penalty, parallel, *, rho1, rho2, linsolve, max_dense, cg_iters, fit_intercept, dtype):
    """Shard the rows over ``parallel.n_workers`` and factorise every shard.

    Returns ``(step, state, problem, metrics, meta)``.
    """
    W = parallel.n_workers
    n, d = X.shape
    if n < W:
        raise ValueError(f"parallel: n_workers={W} is larger than the number of samples n={n}")
    Xf = np.asarray(X, np.float64)
    per = -(-n // W)
    pad = per * W - n
    Xp = np.concatenate([Xf, np.zeros((pad, d))])
    bp = np.concatenate([np.asarray(b, np.float64), np.zeros(pad)])
    maskp = np.concatenate([np.ones(n), np.zeros(pad)])
    mean_eig = float(np.sum(Xf * Xf)) / d
    r2 = 1.0 / n if rho2 is None else float(rho2)
    r1 = 0.3 * (mean_eig if mean_eig > 0 else 1.0) * r2 if rho1 is None else float(rho1)
    rho = r1 / r2
    if linsolve == "auto":
        linsolve = "cg" if min(per, d) > max_dense else ("cholesky" if d <= per else "woodbury")
    if linsolve not in ("cholesky", "woodbury", "cg"):
        raise ValueError(f"linsolve must be 'auto', 'cholesky', 'woodbury' or 'cg', got {linsolve!r}")
    factors, qs, gs, schurs = [], [], [], []
    for j in range(W):
        Xj, bj, mj = _split(Xp, W)[j], _split(bp, W)[j], _split(maskp, W)[j]
        L, Minv = _factorise(Xj, bj, rho, linsolve)
        q = Xj.T @ (bj * bj)
        g = np.asarray(Minv(q)).ravel()
        factors.append(L)
        qs.append(q)
        gs.append(g)
        schurs.append(float(mj.sum()) + rho - q @ g)
    f = lambda x: jnp.asarray(x, dtype)  # noqa: E731
    tau = par.worker_times(parallel) * per / n
    problem = ConsensusProblem(
        A=f(Xp), b=f(bp), mask=f(maskp), factor=f(np.concatenate(factors)), q=f(np.stack(qs)), g=f(np.stack(gs)),
        schur=f(schurs), penalty=penalty, rho1=f(r1), rho2=f(r2), n=f(n),
        a_rms=f(np.sqrt(mean_eig)), tau=f(tau), max_delay=jnp.asarray(int(parallel.max_delay), jnp.int32),
        min_arrivals=jnp.asarray(int(parallel.min_arrivals), jnp.int32))
    zd, zn = jnp.zeros((W, d), dtype), jnp.zeros((W, per), dtype)
    zw = jnp.zeros((W,), dtype)
    state = ConsensusState(
        z=jnp.zeros(d, dtype), cz=jnp.zeros((), dtype), w=zd, c=zw, e=zn, m=zn, u1=zd, uc=zw, u2=zn, htu=zd,
        z_read=zd, cz_read=zw, table=zd, ctable=zw, ready=f(tau), age=jnp.full((W,), int(parallel.max_delay),
                                                                                jnp.int32),
        clock=jnp.zeros((), dtype), k=jnp.zeros((), jnp.int32))
    state = par.place(state, STATE_SPEC, W)
    step = make_step(linsolve, bool(fit_intercept), int(cg_iters), W, isinstance(parallel, par.Async))
    meta = {"parallel": repr(parallel), "consensus": True, "linsolve": linsolve, "rows_per_worker": per,
            "padding_rows": pad, "rho1": r1, "rho2": r2}
    return step, state, problem, metrics(W), meta


def solve(X, b, classes, penalty, parallel, *, rho1, rho2, maxiter, tol, fit_intercept, adaptive_rho, alpha,
          rho_growth, linsolve, max_dense, cg_iters, warm_start, log_every, max_time, metrics, callback, progress,
          checkpoint, resume, jit, dtype):
    """:func:`optlab.svm_admm` with ``parallel=``: checks what the consensus form supports, then runs it."""
    import scipy.sparse as sp

    from .. import harness

    if not isinstance(parallel, (par.Sync, par.Async)):
        raise TypeError(f"parallel must be optlab.parallel.Sync(n) or Async(n, ...), got {parallel!r}")
    if sp.issparse(X):
        raise TypeError("svm_admm(parallel=...) needs a dense X (the row shards are stacked dense blocks); pass "
                        "X.toarray(), or run without parallel= to keep X sparse")
    if adaptive_rho:
        raise ValueError("svm_admm(parallel=...): adaptive_rho=True is not available (fixed penalties only); "
                         "drop it or pass rho1/rho2")
    if float(alpha) != 1.0:
        raise ValueError(f"svm_admm(parallel=...): over-relaxation is not available, alpha must be 1 (got {alpha})")
    if rho_growth is not None and float(rho_growth) != 1.0:
        raise ValueError(f"svm_admm(parallel=...): rho_growth must be 1 (fixed penalties), got {rho_growth}")
    if warm_start is not None:
        raise ValueError("svm_admm(parallel=...): warm_start is not available; drop it")
    if jnp.dtype(dtype) == jnp.float64 and not jax.config.jax_enable_x64:
        dtype = np.dtype(np.float32)
    step, state, problem, mets, meta = build(np.asarray(X), b, penalty, parallel, rho1=rho1, rho2=rho2,
                                             linsolve=linsolve, max_dense=max_dense, cg_iters=cg_iters,
                                             fit_intercept=fit_intercept, dtype=dtype)
    all_metrics = dict(mets)
    all_metrics.update(metrics or {})
    if jit:
        return harness.run_jit(step, state, problem, maxiter=maxiter, log_every=log_every, tol=tol,
                               stop_metric="kkt", metrics=all_metrics)
    n, d = X.shape
    meta.update({"solver": "svm_admm", "penalty": repr(penalty), "dtype": str(np.dtype(dtype)), "n": n, "d": d,
                 "sparse": False, "fit_intercept": bool(fit_intercept), "adaptive_rho": False,
                 "classes": classes.tolist()})
    return harness.run(step, state, problem, maxiter=maxiter, log_every=log_every, tol=tol, stop_metric="kkt",
                       max_time=max_time, metrics=all_metrics, params=lambda s: {"w": s.z, "b": s.cz},
                       callback=callback, progress=progress, checkpoint=checkpoint, resume=resume, meta=meta,
                       predict_fn=serial._predict)
