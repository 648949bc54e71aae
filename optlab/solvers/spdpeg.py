r"""SPDPEG: stochastic primal-dual proximal extragradient (Lin, Qiao, Zhang, Feng, Zhang; Neurocomputing 2018;
SPEC §5), and its batch reference EGADM (Lin, Ma, Zhang).

Problem (fused logistic regression with ``r = ol.prox.l1(γ₁)`` and F the first-difference matrix; graph-guided
regularised logistic regression with ``gamma > 0`` and a graph F; least squares gives the fused lasso):

.. math:: \min_x\; \frac1n\sum_i \ell(a_i^\top x, b_i) + \frac\gamma2\|x\|^2 + r(x) + \mu\|Fx\|_1 .

Splitting :math:`y = Fx` with multiplier :math:`\lambda` and penalty :math:`\beta`; with
:math:`G_k = \frac1{|I_k|}\sum_{i\in I_k}\nabla\ell_i(x_k) + \gamma x_k` on a mini-batch :math:`I_k` (drawn without
replacement from a fresh permutation every epoch), one iteration is

.. math::
    y_k &= \operatorname{prox}_{\mu\|\cdot\|_1/\beta}(F x_k + \lambda_k/\beta) \\
    \hat x_k &= \operatorname{prox}_{\eta_k r}\bigl(x_k - \eta_k(G_k + F^\top\lambda_k)\bigr), \qquad
    \hat\lambda_k = \lambda_k - \beta(y_k - F x_k) \\
    x_{k+1} &= \operatorname{prox}_{\eta_k r}\bigl(x_k - \eta_k(G'_k + F^\top\hat\lambda_k)\bigr), \qquad
    \lambda_{k+1} = \lambda_k - \beta(y_k - F\hat x_k),

and the output is an average of the predictors :math:`\hat x_k`. ``extragradient="resample"`` (default, **[ours]**)
re-evaluates the *same* mini-batch's gradient at the predictor, :math:`G'_k = \nabla\ell_{I_k}(\hat x_k) +
\gamma\hat x_k` (a true extragradient step); ``"same_point"`` re-uses :math:`G'_k = G_k` as the authors' code does.

Steps (SPEC §5), with :math:`\lambda_{\max} = \|F\|_2^2`, :math:`L = \beta_\ell\max_i\|a_i\|^2` and
:math:`C = \max(8\beta\lambda_{\max}, \sqrt{8L^2 + \beta\lambda_{\max}})`:

=================  ==========================================  =========================
variant            :math:`\eta_k`                              average of :math:`\hat x_k`
=================  ==========================================  =========================
``gc``             ``scale / (sqrt(k+1) + C)``                 uniform
``sc_uniform``     ``2 scale / (γ(k+1) + 2C)``                 uniform
``sc_nonuniform``  ``4 scale / (γ(k+2) + 4C)``                 weights ``k + 3``
=================  ==========================================  =========================

``scale`` defaults to 1 (the paper's per-set values are 1–7 for fused LR); ``scale="auto"`` runs the pilot grid of
:func:`optlab.solvers.spdhg.pilot_scale`. ``beta`` defaults to 1 (the authors' value). A harness step is one segment
of an epoch (``segments`` per epoch; default one epoch per harness step), as in :func:`optlab.spdhg`.

EGADM (:func:`egadm`): the same predictor–corrector with full gradients and a constant step
:math:`\eta = \text{scale}/C`; the trace reports the averaged predictor (``objective``) and the last iterate
(``objective_last``).

Example:
    >>> import numpy as np, optlab as ol
    >>> rng = np.random.default_rng(0); X = rng.normal(size=(300, 8)); y = np.sign(X[:, 0] + 0.1)
    >>> res = ol.spdpeg(X, y, ol.operators.first_difference(8), mu=1e-2, r=ol.prox.l1(1e-3), epochs=5,
    ...                 progress=False)
    >>> res.n_iter
    5
"""
from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import prox as _prox
from . import _stochastic as S
from .spdhg import VARIANTS, _avg_start, _check_scale, _check_variant, _run, _test_loss, resolve_scale

__all__ = ["spdpeg", "egadm", "SPDPEGCore", "SPDPEGProblem", "make_step", "make_batch_step", "build_problem", "init",
           "objective"]

