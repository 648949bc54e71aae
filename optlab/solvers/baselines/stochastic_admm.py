r"""Stochastic ADMM baselines of the SPDHG and SPDPEG papers, for

.. math:: \min_x\; f(x) + r(x) + \mu\|Fx\|_1,\qquad f(x) = \frac1n\sum_i\ell(a_i^\top x, b_i) + \frac\gamma2\|x\|^2,

split as :math:`Fx - y = 0` with :math:`g(y) = \mu\|y\|_1`, scaled dual :math:`u` and penalty :math:`\beta`
(:math:`L_\beta = f + r + g(y) + \frac\beta2\|Fx - y + u\|^2 - \frac\beta2\|u\|^2`). :math:`G_k` is the mini-batch
gradient of the loss part at :math:`x_k`; :math:`L = \beta_\ell\max_i\|a_i\|^2`. Unless stated otherwise a step
ends with :math:`y_{k+1} = \operatorname{soft}(Fx_{k+1} + u_k, \mu/\beta)`, :math:`u_{k+1} = u_k + Fx_{k+1} - y_{k+1}`,
and the output is the uniform average of the :math:`x_k`. Every method is one harness step per epoch segment, with
the sampling (``n_blocks`` strata, ``batch_size`` rows of each per iteration), averaging and metrics of
:func:`optlab.spdhg`, and runs data-parallel the same way (``parallel=Sync(W)`` gives the serial run with
``n_blocks = W`` up to rounding).

* ``opg_admm`` (Suzuki, ICML 2013): linearised x-step
  :math:`x_{k+1} = \operatorname{prox}_{\eta_k r}(x_k - \eta_k(G_k + \gamma x_k + \beta F^\top(Fx_k - y_k + u_k)))`,
  :math:`\eta_k = \eta_0/\sqrt{k+1}`, :math:`\eta_0 = \text{scale}/(L + \gamma + \beta\|F\|^2)` (so
  :math:`\eta_k\beta\|F\|^2 < 1`).
* ``stoc_admm`` (Ouyang, He, Tran, Gray, ICML 2013): the augmented term kept exact,
  :math:`x_{k+1} = \arg\min \langle G_k, x\rangle + \frac\gamma2\|x\|^2 + \frac\beta2\|Fx - y_k + u_k\|^2 +
  \frac1{2\eta_k}\|x - x_k\|^2`, i.e. :math:`(I/\eta_k + \gamma I + \beta F^\top F)x = x_k/\eta_k - G_k +
  \beta F^\top(y_k - u_k)`, solved with one eigendecomposition :math:`F^\top F = V\Lambda V^\top` computed once
  (:math:`O(d^2)` per step). Requires ``r`` = none (the γ term is the paper's strongly convex regulariser). Two
  step schedules (``schedule=``), both with the uniform average of the iterates, as in the paper's theorems; with
  :math:`t = k + 1` the number of the step that produces :math:`x_{k+1}`:

  - ``"sqrt"`` (default; general convex, Ouyang et al. 2013, Theorem 1, :math:`O(1/\sqrt t)`):
    :math:`\eta_k = \eta_0/\sqrt{t}`, :math:`\eta_0 = \text{scale}/L` (the theorem's constant
    :math:`D_X/(M\sqrt2)` is unknown in practice; ``scale/L`` is ours);
  - ``"strongly_convex"`` (Theorem 2: for a μ-strongly convex loss part, :math:`\eta_t = 1/(\mu t)` and the
    uniform average :math:`\bar x_t` give :math:`E[P(\bar x_t) - P^\star + \rho\|F\bar x_t - \bar y_t\|]
    = O(\log t / t)`): here μ = γ (the logistic / least-squares loss is only convex), so
    :math:`\eta_k = \text{scale}/(\gamma t)` and the x-step reads
    :math:`(\gamma(t+1) I + \beta F^\top F)\,x_{k+1} = \gamma t\,x_k - G_k + \beta F^\top(y_k - u_k)`
    (scale = 1). Needs ``gamma > 0``. **[ours]** the paper linearises all of :math:`\theta_1` (γ term included)
    and averages :math:`x_0, \dots, x_{t-1}`; we keep the γ term exact (a prox step, which the same telescoping
    argument covers) and average :math:`x_1, \dots, x_t` (after ``burn_in``). No offset in the step (SPDHG's SC1
    uses :math:`1/(\gamma t + L)`): the first steps are large (:math:`x_1 = -G_0/(2\gamma)` on the null space of
    F) but bounded by :math:`\max\|G\|/\gamma`, and the average forgets them at the rate the theorem states.
* ``sag_admm`` (Zhong & Kwok, ICML 2014, "Fast stochastic ADMM"): the linearised x-step with :math:`G_k` replaced by
  the SAG average :math:`\frac1n\sum_i\ell'(a_i^\top x_{\tau_i}, b_i)a_i`, kept as a real table of one scalar per
  sample (per-row state: split over workers with the rows) and its running sum (only the sampled rows are
  refreshed; the sum's update is a barrier under a simulated asynchronous executor, since a stale *change* must not
  be added twice); constant step
  :math:`\eta = \text{scale}/(L + \gamma + \beta\|F\|^2)`. The table starts at zero (all samples "seen" at a zero
  gradient). Memory :math:`O(n + d)`.
* ``rda_admm`` (Suzuki, ICML 2013): dual averaging of the linearised gradients
  :math:`\hat g_j = G_j + \gamma x_j + \beta F^\top(Fx_j - y_j + u_j)`:
  :math:`x_{k+1} = \operatorname{prox}_{(k+1)\alpha_k r}(x_0 - \alpha_k\sum_{j\le k}\hat g_j)`,
  :math:`\alpha_k = \eta_0/\sqrt{k+1}` (Xiao's RDA with a proximal weight growing like :math:`\sqrt k`, centred at
  :math:`x_0`). **[ours]** written from a sketch of the method: we could not check it against the paper's exact update.
* ``ada_sadmm`` (Zhao, Yang, Zhang, Zhang, ICML 2015), diagonal version: the proximal term
  :math:`\frac1{2\eta}\|x - x_k\|^2_{H_k}`, :math:`H_k = aI + \operatorname{diag}(\sqrt{\sum_{j\le k}G_j^2})` with the
  augmented term linearised (so the x-step is a diagonal-metric prox step):
  :math:`x_{k+1} = \operatorname{prox}_{\eta H_k^{-1} r}(x_k - \eta H_k^{-1}(G_k + \gamma x_k + \beta F^\top(Fx_k - y_k + u_k)))`,
  constant :math:`\eta = \text{scale}\cdot a/(L + \gamma + \beta\|F\|^2)`, :math:`a = 1`. **[ours]** the linearisation
  of the augmented term (the full-matrix solve with a changing diagonal would cost a factorisation per step); the
  full-matrix version is not implemented.
* ``sgadm`` (Gao, Jiang, Zhang, J. Sci. Comput. 2018): y-step first,
  :math:`y_{k+1} = \operatorname{soft}(Fx_k + u_k, \mu/\beta)`, then the linearised stochastic x-step on
  :math:`L_\beta` at :math:`(x_k, y_{k+1})`, then :math:`u_{k+1} = u_k + Fx_{k+1} - y_{k+1}`;
  :math:`\eta_k = \text{scale}/(\sqrt{k+1} + L_1)`, :math:`L_1 = \beta\lambda_{\max}(F^\top F) + L + \gamma`.

Defaults: ``beta = 1``, ``scale = 1`` (how these differ from the SPDHG authors' released baselines:
experiments/README_spdhg.md).
"""
from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ... import operators
from ... import prox as _prox
from ... import validate
from ...algorithm import Algorithm, Rows
from .. import _stochastic as S

