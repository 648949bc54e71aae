r"""Nonconvex-penalised linear SVM by ADMM with the slack-pair splitting (Guan et al., ICDM Workshops 2018):
:func:`svm_admm` (the method, its updates and defaults are in its docstring).

The pieces it shares with the global-consensus variant :func:`optlab.svm_consensus_admm` (penalty defaults, choice
of linear solver, factorisation) are in :mod:`.svm_linsolve`, the input checks in :mod:`.svm_inputs`. Measurements
and the tuning history of the defaults are in experiments/README_svm_admm.md.
"""
from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
from jax import lax

from .. import harness, operators, validate
from ..algorithm import Algorithm, Comm
from ..parallel import Serial
from ..sparse_glm.anderson import extrapolate
from .svm_consensus import svm_consensus_admm
from .svm_inputs import check_data, check_penalty, check_rho, encode_labels, nzf, predict, slack_prox
from .svm_linsolve import ATv, Av, choose_method, default_rhos, factored_solve, factorise, make_msolve, spectral

__all__ = ["svm_admm", "algorithm", "SVMADMMState", "AndersonBuffer", "SVMADMMProblem", "make_step", "init",
           "build_problem", "encode_labels", "objective", "nzf"]


#: values of ``svm_admm(rho_rule=...)``
RHO_RULES = ("fixed", "balance")


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
    acc: Any = None       # AndersonBuffer of the accelerated step (anderson > 0), else None
    ratio: Any = None     # () rho1 / its base value, adapted by rho_rule="balance" (None: fixed ratio)


class AndersonBuffer(NamedTuple):
    """The last iterates of the ADMM fixed-point map, weighted (see :func:`make_step`), oldest first."""
    hist: jax.Array       # (M+1, d+n) rows [sqrt(rho1) zeta_w, sqrt(rho2) zeta_m] (see make_step)
    cnt: jax.Array        # () rows filled (int32)
    accepted: jax.Array   # () extrapolations accepted so far (int32; diagnostics)
    info: dict            # diagnostics of the last kept iteration (reported again when one is dropped)


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
    eig: Any = None       # rho_rule="balance": (d,) eigenvalues of A^T A (factor then holds its eigenvectors V)
    vq: Any = None        # rho_rule="balance": (d,) V^T q
    ratio_mu: Any = None  # rho_rule="balance": residual ratio that changes rho1 (see _balance_ratio)
    ratio_every: Any = None  # int32: iterations between checks
    ratio_until: Any = None  # int32: last iteration that may change rho1 (then it stays fixed)


# ------------------------------------------------------------------------------------------------ the step
@functools.lru_cache(maxsize=None)
def make_step(method: str = "cholesky", fit_intercept: bool = True, cg_iters: int = 10, anderson: int = 0):
    r"""The pure ``step(state, problem, comm) -> (state, info)`` (cached per variant, hence hashable).

    ``anderson = M > 0``: safeguarded Anderson acceleration of the ADMM fixed-point map in its Douglas–Rachford
    form. The inputs of steps 2–4 of :func:`svm_admm`, :math:`\zeta = (\hat w + u_1, \hat m + u_2)` (:math:`\hat w,
    \hat m` the over-relaxed ``w`` and margins), determine :math:`(z, e, u_1, u_2)` (:func:`_second_block`) and
    hence the next iteration, so one iteration is a map :math:`\zeta_k \mapsto \zeta_{k+1} = T(\zeta_k)`; for
    convex :math:`P` it is firmly nonexpansive in the norm weighted by :math:`(\sqrt{\rho_1}, \sqrt{\rho_2})`
    (Eckstein & Bertsekas 1992). Every :math:`M` iterations the last :math:`M+1` weighted :math:`\zeta`'s are
    combined by :func:`optlab.sparse_glm.anderson.extrapolate` (type-II Anderson: the affine combination of the
    :math:`T(\zeta_i)` with the smallest combined residual; Walker & Ni 2011; for ADMM/Douglas–Rachford Fu, Zhang &
    Boyd 2020). The next ADMM iteration then starts from the state of the extrapolated :math:`\bar\zeta`
    (:func:`_second_block`, one extra product with :math:`A^\top`), and that is the safeguard: its result is kept
    only if :math:`\|T(\bar\zeta) - \bar\zeta\| \le \|\zeta_k - \zeta_{k-1}\|` (the plain residual, which
    never grows for convex :math:`P`); otherwise the iteration is dropped (state and diagnostics stay those of
    iteration :math:`k`) and the plain sequence goes on, so a rejected extrapolation costs one iteration. The
    history restarts after each extrapolation (from :math:`\bar\zeta, T(\bar\zeta)`) and whenever :math:`\tau`
    changes (adaptive or growing penalty).
    """
    msolve = make_msolve(method, cg_iters)
    plain = _make_plain_step(msolve, fit_intercept)
    if anderson <= 0:
        def step(st: SVMADMMState, pb: SVMADMMProblem, comm: Comm):
            del comm  # one process: svm_admm(parallel=...) runs svm_consensus_admm instead
            new, info, _ = plain(st, pb)
            return new, info
    else:
        step = _make_anderson_step(plain, int(anderson))
    aa = f"_aa{anderson}" if anderson > 0 else ""
    step.__name__ = f"svm_admm_{method}{'_icpt' if fit_intercept else ''}{aa}_step"
    return step