EXTRAGRADIENT = ("resample", "same_point")
DEFAULT_SCALE = float(np.sqrt(8.0))   # with beta="auto", C ~ sqrt(8) L, so the first step is ~ 1/L (as SPDHG's)


class SPDPEGCore(NamedTuple):
    x: jax.Array        # (d,) x_k
    lam: jax.Array      # (m,) multiplier lambda_k
    xbar: jax.Array     # (d,) average of the predictors x_hat
    wsum: jax.Array     # () sum of averaging weights
    k: jax.Array        # () int32 iterations done
    eta: jax.Array      # () last step


class SPDPEGProblem(NamedTuple):
    data: S.LinData
    F: S.Op
    mu: jax.Array
    gamma: jax.Array
    r: Any              # optlab.prox penalty (convex)
    beta: jax.Array
    scale: jax.Array
    C: jax.Array
    test: Any
    avg_start: jax.Array  # () int32: averaging starts at this iteration (burn-in)


def _eta(variant, pb, k):
    kf = k.astype(pb.scale.dtype)
    if variant == "gc":
        return pb.scale / (jnp.sqrt(kf + 1) + pb.C)
    if variant == "sc_uniform":
        return 2 * pb.scale / (pb.gamma * (kf + 1) + 2 * pb.C)
    return 4 * pb.scale / (pb.gamma * (kf + 2) + 4 * pb.C)


def _eg_update(variant, same_point, pb, c: SPDPEGCore, grad_fn, eta):
    """One predictor-corrector step; ``grad_fn(x)`` is the (sampled) gradient of the loss part."""
    Fx = pb.F @ c.x
    v = Fx + c.lam / pb.beta
    thr = pb.mu / pb.beta
    yk = jnp.sign(v) * jnp.maximum(jnp.abs(v) - thr, 0)
    G = grad_fn(c.x) + pb.gamma * c.x
    xh = pb.r._prox(c.x - eta * (G + pb.F.rmatvec(c.lam)), eta)
    lam_h = c.lam - pb.beta * (yk - Fx)
    Gp = G if same_point else grad_fn(xh) + pb.gamma * xh
    x = pb.r._prox(c.x - eta * (Gp + pb.F.rmatvec(lam_h)), eta)
    lam = c.lam - pb.beta * (yk - pb.F @ xh)
    w = (c.k + 3).astype(x.dtype) if variant == "sc_nonuniform" else jnp.ones((), x.dtype)
    xbar, wsum = S.average(c.xbar, c.wsum, xh, w, c.k >= pb.avg_start)
    return SPDPEGCore(x, lam, xbar, wsum, c.k + 1, eta)


def _info(c, pb):
    return {"eta": c.eta}


@functools.lru_cache(maxsize=None)
def make_step(loss_name: str, variant: str, extragradient: str, batch_size: int, segments: int):
    """The harness step (one segment of an epoch) of SPDPEG; cached, so hashable and stable."""
    loss = S.get_loss(loss_name)
    same_point = extragradient == "same_point"

    def update(c, pb, b):
        return _eg_update(variant, same_point, pb, c, lambda x: S.batch_grad(loss, pb.data, x, b),
                          _eta(variant, pb, c.k))

    step = S.make_epoch_step(update, batch_size, segments, _info)
    step.__name__ = f"spdpeg_{variant}_{extragradient}_step"
    return step


@functools.lru_cache(maxsize=None)
def make_batch_step(loss_name: str):
    """EGADM: one full-gradient predictor-corrector iteration with the constant step scale / C."""
    loss = S.get_loss(loss_name)

    def step(c, pb):
        c = _eg_update("gc", False, pb, c, lambda x: S.full_grad(loss, pb.data, x), pb.scale / pb.C)
        return c, _info(c, pb)

    step.__name__ = "egadm_step"
    return step


@functools.lru_cache(maxsize=None)
def objective(loss_name: str):
    loss = S.get_loss(loss_name)
    return lambda state, pb: S.objective_at(loss, S.core_of(state).xbar, pb)


@functools.lru_cache(maxsize=None)
def _objective_last(loss_name: str):
    loss = S.get_loss(loss_name)
    return lambda state, pb: S.objective_at(loss, S.core_of(state).x, pb)


