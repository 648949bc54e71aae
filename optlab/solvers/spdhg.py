r"""Stochastic primal-dual hybrid gradient for graph-guided models (Qiao, Lin, Qin, Lu; Neurocomputing 2018,
arXiv:1801.06934; SPEC §4), and its batch reference LPDHG.

Problem (graph-guided logistic regression GGLR, and GGRLR with :math:`\gamma > 0`; least squares gives the
generalised fused lasso):

.. math:: \min_x\; P(x) = \frac1n\sum_{i=1}^n \ell(a_i^\top x, b_i) + \frac\gamma2\|x\|^2 + \mu\|Fx\|_1 .

Saddle form: :math:`\mu\|Fx\|_1 = \max_{\|y\|_\infty\le1}\langle y, \mu Fx\rangle`. One stochastic iteration on the
mini-batch :math:`I_k` (drawn without replacement from a fresh permutation every epoch):

.. math::
    y_{k+1} = \Pi_{[-1,1]^m}\bigl(y_k + s_k\,\mu F x_k\bigr),\qquad
    x_{k+1} = x_k - r_k\Bigl(\tfrac1{|I_k|}\textstyle\sum_{i\in I_k}\nabla\ell_i(x_k) + \gamma x_k
              + \mu F^\top y_{k+1}\Bigr),

and the output is an average of the :math:`x_{k+1}`. Primal steps and averages (SPEC §4, the paper's constants;
:math:`L = \beta_\ell\max_i\|a_i\|^2` with :math:`\beta_\ell` = 1/4 for the logistic loss, 1 for least squares):

=================  ==========================================  ===============  ==============
variant            :math:`r_k`                                 average          claimed rate
=================  ==========================================  ===============  ==============
``gc``             ``scale / (sqrt(k+1) + L)``                 uniform          O(1/√t)
``sc_uniform``     ``scale / (γ(k+1) + L)``                    uniform          O(log t / t)
``sc_nonuniform``  ``2 scale / (γ(k+2) + 2L)``                 weight k+1 on    O(1/t)
                                                               :math:`x_{k+1}`
=================  ==========================================  ===============  ==============

**Dual step [ours].** The paper uses a constant :math:`s = 5\cdot10^{-5}` with :math:`\mu = 10^{-5}`: then
:math:`y` moves by :math:`s\mu\|Fx\| \approx 10^{-9}` per step and stays near 0, so the ℓ1 term barely acts on
the iterates. The default ``dual_step="auto"`` ties the dual step to the primal step so that the pair stays in
the PDHG stability region :math:`s_k r_k \|\mu F\|_2^2 \le \theta < 1`:
:math:`s_k = \theta / (r_k\,\mu^2\|F\|_2^2)` with ``coupling`` :math:`\theta = 0.5`. As :math:`r_k` decays the
dual step grows, and :math:`y` tracks :math:`\operatorname{sign}(Fx)` ever more closely (the method then tends to
a stochastic subgradient method on the nonsmooth term, which has the same ergodic rates). A number passed as
``dual_step`` is used as a constant :math:`s` (``dual_step=5e-5`` reproduces the paper).

**Step scale.** ``scale`` multiplies the primal step. ``scale="auto"`` runs short pilots (``pilot_epochs``, default
1, on at most ``pilot_samples`` rows) for every value of the grid :math:`2^{-4},\dots,2^{3}` and keeps the one whose
averaged iterate has the lowest objective; the pilots re-use the compiled step (scale is a traced value), and their
cost is reported in ``trace.meta["pilot_time"]`` (not counted in the run's times). The default ``scale=1`` reaches
a 2 % relative gap in 10 epochs on GGLR/GGRLR a9a (0.9 %), splice and the fused/GGRLR problems we tested, but not
on GGLR svmguide3 (12 %: unscaled, very unequal rows; no single scale gets below 5 % there in 10 epochs); see
``experiments/README_spdhg.md``. The pilots favour scales that are best after one epoch, which can be worse after ten
(splice GGLR: auto chose 2, 3.5 % vs 1.5 % at scale 1), so ``"auto"`` is not the default.

**Harness step.** One harness step is one segment of an epoch (``segments`` per epoch, default 1: one epoch);
``maxiter`` therefore counts segments, and the trace's iteration axis is in segments (``trace.meta["segments"]``
converts to epochs). The paper's "every 1 % of iterations" corresponds to ``segments=100``.

LPDHG (:func:`lpdhg`): the same iteration with the full gradient, :math:`r_k = \text{scale}/(\sqrt{k+1} + L)`
(GC; the SC rules with ``variant``), the same dual step rule, one harness step per iteration (= one data pass).

Example:
    >>> import numpy as np, optlab as ol
    >>> rng = np.random.default_rng(0); X = rng.normal(size=(300, 8)); y = np.sign(X[:, 0] + 0.1)
    >>> res = ol.spdhg(X, y, ol.operators.first_difference(8), mu=1e-2, epochs=5, progress=False)
    >>> sorted(res.params), res.n_iter
    (['w'], 5)
"""
from __future__ import annotations

