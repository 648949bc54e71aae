r"""SPDPEG, the stochastic primal-dual proximal extragradient method (:func:`spdpeg`; Lin, Qiao, Zhang, Feng &
Zhang, Neurocomputing 2018), and its batch reference EGADM (:func:`egadm`; Lin, Ma & Zhang)."""
from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import harness
from .. import prox as _prox
from ..algorithm import Algorithm, Rows
from . import _step_rules as R
from . import _stochastic as S

__all__ = ["spdpeg", "egadm", "SPDPEGCore", "SPDPEGProblem", "algorithm", "batch_algorithm", "build_problem", "init"]

EXTRAGRADIENT = ("resample", "same_point")
DEFAULT_SCALE = float(np.sqrt(8.0))   # with beta="auto", C ~ sqrt(8) L, so the first step is ~ 1/L (as SPDHG's)
#: Reduce names of one iteration (barriers when a harness step runs several iterations).
GRAD_NAMES = frozenset({"grad", "grad_count", "grad_hat", "grad_hat_count"})


class SPDPEGCore(NamedTuple):
    x: jax.Array        # (d,) x_k
    lam: jax.Array      # (m,) multiplier lambda_k
    xbar: jax.Array     # (d,) average of the predictors x_hat
    wsum: jax.Array     # () sum of averaging weights
    k: jax.Array        # () int32 iterations done
    eta: jax.Array      # () last step


class SPDPEGProblem(NamedTuple):
    data: Rows          # training rows (vals, cols, y, weight): split over workers
    F: S.Op
    mu: jax.Array
    gamma: jax.Array
    r: Any              # optlab.prox penalty (convex)
    beta: jax.Array
    scale: jax.Array
    C: jax.Array
    test: Any           # LinData of the test set (shared), or None
    avg_start: jax.Array  # () int32: averaging starts at this iteration (burn-in)
    decay: jax.Array     # () weight omega of sqrt(k+1) in the GC step (1: the paper's rule)


def _eta(variant, pb, k):
    return R.primal_step(variant, pb.scale, pb.decay, pb.gamma, pb.C, k, 2)


def check_step(pb, variant, extragradient, step_check, meta):
    """SPDPEG's step condition at its first step (:func:`optlab.solvers._step_rules.extragradient_condition`):
    returns ``pb`` with ``scale`` damped when ``step_check="damp"`` and the condition fails (a warning, and
    ``meta["scale_damped_from"]``); ``meta["step_condition"]`` records kappa of the step that runs."""
    eta0 = float(_eta(variant, pb, jnp.zeros((), jnp.int32)))
    kappa = R.extragradient_condition(eta0, meta["L"], float(pb.beta), meta["normF"] ** 2,
                                      extragradient == "same_point")
    factor = R.check_extragradient(kappa, step_check, float(pb.scale), float(pb.beta))
    if factor != 1.0:
        meta["scale_damped_from"] = float(pb.scale)
        pb = pb._replace(scale=pb.scale * factor)
    meta["step_condition"] = kappa * factor
    return pb


def _eg_update(variant, same_point, pb, c: SPDPEGCore, grad_fn, eta):
    """One predictor-corrector step; ``grad_fn(x, name)`` is the (sampled) gradient of the loss part."""
    Fx = pb.F @ c.x
    v = Fx + c.lam / pb.beta
    thr = pb.mu / pb.beta
    yk = jnp.sign(v) * jnp.maximum(jnp.abs(v) - thr, 0)
    G = grad_fn(c.x, "grad") + pb.gamma * c.x
    xh = pb.r._prox(c.x - eta * (G + pb.F.rmatvec(c.lam)), eta)
    lam_h = c.lam - pb.beta * (yk - Fx)
    Gp = G if same_point else grad_fn(xh, "grad_hat") + pb.gamma * xh
    x = pb.r._prox(c.x - eta * (Gp + pb.F.rmatvec(lam_h)), eta)
    lam = c.lam - pb.beta * (yk - pb.F @ xh)
    w = (c.k + 3).astype(x.dtype) if variant == "sc_nonuniform" else jnp.ones((), x.dtype)
    xbar, wsum = S.average(c.xbar, c.wsum, xh, w, c.k >= pb.avg_start)
    return SPDPEGCore(x, lam, xbar, wsum, c.k + 1, eta)


def _info(c):
    return {"eta": c.eta}