__all__ = ["opg_admm", "stoc_admm", "sag_admm", "rda_admm", "ada_sadmm", "sgadm", "METHODS", "algorithm"]

METHODS = ("opg_admm", "stoc_admm", "sag_admm", "rda_admm", "ada_sadmm", "sgadm")

#: Step schedules of :func:`stoc_admm` (Ouyang et al. 2013, Theorems 1 and 2).
SCHEDULES = ("sqrt", "strongly_convex")


class ADMMCore(NamedTuple):
    x: jax.Array
    y: jax.Array        # (m,) split variable
    u: jax.Array        # (m,) scaled dual
    xbar: jax.Array
    wsum: jax.Array
    k: jax.Array
    eta: jax.Array
    aux: Any            # method-specific: SAG table sum (d,), RDA (x0, gradient sum), Ada squared-gradient sum


class ADMMProblem(NamedTuple):
    data: Rows          # training rows (vals, cols, y, weight): split over workers
    F: S.Op
    mu: jax.Array
    gamma: jax.Array
    r: Any
    beta: jax.Array
    eta0: jax.Array
    scale: jax.Array
    L1: jax.Array
    eigvec: Any         # STOC-ADMM: eigenvectors of F^T F (d, d), else None
    eigval: Any
    test: Any
    avg_start: jax.Array


