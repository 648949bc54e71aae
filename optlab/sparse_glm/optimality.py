r"""Optimality measures for :math:`\min_w F(w) = \frac1n\sum_i \ell(x_i^\top w + b, y_i) + \sum_j P_j(w_j)`:
KKT scores, the Fenchel duality gap and the gap-safe screening rule.

Notation: :math:`z = Xw + b`, :math:`r_i = \ell'(z_i, y_i)` (the *raw gradient*), :math:`g = X^\top r/n` the
gradient of the data term, :math:`L_j = \beta\|X_j\|^2/n` the coordinate-wise Lipschitz constants
(:math:`\beta` the loss's smoothness).

* **KKT scores** (which features violate optimality, used to build working sets and as the nonconvex stopping
  test). Convex ℓ1 / elastic net: the distance of :math:`-g_j` to the subdifferential :math:`\partial P_j(w_j)`
  (Massias, Gramfort & Salmon, *Celer*, ICML 2018; Bertrand et al., *skglm*, NeurIPS 2022). Other (nonconvex)
  penalties: the scaled prox-gradient fixed-point residual
  :math:`L_j\,|w_j - \operatorname{prox}_{P_j/L_j}(w_j - g_j/L_j)|`, zero exactly at coordinate-wise stationary
  points (for ℓ1 it coincides with the subdifferential distance whenever the step does not cross 0).
* **Duality gap** (convex penalties). With :math:`\theta = s\,r/n` for a scaling :math:`s \in (0, 1]` that makes
  :math:`\theta` dual feasible, the Fenchel dual is
  :math:`D(\theta) = -\frac1n\sum_i \ell^*(n\theta_i, y_i) - \sum_j P_j^*(-X_j^\top\theta)`, and
  :math:`F(w) - D(\theta) \ge F(w) - F^\star \ge 0`. Conjugates used (in the prediction :math:`z`, for fixed
  :math:`y`): least squares :math:`\ell^*(a) = a^2/2 + ay`; logistic with :math:`a = -yp`, :math:`p \in [0, 1]`:
  :math:`p\log p + (1-p)\log(1-p)`; squared hinge with :math:`a = -y\alpha`, :math:`\alpha \ge 0`:
  :math:`\alpha^2/4 - \alpha`. ℓ1: :math:`P^*` is the indicator of :math:`|v_j| \le \lambda_j`, hence the
  rescaling :math:`s = \min(1, \min_j \lambda_j/|g_j|)`; elastic net:
  :math:`P^*(v) = (|v| - \lambda\rho)_+^2 / (2\lambda(1-\rho))` (no rescaling needed).
  With an unpenalised intercept the dual gains the constraint :math:`\sum_i\theta_i = 0`; for least squares
  :math:`r` is centred to satisfy it (other losses: no gap with an intercept, the KKT test is used).
* **Gap-safe screening** (Fercoq, Gramfort & Salmon, ICML 2015; Ndiaye, Fercoq, Gramfort & Salmon, JMLR 2017):
  :math:`\ell^*` is :math:`1/\beta`-strongly convex, so :math:`D` is :math:`n/\beta`-strongly concave and the dual
  optimum lies in the ball of radius :math:`\rho = \sqrt{2\beta\,\text{gap}/n}` around :math:`\theta`. If
  :math:`|X_j^\top\theta| + \rho\|X_j\| < \lambda_j\rho_{\ell_1}` then :math:`w^\star_j = 0` and feature
  :math:`j` can be removed for good.
"""
from __future__ import annotations

import jax.numpy as jnp
from jax.scipy.special import xlogy

from .. import prox as _prox

__all__ = ["kkt_scores", "duality_gap", "screen", "has_gap", "penalty_is_supported", "l1_level"]


def has_gap(pen) -> bool:
    """Penalties with a duality gap and a screening rule here: ℓ1 and elastic net (ρ > 0 or not)."""
    return isinstance(pen, (_prox.L1, _prox.ElasticNet))


