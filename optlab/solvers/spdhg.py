r"""Stochastic primal-dual hybrid gradient for graph-guided models (:func:`spdhg`) and its batch reference
(:func:`lpdhg`); Qiao, Lin, Qin & Lu, Neurocomputing 2018, arXiv:1801.06934."""
from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from .. import harness, validate
from ..algorithm import Algorithm, Rows
from . import _step_rules as R
from . import _stochastic as S

__all__ = ["spdhg", "lpdhg", "SPDHGCore", "SPDHGProblem", "algorithm", "batch_algorithm", "build_problem", "init",
           "margins_on_test_set", "VARIANTS"]

VARIANTS = S.VARIANTS


class SPDHGCore(NamedTuple):
    x: jax.Array        # (d,) primal iterate x_k
    u: jax.Array        # (m,) dual iterate y_k in [-1, 1]^m
    xbar: jax.Array     # (d,) averaged iterate (the output)
    wsum: jax.Array     # () sum of averaging weights
    k: jax.Array        # () int32, stochastic iterations done
    eta: jax.Array      # () last primal step r_k
    sig: jax.Array      # () last dual step s_k


class SPDHGProblem(NamedTuple):
    data: Rows           # training rows (vals, cols, y, weight): split over workers
    F: S.Op
    mu: jax.Array
    gamma: jax.Array
    scale: jax.Array
    L: jax.Array
    muF2: jax.Array      # mu^2 ||F||^2
    dual: jax.Array      # constant dual step s, or the coupling theta when the rule is "auto"
    test: Any            # LinData of the test set (shared), or None
    avg_start: jax.Array  # () int32: averaging starts at this iteration (burn-in)
    decay: jax.Array     # () weight omega of sqrt(k+1) in the GC step (1: the paper's rule)


def _dual_step(auto, pb, eta):
    if auto:
        # no structured penalty (mu = 0 or F = 0): the dual term is 0 whatever the step; take 0 (theta / (eta * tiny)
        # overflows to inf, and inf * 0 made the first iterate NaN)
        return jnp.where(pb.muF2 > 0, pb.dual / (eta * jnp.maximum(pb.muF2, jnp.finfo(eta.dtype).tiny)), 0)
    return pb.dual


def _pd_update(variant, auto, pb, c: SPDHGCore, grad):
    eta = R.primal_step(variant, pb.scale, pb.decay, pb.gamma, pb.L, c.k, 1)
    sig = _dual_step(auto, pb, eta)
    u = jnp.clip(c.u + (sig * pb.mu) * (pb.F @ c.x), -1, 1)
    x = c.x - eta * (grad + pb.gamma * c.x + pb.mu * pb.F.rmatvec(u))
    w = (c.k + 1).astype(x.dtype) if variant == "sc_nonuniform" else jnp.ones((), x.dtype)
    xbar, wsum = S.average(c.xbar, c.wsum, x, w, c.k >= pb.avg_start)
    return SPDHGCore(x, u, xbar, wsum, c.k + 1, eta, sig)


def _info(c):
    return {"eta": c.eta, "dual_step": c.sig}


@functools.lru_cache(maxsize=None)
def algorithm(loss_name: str, variant: str, auto_dual: bool, batch_size: int, segments: int, n_blocks: int,
              block_size: int, n: int, with_test: bool = False, stop: bool = False) -> Algorithm:
    """SPDHG as an :class:`optlab.algorithm.Algorithm`: one harness step = one segment of an epoch over ``n`` rows
    in ``n_blocks`` blocks of ``block_size`` (padded) rows; ``stop`` adds ``rel_change`` (for ``tol``)."""
    loss, total = S.get_loss(loss_name), n_blocks * batch_size

    def update(c, rows_state, pb, b, comm):
        return _pd_update(variant, auto_dual, pb, c, S.minibatch_grad(loss, pb.data, c.x, b, total, comm)), rows_state

    update.__name__ = f"spdhg_{variant}"
    return S.segment_algorithm("spdhg", update, _info, loss_name, batch_size, segments, block_size, n, with_test, stop)


@functools.lru_cache(maxsize=None)
def batch_algorithm(loss_name: str, variant: str, auto_dual: bool, n: int, with_test: bool = False,
                    stop: bool = False) -> Algorithm:
    """LPDHG as an :class:`optlab.algorithm.Algorithm` (one harness step = one full-gradient iteration)."""
    loss = S.get_loss(loss_name)

    def update(c, pb, comm):
        return _pd_update(variant, auto_dual, pb, c, S.full_grad(loss, pb.data, c.x, n, comm))

    update.__name__ = f"lpdhg_{variant}"
    return S.batch_algorithm("lpdhg", update, _info, loss_name, n, with_test, stop)