import functools
import time
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import harness
from . import _stochastic as S

__all__ = ["spdhg", "lpdhg", "SPDHGCore", "SPDHGProblem", "make_step", "make_batch_step", "build_problem",
           "init", "objective", "VARIANTS"]

VARIANTS = ("gc", "sc_uniform", "sc_nonuniform")
SCALE_GRID = tuple(2.0 ** p for p in range(-4, 4))


class SPDHGCore(NamedTuple):
    x: jax.Array        # (d,) primal iterate x_k
    u: jax.Array        # (m,) dual iterate y_k in [-1, 1]^m
    xbar: jax.Array     # (d,) averaged iterate (the output)
    wsum: jax.Array     # () sum of averaging weights
    k: jax.Array        # () int32, stochastic iterations done
    eta: jax.Array      # () last primal step r_k
    sig: jax.Array      # () last dual step s_k


class SPDHGProblem(NamedTuple):
    data: S.LinData
    F: S.Op
    mu: jax.Array
    gamma: jax.Array
    scale: jax.Array
    L: jax.Array
    muF2: jax.Array      # mu^2 ||F||^2
    dual: jax.Array      # constant dual step s, or the coupling theta when the rule is "auto"
    test: Any            # LinData of the test set, or None
    avg_start: jax.Array  # () int32: averaging starts at this iteration (burn-in)


def _primal_step(variant, pb, k):
    kf = k.astype(pb.scale.dtype)
    if variant == "gc":
        return pb.scale / (jnp.sqrt(kf + 1) + pb.L)
    if variant == "sc_uniform":
        return pb.scale / (pb.gamma * (kf + 1) + pb.L)
    return 2 * pb.scale / (pb.gamma * (kf + 2) + 2 * pb.L)


def _dual_step(auto, pb, eta):
    if auto:
        return pb.dual / (eta * jnp.maximum(pb.muF2, jnp.finfo(eta.dtype).tiny))
    return pb.dual


def _pd_update(variant, auto, pb, c: SPDHGCore, grad):
    eta = _primal_step(variant, pb, c.k)
    sig = _dual_step(auto, pb, eta)
    u = jnp.clip(c.u + (sig * pb.mu) * (pb.F @ c.x), -1, 1)
    x = c.x - eta * (grad + pb.gamma * c.x + pb.mu * pb.F.rmatvec(u))
    w = (c.k + 1).astype(x.dtype) if variant == "sc_nonuniform" else jnp.ones((), x.dtype)
    xbar, wsum = S.average(c.xbar, c.wsum, x, w, c.k >= pb.avg_start)
    return SPDHGCore(x, u, xbar, wsum, c.k + 1, eta, sig)


def _info(c, pb):
    return {"eta": c.eta, "dual_step": c.sig}


@functools.lru_cache(maxsize=None)
def make_step(loss_name: str, variant: str, auto_dual: bool, batch_size: int, segments: int):
    """The harness step (one segment of an epoch) of stochastic PDHG; cached, so hashable and stable."""
    loss = S.get_loss(loss_name)

    def update(c, pb, b):
        return _pd_update(variant, auto_dual, pb, c, S.batch_grad(loss, pb.data, c.x, b))

    step = S.make_epoch_step(update, batch_size, segments, _info)
    step.__name__ = f"spdhg_{variant}_step"
    return step


@functools.lru_cache(maxsize=None)
def make_batch_step(loss_name: str, variant: str, auto_dual: bool):
    """LPDHG: one full-gradient iteration."""
    loss = S.get_loss(loss_name)

    def step(c, pb):
        c = _pd_update(variant, auto_dual, pb, c, S.full_grad(loss, pb.data, c.x))
        return c, _info(c, pb)

    step.__name__ = f"lpdhg_{variant}_step"
    return step


_core = S.core_of


