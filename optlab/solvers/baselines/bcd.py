r"""Block coordinate descent with three-variable splitting for MLP training (Zeng et al. 2019), a baseline for iPDLAM.

:func:`bcd` carries the equations. The method is an :class:`optlab.algorithm.Algorithm` (:func:`algorithm`): the
samples and their variables :math:`V_i, U_i` live in :class:`optlab.algorithm.Rows`, the weight updates' sums over
samples go through ``comm.reduce``, so ``parallel=`` runs it under any executor of :mod:`optlab.parallel`.
"""
from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ... import harness, validate
from ...algorithm import Algorithm, Comm, Rows, serial_comm
from .. import mlp

__all__ = ["bcd", "BCDState", "BCDProblem", "make_step", "relu_prox", "algorithm", "objective", "stationarity"]


class BCDState(NamedTuple):
    W: tuple        # augmented weights (h_{i-1}+1, h_i), i = 1..N (shared)
    rows: Rows      # Rows(V=(V_1..V_N), U=(U_1..U_N)): per-sample variables, each (n, h_i)


class BCDProblem(NamedTuple):
    data: Rows          # Rows(X=X, Y=one-hot targets, y=labels, weight=None | ones (parallel: padding weighs 0))
    n: Any              # number of real samples (parallel), else None
    XtX: jax.Array      # [X, 1]ᵀ[X, 1], computed once from all samples (the W_1 update's Gram matrix)
    X_test: Any
    y_test: Any
    gamma: jax.Array
    rho: jax.Array
    alpha: jax.Array


def _aug(V):
    return jnp.concatenate([V, jnp.ones((V.shape[0], 1), V.dtype)], axis=1)


def relu_prox(v, m, gamma, tau):
    """Exact entrywise minimiser of ``gamma/2 (v - relu(u))^2 + tau/2 (u - m)^2`` over ``u``."""
    u_pos = jnp.maximum(0.0, (gamma * v + tau * m) / (gamma + tau))
    u_neg = jnp.minimum(0.0, m)
    f_pos = gamma / 2 * (v - u_pos) ** 2 + tau / 2 * (u_pos - m) ** 2
    f_neg = gamma / 2 * v**2 + tau / 2 * (u_neg - m) ** 2
    return jnp.where(f_pos <= f_neg, u_pos, u_neg)


def _row_sum(x, weight):
    """Σ of the entries of a per-sample array ``x`` (rows weighted when ``weight`` is given)."""
    return jnp.sum(x) if weight is None else jnp.sum(weight[:, None] * x)


def objective(state: BCDState, prob: BCDProblem, comm: Comm = serial_comm):
    """The split objective of :func:`bcd` (its data sums through ``comm.reduce``)."""
    w = prob.data.weight
    V, U = state.rows.V, state.rows.U
    N = len(state.W)
    total = (0.5 * comm.reduce("obj_fit", _row_sum((V[-1] - prob.data.Y) ** 2, w))
             + prob.gamma / 2 * comm.reduce("obj_out", _row_sum((V[-1] - U[-1]) ** 2, w)))
    for i in range(N):
        inp = prob.data.X if i == 0 else V[i - 1]
        total = total + prob.rho / 2 * comm.reduce(f"obj_lin{i}", _row_sum((U[i] - _aug(inp) @ state.W[i]) ** 2, w))
        if i < N - 1:
            total = total + prob.gamma / 2 * comm.reduce(f"obj_act{i}", _row_sum((V[i] - jax.nn.relu(U[i])) ** 2, w))
    return total


def _solve_spd(M, B):
    return jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(M), B)