def build_problem(X, y, F, mu, gamma, r=None, *, loss="logistic", beta=1.0, scale=1.0, X_test=None, y_test=None,
                  avg_start=0):
    """Validate the inputs and build :class:`SPDPEGProblem` (returns ``(problem, loss, meta)``)."""
    loss = S.get_loss(loss)
    r = _prox.zero() if r is None else r
    if not (hasattr(r, "_prox") and hasattr(r, "_value")):
        raise TypeError(f"r must be an optlab.prox penalty (e.g. ol.prox.l1(5e-4)), got {type(r).__name__}")
    if not getattr(r, "is_convex", True):
        raise ValueError(f"r must be convex for SPDPEG, got {getattr(r, 'name', r)}")
    if not (beta == "auto" or (np.isfinite(beta) and beta > 0)):
        raise ValueError(f"beta must be > 0 or 'auto', got {beta!r}")
    dtype = S.working_dtype(X)
    data = S.prepare_data(X, y, loss, dtype)
    d = X.shape[1]
    Fop, normF2 = S.prepare_F(F, d, dtype)
    L = S.lipschitz_max_row(loss, data)
    if beta == "auto":  # balance the two terms of C: 8 beta lambda_max = sqrt(8) L
        beta = L / (np.sqrt(8.0) * normF2) if normF2 > 0 else 1.0
    C = max(8 * beta * normF2, np.sqrt(8 * L * L + beta * normF2))
    test = None
    if X_test is not None:
        if X_test.shape[1] != d:
            raise ValueError(f"X_test has {X_test.shape[1]} columns, X has {d}")
        test = S.prepare_data(X_test, y_test, loss, dtype, name="X_test")
    a = lambda v: jnp.asarray(v, dtype)  # noqa: E731
    r = jax.tree.map(a, r)
    pb = SPDPEGProblem(data, Fop, a(mu), a(gamma), r, a(beta), a(scale), a(C), test, jnp.asarray(avg_start, jnp.int32))
    meta = {"L": L, "normF": float(np.sqrt(normF2)), "C": float(C), "beta": float(beta), "loss": loss.name,
            "r": repr(r) if not hasattr(r, "lam") else f"{r.name}({float(np.asarray(r.lam))})",
            "dtype": str(np.dtype(dtype)), "n": int(X.shape[0]), "d": int(d), "m": int(Fop.shape[0])}
    return pb, loss, meta


def init(pb: SPDPEGProblem, x0=None) -> SPDPEGCore:
    m, d = pb.F.shape
    dt = pb.scale.dtype
    x = jnp.zeros(d, dt) if x0 is None else jnp.asarray(x0, dt)
    return SPDPEGCore(x, jnp.zeros(m, dt), x, jnp.zeros((), dt), jnp.zeros((), jnp.int32), jnp.zeros((), dt))