def margins_on_test_set(state, problem):
    """:math:`a_i^\\top\\bar x` on the test rows at the averaged iterate (for test metrics ``fn(state, problem)``
    of any solver of this family)."""
    return S.margins(problem.test, S._core(state).xbar)


def build_problem(X, y, F, mu, gamma, *, loss="logistic", scale=1.0, dual_step="auto", coupling=0.5,
                  X_test=None, y_test=None, layout="auto", avg_start=0, n_blocks=1, step_decay="auto", per_epoch=1):
    """Validate the inputs and build :class:`SPDHGProblem` (returns ``(problem, loss, auto_dual, meta)``);
    ``per_epoch``: iterations per epoch (for ``step_decay="auto"``, :func:`optlab.solvers._step_rules.step_decay`)."""
    loss = S.get_loss(loss)
    rows, test, Fop, normF2, L, dtype, meta = S.prepare(X, y, F, loss, X_test, y_test, n_blocks, layout)
    decay = R.step_decay(step_decay, L, per_epoch)
    auto = isinstance(dual_step, str)
    if auto and dual_step != "auto":
        raise ValueError(f"dual_step must be 'auto' or a positive number, got {dual_step!r}")
    dual = (validate.in_interval("coupling", coupling, 0.0, 1.0, low_open=True, high_open=True) if auto
            else validate.positive("dual_step", dual_step, example="5e-5"))
    a = lambda v: jnp.asarray(v, dtype)  # noqa: E731
    pb = SPDHGProblem(rows, Fop, a(mu), a(gamma), a(scale), a(L), a(mu * mu * normF2), a(dual), test,
                      jnp.asarray(avg_start, jnp.int32), a(decay))
    meta.update({"dual_rule": "auto" if auto else "constant", "dual": float(dual), "step_decay": float(decay)})
    return pb, loss, auto, meta


def _core0(pb, x0=None) -> SPDHGCore:
    d, m = pb.F.shape[1], pb.F.shape[0]
    dt = pb.scale.dtype
    x = S.start_point(x0, d, dt)
    return SPDHGCore(x, jnp.zeros(m, dt), x, jnp.zeros((), dt), jnp.zeros((), jnp.int32),
                     jnp.zeros((), dt), jnp.zeros((), dt))


def init(pb: SPDHGProblem, n_blocks: int = 1, seed=0, x0=None) -> S.StochState:
    """The state before the first step (``seed`` may be traced, e.g. under ``jax.vmap``)."""
    return S.init_state(_core0(pb, x0), pb.data.y.shape[0], n_blocks, seed)


