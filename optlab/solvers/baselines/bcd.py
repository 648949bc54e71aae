r"""Block coordinate descent for MLP training with three-variable splitting (baseline for iPDLAM).

Paper: J. Zeng, T. T.-K. Lau, S. Lin, Y. Yao, "Global convergence of block coordinate descent in deep learning",
ICML 2019 (three-splitting formulation, closed-form block updates). Implemented from the equations below; their
MNIST setting is γ = ρ = 1, α = 5 (the defaults here).

Rows are samples; :math:`V_0 = X`; :math:`\bar V = [V, \mathbf 1]` appends the bias column, so
:math:`W_i \in \mathbb R^{(h_{i-1}+1)\times h_i}` holds the weights and (last row) the bias; ReLU hidden
layers, linear output :math:`V_N = U_N`, squared loss on one-hot targets :math:`Y`:

.. math::
    \min_{W,V,U}\ \tfrac12\|V_N - Y\|_F^2
      + \tfrac\gamma2\sum_{i<N}\|V_i - \sigma(U_i)\|_F^2 + \tfrac\gamma2\|V_N - U_N\|_F^2
      + \tfrac\rho2\sum_{i=1}^N\|U_i - \bar V_{i-1}W_i\|_F^2 .

One iteration is a backward sweep (every block's minimiser given the others' newest values, plus a proximal term
:math:`\tfrac\alpha2\|\cdot - \cdot^{\text{old}}\|^2` on every block):

* :math:`V_N = (Y + \gamma U_N + \alpha V_N^{\text{old}})/(1 + \gamma + \alpha)`;
* :math:`U_N = (\gamma V_N + \rho\bar V_{N-1}W_N + \alpha U_N^{\text{old}})/(\gamma + \rho + \alpha)`;
* :math:`W_i = (\rho\bar V_{i-1}^\top\bar V_{i-1} + \alpha I)^{-1}(\rho\bar V_{i-1}^\top U_i + \alpha W_i^{\text{old}})`;
* :math:`V_i = \bigl(\gamma\sigma(U_i) + \alpha V_i^{\text{old}} + \rho(U_{i+1} - \mathbf 1 b_{i+1}^\top)A_{i+1}^\top\bigr)
  \bigl((\gamma + \alpha)I + \rho A_{i+1}A_{i+1}^\top\bigr)^{-1}`, :math:`A_{i+1}` the weight rows of :math:`W_{i+1}`;
* :math:`U_i`: for ReLU the scalar problem :math:`\min_u \tfrac\gamma2(v - (u)_+)^2 + \tfrac{\rho+\alpha}2(u - m)^2`,
  :math:`m = (\rho z + \alpha u^{\text{old}})/(\rho + \alpha)`, :math:`z = (\bar V_{i-1}W_i)`, solved exactly per
  entry by comparing the minimisers on :math:`u \ge 0`, :math:`\max(0, (\gamma v + (\rho+\alpha)m)/(\gamma+\rho+\alpha))`,
  and on :math:`u \le 0`, :math:`\min(0, m)`;

in the order :math:`V_N, U_N, W_N, V_{N-1}, U_{N-1}, W_{N-1}, \dots, W_1`. Every update is an exact block
minimisation of a function with a proximal term, so the objective never increases.
"""
from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from ... import harness
from .. import mlp

__all__ = ["bcd", "BCDState", "BCDProblem", "make_step", "relu_prox"]


class BCDState(NamedTuple):
    W: tuple        # augmented weights (h_{i-1}+1, h_i), i = 1..N
    V: tuple        # V_1..V_N  (n, h_i)
    U: tuple        # U_1..U_N


class BCDProblem(NamedTuple):
    X: jax.Array
    Y: jax.Array        # one-hot targets
    y: jax.Array
    XtX: jax.Array      # [X, 1]ᵀ[X, 1], computed once (the W_1 update's Gram matrix)
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


def _objective(state: BCDState, prob: BCDProblem):
    N = len(state.W)
    total = 0.5 * jnp.sum((state.V[-1] - prob.Y) ** 2) + prob.gamma / 2 * jnp.sum((state.V[-1] - state.U[-1]) ** 2)
    for i in range(N):
        inp = prob.X if i == 0 else state.V[i - 1]
        total = total + prob.rho / 2 * jnp.sum((state.U[i] - _aug(inp) @ state.W[i]) ** 2)
        if i < N - 1:
            total = total + prob.gamma / 2 * jnp.sum((state.V[i] - jax.nn.relu(state.U[i])) ** 2)
    return total


def _solve_spd(M, B):
    return jax.scipy.linalg.cho_solve(jax.scipy.linalg.cho_factor(M), B)