def _soft(v, t):
    return jnp.sign(v) * jnp.maximum(jnp.abs(v) - t, 0)


def _linearised(pb, c, G, step, y):
    """The linearised x-step :math:`\\operatorname{prox}_{\\text{step}\\,r}(x_k - \\text{step}\\,(G + \\gamma x_k +
    \\beta F^\\top(Fx_k - y + u_k)))` (``step`` a scalar or a diagonal metric)."""
    return pb.r._prox(c.x - step * (G + pb.gamma * c.x + pb.beta * pb.F.rmatvec(pb.F @ c.x - y + c.u)), step)


def _finish(pb, c, x, eta, aux, y=None):
    """The y-step (unless ``y`` is given: SGADM takes it first) and u-step after the x-step, and the average."""
    Fx = pb.F @ x
    y = _soft(Fx + c.u, pb.mu / pb.beta) if y is None else y
    u = c.u + Fx - y
    xbar, wsum = S.average(c.xbar, c.wsum, x, jnp.ones((), x.dtype), c.k >= pb.avg_start)
    return ADMMCore(x, y, u, xbar, wsum, c.k + 1, eta, aux)


def _sag_update(loss, n, c: ADMMCore, rs: Rows, pb: ADMMProblem, b, comm):
    rows = pb.data
    cb = loss.grad(S.margins(rows, c.x, b), rows.y[b])
    if rows.weight is not None:
        cb = cb * rows.weight[b]
    gsum = c.aux + comm.reduce("sag_delta", S.spread(rows, b, cb - rs.table[b], c.x.shape[0]))
    x = _linearised(pb, c, gsum / n, pb.eta0, c.y)
    return _finish(pb, c, x, pb.eta0, gsum), rs.replace(table=rs.table.at[b].set(cb))


def _x_update(method, c: ADMMCore, pb: ADMMProblem, G, schedule="sqrt"):
    kf = (c.k + 1).astype(c.x.dtype)
    if method == "opg_admm":
        eta = pb.eta0 / jnp.sqrt(kf)
        return _finish(pb, c, _linearised(pb, c, G, eta, c.y), eta, c.aux)
    if method == "stoc_admm":
        eta = pb.eta0 / jnp.sqrt(kf) if schedule == "sqrt" else pb.eta0 / kf
        rhs = c.x / eta - G + pb.beta * pb.F.rmatvec(c.y - c.u)
        V = pb.eigvec
        # Vᵀ rhs as rhs @ V (operators.rmatvec): XLA:CPU materialises the transpose for V.T @ rhs on every step
        x = V @ (operators.rmatvec(V, rhs) / (1 / eta + pb.gamma + pb.beta * pb.eigval))
        return _finish(pb, c, x, eta, c.aux)
    if method == "rda_admm":
        x0, gsum = c.aux
        gsum = gsum + G + pb.gamma * c.x + pb.beta * pb.F.rmatvec(pb.F @ c.x - c.y + c.u)
        alpha = pb.eta0 / jnp.sqrt(kf)
        return _finish(pb, c, pb.r._prox(x0 - alpha * gsum, kf * alpha), alpha, (x0, gsum))
    if method == "ada_sadmm":
        hsum = c.aux + G * G
        return _finish(pb, c, _linearised(pb, c, G, pb.eta0 / (1.0 + jnp.sqrt(hsum)), c.y), pb.eta0, hsum)
    if method == "sgadm":
        eta = pb.scale / (jnp.sqrt(kf) + pb.L1)
        y = _soft(pb.F @ c.x + c.u, pb.mu / pb.beta)
        return _finish(pb, c, _linearised(pb, c, G, eta, y), eta, c.aux, y)
    raise ValueError(method)


def _info(c):
    return {"eta": c.eta}


