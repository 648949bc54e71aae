r"""Safeguarded Anderson extrapolation of a fixed-point sequence.

Given the last :math:`M+1` iterates :math:`x_0, \dots, x_M` of a fixed-point map (here: epochs of coordinate
descent on the working set), Anderson acceleration (Anderson 1965; in the "offline"/regularised form of Scieur,
d'Aspremont & Bach, *Regularized nonlinear acceleration*, NeurIPS 2016) forms the differences
:math:`U = [x_1 - x_0, \dots, x_M - x_{M-1}]` and the affine combination

.. math:: c = \frac{(U^\top U + \epsilon I)^{-1}\mathbf 1}{\mathbf 1^\top (U^\top U + \epsilon I)^{-1}\mathbf 1},
          \qquad x_{\text{acc}} = \sum_{i=1}^{M} c_i x_i,

which minimises :math:`\|\sum_i c_i (x_i - x_{i-1})\|` over :math:`\sum_i c_i = 1`. For coordinate descent on
sparse GLMs this is the extrapolation of Bertrand & Massias, *Anderson acceleration of coordinate descent*,
AISTATS 2021. The extrapolated point is a *proposal*: the caller keeps it only if it lowers the objective
(the safeguard), so convergence guarantees of the base method are kept.
"""
from __future__ import annotations

import jax.numpy as jnp

__all__ = ["extrapolate"]


def extrapolate(history):
    r"""The Anderson combination of the rows of ``history`` (shape ``(M+1, d)``, oldest first).

    Returns ``(x_acc, ok)`` where ``ok`` is False when the linear system was singular or produced non-finite
    weights (then ``x_acc`` is the last row, i.e. no extrapolation). Pure and jit-safe.
    """
    U = jnp.diff(history, axis=0)                      # (M, d)
    C = U @ U.T                                        # (M, M) Gram matrix of the differences
    M = C.shape[0]
    reg = 1e-10 * jnp.trace(C) + jnp.finfo(history.dtype).tiny
    z = jnp.linalg.solve(C + reg * jnp.eye(M, dtype=C.dtype), jnp.ones(M, C.dtype))
    s = jnp.sum(z)
    c = z / s
    ok = jnp.isfinite(s) & (s != 0) & jnp.all(jnp.isfinite(c))
    x_acc = c @ history[1:]
    return jnp.where(ok, x_acc, history[-1]), ok