def stationarity(state: BCDState, prob: BCDProblem, comm: Comm = serial_comm):
    r"""The first-order optimality residual of the split objective :math:`\Psi(W, V, U)` of :func:`bcd`: the norm
    of its (least-norm) gradient over all blocks, zero exactly at its stationary points.

    The weight gradients are sums over samples (``comm.reduce("stationarity_W<i>")``); the :math:`V_i, U_i`
    gradients are row-local and only their squared norms are summed. Where a hidden :math:`U_i` entry is exactly 0
    (the ReLU kink, where :func:`relu_prox` often lands) the term :math:`\tfrac\gamma2(v - (u)_+)^2` has one-sided
    derivatives 0 and :math:`-\gamma v`, so the residual takes the least-norm element :math:`p - \gamma v t`,
    :math:`t\in[0, 1]`, of the (Clarke) subdifferential, :math:`p` being the rest of the gradient."""
    def local(W, V, U):
        return objective(BCDState(W, Rows(V=V, U=U)), prob, serial_comm)   # this worker's rows, not reduced

    gW, gV, gU = jax.grad(local, argnums=(0, 1, 2))(state.W, state.rows.V, state.rows.U)
    sq = 0.0
    for i, g in enumerate(gW):
        g = comm.reduce(f"stationarity_W{i}", g)
        sq = sq + jnp.vdot(g, g)
    rows_sq = 0.0
    N = len(state.W)
    for i in range(N):
        g_u = gU[i]
        if i < N - 1:     # the ReLU kink: jax differentiates (u)_+ as 0 at u = 0, i.e. gives p
            gv = -prob.gamma * state.rows.V[i]
            safe = jnp.where(gv == 0, 1.0, gv)
            t = jnp.where(gv == 0, 0.0, jnp.clip(-g_u / safe, 0.0, 1.0))
            g_u = jnp.where(state.rows.U[i] == 0, g_u + t * gv, g_u)
        rows_sq = rows_sq + jnp.vdot(gV[i], gV[i]) + jnp.vdot(g_u, g_u)   # padding rows (weight 0): gradient 0
    return jnp.sqrt(sq + comm.reduce("stationarity_rows", rows_sq))


@functools.lru_cache(maxsize=None)
def make_step(n_layers: int):
    """The backward-sweep ``step(state, problem, comm=serial_comm) -> (state, info)`` (cached per depth)."""

    def step(state: BCDState, prob: BCDProblem, comm: Comm = serial_comm):
        g, r, a = prob.gamma, prob.rho, prob.alpha
        X, w = prob.data.X, prob.data.weight
        W, V, U = list(state.W), list(state.rows.V), list(state.rows.U)
        N = n_layers
        V[-1] = (prob.data.Y + g * U[-1] + a * V[-1]) / (1 + g + a)
        for i in reversed(range(N)):
            inp = _aug(X if i == 0 else V[i - 1])
            z = inp @ W[i]
            if i == N - 1:
                U[i] = (g * V[i] + r * z + a * U[i]) / (g + r + a)
            else:
                U[i] = relu_prox(V[i], (r * z + a * U[i]) / (r + a), g, r + a)
            eye = jnp.eye(inp.shape[1], dtype=inp.dtype)
            winp = inp if w is None else w[:, None] * inp      # padding rows (weight 0) drop out of the sums
            gram = prob.XtX if i == 0 else comm.reduce(f"gram{i}", winp.T @ inp)
            W[i] = _solve_spd(r * gram + a * eye, comm.reduce(f"rhs{i}", r * winp.T @ U[i]) + a * W[i])
            if i > 0:
                A, b = W[i][:-1], W[i][-1]
                eye = jnp.eye(A.shape[0], dtype=A.dtype)
                rhs = g * jax.nn.relu(U[i - 1]) + a * V[i - 1] + r * (U[i] - b) @ A.T
                V[i - 1] = _solve_spd((g + a) * eye + r * A @ A.T, rhs.T).T
        return BCDState(tuple(W), Rows(V=tuple(V), U=tuple(U))), {"rel_change": mlp.rel_change(tuple(W), state.W)}

    step.__name__ = f"bcd{n_layers}_step"
    return step


def _params(state: BCDState):
    return {"W": tuple(w[:-1] for w in state.W), "b": tuple(w[-1] for w in state.W)}


def _scores(state, X):
    return mlp.predictor("relu")(_params(state), X)