@functools.lru_cache(maxsize=None)
def algorithm(method: str, loss_name: str, batch_size: int, segments: int, n_blocks: int, block_size: int, n: int,
              with_test: bool = False, stop: bool = False, schedule: str = "sqrt") -> Algorithm:
    """The stochastic ADMM ``method`` as an :class:`optlab.algorithm.Algorithm` (arguments as
    :func:`optlab.solvers.spdhg.algorithm`)."""
    loss, total = S.get_loss(loss_name), n_blocks * batch_size
    sag = method == "sag_admm"    # its table sum's update is always a barrier (a stale change must not add twice)

    def update(c, rs, pb, b, comm):
        if sag:
            return _sag_update(loss, n, c, rs, pb, b, comm)
        return _x_update(method, c, pb, S.minibatch_grad(loss, pb.data, c.x, b, total, comm), schedule), rs

    update.__name__ = method
    return S.segment_algorithm(method, update, _info, loss_name, batch_size, segments, block_size, n, with_test, stop,
                               frozenset() if sag else S.GRAD_NAMES, frozenset({"sag_delta"} if sag else ()))


def _solve(method, X, y, F, mu, gamma, r, *, scale, beta, loss, X_test, y_test, maxiter, log_every, parallel, run,
           schedule="sqrt", **sampling):
    loss = S.get_loss(loss)
    smp = S.sampling(X, mu, gamma, parallel=parallel, **sampling)
    schedule = check_schedule(schedule, gamma)
    r = _prox.zero() if r is None else r
    if method == "stoc_admm" and getattr(r, "name", "zero") != "zero":
        raise ValueError("stoc_admm: its x-step is a linear solve, so r must be None (use gamma for the ℓ2 term)")
    validate.positive("scale", scale)
    validate.positive("beta", beta)
    rows, test, Fop, normF2, L, dtype, meta = S.prepare(smp.X, y, F, loss, X_test, y_test, smp.n_blocks)
    m, d = Fop.shape
    eta0 = scale / L if method == "stoc_admm" else scale / (L + gamma + beta * normF2)
    if schedule == "strongly_convex":
        eta0 = scale / gamma            # eta_k = eta0 / k (Ouyang et al. 2013, Theorem 2)
    eigvec = eigval = None
    if method == "stoc_admm":
        Fd = Fop.to_scipy().toarray()
        w, V = np.linalg.eigh(Fd.T @ Fd)
        eigvec, eigval = jnp.asarray(V, dtype), jnp.asarray(np.maximum(w, 0), dtype)
    a = lambda v: jnp.asarray(v, dtype)  # noqa: E731
    pb = ADMMProblem(rows, Fop, a(mu), a(gamma), jax.tree.map(a, r), a(beta), a(eta0), a(scale),
                     a(beta * normF2 + L + gamma), eigvec, eigval, test,
                     jnp.asarray(smp.avg_start, jnp.int32))
    z = jnp.zeros(d, dtype)
    aux = {"sag_admm": z, "rda_admm": (z, z), "ada_sadmm": z}.get(method, ())
    core = ADMMCore(z, jnp.zeros(m, dtype), jnp.zeros(m, dtype), z, jnp.zeros((), dtype), jnp.zeros((), jnp.int32),
                    jnp.zeros((), dtype), aux)
    per_row = {"table": jnp.zeros(rows.y.shape[0], dtype)} if method == "sag_admm" else {}
    meta.update({"beta": float(beta), "eta0": float(eta0), "mu": float(mu), "gamma": float(gamma)})
    make_alg = functools.partial(algorithm, method, loss.name, smp.batch_size, smp.segments, smp.n_blocks)
    if method == "stoc_admm":
        meta["schedule"] = schedule
        make_alg = functools.partial(make_alg, schedule=schedule)
    return S.solve(make_alg, core, pb, smp, meta, scale=scale, parallel=parallel, maxiter=maxiter,
                   run=dict(run, log_every=log_every), per_row=per_row)


def check_schedule(schedule, gamma):
    """``schedule`` of :func:`stoc_admm` validated: one of :data:`SCHEDULES`; ``"strongly_convex"`` needs
    ``gamma > 0`` (its step is ``scale / (gamma k)``)."""
    if not (isinstance(schedule, str) and schedule in SCHEDULES):
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}; use 'sqrt' (eta0/sqrt(k), any convex "
                         "loss) or 'strongly_convex' (scale/(gamma k), needs gamma > 0)")
    if schedule == "strongly_convex" and not (np.isfinite(gamma) and gamma > 0):
        raise ValueError(f"schedule='strongly_convex' needs a strongly convex problem, gamma > 0 (its step is "
                         f"scale/(gamma k)), got gamma={gamma!r}; pass gamma > 0 or use schedule='sqrt'")
    return schedule