def spdhg(X, y, F, mu=1e-5, gamma=0.0, *, variant="gc", epochs=10, batch_size=1, n_blocks=None, scale=1.0,
          step_decay="auto", dual_step="auto", coupling=0.5, loss="logistic", seed=None, key=None, segments=1,
          burn_in="auto", X_test=None, y_test=None, x0=None, pilot_epochs=1, pilot_samples=5000, maxiter=None,
          log_every=1, tol=0.0, parallel=None, **run):
    r"""Stochastic primal-dual hybrid gradient for graph-guided models (Qiao, Lin, Qin & Lu, Neurocomputing 2018,
    arXiv:1801.06934) for

    .. math:: \min_x\; P(x) = \frac1n\sum_{i=1}^n \ell(a_i^\top x, b_i) + \frac\gamma2\|x\|^2 + \mu\|Fx\|_1

    (graph-guided logistic regression GGLR, GGRLR with :math:`\gamma > 0`; least squares: the generalised fused
    lasso). Saddle form :math:`\mu\|Fx\|_1 = \max_{\|y\|_\infty\le1}\langle y, \mu Fx\rangle`; one iteration on the
    mini-batch :math:`I_k` with gradient :math:`G_k = \frac1{|I_k|}\sum_{i\in I_k}\nabla\ell_i(x_k)`:

    .. math::
        y_{k+1} = \Pi_{[-1,1]^m}\bigl(y_k + s_k\,\mu F x_k\bigr),\qquad
        x_{k+1} = x_k - r_k\bigl(G_k + \gamma x_k + \mu F^\top y_{k+1}\bigr),

    and the output is an average of the :math:`x_{k+1}`. With :math:`L = \beta_\ell\max_i\|a_i\|^2`
    (:math:`\beta_\ell` = 1/4 logistic, 1 least squares), the variants (the paper's constants) are
    ``gc``: :math:`r_k = \text{scale}/(\omega\sqrt{k+1} + L)` (the paper's :math:`\omega = 1`), uniform average,
    :math:`O(1/\sqrt t)`;
    ``sc_uniform``: :math:`r_k = \text{scale}/(\gamma(k+1) + L)`, uniform average, :math:`O(\log t/t)`;
    ``sc_nonuniform``: :math:`r_k = 2\,\text{scale}/(\gamma(k+2) + 2L)`, weight :math:`k+1` on :math:`x_{k+1}`,
    :math:`O(1/t)`.

    **Default step rule [ours]** (the reasons: :mod:`optlab.solvers._step_rules`). ``step_decay="auto"``:
    :math:`\omega = L/\sqrt{K}` with :math:`K` = one epoch of iterations, so
    :math:`r_k = \text{scale}/\bigl(L(1 + \sqrt{(k+1)/K})\bigr)`, the :math:`O(1/\sqrt k)` decay counted in epochs
    instead of samples; a number is :math:`\omega`. ``burn_in="auto"``: the output averages the last half of the run
    (α-suffix averaging; the paper averages from the start, ``burn_in=0``). ``step_decay=1, burn_in=0`` is the
    paper's iteration.

    **Dual step [ours].** ``dual_step="auto"`` keeps the pair in the PDHG stability region
    :math:`s_k r_k\|\mu F\|_2^2 = \theta < 1`: :math:`s_k = \theta/(r_k\mu^2\|F\|_2^2)`, ``coupling``
    :math:`\theta = 0.5` (the paper's constant :math:`s = 5\cdot10^{-5}` with :math:`\mu = 10^{-5}` leaves
    :math:`y` near 0, so the ℓ1 term barely acts); a number is a constant dual step (``5e-5`` is the paper's).
    ``scale="auto"`` runs serial pilots (``pilot_epochs`` on at most ``pilot_samples`` rows) over
    :math:`2^{-4},\dots,2^3` and keeps the best averaged objective (cost in ``trace.meta["pilot_time"]``).

    **Sampling.** The rows are cut into ``n_blocks`` blocks (default 1; with ``parallel``, the worker count); every
    epoch each block is reshuffled and each iteration takes the next ``batch_size`` rows of every block
    (without replacement), :math:`|I_k| = n_\text{blocks}\cdot\text{batch\_size}`; an epoch is
    :math:`\lfloor\lceil n/n_\text{blocks}\rceil/\text{batch\_size}\rfloor` iterations. One harness step is one
    segment of an epoch (``segments`` per epoch), so ``maxiter`` and the trace count segments.

    **Data-parallel** (``parallel=Sync(W)`` or ``SimulatedAsync(W, max_delay)``, ``W`` dividing ``n_blocks``):
    each worker holds ``n_blocks / W`` blocks and the sums of :math:`G_k` are all-reduced, so ``Sync(W)`` gives the
    serial run with the same ``n_blocks`` up to rounding (a stratified mini-batch method). Under ``SimulatedAsync``
    the gradient of a multi-iteration segment is a barrier (synchronous); with ``segments`` = iterations per epoch
    every harness step is one iteration and a worker's contribution may be up to ``max_delay`` iterations stale
    (computed at the iterate and on the batch of the iteration it last read); with several iterations per step it
    warns that the run is the ``Sync`` run. The simulated clock (``sim_time``) charges a worker ``speed · n_blocks / W``
    per iteration (its blocks' mini-batches; one unit = one block's batch on a speed-1 worker).

    Args:
        X: ``(n, d)`` data, NumPy/JAX dense or SciPy sparse (kept sparse). Its float dtype is the working dtype.
        y: labels ±1 (logistic) or real targets (least squares).
        F: ``(m, d)`` penalty matrix, dense or SciPy sparse (e.g. ``ol.operators.graph_guided(X)``).
        mu, gamma: weights of :math:`\|Fx\|_1` and :math:`\frac12\|x\|^2` (both >= 0; SC variants need gamma > 0).
        variant: ``"gc"``, ``"sc_uniform"`` or ``"sc_nonuniform"``.
        epochs: passes over the data; ``batch_size``: rows per block per stochastic step; ``n_blocks``: sampling
            strata (above).
        scale: primal step multiplier, or ``"auto"``; step_decay: ``"auto"`` or :math:`\omega` (above).
        dual_step, coupling: the dual step rule (above).
        loss: ``"logistic"`` (default) or ``"least_squares"``.
        seed: seeds the per-epoch permutations (runs are reproducible bit for bit for a given seed); default 0.
        key: a JAX PRNG key instead of ``seed`` (``jax.random.key(i)`` or raw ``uint32[2]``; not both): the run
            with ``key=k`` is the run with ``seed=int(jax.random.bits(k, (), jnp.uint32))``. In jit mode the key
            may be traced, so ``jax.vmap`` over ``jax.random.split(key, R)`` gives ``R`` runs in one batched call
            (``scale`` must then be a number).
        segments: log points (harness steps) per epoch; ``maxiter`` overrides ``epochs * segments``.
        burn_in: epochs before averaging starts (until then the reported iterate is the last one); ``"auto"``:
            half of ``epochs``. x0: starting point (default 0).
        X_test, y_test: adds the metric ``test_loss`` (mean loss at the averaged iterate).
        log_every, tol, **run: the harness options (``max_time``, ``metrics``, ``callback``, ``progress``,
            ``checkpoint``, ``resume``, ``jit``) of :func:`optlab.harness.solve` (``tol`` > 0 stops when the
            averaged iterate's relative change per harness step falls below it).
        parallel: an executor of :mod:`optlab.parallel` (adds the ``sim_time`` and ``arrived`` diagnostics).

    Returns:
        :class:`optlab.Result` with ``params = {"w": averaged iterate}``; the trace logs ``objective`` (at the
        averaged iterate), ``test_loss`` when a test set is given, ``eta`` and ``dual_step`` (last steps).

    Example:
        >>> import numpy as np, optlab as ol
        >>> rng = np.random.default_rng(0); X = rng.normal(size=(300, 8)); y = np.sign(X[:, 0] + 0.1)
        >>> res = ol.spdhg(X, y, ol.operators.first_difference(8), mu=1e-2, epochs=5, progress=False)
        >>> sorted(res.params), res.n_iter
        (['w'], 5)
    """
    S.check_variant(variant, gamma)
    S.check_scale(scale)
    burn_in = R.burn_in(burn_in, epochs)
    smp = S.sampling(X, mu, gamma, epochs=epochs, batch_size=batch_size, n_blocks=n_blocks, segments=segments,
                     burn_in=burn_in, parallel=parallel, tol=tol, seed=seed, key=key)
    pb, loss_obj, auto, meta = build_problem(smp.X, y, F, mu, gamma, loss=loss, dual_step=dual_step,
                                             scale=1.0 if scale == "auto" else scale, coupling=coupling,
                                             X_test=X_test, y_test=y_test, avg_start=smp.avg_start,
                                             n_blocks=smp.n_blocks, step_decay=step_decay,
                                             per_epoch=smp.block_size // smp.batch_size)
    meta.update({"variant": variant, "mu": float(mu), "gamma": float(gamma)})
    make_alg = functools.partial(algorithm, loss_obj.name, variant, auto, smp.batch_size, smp.segments, smp.n_blocks)
    return S.solve(make_alg, _core0(pb, x0), pb, smp, meta, scale=scale, pilot_epochs=pilot_epochs,
                   pilot_samples=pilot_samples, parallel=parallel, maxiter=maxiter, run=dict(run, log_every=log_every))


def lpdhg(X, y, F, mu=1e-5, gamma=0.0, *, variant="gc", maxiter=100, scale=1.0, step_decay=1.0, dual_step="auto",
          coupling=0.5, loss="logistic", X_test=None, y_test=None, x0=None, log_every=1, tol=0.0, parallel=None,
          **run):
    r"""Linearised (batch) PDHG, the full-gradient reference of :func:`spdhg`: the same iteration with
    :math:`G_k = \nabla\frac1n\sum_i\ell(a_i^\top x_k, b_i)`, the same step rules (``variant``, ``scale``, dual step;
    ``step_decay`` defaults to the paper's 1, ``"auto"`` takes one iteration as the epoch);
    one harness step = one iteration = one pass over the data. Same arguments as :func:`spdhg` (``maxiter``
    iterations instead of epochs); ``parallel`` splits the rows over workers (the gradient's sum is all-reduced).

    Example:
        >>> import numpy as np, optlab as ol
        >>> rng = np.random.default_rng(0); X = rng.normal(size=(100, 5)); y = np.sign(X[:, 0] + 0.1)
        >>> ol.lpdhg(X, y, ol.operators.first_difference(5), mu=1e-2, maxiter=20, progress=False).n_iter
        20
    """
    S.check_variant(variant, gamma)
    executor, tol, X = S.batch_options("lpdhg", X, mu, gamma, scale, parallel, tol)
    n = X.shape[0]
    pb, loss_obj, auto, meta = build_problem(X, y, F, mu, gamma, loss=loss, scale=scale, dual_step=dual_step,
                                             coupling=coupling, X_test=X_test, y_test=y_test,
                                             n_blocks=executor.n_workers, step_decay=step_decay)
    meta.update({"variant": variant, "scale": float(scale), "mu": float(mu), "gamma": float(gamma)})
    alg = batch_algorithm(loss_obj.name, variant, auto, n, pb.test is not None, bool(tol and tol > 0))
    return harness.solve(alg, _core0(pb, x0), pb, executor=parallel, maxiter=maxiter, log_every=log_every, tol=tol,
                         meta=meta, **run)