def _second_block(zeta_w, zeta_m, tau, pb: SVMADMMProblem):
    """``(z, e, u1, u2)`` from the Douglas–Rachford variable ``ζ`` of :func:`make_step`: ``z = prox_{P/ρ1}(ζ_w)``,
    ``u1 = ζ_w − z``, ``e`` the slack prox at ``1 − ζ_m``, ``u2 = ζ_m + e − 1`` (0 on masked rows)."""
    mask = pb.b * pb.b
    rho1, rho2 = tau * pb.rho1, tau * pb.rho2
    z = pb.penalty.prox(zeta_w, 1 / rho1)
    e = slack_prox(1 - zeta_m, 1 / (jnp.sum(mask) * rho2), mask)
    return z, e, zeta_w - z, (zeta_m + e - 1) * mask


def _make_anderson_step(plain, M: int):
    """The accelerated step of :func:`make_step` (``M`` = history length)."""

    def step(st: SVMADMMState, pb: SVMADMMProblem, comm: Comm):
        del comm
        acc = st.acc
        d = st.z.shape[0]
        s1, s2 = jnp.sqrt(st.tau * pb.rho1), jnp.sqrt(st.tau * pb.rho2)
        full = acc.cnt == M + 1                      # M + 1 successive zeta's of the plain map: extrapolate

        def extrapolated(hist):
            x_bar, ok = extrapolate(hist)
            z, e, u1, u2 = _second_block(x_bar[:d] / s1, x_bar[d:] / s2, st.tau, pb)
            both = ATv(pb.A, jnp.stack([pb.b * e, pb.b * u2], axis=1))
            return st._replace(z=z, u1=u1, xi=jnp.maximum(e, 0), s=jnp.maximum(-e, 0), u2=u2, hte=both[:, 0],
                               htu=both[:, 1]), x_bar, ok

        def unchanged(hist):
            return st, hist[M], jnp.zeros((), bool)

        cand, x_bar, ok = lax.cond(full, extrapolated, unchanged, acc.hist)
        y, info, (yw, ym) = plain(cand, pb)
        x_y = jnp.concatenate([s1 * yw, s2 * ym])
        same_tau = y.tau == st.tau
        # safeguard: the extrapolated point's fixed-point residual must not exceed the last plain one's; if it
        # does, this iteration is dropped (state and diagnostics of the previous one) and the history restarts
        res_bar = jnp.linalg.norm(x_y - x_bar)
        res_prev = jnp.linalg.norm(acc.hist[M] - acc.hist[M - 1])
        take = jnp.logical_not(full) | (ok & same_tau & jnp.isfinite(res_bar) & (res_bar <= res_prev))
        out = jax.tree.map(lambda a, b: jnp.where(take, a, b), y, st._replace(k=y.k))
        info = {k: jnp.where(take, v, acc.info[k]) for k, v in info.items()}
        # history: after an extrapolation restart from (zeta_bar, T(zeta_bar)) or, if dropped, from the last
        # plain zeta; otherwise append T(zeta); a change of tau (adaptive or growing penalty) empties it
        row = jnp.where(full, jnp.where(take, 1, 0), acc.cnt)
        hist = acc.hist.at[0].set(jnp.where(full, jnp.where(take, x_bar, acc.hist[M]), acc.hist[0]))
        hist = lax.dynamic_update_index_in_dim(hist, jnp.where(take, x_y, hist[row]), row, 0)
        cnt = jnp.where(take, row + 1, 1)
        cnt = jnp.where(same_tau, cnt, 0).astype(jnp.int32)
        buf = AndersonBuffer(hist=hist, cnt=cnt, accepted=acc.accepted + (full & take).astype(jnp.int32),
                             info=info)
        return out._replace(acc=buf), info

    return step