def _make_public(method, doc, extra=""):
    if method == "stoc_admm":      # the one method with a choice of step schedule
        def solver(X, y, F, mu=1e-5, gamma=0.0, *, r=None, epochs=10, batch_size=1, n_blocks=None, scale=1.0,
                   beta=1.0, schedule="sqrt", loss="logistic", seed=None, key=None, segments=1, burn_in=0.0,
                   X_test=None, y_test=None, maxiter=None, log_every=1, tol=0.0, parallel=None, **run):
            return _solve(method, X, y, F, mu, gamma, r, scale=scale, beta=beta, loss=loss, X_test=X_test,
                          y_test=y_test, maxiter=maxiter, log_every=log_every, parallel=parallel, run=run,
                          schedule=schedule, epochs=epochs, batch_size=batch_size, n_blocks=n_blocks,
                          segments=segments, burn_in=burn_in, tol=tol, seed=seed, key=key)
    else:
        def solver(X, y, F, mu=1e-5, gamma=0.0, *, r=None, epochs=10, batch_size=1, n_blocks=None, scale=1.0,
                   beta=1.0, loss="logistic", seed=None, key=None, segments=1, burn_in=0.0, X_test=None, y_test=None,
                   maxiter=None, log_every=1, tol=0.0, parallel=None, **run):
            return _solve(method, X, y, F, mu, gamma, r, scale=scale, beta=beta, loss=loss, X_test=X_test,
                          y_test=y_test, maxiter=maxiter, log_every=log_every, parallel=parallel, run=run,
                          epochs=epochs, batch_size=batch_size, n_blocks=n_blocks, segments=segments,
                          burn_in=burn_in, tol=tol, seed=seed, key=key)

    solver.__name__ = solver.__qualname__ = method
    solver.__doc__ = doc + f"""

    Arguments as :func:`optlab.spdhg` (``mu``, ``gamma``, ``epochs``, ``batch_size``, ``n_blocks``, ``scale``,
    ``loss``, ``seed`` or ``key``, ``segments``, ``burn_in``, test set, harness options, ``parallel``), plus ``r`` (an
    :mod:`optlab.prox` penalty on x) and ``beta`` (ADMM penalty){extra}. Returns an :class:`optlab.Result` with
    ``params = {{"w": averaged x}}``; the trace logs ``objective`` at the averaged iterate (and ``test_loss``) and
    ``eta``. The update is in the module docstring (:mod:`optlab.solvers.baselines.stochastic_admm`).

    Example:
        >>> import numpy as np, optlab as ol
        >>> rng = np.random.default_rng(0); X = rng.normal(size=(200, 6)); y = np.sign(X[:, 0] + 0.1)
        >>> ol.{method}(X, y, ol.operators.first_difference(6), 1e-2, 1e-2, epochs=3, progress=False).n_iter
        3
    """
    return solver


opg_admm = _make_public("opg_admm", "OPG-ADMM (Suzuki, ICML 2013): linearised stochastic ADMM, steps eta0/sqrt(k+1).")
stoc_admm = _make_public("stoc_admm", "STOC-ADMM (Ouyang, He, Tran & Gray, ICML 2013): stochastic ADMM with an exact "
                         "augmented term.", extra="""
    and ``schedule``: ``"sqrt"`` (default, :math:`\\eta_k = \\text{scale}/(L\\sqrt{k+1})`, any convex problem) or
    ``"strongly_convex"`` (:math:`\\eta_k = \\text{scale}/(\\gamma(k+1))`, the paper's Theorem 2 step for a
    γ-strongly convex objective, :math:`O(\\log t/t)`; needs ``gamma > 0``)""")
sag_admm = _make_public("sag_admm", "SAG-ADMM (Zhong & Kwok, ICML 2014): linearised ADMM with a SAG gradient table.")
rda_admm = _make_public("rda_admm", "RDA-ADMM (Suzuki, ICML 2013): dual-averaging stochastic ADMM.")
ada_sadmm = _make_public("ada_sadmm", "Adaptive stochastic ADMM, diagonal metric (Zhao, Yang, Zhang & Zhang, "
                         "ICML 2015).")
sgadm = _make_public("sgadm", "SGADM (Gao, Jiang & Zhang, J. Sci. Comput. 2018): y first, linearised stochastic "
                     "x-step, dual.")