@functools.lru_cache(maxsize=None)
def objective(loss_name: str):
    loss = S.get_loss(loss_name)

    def fn(state, pb):
        return S.objective_at(loss, _core(state).xbar, pb)

    return fn


@functools.lru_cache(maxsize=None)
def _test_loss(loss_name: str):
    loss = S.get_loss(loss_name)

    def fn(state, pb):
        return S.test_loss_at(loss, _core(state).xbar, pb)

    return fn


def build_problem(X, y, F, mu, gamma, *, loss="logistic", scale=1.0, dual_step="auto", coupling=0.5,
                  X_test=None, y_test=None, layout="auto", avg_start=0):
    """Validate the inputs and build :class:`SPDHGProblem` (returns ``(problem, loss, auto_dual, meta)``)."""
    loss = S.get_loss(loss)
    dtype = S.working_dtype(X)
    data = S.prepare_data(X, y, loss, dtype, layout=layout)
    d = X.shape[1]
    Fop, normF2 = S.prepare_F(F, d, dtype)
    L = S.lipschitz_max_row(loss, data)
    auto = isinstance(dual_step, str)
    if auto and dual_step != "auto":
        raise ValueError(f"dual_step must be 'auto' or a positive number, got {dual_step!r}")
    dual = coupling if auto else dual_step
    if not (np.isfinite(dual) and dual > 0) or (auto and not dual < 1):
        raise ValueError(f"{'coupling' if auto else 'dual_step'} must be {'in (0, 1)' if auto else '> 0'}, "
                         f"got {dual!r}")
    test = None
    if X_test is not None:
        if X_test.shape[1] != d:
            raise ValueError(f"X_test has {X_test.shape[1]} columns, X has {d}")
        test = S.prepare_data(X_test, y_test, loss, dtype, name="X_test", layout=layout)
    a = lambda v: jnp.asarray(v, dtype)  # noqa: E731
    pb = SPDHGProblem(data, Fop, a(mu), a(gamma), a(scale), a(L), a(mu * mu * normF2), a(dual), test,
                      jnp.asarray(avg_start, jnp.int32))
    meta = {"L": L, "normF": float(np.sqrt(normF2)), "dual_rule": "auto" if auto else "constant",
            "dual": float(dual), "loss": loss.name, "dtype": str(np.dtype(dtype)), "n": int(X.shape[0]),
            "d": int(d), "m": int(Fop.shape[0]), "sparse_rows": data.cols is not None}
    return pb, loss, auto, meta


def init(pb: SPDHGProblem, x0=None) -> SPDHGCore:
    d, m = pb.F.shape[1], pb.F.shape[0]
    dt = pb.scale.dtype
    x = jnp.zeros(d, dt) if x0 is None else jnp.asarray(x0, dt)
    return SPDHGCore(x, jnp.zeros(m, dt), x, jnp.zeros((), dt), jnp.zeros((), jnp.int32),
                     jnp.zeros((), dt), jnp.zeros((), dt))


def _check_variant(variant, gamma):
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if variant != "gc" and not gamma > 0:
        raise ValueError(f"variant {variant!r} needs a strongly convex problem: gamma > 0 (got {gamma})")


def pilot_scale(step, core0, loop0, pb, grid, epochs, segments, n_sub, seed, objective_fn):
    """Pick ``scale`` from ``grid`` by short pilot runs (on the first ``n_sub`` rows of a seeded shuffle)."""
    n = pb.data.y.shape[0]
    if n_sub < n:
        rows = np.sort(np.random.default_rng(seed).permutation(n)[:n_sub])
        sub = S.LinData(pb.data.vals[rows], None if pb.data.cols is None else pb.data.cols[rows], pb.data.y[rows])
        pb = pb._replace(data=sub)
        loop0 = S.init_loop(n_sub, seed)
    best, best_val, values = None, np.inf, {}
    for s in grid:
        p = pb._replace(scale=jnp.asarray(s, pb.scale.dtype))
        out = harness.run_jit(step, (core0, loop0), p, maxiter=epochs * segments, log_every=epochs * segments)
        val = float(objective_fn(out.state, p))
        values[s] = val
        if np.isfinite(val) and val < best_val:
            best, best_val = s, val
    if best is None:
        raise RuntimeError("scale='auto': every pilot run diverged; pass a small scale explicitly")
    return best, values