def _make_plain_step(msolve, fit_intercept: bool):
    """One ADMM iteration ``plain(state, problem) -> (state, info, ζ)`` (the updates of :func:`svm_admm`; ``ζ``:
    the Douglas–Rachford variable of :func:`_second_block`, for the accelerated step)."""

    def plain(st: SVMADMMState, pb: SVMADMMProblem):
        A, b = pb.A, pb.b
        dt = st.w.dtype
        mask = b * b                                # 1 on data rows, 0 on masked (padding) rows (label 0)
        n = jnp.sum(mask)
        balance = st.ratio is not None              # rho_rule="balance": rho1 / rho2 adapted (see _balance_ratio)
        ratio = st.ratio if balance else 1.0
        rho1, rho2 = st.tau * pb.rho1 * ratio, st.tau * pb.rho2
        rho = pb.rho1 * ratio / pb.rho2
        # 1. (w, c): M w + q c = rho (z - u1) + H^T t,  q^T w + n c = b^T t,  t = 1 - (xi - s) - u2
        e_old = st.xi - st.s
        t = 1 - e_old - st.u2
        rw = rho * (st.z - st.u1) + (pb.ht1 - st.hte - st.htu)
        if balance:
            w, c = _spectral_solve(pb, rho, rw, jnp.sum(b * t), n, fit_intercept)
        else:
            w, c = factored_solve(msolve, pb, rho, rw, jnp.sum(b * t), st.w, fit_intercept)
        m = b * (Av(A, w) + c)                      # margins H w + c b
        # over-relaxation (Boyd et al. 2011, §3.4.3): alpha (w, m) + (1 - alpha) (z_k, 1 - e_k)
        al = pb.alpha
        w_h = al * w + (1 - al) * st.z
        m_h = al * m + (1 - al) * (1 - e_old)
        # 2. z: exact prox of P / rho1
        z = pb.penalty.prox(w_h + st.u1, 1 / rho1)
        # 3. (xi, s): prox of (1/(n rho2)) (.)_+ at v, split into its positive and negative parts
        e = slack_prox(1 - m_h - st.u2, 1 / (n * rho2), mask)
        xi, s = jnp.maximum(e, 0), jnp.maximum(-e, 0)
        # 4. duals
        r1 = w - z
        r2 = (m + e - 1) * mask
        u1 = st.u1 + (w_h - z)
        u2 = st.u2 + (m_h + e - 1) * mask
        both = ATv(A, jnp.stack([b * e, b * u2], axis=1))
        hte, htu = both[:, 0], both[:, 1]
        # residuals (Boyd et al. 2011, §3.3): constraint [I; H~] x + [-I, 0; 0, I] (z, e) = (0, 1)
        r_norm = jnp.sqrt(jnp.vdot(r1, r1) + jnp.vdot(r2, r2))
        de = hte - st.hte
        sd_w = -rho1 * (z - st.z) + rho2 * de
        sd_c = rho2 * jnp.sum(b * (e - e_old)) if fit_intercept else jnp.zeros((), dt)
        s_norm = jnp.sqrt(jnp.vdot(sd_w, sd_w) + sd_c**2)
        tiny = jnp.finfo(dt).tiny
        pri_scale = jnp.maximum(jnp.sqrt(jnp.maximum(jnp.vdot(w, w) + jnp.vdot(m, m), jnp.vdot(z, z) + jnp.vdot(e, e))),
                                jnp.sqrt(n))
        # dual scale: the parts of A^T lambda separately (their sum -> 0 at a solution, since the (w, c) block
        # has no objective of its own), and rho2 ||u2|| times the rms singular value of A, because H^T u2 itself
        # nearly cancels for nonconvex P whose derivative vanishes at large |w_j| (SCAD, MCP)
        # floor a_rms/sqrt(n): the last term's value with every margin multiplier at its bound 1/n (the analogue of
        # the sqrt(n) floor of the primal scale); without it the test is 0/0 at solutions where every multiplier
        # vanishes (separable data, all margins > 1, all weights where P' = 0: MCP/SCAD on mushrooms)
        dual_scale = jnp.maximum(jnp.sqrt(rho1**2 * jnp.vdot(u1, u1) + rho2**2 * jnp.vdot(htu, htu)
                                          + (rho2 * pb.a_rms) ** 2 * jnp.vdot(u2, u2)),
                                 jnp.maximum(pb.a_rms / jnp.sqrt(n), tiny))
        r_rel, s_rel = r_norm / pri_scale, s_norm / dual_scale
        # residual balancing on the common scale tau (no refactorisation: M depends on rho1/rho2 only)
        k = st.k + 1
        f = _balance_factor(k, r_rel, s_rel, pb.adapt_mu, pb.adapt_every, pb.adapt_until)
        # increasing penalty for nonconvex P: tau *= growth after growth_start while the relative primal residual
        # exceeds growth_tol (growing rho forces w - z -> 0, but it also slows the multipliers, so it then stops)
        f = f * jnp.where((k > pb.growth_start) & (st.tau * pb.growth <= pb.tau_max) & (r_rel > pb.growth_tol),
                          pb.growth, 1).astype(dt)
        new = st._replace(w=w, c=c, z=z, xi=xi, s=s, u1=u1 / f, u2=u2 / f, hte=hte, htu=htu / f,
                          tau=st.tau * f, k=k)
        if balance:
            g1 = _balance_ratio(pb, k, w, z, st.z, u1)
            new = new._replace(u1=new.u1 / g1, ratio=st.ratio * g1)
        info = {"primal_res": r_rel, "dual_res": s_rel, "r_abs": r_norm, "s_abs": s_norm,
                "kkt": jnp.maximum(r_rel, s_rel), "rho1": rho1, "rho2": rho2}
        return new, info, (w_h + st.u1, m_h + st.u2)

    return plain


def _spectral_solve(pb: SVMADMMProblem, rho, rw, bt, n, fit_intercept: bool):
    r"""``(w, c)`` of step 1 for any ``rho`` from the eigendecomposition :math:`A^\top A = V\Lambda V^\top`
    (``pb.factor = V``, ``pb.eig = Λ``): :math:`M^{-1} = V(\Lambda + \rho I)^{-1}V^\top`, so a change of
    :math:`\rho_1/\rho_2` needs no refactorisation; with :math:`y = (\Lambda+\rho)^{-1}V^\top r_w` and
    :math:`\gamma = (\Lambda+\rho)^{-1}V^\top q`: :math:`c = (b^\top t - (V^\top q)^\top y)/(n - (V^\top q)^\top
    \gamma)`, :math:`w = V(y - \gamma c)` (the Schur complement of the intercept, as with Cholesky). Two products
    with the ``d × d`` matrix ``V`` per iteration, the cost of the Cholesky pair of triangular solves."""
    V = pb.factor
    den = pb.eig + rho
    y = operators.rmatvec(V, rw) / den
    if not fit_intercept:
        return V @ y, jnp.zeros((), y.dtype)
    gam = pb.vq / den
    c = (bt - jnp.vdot(pb.vq, y)) / (n - jnp.vdot(pb.vq, gam))
    return V @ (y - gam * c), c