@functools.lru_cache(maxsize=None)
def algorithm(n_layers: int, with_test: bool = False) -> Algorithm:
    """BCD as an :class:`optlab.algorithm.Algorithm` (cached per depth): stops when the weights' relative change
    ``rel_change`` <= ``tol``, and then is ``"converged"`` only if :func:`stationarity` fell (else ``"stalled"``)."""
    metrics = (("objective", objective),) + mlp.fit_metrics(_scores, "squared", with_test, test_loss=False)
    return Algorithm(name="bcd", step=make_step(n_layers), metrics=metrics, params=_params,
                     stop_metric="rel_change", predict=mlp.predictor("relu"), stationarity=stationarity)


def bcd(X, y, *, layers, iters=100, gamma=1.0, rho=1.0, alpha=5.0, seed=0, params0=None, X_test=None, y_test=None,
        maxiter=None, parallel=None, label="BCD", tol=0.0, **run):
    r"""Three-splitting block coordinate descent (Zeng, Lau, Lin & Yao, "Global convergence of block coordinate
    descent in deep learning", ICML 2019) for a ReLU MLP with squared loss on one-hot targets.

    Rows are samples; :math:`V_0 = X`; :math:`\bar V = [V, \mathbf 1]` appends the bias column, so
    :math:`W_i \in \mathbb R^{(h_{i-1}+1)\times h_i}` holds the weights and (last row) the bias; ReLU hidden
    layers, linear output, one-hot targets :math:`Y`:

    .. math::
        \min_{W,V,U}\ \tfrac12\|V_N - Y\|_F^2
          + \tfrac\gamma2\sum_{i<N}\|V_i - \sigma(U_i)\|_F^2 + \tfrac\gamma2\|V_N - U_N\|_F^2
          + \tfrac\rho2\sum_{i=1}^N\|U_i - \bar V_{i-1}W_i\|_F^2 .

    One iteration is a backward sweep (each block's exact minimiser given the others' newest values, plus a
    proximal term :math:`\tfrac\alpha2\|\cdot - \cdot^{\text{old}}\|^2`), in the order
    :math:`V_N, U_N, W_N, V_{N-1}, U_{N-1}, W_{N-1}, \dots, W_1`:

    * :math:`V_N = (Y + \gamma U_N + \alpha V_N^{\text{old}})/(1 + \gamma + \alpha)`;
    * :math:`U_N = (\gamma V_N + \rho\bar V_{N-1}W_N + \alpha U_N^{\text{old}})/(\gamma + \rho + \alpha)`;
    * :math:`W_i = (\rho\bar V_{i-1}^\top\bar V_{i-1} + \alpha I)^{-1}(\rho\bar V_{i-1}^\top U_i + \alpha
      W_i^{\text{old}})`;
    * :math:`V_i = \bigl(\gamma\sigma(U_i) + \alpha V_i^{\text{old}} + \rho(U_{i+1} - \mathbf 1 b_{i+1}^\top)
      A_{i+1}^\top\bigr)\bigl((\gamma + \alpha)I + \rho A_{i+1}A_{i+1}^\top\bigr)^{-1}`, :math:`A_{i+1}` the weight
      rows of :math:`W_{i+1}`;
    * :math:`U_i` (ReLU): the scalar problem :math:`\min_u \tfrac\gamma2(v - (u)_+)^2 + \tfrac{\rho+\alpha}2(u - m)^2`,
      :math:`m = (\rho z + \alpha u^{\text{old}})/(\rho + \alpha)`, :math:`z = \bar V_{i-1}W_i`, solved exactly per
      entry (:func:`relu_prox`).

    Every update is an exact block minimisation with a proximal term, so the objective never increases. Their MNIST
    setting is γ = ρ = 1, α = 5 (the defaults). Starts from the same seeded weights as :func:`optlab.ipdlam`
    (V, U from a forward pass).

    **Data-parallel** (``parallel=``): the samples and their :math:`V_i, U_i` rows are split over the workers; the
    :math:`V, U` updates are row-wise, and the :math:`W_i` update's sums :math:`\bar V_{i-1}^\top\bar V_{i-1}` and
    :math:`\bar V_{i-1}^\top U_i` are sums over workers (``comm.reduce``; the Gram matrix of :math:`[X, 1]` is formed
    once from all samples). ``Sync(n)`` gives the serial iterates to rounding. ``SimulatedAsync(n, max_delay)``:
    the server's :math:`W_i` solves with the last delivered sums of each worker (each computed at the weights that
    worker last read) and its proximal anchor at the current :math:`W_i`; each arrived worker updates its own rows
    at the weights it read. ``max_delay=0`` is ``Sync`` bit for bit.

    Args:
        X, y: training data ``(n, d)`` and integer labels in ``0..C-1``.
        layers: widths ``[d, h_1, ..., C]``.
        iters: sweeps (``maxiter`` is an alias).
        gamma, rho, alpha: the penalties γ, ρ and the proximal weight α (all > 0).
        seed, params0: initial weights (:func:`optlab.solvers.mlp.init_params`) or given ``{"W", "b"}``.
        X_test, y_test: adds the metric ``test_acc``.
        **run: the harness options ``metrics``, ``callback``, ``log_every``, ``max_time``, ``progress``,
            ``checkpoint``, ``resume``, ``jit`` (a :class:`optlab.harness.JitRun`): see :func:`optlab.harness.solve`.
        parallel: an executor of :mod:`optlab.parallel` (``Sync(n)``, ``SimulatedAsync(n, max_delay)``).
        tol: stop when the weights' relative change per sweep ``rel_change`` <= tol (default 0: only at an exact
            fixed point); the status is then ``"converged"`` only if the split objective's first-order residual
            (:func:`stationarity`) fell well below its start, else ``"stalled"`` (see :func:`optlab.harness.run`).

    Returns:
        :class:`optlab.Result`; the trace logs ``objective`` (the split objective), ``train_loss`` (mean squared
        loss of a forward pass), ``train_acc``, ``test_acc``, ``rel_change``;
        ``predict(X)`` returns the forward-pass scores.

    Example:
        >>> import numpy as np, optlab as ol
        >>> from optlab.solvers.baselines.bcd import bcd
        >>> rng = np.random.default_rng(0); X = rng.normal(size=(200, 5)); y = (X[:, 0] > 0).astype(int)
        >>> res = bcd(X, y, layers=[5, 16, 2], iters=50, progress=False)
        >>> res.predict(X).shape, bool(res.trace.last("objective") < res.trace["objective"][0])
        ((200, 2), True)
    """
    X, y, layers, X_test, y_test = mlp.check_data(X, y, layers, X_test, y_test, solver="bcd")
    for name, v in (("gamma", gamma), ("rho", rho), ("alpha", alpha)):
        validate.positive(name, v)
    validate.executor(parallel)
    seed = validate.seed("seed", seed)
    iters = validate.count("maxiter" if maxiter is not None else "iters", iters if maxiter is None else maxiter)
    tol = validate.tolerance("tol", tol)
    dtype = X.dtype
    params0 = mlp.start_params(params0, layers, "relu", seed, dtype)
    W = tuple(jnp.concatenate([w, b[None, :]], axis=0).astype(dtype) for w, b in zip(params0["W"], params0["b"]))
    V, U, a = [], [], X
    for i, w in enumerate(W):
        z = _aug(a) @ w
        a = z if i == len(W) - 1 else jax.nn.relu(z)
        U.append(z)
        V.append(a)
    state = BCDState(W, Rows(V=tuple(V), U=tuple(U)))
    as_dt = functools.partial(jnp.asarray, dtype=dtype)
    n = X.shape[0]
    data = Rows(X=X, Y=jax.nn.one_hot(y, layers[-1], dtype=dtype), y=y,
                weight=jnp.ones(n, dtype) if parallel is not None else None)
    prob = BCDProblem(data=data, n=as_dt(n) if parallel is not None else None, XtX=_aug(X).T @ _aug(X),
                      X_test=X_test, y_test=y_test, gamma=as_dt(gamma), rho=as_dt(rho), alpha=as_dt(alpha))
    meta = {"label": label, "layers": list(layers), "gamma": float(gamma), "rho": float(rho), "alpha": float(alpha),
            "seed": int(seed), "dtype": str(dtype)}
    return harness.solve(algorithm(len(layers) - 1, X_test is not None), state, prob, executor=parallel,
                         maxiter=iters, tol=tol, meta=meta, **run)