def l1_level(pen, dtype):
    r"""The ℓ1 part :math:`\lambda_j\rho` of an ℓ1 or elastic-net penalty (its threshold at 0)."""
    if isinstance(pen, _prox.L1):
        return jnp.asarray(pen.lam, dtype)
    return jnp.asarray(pen.lam, dtype) * jnp.asarray(pen.l1_ratio, dtype)


def kkt_scores(pen, w, g, lips):
    """Per-coordinate optimality violation (see the module docstring); ``lips`` are the :math:`L_j` (> 0)."""
    dt = w.dtype
    if isinstance(pen, (_prox.L1, _prox.ElasticNet)):
        lam1 = l1_level(pen, dt)
        ridge = 0.0 if isinstance(pen, _prox.L1) else jnp.asarray(pen.lam, dt) * (1 - jnp.asarray(pen.l1_ratio, dt))
        active = jnp.abs(g + lam1 * jnp.sign(w) + ridge * w)
        return jnp.where(w != 0, active, jnp.maximum(jnp.abs(g) - lam1, 0))
    step = 1 / lips
    return lips * jnp.abs(w - pen.prox(w - g * step, step))


def _conjugate_mean(loss_name, s_raw, y):
    r""":math:`\frac1n\sum_i \ell^*(s r_i, y_i)` for the scaled raw gradient ``s_raw`` (= :math:`n\theta`)."""
    if loss_name == "least_squares":
        return jnp.mean(0.5 * s_raw * s_raw + s_raw * y)
    if loss_name == "logistic":
        p = jnp.clip(-s_raw * y, 0, 1)
        return jnp.mean(xlogy(p, p) + xlogy(1 - p, 1 - p))
    if loss_name == "squared_hinge":
        a = jnp.maximum(-s_raw * y, 0)
        return jnp.mean(0.25 * a * a - a)
    raise ValueError(f"no conjugate for the loss {loss_name!r}")


def duality_gap(loss_name, pen, primal, raw, g, y):
    r"""``(gap, dual, s)`` for ℓ1 / elastic net; ``raw`` the raw gradient (centred when an intercept is fitted
    with least squares), ``g = X^T raw / n`` and ``primal`` the objective at the same point. ``s`` is the
    scaling of the module docstring (:math:`\theta = s\,r/n`, so :math:`X^\top\theta = s\,g`)."""
    dt = g.dtype
    if isinstance(pen, _prox.ElasticNet):
        lam, rho = jnp.asarray(pen.lam, dt), jnp.asarray(pen.l1_ratio, dt)
        ridge = lam * (1 - rho)
        smooth = jnp.all(ridge > 0)          # ρ < 1: smooth conjugate, θ = r/n needs no rescaling
        safe_ridge = jnp.where(ridge > 0, ridge, 1)
        excess = jnp.maximum(jnp.abs(g) - lam * rho, 0)
        conj_pen = jnp.sum(excess * excess / (2 * safe_ridge))
        ratio = jnp.max(jnp.abs(g) / (lam * rho), initial=0)
        s = jnp.where(smooth, 1, jnp.where(ratio > 1, 1 / ratio, 1))
        dual = -_conjugate_mean(loss_name, s * raw, y) - jnp.where(smooth, conj_pen, 0)
    else:
        lam = jnp.asarray(pen.lam, dt)
        ratio = jnp.max(jnp.abs(g) / lam, initial=0)
        s = jnp.where(ratio > 1, 1 / ratio, 1)
        dual = -_conjugate_mean(loss_name, s * raw, y)
    return primal - dual, dual, s


def screen(pen, g, s, gap, col_norms, beta, n):
    """Boolean mask of features proven zero at the optimum by the gap-safe sphere test."""
    radius = jnp.sqrt(2 * beta * jnp.maximum(gap, 0) / n)
    return jnp.abs(s * g) + radius * col_norms < l1_level(pen, g.dtype)


def penalty_is_supported(pen) -> bool:
    return isinstance(pen, (_prox.L1, _prox.ElasticNet, _prox.MCP, _prox.SCAD, _prox.LSP, _prox.CappedL1))