def _balance_ratio(pb: SVMADMMProblem, k, w, z, z_old, u1):
    r"""Factor (2, 1/2 or 1) for :math:`\rho_1` under ``rho_rule="balance"``: residual balancing (Boyd et al.
    2011, §3.4.1) applied to the block :math:`w = z` alone, so that it moves the *ratio* :math:`\rho_1/\rho_2`
    (:math:`\rho_2` stays; the common scale :math:`\tau` has its own rules). Relative primal residual of the block
    :math:`\|w - z\|/\max(\|w\|, \|z\|)`, relative dual residual :math:`\|z - z_{old}\|/\|u_1\|` (its
    dual residual :math:`\rho_1\|z - z_{old}\|` over the size of its multiplier :math:`\rho_1\|u_1\|`; ``u1``
    before rescaling). Every ``ratio_every`` iterations up to ``ratio_until``: doubled when the primal one exceeds
    ``ratio_mu`` times the dual one, halved in the opposite case; after ``ratio_until`` the penalties are fixed, so
    the tail is a fixed-penalty two-block ADMM and its convergence theory applies (finitely many changes)."""
    tiny = jnp.finfo(w.dtype).tiny
    r = jnp.linalg.norm(w - z) / jnp.maximum(jnp.maximum(jnp.linalg.norm(w), jnp.linalg.norm(z)), tiny)
    s = jnp.linalg.norm(z - z_old) / jnp.maximum(jnp.linalg.norm(u1), tiny)
    return _balance_factor(k, r, s, pb.ratio_mu, pb.ratio_every, pb.ratio_until)


def _balance_factor(k, r, s, mu, every, until):
    """Residual balancing (Boyd et al. 2011, §3.4.1) of relative residuals ``r`` (primal), ``s`` (dual): the
    factor 2 if ``r > mu·s``, 1/2 if ``s > mu·r``, else 1, at iterations ``k`` that are multiples of ``every`` up to
    ``until`` (1 at the others)."""
    due = (k % every == 0) & (k <= until)
    return jnp.where(due & (r > mu * s), 2.0, jnp.where(due & (s > mu * r), 0.5, 1.0)).astype(r.dtype)


# --------------------------------------------------------------------------------------------------- metrics
def objective(state, problem, comm: Comm = None):
    """(1/n) Σ (1 − b_i(a_iᵀz + c))₊ + P(z) at the returned model (z, c)."""
    mask = problem.b * problem.b                   # 0 on masked rows
    m = problem.b * (Av(problem.A, state.z) + state.c)
    return jnp.sum(jnp.maximum(1 - m, 0) * mask) / jnp.sum(mask) + problem.penalty.value(state.z)


def _params(state):
    return {"w": state.z, "b": state.c}


@functools.lru_cache(maxsize=None)
def algorithm(method: str = "cholesky", fit_intercept: bool = True, cg_iters: int = 10,
              anderson: int = 0) -> Algorithm:
    """:func:`svm_admm` as an :class:`optlab.algorithm.Algorithm` (one process; stops on ``kkt``; ``anderson``: see
    :func:`make_step`, the state then needs :func:`init` with the same ``anderson``)."""
    return Algorithm(name="svm_admm", step=make_step(method, fit_intercept, cg_iters, anderson),
                     metrics=(("objective", objective), ("nzf", nzf)), params=_params, stop_metric="kkt",
                     predict=predict)


def init(problem: SVMADMMProblem, warm_start=None, anderson: int = 0) -> SVMADMMState:
    """Zeros, or a warm start: a previous :class:`SVMADMMState`, a Result, or ``{"w", "b"}``; with an empty
    Anderson history of ``anderson`` + 1 rows when ``anderson > 0`` (see :func:`make_step`)."""
    st = _init_iterates(problem, warm_start)
    if problem.eig is not None:                     # rho_rule="balance": rho1 / rho2 starts at its base value
        if st.ratio is None:                        # (or where a warm start of this rule left it)
            st = st._replace(ratio=jnp.ones((), st.z.dtype))
    elif st.ratio is not None:                      # a "balance" state into a fixed-ratio problem: u1 at base rho1
        st = st._replace(u1=st.u1 * st.ratio, ratio=None)
    if anderson <= 0:
        return st._replace(acc=None)
    n, d = problem.A.shape
    dt = st.z.dtype
    hist = jnp.zeros((int(anderson) + 1, d + n), dt)
    info = {k: jnp.full((), jnp.inf, dt) for k in ("primal_res", "dual_res", "r_abs", "s_abs", "kkt", "rho1", "rho2")}
    zero = jnp.zeros((), jnp.int32)
    return st._replace(acc=AndersonBuffer(hist=hist, cnt=zero, accepted=zero, info=info))


