r"""The inner solver: cyclic proximal coordinate descent on the working-set columns, with safeguarded Anderson
extrapolation, compiled once per (size class, loss, penalty type, dtype).

One epoch visits the ``k`` real coordinates of the block in order (padded coordinates are skipped: the loop
bound ``k`` is traced) and updates

.. math:: w_j \leftarrow \operatorname{prox}_{P_j/L_j}\big(w_j - X_j^\top \ell'(z, y)/(nL_j)\big), \qquad
          z \leftarrow z + \Delta w_j X_j,

with :math:`L_j = \beta\|X_j\|^2/n` (Tseng & Yun 2009; for the nonconvex penalties Breheny & Huang 2011, and the
coordinate-wise prox of skglm, Bertrand et al. 2022), then the unpenalised intercept by one step of length
:math:`1/\beta`. Every ``M`` epochs the last ``M+1`` iterates are extrapolated (:mod:`.anderson`) and the point is
kept only if it lowers the objective; then the largest KKT score on the block (:mod:`.optimality`) is compared
with the inner tolerance. Everything runs inside one ``lax.while_loop``: one dispatch per inner solve.

Compilation is ahead of time (:mod:`.compiled`): one executable per signature, the compile seconds returned
separately so callers can exclude them from reported times.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from .anderson import extrapolate
from .compiled import compiled
from .optimality import kkt_scores

__all__ = ["cd_solve", "make_cd_solve"]

def _at(pen, j):
    """The penalty of coordinate ``j`` (per-coordinate parameter arrays are indexed, scalars kept)."""
    return jax.tree_util.tree_map(lambda a: a[j] if jnp.ndim(a) == 1 else a, pen)


def _objective(loss, pen, z, y, w):
    return jnp.mean(loss.value(z, y)) + pen.value(w)


def make_cd_solve(loss, fit_intercept: bool, anderson_m: int):
    """The inner solver for one loss / intercept setting / Anderson depth (pure; jit it)."""
    beta = float(loss.smoothness)
    M = max(int(anderson_m), 1)

    def solve(block, y, w, b, z, lips, k, pen, tol, max_epochs):
        block = block.ready()
        n = y.shape[0]
        dt = w.dtype
        mask = jnp.arange(w.shape[0]) < k

        def epoch(carry):
            w, b, z = carry

            def coord(j, wz):
                w, z = wz
                g = block.grad_dot(j, loss, z, y) / n
                step = 1 / lips[j]
                old = w[j]
                new = _at(pen, j).prox(old - g * step, step)
                return w.at[j].set(new), block.axpy(j, new - old, z)

            w, z = lax.fori_loop(0, k, coord, (w, z))
            if fit_intercept:
                db = -jnp.mean(loss.grad(z, y)) / beta
                b, z = b + db, z + db
            return w, b, z

        def pack(w, b):
            return jnp.concatenate([w, b[None]])

        def crit_of(w, b, z):
            raw = loss.grad(z, y)
            scores = jnp.where(mask, kkt_scores(pen, w, block.rmatvec(raw) / n, lips), 0)
            c = jnp.max(scores, initial=0)
            return jnp.maximum(c, jnp.abs(jnp.mean(raw))) if fit_intercept else c

        def body(state):
            ep, w, b, z, _, acc = state
            hist = jnp.zeros((M + 1, w.shape[0] + 1), dt).at[0].set(pack(w, b))

            def one(i, c):
                w, b, z, hist = c
                w, b, z = epoch((w, b, z))
                return w, b, z, hist.at[i + 1].set(pack(w, b))

            w, b, z, hist = lax.fori_loop(0, M, one, (w, b, z, hist))
            if anderson_m > 0:
                x_acc, ok = extrapolate(hist)
                w_acc, b_acc = jnp.where(mask, x_acc[:-1], 0), x_acc[-1] if fit_intercept else b
                z_acc = block.add_matvec(w_acc - w, z, k) + (b_acc - b)
                better = ok & (_objective(loss, pen, z_acc, y, w_acc) < _objective(loss, pen, z, y, w))
                w, b, z = (jnp.where(better, w_acc, w), jnp.where(better, b_acc, b), jnp.where(better, z_acc, z))
                acc = acc + better.astype(jnp.int32)
            return ep + M, w, b, z, crit_of(w, b, z), acc

        def cond(state):
            ep, *_, crit, _ = state
            return (ep < max_epochs) & (crit > tol)

        init = (jnp.zeros((), jnp.int32), w, b, z, jnp.asarray(jnp.inf, dt), jnp.zeros((), jnp.int32))
        ep, w, b, z, crit, acc = lax.while_loop(cond, body, init)
        z = block.add_matvec(w, jnp.full_like(z, b), k)  # exact (no drift): the support is in the working set
        return w, b, z, ep, crit, acc

    return solve


@functools.lru_cache(maxsize=None)
def _jitted(loss, fit_intercept, anderson_m):
    return jax.jit(make_cd_solve(loss, fit_intercept, anderson_m))


def cd_solve(loss, fit_intercept, anderson_m, block, y, w, b, z, lips, k, pen, tol, max_epochs):
    """Run the compiled inner solver; returns ``(w, b, z, epochs, crit, n_accepted), compile_seconds``."""
    args = (block, y, w, b, z, lips, k, pen, tol, max_epochs)
    static = (loss, bool(fit_intercept), int(anderson_m))
    exe, secs = compiled("inner", static, _jitted(*static), args)
    return exe(*args), secs