def spdpeg(X, y, F, mu=5e-3, r=None, gamma=0.0, *, variant="gc", extragradient="resample", epochs=10, batch_size=1, burn_in=0.0,
           scale=DEFAULT_SCALE, beta="auto", loss="logistic", seed=0, segments=1, X_test=None, y_test=None, x0=None,
           pilot_epochs=1, pilot_samples=5000, maxiter=None, log_every=1, tol=0.0, max_time=None, metrics=None,
           callback=None, progress=None, checkpoint=None, resume=None, jit=False, parallel=None):
    r"""SPDPEG for :math:`\frac1n\sum\ell(a_i^\top x, b_i) + \frac\gamma2\|x\|^2 + r(x) + \mu\|Fx\|_1`.

    Args:
        X, y, F, loss, seed, batch_size, segments, X_test, y_test: as :func:`optlab.spdhg`.
        mu: weight of :math:`\|Fx\|_1`; r: a convex :mod:`optlab.prox` penalty (default none), e.g.
            ``ol.prox.l1(5e-4)`` for fused logistic regression; gamma: weight of :math:`\frac12\|x\|^2`.
        variant: ``"gc"``, ``"sc_uniform"``, ``"sc_nonuniform"`` (SC variants need gamma > 0).
        extragradient: ``"resample"`` (same mini-batch, gradient at the predictor) or ``"same_point"`` (authors).
        scale: step multiplier or ``"auto"``; beta: augmented-Lagrangian penalty (1).
        epochs, maxiter, log_every, tol, max_time, metrics, callback, progress, checkpoint, resume, jit: as
            :func:`optlab.spdhg`.
        parallel: ``ol.parallel.Sync(W)`` or ``Async(W, max_delay, ...)``: every worker samples ``batch_size`` rows
            of its own shard per iteration and the gradient is all-reduced (:mod:`optlab.solvers.stochastic_parallel`;
            adds the ``sim_time`` metric).

    Returns:
        :class:`optlab.Result` with ``params = {"w": averaged predictor}``; the trace logs ``objective``,
        ``test_loss`` (with a test set) and ``eta``.
    """
    _check_variant(variant, gamma)
    _check_scale(scale)
    if extragradient not in EXTRAGRADIENT:
        raise ValueError(f"extragradient must be one of {EXTRAGRADIENT}, got {extragradient!r}")
    X = S.as_matrix(X)
    n = X.shape[0]
    S.check_common(mu, gamma, epochs, batch_size, n, segments)
    pb, loss_obj, meta = build_problem(X, y, F, mu, gamma, r, loss=loss, beta=beta,
                                       scale=1.0 if scale == "auto" else scale, X_test=X_test, y_test=y_test,
                                       avg_start=_avg_start(burn_in, n, batch_size))
    step = make_step(loss_obj.name, variant, extragradient, int(batch_size), int(segments))
    core, loop = init(pb, x0), S.init_loop(n, seed)
    obj = objective(loss_obj.name)
    meta.update({"solver": "spdpeg", "variant": variant, "extragradient": extragradient, "batch_size": int(batch_size),
                 "segments": int(segments), "epochs": int(epochs), "seed": int(seed), "mu": float(mu),
                 "gamma": float(gamma)})
    pb = resolve_scale(scale, step, core, loop, pb, obj, meta, pilot_epochs, segments, min(pilot_samples, n), seed)
    if parallel is not None:
        from . import stochastic_parallel as SP
        return SP.run(SP.spdpeg_update(variant, extragradient), (("eta", "eta"),),
                      pb, core, parallel, loss_name=loss_obj.name, seed=seed, batch_size=batch_size,
                      segments=segments, maxiter=epochs * segments if maxiter is None else maxiter,
                      objective=obj, test_loss=_test_loss(loss_obj.name), meta=meta, log_every=log_every, tol=tol,
                      max_time=max_time, metrics=metrics, callback=callback, progress=progress, checkpoint=checkpoint,
                      resume=resume, jit=jit)
    return _run(step, (core, loop), pb, obj, loss_obj, meta, epochs * segments if maxiter is None else maxiter,
                log_every=log_every, tol=tol, max_time=max_time, metrics=metrics, callback=callback,
                progress=progress, checkpoint=checkpoint, resume=resume, jit=jit)


def egadm(X, y, F, mu=5e-3, r=None, gamma=0.0, *, maxiter=100, scale=DEFAULT_SCALE, beta="auto", loss="logistic", X_test=None,
          y_test=None, x0=None, log_every=1, tol=0.0, max_time=None, metrics=None, callback=None, progress=None,
          checkpoint=None, resume=None, jit=False):
    """Batch extragradient ADMM (EGADM), the full-gradient reference of :func:`spdpeg`: one harness step = one
    iteration = two passes over the data (gradients at x_k and at the predictor)."""
    _check_scale(scale)
    if scale == "auto":
        raise ValueError("egadm: scale='auto' is only offered by the stochastic solvers; pass a number")
    X = S.as_matrix(X)
    n = X.shape[0]
    S.check_common(mu, gamma, 1, 1, n, 1)
    pb, loss_obj, meta = build_problem(X, y, F, mu, gamma, r, loss=loss, beta=beta, scale=scale, X_test=X_test,
                                       y_test=y_test)
    meta.update({"solver": "egadm", "scale": float(scale), "mu": float(mu), "gamma": float(gamma)})
    metrics = {"objective_last": _objective_last(loss_obj.name), **(metrics or {})}
    return _run(make_batch_step(loss_obj.name), init(pb, x0), pb, objective(loss_obj.name), loss_obj, meta, maxiter,
                log_every=log_every, tol=tol, max_time=max_time, metrics=metrics, callback=callback,
                progress=progress, checkpoint=checkpoint, resume=resume, jit=jit)