def _init_iterates(problem: SVMADMMProblem, warm_start) -> SVMADMMState:
    A, b = problem.A, problem.b
    n, d = A.shape
    dt = b.dtype
    if warm_start is None:
        # built in NumPy: no eager JAX operations (each is a small program that a fresh process compiles or loads,
        # and dispatches per fit); moved in one transfer except on a CPU, whose compiled loop takes NumPy arrays
        zd, zn = (lambda: np.zeros(d, dt)), (lambda: np.zeros(n, dt))      # no shared buffers
        st = SVMADMMState(w=zd(), c=np.zeros((), dt), z=zd(), xi=zn(), s=zn(), u1=zd(), u2=zn(), hte=zd(), htu=zd(),
                          tau=np.ones((), dt), k=np.zeros((), np.int32))
        return st if jax.default_backend() == "cpu" else jax.device_put(st)
    zd, zn = jnp.zeros(d, dt), jnp.zeros(n, dt)
    ws = getattr(warm_start, "state", warm_start)
    if isinstance(ws, SVMADMMState):
        if ws.w.shape != (d,) or ws.u2.shape != (n,):
            raise ValueError(f"warm_start: state for a ({ws.u2.shape[0]}, {ws.w.shape[0]}) problem, "
                             f"this one is ({n}, {d})")
        validate.finite_tree("warm_start", ws)
        ws = ws._replace(k=jnp.zeros((), jnp.int32), acc=None)
        meta = getattr(getattr(warm_start, "trace", None), "meta", {})
        if "rho1" in meta and "rho2" in meta:       # scaled multipliers u = y / rho: carry the duals y to this rho
            s1, s2 = meta["rho1"] / float(problem.rho1), meta["rho2"] / float(problem.rho2)
            ws = ws._replace(u1=ws.u1 * s1, u2=ws.u2 * s2, htu=ws.htu * s2)
        return jax.tree.map(lambda x: jnp.asarray(x, dtype=dt) if jnp.issubdtype(x.dtype, jnp.floating) else x, ws)
    if isinstance(ws, dict) and "w" in ws:
        w = validate.float_array("warm_start['w']", ws["w"], shape=(d,), dtype=dt, allow_int=True)
        c = validate.float_array("warm_start['b']", ws.get("b", 0.0), shape=(), dtype=dt, allow_int=True)
        m = b * (Av(A, w) + c)
        e = (1 - m) * (b * b)                         # primal-feasible slacks for (w, c); 0 on masked rows
        xi, s = jnp.maximum(e, 0), jnp.maximum(-e, 0)
        return SVMADMMState(w=w, c=c, z=w, xi=xi, s=s, u1=zd, u2=zn, hte=ATv(A, b * e), htu=zd,
                            tau=jnp.ones((), dt), k=jnp.zeros((), jnp.int32))
    raise TypeError("warm_start must be None, a Result or SVMADMMState of svm_admm, or a dict {'w': ..., 'b': ...}")


def build_problem(X, b, penalty, *, rho1=None, rho2=None, linsolve="auto", max_dense=8192, cg_iters=10,
                  adaptive_rho=False, adapt_mu=10.0, adapt_every=10, adapt_until=2000, alpha=1.0, rho_growth=1.0,
                  growth_start=0, tau_max=1e3, growth_tol=0.0, dtype=None, rho_rule="fixed", ratio_mu=10.0,
                  ratio_every=10, ratio_until=1000):
    """Factorise and assemble the :class:`SVMADMMProblem`; returns ``(problem, method)``.

    ``X`` is a dense NumPy/JAX array or a SciPy sparse matrix (never densified); ``b`` holds ±1, or 0 on masked
    rows (padding: their rows of ``X`` must be zero); ``n`` below counts the unmasked rows.
    """
    d = X.shape[1]
    n = int(round(float(np.dot(b, b))))       # unmasked rows (b = ±1)
    dtype = np.dtype(dtype)
    if sp.issparse(X):
        Xc = sp.csr_matrix(X, dtype=np.float64)
        sq_norm = float(Xc.multiply(Xc).sum())
        col_sum = np.asarray(Xc.sum(axis=0)).ravel()
        xtb = np.asarray(Xc.T @ b).ravel()
    else:
        Xc = np.asarray(X, np.float64)
        sq_norm = float(np.sum(Xc * Xc))
        col_sum, xtb = Xc.sum(axis=0), Xc.T @ b
    method = choose_method(linsolve, n, d, max_dense)
    r1, r2 = default_rhos(sq_norm, n, d, rho1, rho2)
    L64, minv = factorise(Xc, b, r1 / r2, method)
    q = col_sum
    g = np.asarray(minv(q), np.float64).ravel()
    schur = float(n - q @ g)
    f = lambda x: np.asarray(x, dtype)  # noqa: E731  (NumPy here, no eager JAX operations: see _place)
    i32 = lambda x: np.asarray(int(x), np.int32)  # noqa: E731
    leaves = dict(
        b=f(b), rho1=f(r1), rho2=f(r2), factor=f(L64), q=f(q), g=f(g), schur=f(schur), ht1=f(xtb), adapt_mu=f(adapt_mu),
        adapt_every=i32(max(int(adapt_every), 1)), adapt_until=i32(adapt_until if adaptive_rho else 0), alpha=f(alpha),
        growth=f(rho_growth), growth_start=i32(growth_start), tau_max=f(tau_max), a_rms=f(np.sqrt(sq_norm / d)),
        growth_tol=f(growth_tol))
    if rho_rule == "balance":
        if method != "cholesky":
            raise ValueError(f"rho_rule='balance' needs the Cholesky solver (d <= n, d <= max_dense); this problem "
                             f"uses linsolve={method!r}: pass rho_rule='fixed'")
        V, lam_g = spectral(Xc)
        leaves.update(factor=f(V), eig=f(lam_g), vq=f(V.T @ q), ratio_mu=f(ratio_mu),
                      ratio_every=i32(max(int(ratio_every), 1)), ratio_until=i32(ratio_until))
    A = operators.as_jax(Xc, dtype) if sp.issparse(Xc) else f(Xc)
    problem = SVMADMMProblem(penalty=penalty, **_place({"A": A, **leaves}))
    return problem, method


#: Problem arrays up to this many entries stay NumPy arrays on a CPU backend (see :func:`_place`).
_HOST_LEAF_MAX = 1 << 16


