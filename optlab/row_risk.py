r"""The smooth part of a data-parallel method: an empirical risk whose sums over rows go through ``comm.reduce``.

.. math:: f(x) = \frac1n\sum_{i=1}^n w_i\,\ell(a_i^\top x, y_i) + \frac{\lambda_2}{2}\|x\|^2,
          \qquad \nabla f(x) = \frac1n A^\top\bigl(w\odot\ell'(Ax, y)\bigr) + \lambda_2 x,

with :math:`w_i = 1` for real rows (executors pad with zero rows, whose weight is 0). The rows ``A, y, w`` live in
an :class:`optlab.algorithm.Rows`, so an executor splits them over workers; each worker's sums
:math:`\sum_{i\in I_w} w_i\ell(\cdot)` and :math:`A_w^\top(w\odot\ell')` are its local contributions.

:func:`value`, :func:`grad` and :func:`value_and_grad` take either a :class:`RowRisk` (data-parallel) or any
:class:`optlab.losses.Smooth` (serial: evaluated directly, no reduce), so a step is written once for both.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.tree_util import register_pytree_node_class

from . import losses, prox, pytree
from .algorithm import Comm, Rows
from .operators import matvec, rmatvec

__all__ = ["RowRisk", "from_smooth", "composite_inputs", "value", "grad", "value_and_grad", "mapping_norm",
           "gradient_mapping_norm", "composite_objective", "composite_gap", "composite_stationarity"]


@register_pytree_node_class
class RowRisk:
    """Empirical risk with its rows in :class:`~optlab.algorithm.Rows` (children: rows, ``n``; static: loss, l2)."""

    def __init__(self, loss, rows: Rows, n, l2: float = 0.0):
        self.loss, self.rows, self.n, self.l2 = loss, rows, n, l2

    def _penalty(self, x):
        return 0.5 * self.l2 * jnp.sum(jnp.square(x)) if self.l2 != 0.0 else 0.0

    def local_value(self, x):
        r = self.rows
        return jnp.sum(r.weight * self.loss.value(matvec(r.A, x), r.y))

    def local_grad(self, x):
        r = self.rows
        return rmatvec(r.A, r.weight * self.loss.grad(matvec(r.A, x), r.y))

    def value(self, x, comm: Comm, name: str = "value"):
        return comm.reduce(name, self.local_value(x)) / self.n + self._penalty(x)

    def grad(self, x, comm: Comm, name: str = "grad"):
        g = comm.reduce(name, self.local_grad(x)) / self.n
        return g + self.l2 * x if self.l2 != 0.0 else g

    def tree_flatten(self):
        return (self.rows, self.n), (self.loss, self.l2)

    @classmethod
    def tree_unflatten(cls, aux, children):
        loss, l2 = aux
        rows, n = children
        return cls(loss, rows, n, l2)


def from_smooth(f, dtype=None) -> RowRisk:
    """The :class:`RowRisk` of an :func:`optlab.losses.empirical_risk` (what a parallel executor can split)."""
    if not isinstance(f, losses.EmpiricalRisk):
        raise TypeError("parallel= needs f to be an optlab.losses.empirical_risk (least_squares_objective, "
                        "logistic_objective, ...): the executor splits its rows A and labels y over workers")
    A = f.A
    dtype = dtype or jnp.result_type(A)
    y = jnp.asarray(f.y, dtype)
    return RowRisk(f.loss, Rows(A=A, y=y, weight=jnp.ones(A.shape[0], dtype)), jnp.asarray(A.shape[0], dtype),
                   f.l2)


def composite_inputs(solver: str, f, g, x0, parallel):
    """The inputs of the proximal-gradient family (ista, fista, pig, gist), checked: ``f`` an
    :class:`optlab.losses.Smooth` (a plain callable is wrapped) that accepts ``x0``, ``x0`` an iterate (an array or a
    pytree), ``g`` a penalty acting on it (:func:`optlab.prox.leafwise`). Returns ``(f, g, x0, risk)``: ``risk`` is
    what the step differentiates, the :class:`RowRisk` of ``f`` when ``parallel`` is given (an empirical risk and a
    vector ``x0``, so that an executor can split the rows), else ``f`` itself."""
    if not callable(f):
        raise TypeError("f must be a smooth function x -> scalar (a callable or an optlab.losses.Smooth)")
    f = f if isinstance(f, losses.Smooth) else losses.smooth(f)
    x0 = pytree.as_iterate(x0)
    g = prox.leafwise(g, x0)
    pytree.check_against(f, x0, "x0", solver)
    if parallel is None:
        return f, g, x0, f
    if not isinstance(x0, jax.Array) or x0.ndim != 1:
        raise ValueError(f"{solver}(parallel=...) supports vector iterates x (A of shape (n, d)); a pytree or a "
                         "(d, C) softmax-type x is not supported")
    return f, g, x0, from_smooth(f, x0.dtype)


def value(f, x, comm: Comm, name: str = "value"):
    """:math:`f(x)`; for a :class:`RowRisk` the data sum is ``comm.reduce(name, ·)``."""
    return f.value(x, comm, name) if isinstance(f, RowRisk) else f(x)


def grad(f, x, comm: Comm, name: str = "grad"):
    """:math:`\\nabla f(x)`; for a :class:`RowRisk` the data sum is ``comm.reduce(name, ·)``."""
    return f.grad(x, comm, name) if isinstance(f, RowRisk) else f.grad(x)


def value_and_grad(f, x, comm: Comm, names=("value", "grad")):
    if isinstance(f, RowRisk):
        return f.value(x, comm, names[0]), f.grad(x, comm, names[1])
    return f.value_and_grad(x)


def mapping_norm(x, d, prox, step):
    r"""The norm of the proximal-gradient mapping :math:`\|x - \operatorname{prox}_{s g}(x - s d)\|/s` at ``x`` with
    the gradient ``d`` of the smooth part (``x``, ``d`` pytrees of the same structure; ``prox(v, s)`` the penalty's
    prox, ``None`` for no penalty: the mapping is then ``d`` itself and its norm is returned exactly).

    Scale-aware step: the method's ``step`` is raised to :math:`s = 10^{-3}\max(\|x\|, 1)/\|d\|` when it is
    smaller, because with a step far below that :math:`x - s d` rounds to :math:`x` and the residual would vanish just
    because the step is tiny (a "stalled" run would look stationary). The mapping is zero exactly at the stationary
    points of :math:`f + g` for every :math:`s > 0` (Beck, *First-Order Methods in Optimization*, 2017, §10.3)."""
    leaves_x, leaves_d = jax.tree.leaves(x), jax.tree.leaves(d)
    d_norm = jnp.sqrt(sum(jnp.sum(jnp.square(a)) for a in leaves_d))
    if prox is None:
        return d_norm
    x_norm = jnp.sqrt(sum(jnp.sum(jnp.square(a)) for a in leaves_x))
    tiny = jnp.finfo(jnp.result_type(leaves_x[0])).tiny
    step = jnp.maximum(step, 1e-3 * jnp.maximum(x_norm, 1.0) / jnp.maximum(d_norm, tiny))
    moved = prox(jax.tree.map(lambda a, b: a - step * b, x, d), step)
    sq = sum(jnp.sum(jnp.square(a - b)) for a, b in zip(leaves_x, jax.tree.leaves(moved)))
    return jnp.sqrt(sq) / step


def gradient_mapping_norm(f, g, x, step, comm: Comm):
    r"""The proximal-gradient optimality residual :math:`\|G_s(x)\| = \|x - \operatorname{prox}_{s g}(x - s\nabla f(x))\|/s`
    (:func:`mapping_norm` with :math:`\nabla f(x)`; its sum over rows is ``comm.reduce("stationarity_grad", ·)``).
    ``x`` may be a pytree (``g`` then a leaf-wise penalty)."""
    return mapping_norm(x, grad(f, x, comm, "stationarity_grad"), g.prox, step)


# Metrics of the proximal-gradient family (ista, fista, pig, gist): a state with ``x`` (and ``step``), a problem with
# the smooth part ``f``, the penalty ``g`` and the known optimum ``f_star``.
def composite_objective(state, problem, comm: Comm):
    """:math:`F(x_k) = f(x_k) + g(x_k)`."""
    return value(problem.f, state.x, comm) + problem.g.value(state.x)


def composite_gap(state, problem, comm: Comm):
    r""":math:`F(x_k) - F^\star` (``problem.f_star``)."""
    return composite_objective(state, problem, comm) - problem.f_star


def composite_stationarity(state, problem, comm: Comm):
    """:func:`gradient_mapping_norm` at :math:`x_k` with the state's step (the optimality residual)."""
    return gradient_mapping_norm(problem.f, problem.g, state.x, state.step, comm)