@functools.lru_cache(maxsize=None)
def algorithm(loss_name: str, variant: str, extragradient: str, batch_size: int, segments: int, n_blocks: int,
              block_size: int, n: int, with_test: bool = False, stop: bool = False) -> Algorithm:
    """SPDPEG as an :class:`optlab.algorithm.Algorithm` (one harness step = one segment of an epoch; see
    :func:`optlab.solvers.spdhg.algorithm` for the arguments)."""
    loss, total = S.get_loss(loss_name), n_blocks * batch_size

    def update(c, rows_state, pb, b, comm):
        def grad_fn(x, name):
            return S.minibatch_grad(loss, pb.data, x, b, total, comm, name)

        return _eg_update(variant, extragradient == "same_point", pb, c, grad_fn, _eta(variant, pb, c.k)), rows_state

    update.__name__ = f"spdpeg_{variant}_{extragradient}"
    return S.segment_algorithm("spdpeg", update, _info, loss_name, batch_size, segments, block_size, n, with_test,
                               stop, GRAD_NAMES)


@functools.lru_cache(maxsize=None)
def batch_algorithm(loss_name: str, n: int, with_test: bool = False, stop: bool = False) -> Algorithm:
    """EGADM as an :class:`optlab.algorithm.Algorithm`; logs ``objective_last`` (at the last iterate) as well."""
    loss = S.get_loss(loss_name)

    def update(c, pb, comm):
        def grad_fn(x, name):
            return S.full_grad(loss, pb.data, x, n, comm, name)

        return _eg_update("gc", False, pb, c, grad_fn, pb.scale / pb.C)

    update.__name__ = "egadm"
    return S.batch_algorithm("egadm", update, _info, loss_name, n, with_test, stop,
                             (("objective_last", S.objective_metric(loss_name, n, "x")),))


def build_problem(X, y, F, mu, gamma, r=None, *, loss="logistic", beta=1.0, scale=1.0, X_test=None, y_test=None,
                  avg_start=0, n_blocks=1, step_decay=1.0, per_epoch=1):
    """Validate the inputs and build :class:`SPDPEGProblem` (returns ``(problem, loss, meta)``); ``step_decay``,
    ``per_epoch``: the GC decay (:func:`optlab.solvers._step_rules.step_decay` with :math:`C` for :math:`L`)."""
    loss = S.get_loss(loss)
    r = _prox.zero() if r is None else r
    if not (hasattr(r, "_prox") and hasattr(r, "_value")):
        raise TypeError(f"r must be an optlab.prox penalty (e.g. ol.prox.l1(5e-4)), got {type(r).__name__}")
    if not getattr(r, "is_convex", True):
        raise ValueError(f"r must be convex for SPDPEG, got {getattr(r, 'name', r)}")
    if not (beta == "auto" or (np.isfinite(beta) and beta > 0)):
        raise ValueError(f"beta must be > 0 or 'auto', got {beta!r}")
    rows, test, Fop, normF2, L, dtype, meta = S.prepare(X, y, F, loss, X_test, y_test, n_blocks)
    if beta == "auto":  # balance the two terms of C: 8 beta lambda_max = sqrt(8) L
        beta = L / (np.sqrt(8.0) * normF2) if normF2 > 0 else 1.0
    C = max(8 * beta * normF2, np.sqrt(8 * L * L + beta * normF2))
    decay = R.step_decay(step_decay, C, per_epoch)
    a = lambda v: jnp.asarray(v, dtype)  # noqa: E731
    r = jax.tree.map(a, r)
    pb = SPDPEGProblem(rows, Fop, a(mu), a(gamma), r, a(beta), a(scale), a(C), test, jnp.asarray(avg_start, jnp.int32),
                       a(decay))
    meta.update({"C": float(C), "beta": float(beta), "step_decay": float(decay),
                 "r": repr(r) if not hasattr(r, "lam") else f"{r.name}({float(np.asarray(r.lam))})"})
    return pb, loss, meta


def _core0(pb, x0=None) -> SPDPEGCore:
    m, d = pb.F.shape
    dt = pb.scale.dtype
    x = S.start_point(x0, d, dt)
    return SPDPEGCore(x, jnp.zeros(m, dt), x, jnp.zeros((), dt), jnp.zeros((), jnp.int32), jnp.zeros((), dt))


def init(pb: SPDPEGProblem, n_blocks: int = 1, seed=0, x0=None) -> S.StochState:
    """The state before the first step (``seed`` may be traced, e.g. under ``jax.vmap``)."""
    return S.init_state(_core0(pb, x0), pb.data.y.shape[0], n_blocks, seed)