def _place(arrays: dict) -> dict:
    """Move the problem's arrays to the device in one ``jax.device_put``, except, on a CPU backend, the small ones
    (at most :data:`_HOST_LEAF_MAX` entries): the compiled loop takes NumPy arrays as they are, and a
    ``device_put`` costs tens of microseconds of Python per array, which a grid search of small fits pays ~20 times
    per fit (a third of the host time of a heart_scale fit). Measured (CPU, a jitted call with 26 arguments): a
    NumPy argument of 4,096 to 65,536 float32 entries costs 3–4 µs more per call than a device array, its
    ``device_put`` about 50 µs; at 2^20 entries the call copies it (+600 µs per call), hence the limit."""
    on_cpu = jax.default_backend() == "cpu"
    moved = {k: v for k, v in arrays.items() if not (on_cpu and isinstance(v, np.ndarray) and v.size <= _HOST_LEAF_MAX)}
    return {**arrays, **jax.device_put(moved)}


# ------------------------------------------------------------------------------------------------ public API
def _apply_row_mask(X, b, row_mask):
    """``(X, b, n)`` with the masked rows zeroed (labels 0, rows of ``X`` 0) and ``n`` the unmasked count."""
    mask = np.asarray(row_mask)
    if mask.shape != (X.shape[0],) or mask.dtype.kind not in "bui":
        raise ValueError(f"row_mask must be an ({X.shape[0]},) array of booleans (True: a data row), "
                         f"got {mask.dtype} of shape {mask.shape}")
    keep = mask.astype(bool)
    n = int(keep.sum())
    if n < 2:
        raise ValueError(f"row_mask keeps {n} rows; at least 2 are needed")
    if sp.issparse(X):
        X = sp.csr_matrix(X, copy=True)             # the stored entries keep their positions (explicit zeros too)
        X.data *= np.repeat(keep, np.diff(X.indptr)).astype(X.data.dtype)
    else:
        X = np.where(keep[:, None], X, 0).astype(X.dtype)
    return X, np.where(keep, b, 0.0), n