def _avg_start(burn_in, n, batch_size):
    if not (np.isfinite(burn_in) and burn_in >= 0):
        raise ValueError(f"burn_in must be a number of epochs >= 0, got {burn_in!r}")
    return int(round(float(burn_in) * (n // int(batch_size))))


def _check_scale(scale):
    if isinstance(scale, str):
        if scale != "auto":
            raise ValueError(f"scale must be a positive number or 'auto', got {scale!r}")
        return
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive number or 'auto', got {scale!r}")


def spdhg(X, y, F, mu=1e-5, gamma=0.0, *, variant="gc", epochs=10, batch_size=1, scale=1.0, dual_step="auto",
          coupling=0.5, loss="logistic", seed=0, segments=1, burn_in=0.0, X_test=None, y_test=None, x0=None,
          pilot_epochs=1, pilot_samples=5000, maxiter=None, log_every=1, tol=0.0, max_time=None, metrics=None,
          callback=None, progress=None, checkpoint=None, resume=None, jit=False, parallel=None):
    r"""Stochastic PDHG for :math:`\frac1n\sum\ell(a_i^\top x, b_i) + \frac\gamma2\|x\|^2 + \mu\|Fx\|_1`.

    Args:
        X: ``(n, d)`` data, NumPy/JAX dense or SciPy sparse (kept sparse). Its float dtype is the working dtype.
        y: labels ±1 (logistic) or real targets (least squares).
        F: ``(m, d)`` penalty matrix, dense or SciPy sparse (e.g. ``ol.operators.graph_guided(X)``).
        mu, gamma: weights of :math:`\|Fx\|_1` and :math:`\frac12\|x\|^2` (both >= 0; SC variants need gamma > 0).
        variant: ``"gc"``, ``"sc_uniform"`` or ``"sc_nonuniform"`` (step and averaging rule, module docstring).
        epochs: passes over the data; ``batch_size``: samples per stochastic step (1..n).
        scale: primal step multiplier, or ``"auto"`` (pilot runs over a grid, module docstring).
        dual_step: ``"auto"`` (coupled to the primal step by ``coupling``) or a constant dual step.
        loss: ``"logistic"`` (default) or ``"least_squares"``.
        seed: seeds the per-epoch permutations (runs are reproducible bit for bit for a given seed).
        segments: log points (harness steps) per epoch; ``maxiter`` overrides ``epochs * segments``.
        X_test, y_test: adds the metric ``test_loss`` (mean loss at the averaged iterate).
        log_every, tol, max_time, metrics, callback, progress, checkpoint, resume, jit: see
            :func:`optlab.harness.run` (``tol`` > 0 stops when the averaged iterate's relative change per
            harness step falls below it).
        parallel: ``ol.parallel.Sync(W)`` or ``Async(W, max_delay, ...)``: every worker samples ``batch_size`` rows
            of its own shard per iteration and the gradient is all-reduced (:mod:`optlab.solvers.stochastic_parallel`;
            adds the ``sim_time`` metric).

    Returns:
        :class:`optlab.Result` with ``params = {"w": averaged iterate}``; the trace logs ``objective`` (at the
        averaged iterate), ``test_loss`` when a test set is given, ``eta`` and ``dual_step`` (last steps).
    """
    _check_variant(variant, gamma)
    _check_scale(scale)
    X = S.as_matrix(X)
    n = X.shape[0]
    S.check_common(mu, gamma, epochs, batch_size, n, segments)
    pb, loss_obj, auto, meta = build_problem(X, y, F, mu, gamma, loss=loss, scale=1.0 if scale == "auto" else scale,
                                             dual_step=dual_step, coupling=coupling, X_test=X_test, y_test=y_test,
                                             avg_start=_avg_start(burn_in, n, batch_size))
    step = make_step(loss_obj.name, variant, auto, int(batch_size), int(segments))
    core, loop = init(pb, x0), S.init_loop(n, seed)
    obj = objective(loss_obj.name)
    meta.update({"solver": "spdhg", "variant": variant, "batch_size": int(batch_size), "segments": int(segments),
                 "epochs": int(epochs), "seed": int(seed), "mu": float(mu), "gamma": float(gamma)})
    pb = resolve_scale(scale, step, core, loop, pb, obj, meta, pilot_epochs, segments, min(pilot_samples, n), seed)
    if parallel is not None:
        from . import stochastic_parallel as SP
        return SP.run(SP.spdhg_update(variant, auto), (("eta", "eta"), ("dual_step", "sig")),
                      pb, core, parallel, loss_name=loss_obj.name, seed=seed, batch_size=batch_size,
                      segments=segments, maxiter=epochs * segments if maxiter is None else maxiter,
                      objective=obj, test_loss=_test_loss(loss_obj.name), meta=meta, log_every=log_every, tol=tol,
                      max_time=max_time, metrics=metrics, callback=callback, progress=progress, checkpoint=checkpoint,
                      resume=resume, jit=jit)
    return _run(step, (core, loop), pb, obj, loss_obj, meta, epochs * segments if maxiter is None else maxiter,
                log_every=log_every, tol=tol, max_time=max_time, metrics=metrics, callback=callback,
                progress=progress, checkpoint=checkpoint, resume=resume, jit=jit)


def resolve_scale(scale, step, core, loop, pb, obj, meta, pilot_epochs, segments, n_sub, seed):
    """``scale="auto"``: pick the step multiplier by :func:`pilot_scale` over ``SCALE_GRID`` and record the pilot in
    ``meta``; a number is kept. Returns the problem with the chosen scale; ``meta["scale"]`` is set either way."""
    if scale == "auto":
        t0 = time.perf_counter()
        best, values = pilot_scale(step, core, loop, pb, SCALE_GRID, int(pilot_epochs), int(segments), int(n_sub),
                                   seed, jax.jit(obj))
        pb = pb._replace(scale=jnp.asarray(best, pb.scale.dtype))
        meta.update({"pilot_time": time.perf_counter() - t0, "pilot_objectives": {str(k): v for k, v in values.items()}})
        scale = best
    meta["scale"] = float(scale)
    return pb


def _run(step, state, pb, obj, loss_obj, meta, maxiter, *, log_every, tol, max_time, metrics, callback, progress,
         checkpoint, resume, jit, params=None):
    all_metrics = {"objective": obj}
    if pb.test is not None:
        all_metrics["test_loss"] = _test_loss(loss_obj.name)
    all_metrics.update(metrics or {})
    stop = "rel_change" if tol and tol > 0 else None
    if stop is not None:
        step = _with_rel_change(step)
    if jit:
        return harness.run_jit(step, state, pb, maxiter=maxiter, log_every=log_every, tol=tol, stop_metric=stop,
                               metrics=all_metrics)
    return harness.run(step, state, pb, maxiter=maxiter, log_every=log_every, tol=tol, stop_metric=stop,
                       max_time=max_time, metrics=all_metrics,
                       params=params or (lambda s: {"w": _core(s).xbar}), callback=callback,
                       progress=progress, checkpoint=checkpoint, resume=resume, meta=meta)


@functools.lru_cache(maxsize=None)
def _with_rel_change(step):
    def wrapped(state, pb):
        old = _core(state).xbar
        state, info = step(state, pb)
        new = _core(state).xbar
        rel = jnp.linalg.norm(new - old) / jnp.maximum(jnp.linalg.norm(new), jnp.finfo(new.dtype).tiny)
        return state, {**info, "rel_change": rel}

    return wrapped


def lpdhg(X, y, F, mu=1e-5, gamma=0.0, *, variant="gc", maxiter=100, scale=1.0, dual_step="auto", coupling=0.5,
          loss="logistic", X_test=None, y_test=None, x0=None, log_every=1, tol=0.0, max_time=None, metrics=None,
          callback=None, progress=None, checkpoint=None, resume=None, jit=False):
    """Linearised (batch) PDHG, the full-gradient reference of :func:`spdhg`: one harness step = one iteration =
    one pass over the data. Same arguments as :func:`spdhg` (``maxiter`` iterations instead of epochs)."""
    _check_variant(variant, gamma)
    _check_scale(scale)
    if scale == "auto":
        raise ValueError("lpdhg: scale='auto' is only offered by the stochastic solvers; pass a number")
    X = S.as_matrix(X)
    n = X.shape[0]
    S.check_common(mu, gamma, 1, 1, n, 1)
    pb, loss_obj, auto, meta = build_problem(X, y, F, mu, gamma, loss=loss, scale=scale, dual_step=dual_step,
                                             coupling=coupling, X_test=X_test, y_test=y_test)
    meta.update({"solver": "lpdhg", "variant": variant, "scale": float(scale), "mu": float(mu),
                 "gamma": float(gamma)})
    return _run(make_batch_step(loss_obj.name, variant, auto), init(pb, x0), pb, objective(loss_obj.name),
                loss_obj, meta, maxiter, log_every=log_every, tol=tol, max_time=max_time, metrics=metrics,
                callback=callback, progress=progress, checkpoint=checkpoint, resume=resume, jit=jit)