@functools.lru_cache(maxsize=None)
def make_step(n_layers: int):
    """The backward-sweep ``step(state, problem) -> (state, info)`` (cached per depth)."""

    def step(state: BCDState, prob: BCDProblem):
        g, r, a = prob.gamma, prob.rho, prob.alpha
        W, V, U = list(state.W), list(state.V), list(state.U)
        N = n_layers
        V[-1] = (prob.Y + g * U[-1] + a * V[-1]) / (1 + g + a)
        for i in reversed(range(N)):
            inp = _aug(prob.X if i == 0 else V[i - 1])
            z = inp @ W[i]
            if i == N - 1:
                U[i] = (g * V[i] + r * z + a * U[i]) / (g + r + a)
            else:
                U[i] = relu_prox(V[i], (r * z + a * U[i]) / (r + a), g, r + a)
            eye = jnp.eye(inp.shape[1], dtype=inp.dtype)
            gram = prob.XtX if i == 0 else inp.T @ inp
            W[i] = _solve_spd(r * gram + a * eye, r * inp.T @ U[i] + a * W[i])
            if i > 0:
                A, b = W[i][:-1], W[i][-1]
                eye = jnp.eye(A.shape[0], dtype=A.dtype)
                rhs = g * jax.nn.relu(U[i - 1]) + a * V[i - 1] + r * (U[i] - b) @ A.T
                V[i - 1] = _solve_spd((g + a) * eye + r * A @ A.T, rhs.T).T
        return BCDState(tuple(W), tuple(V), tuple(U)), {}

    step.__name__ = f"bcd{n_layers}_step"
    return step


def _params(state: BCDState):
    return {"W": tuple(w[:-1] for w in state.W), "b": tuple(w[-1] for w in state.W)}


def _predict(params, X):
    return mlp.apply(params, jnp.asarray(X, params["W"][0].dtype), "relu")


@functools.lru_cache(maxsize=None)
def _metrics(with_test: bool):
    def objective(state, prob):
        return _objective(state, prob)

    def train_loss(state, prob):
        return mlp.mean_loss("squared", _predict(_params(state), prob.X), prob.y)

    def train_acc(state, prob):
        return mlp.accuracy(_predict(_params(state), prob.X), prob.y)

    def test_acc(state, prob):
        return mlp.accuracy(_predict(_params(state), prob.X_test), prob.y_test)

    out = {"objective": objective, "train_loss": train_loss, "train_acc": train_acc}
    if with_test:
        out["test_acc"] = test_acc
    return out


def bcd(X, y, *, layers, iters=100, gamma=1.0, rho=1.0, alpha=5.0, seed=0, params0=None, X_test=None, y_test=None,
        log_every=None, max_time=None, progress=None, callback=None, checkpoint=None, resume=None, label="BCD"):
    """Three-splitting BCD (Zeng et al. 2019) for a ReLU MLP with squared loss on one-hot targets.

    ``layers = [d, h_1, ..., C]``; ``gamma, rho, alpha`` > 0 as in the module docstring. Starts from the same seeded
    weights as :func:`optlab.ipdlam` (V, U from a forward pass). The trace logs ``objective`` (the split
    objective), ``train_loss`` (mean squared loss of a forward pass), ``train_acc``, ``test_acc``; ``predict(X)``
    returns the forward-pass scores.
    """
    X = jnp.asarray(X)
    if not jnp.issubdtype(X.dtype, jnp.floating):
        X = X.astype(jnp.float32)
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-d array (n_samples, n_features), got shape {X.shape}")
    for name, v in (("gamma", gamma), ("rho", rho), ("alpha", alpha)):
        if not float(v) > 0:
            raise ValueError(f"{name} must be > 0, got {v}")
    layers = mlp.check_layers(layers, X.shape[1])
    y = jnp.asarray(mlp.check_labels("y", y, X.shape[0], layers[-1]))
    if X_test is not None:
        X_test = jnp.asarray(X_test, X.dtype)
        y_test = jnp.asarray(mlp.check_labels("y_test", y_test, X_test.shape[0], layers[-1], require_all=False))
    dtype = X.dtype
    if params0 is None:
        params0 = mlp.init_params(layers, "relu", seed, dtype)
    W = tuple(jnp.concatenate([w, b[None, :]], axis=0).astype(dtype) for w, b in zip(params0["W"], params0["b"]))
    V, U, a = [], [], X
    for i, w in enumerate(W):
        z = _aug(a) @ w
        a = z if i == len(W) - 1 else jax.nn.relu(z)
        U.append(z)
        V.append(a)
    state = BCDState(W, tuple(V), tuple(U))
    as_dt = functools.partial(jnp.asarray, dtype=dtype)
    prob = BCDProblem(X=X, Y=jax.nn.one_hot(y, layers[-1], dtype=dtype), y=y, XtX=_aug(X).T @ _aug(X), X_test=X_test, y_test=y_test,
                      gamma=as_dt(gamma), rho=as_dt(rho), alpha=as_dt(alpha))
    meta = {"solver": "bcd", "label": label, "layers": list(layers), "gamma": float(gamma), "rho": float(rho),
            "alpha": float(alpha), "seed": int(seed), "dtype": str(dtype)}
    return harness.run(make_step(len(layers) - 1), state, prob, maxiter=int(iters), log_every=log_every,
                       max_time=max_time, metrics=dict(_metrics(X_test is not None)), params=_params,
                       callback=callback, progress=progress, checkpoint=checkpoint, resume=resume, meta=meta,
                       predict_fn=_predict)