def svm_admm(X, y, penalty, *, rho1=None, rho2=None, maxiter=10000, tol=1e-5, fit_intercept=True,
             adaptive_rho=False, adapt_mu=10.0, adapt_every=10, adapt_until=2000, alpha=1.0, rho_growth=None,
             growth_start=500, tau_max=1e2, anderson=0, rho_rule="fixed", linsolve="auto",
             max_dense=8192, cg_iters=10, warm_start=None, parallel=None, row_mask=None, **run):
    r"""Linear SVM with a (nonconvex) penalty by ADMM with slack variables (Guan, Qiao, Li, Sun, Ge & Lu,
    "Alternating direction method of multipliers for nonconvex penalised SVMs", ICDM Workshops 2018).

    Problem, with labels :math:`b_i \in \{\pm1\}`, rows :math:`a_i` of :math:`A \in \mathbb{R}^{n\times d}`, an
    intercept :math:`c` and :math:`P` any :mod:`optlab.prox` penalty (``l1``, ``scad``, ``mcp``, ``lsp``,
    ``capped_l1`` ...):

    .. math:: \min_{w, c}\; \frac1n\sum_{i=1}^n \bigl(1 - b_i(a_i^\top w + c)\bigr)_+ + P(w).

    Splitting: :math:`H = \operatorname{diag}(b)A`, a copy :math:`z = w` and slacks :math:`\xi, s \ge 0`,
    :math:`\min P(z) + \tfrac1n\mathbf 1^\top\xi` s.t. :math:`w - z = 0`, :math:`Hw + cb + \xi - s - \mathbf 1 = 0`;
    scaled augmented Lagrangian with penalties :math:`\rho_1` (dual :math:`u_1`) and :math:`\rho_2` (dual
    :math:`u_2`), :math:`\rho = \rho_1/\rho_2`. One iteration:

    1. :math:`(w, c)` jointly: :math:`\begin{bmatrix}H^\top H + \rho I & H^\top b\\ b^\top H & n\end{bmatrix}
       \begin{bmatrix}w\\c\end{bmatrix} = \begin{bmatrix}\rho(z - u_1) + H^\top t\\ b^\top t\end{bmatrix}`,
       :math:`t = \mathbf 1 + s - \xi - u_2` (one factorisation of :math:`M = H^\top H + \rho I = A^\top A + \rho I`
       and a precomputed Schur complement for :math:`c`; :mod:`optlab.solvers.svm_linsolve`);
    2. :math:`z = \operatorname{prox}_{P/\rho_1}(w + u_1)`, the exact prox (nonconvex penalties included);
    3. :math:`(\xi, s)` jointly: with :math:`v = \mathbf 1 - Hw - cb - u_2` and :math:`\kappa = 1/(n\rho_2)`,
       :math:`e = \xi - s = v - \kappa` if :math:`v > \kappa`, :math:`0` if :math:`0 \le v \le \kappa`, :math:`v` if
       :math:`v < 0`; :math:`\xi = e_+`, :math:`s = (-e)_+`;
    4. :math:`u_1 \mathrel{+}= w - z`, :math:`u_2 \mathrel{+}= Hw + cb + \xi - s - \mathbf 1`.

    A two-block ADMM (blocks :math:`(w, c)` and :math:`(z, \xi, s)`): for convex :math:`P` it converges for any
    :math:`\rho_1, \rho_2 > 0`. Stops when the relative primal and dual residuals (Boyd et al. 2011, §3.3) are both
    ``<= tol`` (``kkt``). Defaults: :math:`\rho_2 = 1/n`, :math:`\rho_1 = 0.3\rho_2\operatorname{tr}(A^\top A)/d`;
    for nonconvex :math:`P` an increasing penalty: after ``growth_start`` iterations the common scale :math:`\tau`
    of :math:`(\rho_1, \rho_2)` is multiplied by ``rho_growth`` per iteration up to ``tau_max``, while the relative
    primal residual exceeds ``0.3·tol`` (:math:`M` depends on :math:`\rho_1/\rho_2` only, so nothing is
    refactorised). Differences from the paper's released code: the exact prox of :math:`P/\rho_1` (the code
    passes :math:`\lambda/\rho_1`), joint :math:`(w, c)` and :math:`(\xi, s)` updates, residual-based stopping,
    problem-scaled penalties (the measurements behind the defaults: experiments/README_svm_admm.md).

    Args:
        X: ``(n, d)`` data: NumPy/JAX array or SciPy sparse matrix (kept sparse). Its float dtype is the working
            dtype (float32 or float64; integers are promoted).
        y: ``(n,)`` labels taking exactly two values; the larger (``np.unique`` order) maps to +1.
        penalty: an :mod:`optlab.prox` penalty, e.g. ``ol.prox.scad(lam=2**-6, a=3.7)``.
        rho1, rho2: ADMM penalties on ``w = z`` and on the margin constraint (default: the problem-scaled values
            above). Any ``rho1 > 0`` is valid for every penalty (the z-step is the exact prox even where
            ``P/rho1`` makes the subproblem nonconvex, e.g. MCP with ``γ <= 1/rho1``).
        maxiter, tol: stop when the relative primal and dual residuals are both ``<= tol`` (status
            ``"converged"``) or after ``maxiter`` iterations.
        fit_intercept: also fit ``c`` (unpenalised).
        adaptive_rho, adapt_mu, adapt_every, adapt_until: residual balancing (Boyd et al. 2011, §3.4.1) of the
            common scale ``τ``: doubled (halved) when the relative primal residual exceeds ``adapt_mu`` times the
            dual one (or vice versa), every ``adapt_every`` iterations up to iteration ``adapt_until``, the scaled
            duals rescaled to match (off by default).
        alpha: over-relaxation parameter in (0, 2) (1: none; Boyd et al. 2011, §3.4.3).
        rho_growth, growth_start, tau_max: increasing penalty (default 1.002 per iteration after 500 iterations,
            up to 100× the initial penalties, for nonconvex penalties; 1.0, i.e. fixed, for convex ones).
        anderson: history length ``M`` of the safeguarded Anderson acceleration of the ADMM map (every ``M``
            iterations an extrapolated point, kept only if its fixed-point residual is no larger than the plain
            one's, else the iteration is dropped; :func:`optlab.solvers.svm_admm.make_step`). Default 0: the
            plain iteration (measurements: experiments/README_svm_admm.md).
        rho_rule: ``"fixed"`` (default): the ratio :math:`\rho_1/\rho_2` stays at its initial value.
            ``"balance"``: residual balancing of the block :math:`w = z` moves :math:`\rho_1` (doubled or halved
            every 10 iterations when its relative primal and dual residuals differ by 10×, up to iteration 1,000,
            then fixed, so the tail is a fixed-penalty ADMM; :func:`_balance_ratio`); the ``(w, c)`` step then
            uses the eigendecomposition of :math:`A^\top A` (no refactorisation; Cholesky solver only, not with
            ``anderson``). The trace's ``rho1`` records every change (measurements:
            experiments/README_svm_admm.md).
        linsolve, max_dense, cg_iters: ``"auto"`` (Cholesky of ``AᵀA + ρI`` when ``d <= n``, Woodbury with
            ``ρI + HHᵀ`` when ``n < d``, while ``min(n, d) <= max_dense``; else ``"cg"``: ``cg_iters``
            conjugate-gradient steps per iteration), ``"cholesky"``, ``"woodbury"`` or ``"cg"``.
        warm_start: a previous :class:`optlab.Result` (or its state) of this solver on a problem of the same
            shape (e.g. the previous ``lam`` of a path; the ℓ1 solution is a good start for SCAD/MCP), or
            ``{"w": w, "b": c}``. The state holds scaled multipliers :math:`u = y/\rho`: from a Result they are
            rescaled to this call's ``rho1``/``rho2`` (the duals :math:`y` carry over); a bare state is taken as it
            is, i.e. as if run at this call's penalties.
        **run: the harness options ``metrics``, ``callback``, ``log_every``, ``max_time``, ``progress``,
            ``checkpoint``, ``resume``, ``jit`` (the :class:`optlab.harness.JitRun` of the fully compiled loop, usable
            under ``jax.vmap`` over the penalty's parameters; the model is ``.state.z``, ``.state.c``); see
            :func:`optlab.harness.solve`.
        parallel: a shortcut: an executor ``ol.parallel.Sync(W)`` or ``SimulatedAsync(W, max_delay)`` runs
            :func:`optlab.svm_consensus_admm` with ``n_blocks=W`` (one block of rows per worker; a different
            iteration with the same minimiser; dense ``X``, fixed penalties, no warm start). ``None`` or
            ``Serial()``: this method.
        row_mask: optional ``(n,)`` booleans; rows where it is False are left out of the problem exactly (their
            labels are set to 0 and their rows of ``X`` to zero, so they enter no sum): the fit, its iterates
            and ``n`` in the defaults are those of the unmasked rows alone. For shape bucketing: padding ``X`` to a
            few row counts lets refits on changing subsets (cross-validation) reuse one compiled program
            (:class:`optlab.sklearn.NonconvexSVC` does this). Not with ``parallel=``.

    Returns:
        :class:`optlab.Result` with ``params = {"w": z, "b": c}`` (``z`` is the exactly sparse copy of ``w``),
        ``predict(X)`` giving ±1 and ``trace`` metrics ``objective``, ``nzf`` (% nonzero features),
        ``primal_res``, ``dual_res``, ``kkt``, ``rho1``, ``rho2``. ``trace.meta["classes"]`` lists the labels
        mapped to −1, +1.

    Example:
        >>> import numpy as np, optlab as ol
        >>> rng = np.random.default_rng(0); X = rng.normal(size=(200, 10))
        >>> y = np.where(X[:, 0] + 0.5 * rng.normal(size=200) > 0, "yes", "no")     # any two labels
        >>> res = ol.svm_admm(X, y, ol.prox.l1(lam=0.05), progress=False)
        >>> res.status, sorted(res.params), res.trace.meta["classes"]
        ('converged', ['b', 'w'], ['no', 'yes'])
    """
    check_penalty(penalty)
    X, b, classes, dtype = check_data(X, y)
    n, d = X.shape
    if row_mask is not None:
        X, b, n = _apply_row_mask(X, b, row_mask)
    check_rho("rho1", rho1)
    check_rho("rho2", rho2)
    maxiter = validate.count("maxiter", maxiter, minimum=1)
    adapt_every = validate.count("adapt_every", adapt_every, minimum=1)
    adapt_until = validate.count("adapt_until", adapt_until)
    growth_start = validate.count("growth_start", growth_start)
    cg_iters = validate.count("cg_iters", cg_iters, minimum=1)
    max_dense = validate.count("max_dense", max_dense, minimum=1)
    tol = validate.tolerance("tol", tol)
    validate.in_interval("tau_max", tau_max, 1.0, hint="the penalty scale grows from 1 up to tau_max; e.g. 1e2",
                         finite=False)
    anderson = validate.count("anderson", anderson)
    validate.choice("rho_rule", rho_rule, RHO_RULES)
    if rho_rule == "balance" and anderson:
        raise ValueError("rho_rule='balance' and anderson > 0 cannot be combined; pass anderson=0 or rho_rule='fixed'")
    if not isinstance(validate.executor(parallel), Serial):       # the shortcut: svm_consensus_admm, fewer options
        unavailable = {
            "Anderson acceleration is not available; pass anderson=0": anderson,
            "row_mask is not available; drop the masked rows instead": row_mask is not None,
            "rho_rule='balance' is not available; pass rho_rule='fixed'": rho_rule != "fixed",
            "adaptive_rho=True is not available (fixed penalties only); drop it or pass rho1/rho2": adaptive_rho,
            f"over-relaxation is not available, alpha must be 1 (got {alpha})": float(alpha) != 1.0,
            f"rho_growth must be 1 (fixed penalties), got {rho_growth}": (rho_growth is not None
                                                                          and float(rho_growth) != 1.0),
            "warm_start is not available; drop it": warm_start is not None}
        for message, present in unavailable.items():
            if present:
                raise ValueError(f"svm_admm(parallel=...): {message}")
        if sp.issparse(X):
            raise TypeError("svm_admm(parallel=...) needs a dense X (the row blocks are stacked dense arrays); pass "
                            "X.toarray(), or run without parallel= to keep X sparse")
        return svm_consensus_admm(X, y, penalty, n_blocks=parallel.n_workers, parallel=parallel, rho1=rho1, rho2=rho2,
                                  maxiter=maxiter, tol=tol, fit_intercept=fit_intercept, linsolve=linsolve,
                                  max_dense=max_dense, cg_iters=cg_iters, **run)
    if rho_growth is None:
        rho_growth = 1.0 if getattr(penalty, "is_convex", True) else 1.002
    validate.in_interval("rho_growth", rho_growth, 1.0, hint="1 = fixed penalties")
    validate.in_interval("alpha", alpha, 0.0, 2.0, low_open=True, high_open=True,
                         hint="alpha is the over-relaxation parameter; 1 = none")
    validate.in_interval("adapt_mu", adapt_mu, 1.0, low_open=True, hint="e.g. adapt_mu=10")
    problem, method = build_problem(X, b, penalty, rho1=rho1, rho2=rho2, linsolve=linsolve, max_dense=max_dense,
                                    cg_iters=cg_iters, adaptive_rho=adaptive_rho, adapt_mu=adapt_mu,
                                    adapt_every=adapt_every, adapt_until=adapt_until, alpha=alpha,
                                    rho_growth=rho_growth, growth_start=growth_start, tau_max=tau_max,
                                    growth_tol=0.3 * float(tol or 0.0), dtype=dtype, rho_rule=rho_rule)
    meta = {"penalty": repr(penalty), "dtype": str(np.dtype(dtype)), "n": n, "d": d, "sparse": bool(sp.issparse(X)),
            "linsolve": method, "fit_intercept": bool(fit_intercept), "rho1": float(problem.rho1),
            "rho2": float(problem.rho2), "adaptive_rho": bool(adaptive_rho), "classes": classes.tolist(),
            "anderson": anderson, "rho_rule": rho_rule}
    return harness.solve(algorithm(method, bool(fit_intercept), int(cg_iters), anderson),
                         init(problem, warm_start, anderson), problem,
                         maxiter=maxiter, tol=tol, meta=meta, **run)