def spdpeg(X, y, F, mu=5e-3, r=None, gamma=0.0, *, variant="gc", extragradient="resample", epochs=10, batch_size=1,
           n_blocks=None, burn_in="auto", scale=DEFAULT_SCALE, step_decay="auto", beta="auto", step_check="damp",
           loss="logistic", seed=None, key=None, segments=1, X_test=None, y_test=None, x0=None, pilot_epochs=1,
           pilot_samples=5000, maxiter=None, log_every=1, tol=0.0, parallel=None, **run):
    r"""SPDPEG, stochastic primal-dual proximal extragradient (Lin, Qiao, Zhang, Feng & Zhang, Neurocomputing 2018)
    for

    .. math:: \min_x\; \frac1n\sum_i \ell(a_i^\top x, b_i) + \frac\gamma2\|x\|^2 + r(x) + \mu\|Fx\|_1

    (fused logistic regression with ``r = ol.prox.l1(γ₁)`` and F the first-difference matrix; graph-guided
    regularised logistic regression with ``gamma > 0`` and a graph F; least squares: the fused lasso). Splitting
    :math:`y = Fx` with multiplier :math:`\lambda` and penalty :math:`\beta`, with
    :math:`G_k = \frac1{|I_k|}\sum_{i\in I_k}\nabla\ell_i(x_k) + \gamma x_k` on the mini-batch :math:`I_k`:

    .. math::
        y_k &= \operatorname{prox}_{\mu\|\cdot\|_1/\beta}(F x_k + \lambda_k/\beta) \\
        \hat x_k &= \operatorname{prox}_{\eta_k r}\bigl(x_k - \eta_k(G_k + F^\top\lambda_k)\bigr), \qquad
        \hat\lambda_k = \lambda_k - \beta(y_k - F x_k) \\
        x_{k+1} &= \operatorname{prox}_{\eta_k r}\bigl(x_k - \eta_k(G'_k + F^\top\hat\lambda_k)\bigr), \qquad
        \lambda_{k+1} = \lambda_k - \beta(y_k - F\hat x_k),

    and the output is an average of the predictors :math:`\hat x_k`. ``extragradient="resample"`` (default,
    **[ours]**) re-evaluates the same mini-batch's gradient at the predictor, :math:`G'_k = \nabla\ell_{I_k}(\hat x_k)
    + \gamma\hat x_k` (a true extragradient step); ``"same_point"`` re-uses :math:`G'_k = G_k` as the authors' code
    does. Steps, with :math:`\lambda_{\max} = \|F\|_2^2`, :math:`L = \beta_\ell\max_i\|a_i\|^2` and
    :math:`C = \max(8\beta\lambda_{\max}, \sqrt{8L^2 + \beta\lambda_{\max}})`: ``gc``
    :math:`\eta_k = \text{scale}/(\omega\sqrt{k+1} + C)` (the paper's :math:`\omega = 1`; default
    ``step_decay="auto"``: :math:`\omega = C/\sqrt{K}`, :math:`K` = one epoch of iterations, as in
    :func:`optlab.spdhg`), uniform average; ``sc_uniform``
    :math:`2\,\text{scale}/(\gamma(k+1) + 2C)`, uniform; ``sc_nonuniform`` :math:`4\,\text{scale}/(\gamma(k+2) + 4C)`,
    weights :math:`k + 3`. ``scale`` defaults to :math:`\sqrt8` (with ``beta="auto"``,
    :math:`\beta = L/(\sqrt8\lambda_{\max})`, the first step is about :math:`1/L`); ``scale="auto"`` runs the pilot
    grid of :func:`optlab.spdhg`. ``burn_in="auto"`` averages the last half of the run (as :func:`optlab.spdhg`);
    ``step_decay=1, burn_in=0`` with ``beta=1`` is the paper's iteration.

    **Step condition [ours].** At its first (largest) step the predictor-corrector is stable only for
    :math:`\kappa = \max(\eta_0 L/c,\ \eta_0\beta\lambda_{\max}) < 1` (:math:`c = 1` for ``"resample"``,
    2 for ``"same_point"``; :func:`optlab.solvers._step_rules.extragradient_condition`); the defaults keep
    :math:`\kappa < 1`. A ``scale``/``beta`` at or beyond the edge is damped to :math:`\kappa = 0.95` with a
    ``RuntimeWarning`` (``step_check="damp"``, default; ``trace.meta["scale_damped_from"]``), refused with a
    ``ValueError`` (``"raise"``), or run as given (``"off"``: it blows up). ``trace.meta["step_condition"]`` is
    :math:`\kappa` of the run.

    Sampling (``n_blocks``, ``batch_size``, ``segments``) and ``parallel`` are as in :func:`optlab.spdhg`; with
    ``"resample"`` each iteration reduces two gradients (at :math:`x_k` and at :math:`\hat x_k`, same batch).

    Args:
        X, y, F, loss, seed, key, batch_size, n_blocks, segments, burn_in, X_test, y_test, x0: as :func:`optlab.spdhg`.
        mu: weight of :math:`\|Fx\|_1`; r: a convex :mod:`optlab.prox` penalty (default none); gamma: weight of
            :math:`\frac12\|x\|^2`.
        variant: ``"gc"``, ``"sc_uniform"``, ``"sc_nonuniform"`` (SC variants need gamma > 0).
        extragradient: ``"resample"`` or ``"same_point"``.
        scale: step multiplier or ``"auto"``; beta: augmented-Lagrangian penalty (``"auto"`` or a number).
        step_decay: ``"auto"`` or :math:`\omega` (above); step_check: ``"damp"``, ``"raise"`` or ``"off"`` (above).
        epochs, maxiter, log_every, tol, parallel, pilot_epochs, pilot_samples, **run: as :func:`optlab.spdhg`.

    Returns:
        :class:`optlab.Result` with ``params = {"w": averaged predictor}``; the trace logs ``objective``,
        ``test_loss`` (with a test set) and ``eta``.

    Example:
        >>> import numpy as np, optlab as ol
        >>> rng = np.random.default_rng(0); X = rng.normal(size=(300, 8)); y = np.sign(X[:, 0] + 0.1)
        >>> res = ol.spdpeg(X, y, ol.operators.first_difference(8), mu=1e-2, r=ol.prox.l1(1e-3), epochs=5,
        ...                 progress=False)
        >>> res.n_iter
        5
    """
    S.check_variant(variant, gamma)
    S.check_scale(scale)
    if extragradient not in EXTRAGRADIENT:
        raise ValueError(f"extragradient must be one of {EXTRAGRADIENT}, got {extragradient!r}")
    R.check_extragradient(0.0, step_check)          # the option itself, before any data work
    burn_in = R.burn_in(burn_in, epochs)
    smp = S.sampling(X, mu, gamma, epochs=epochs, batch_size=batch_size, n_blocks=n_blocks, segments=segments,
                     burn_in=burn_in, parallel=parallel, tol=tol, seed=seed, key=key)
    pb, loss_obj, meta = build_problem(smp.X, y, F, mu, gamma, r, loss=loss, beta=beta,
                                       scale=1.0 if scale == "auto" else scale, X_test=X_test, y_test=y_test,
                                       avg_start=smp.avg_start, n_blocks=smp.n_blocks, step_decay=step_decay,
                                       per_epoch=smp.block_size // smp.batch_size)
    meta.update({"variant": variant, "extragradient": extragradient, "mu": float(mu), "gamma": float(gamma)})
    if scale != "auto":
        pb = check_step(pb, variant, extragradient, step_check, meta)
    make_alg = functools.partial(algorithm, loss_obj.name, variant, extragradient, smp.batch_size, smp.segments,
                                 smp.n_blocks)
    return S.solve(make_alg, _core0(pb, x0), pb, smp, meta, scale=scale, pilot_epochs=pilot_epochs,
                   pilot_samples=pilot_samples, parallel=parallel, maxiter=maxiter, run=dict(run, log_every=log_every))


def egadm(X, y, F, mu=5e-3, r=None, gamma=0.0, *, maxiter=100, scale=DEFAULT_SCALE, beta="auto", loss="logistic",
          X_test=None, y_test=None, x0=None, log_every=1, tol=0.0, parallel=None, **run):
    r"""Batch extragradient ADMM (EGADM; Lin, Ma & Zhang), the full-gradient reference of :func:`spdpeg`: the same
    predictor-corrector with full gradients and the constant step :math:`\eta = \text{scale}/C`; one harness step =
    one iteration = two passes over the data (gradients at :math:`x_k` and at the predictor). The trace reports the
    averaged predictor (``objective``) and the last iterate (``objective_last``). Arguments as :func:`spdpeg`
    (``maxiter`` iterations); ``parallel`` splits the rows over workers.

    Example:
        >>> import numpy as np, optlab as ol
        >>> rng = np.random.default_rng(0); X = rng.normal(size=(100, 5)); y = np.sign(X[:, 0] + 0.1)
        >>> ol.egadm(X, y, ol.operators.first_difference(5), mu=1e-2, maxiter=20, progress=False).n_iter
        20
    """
    executor, tol, X = S.batch_options("egadm", X, mu, gamma, scale, parallel, tol)
    n = X.shape[0]
    pb, loss_obj, meta = build_problem(X, y, F, mu, gamma, r, loss=loss, beta=beta, scale=scale, X_test=X_test,
                                       y_test=y_test, n_blocks=executor.n_workers)
    meta.update({"scale": float(scale), "mu": float(mu), "gamma": float(gamma)})
    alg = batch_algorithm(loss_obj.name, n, pb.test is not None, bool(tol and tol > 0))
    return harness.solve(alg, _core0(pb, x0), pb, executor=parallel, maxiter=maxiter, log_every=log_every, tol=tol,
                         meta=meta, **run)
