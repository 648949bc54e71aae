r"""Losses and smooth objectives.

Two layers:

1. **Elementwise losses** :math:`\ell(z, y)` on a prediction :math:`z` and a target :math:`y`, as small frozen
   (hashable) objects with ``value(z, y)`` (elementwise), ``grad(z, y)`` (:math:`\partial\ell/\partial z`, a
   subgradient where :math:`\ell` is not differentiable), ``smoothness`` (a Lipschitz constant of
   :math:`\partial\ell/\partial z` in :math:`z`, or ``None`` when :math:`\ell` is nonsmooth) and ``name``:
   :data:`hinge`, :data:`squared_hinge`, :data:`logistic`, :data:`least_squares`, :data:`softmax_cross_entropy`.

2. **Smooth objectives** :class:`Smooth`: JAX pytrees with ``f(x)``, ``f.grad(x)``, ``f.value_and_grad(x)`` and
   ``f.lipschitz()`` (an upper bound on the Lipschitz constant of :math:`\nabla f`) consumed by the gradient
   solvers. :func:`smooth` wraps any JAX function; :func:`empirical_risk` builds

   .. math:: f(x) = \frac1n\sum_{i=1}^n \ell(a_i^\top x, y_i) + \frac{\lambda_2}{2}\|x\|^2,

   whose gradient is :math:`\frac1n A^\top \ell'(Ax, y) + \lambda_2 x` and whose gradient is Lipschitz with
   constant :math:`L \le \beta\,\|A\|_2^2/n + \lambda_2` when :math:`\ell'` is :math:`\beta`-Lipschitz
   (since :math:`\nabla^2 f = \frac1n A^\top \operatorname{diag}(\ell'') A + \lambda_2 I`).

Data (the matrix ``A`` and the targets ``y``) are pytree *leaves*; the loss, the ``l2`` weight, a wrapped
function and a Python-float Lipschitz constant are *static* (hashable) auxiliary data, so ``jax.jit`` compiles
once per loss/shape/dtype and re-uses the executable for new data of the same shapes.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Callable, ClassVar

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
from jax.experimental import sparse as jsparse
from jax.tree_util import register_pytree_node_class

from optlab.operators import as_jax, check_finite, concrete, matvec, rmatvec, spectral_norm

__all__ = [
    "EmpiricalRisk",
    "LipschitzUnknownError",
    "Loss",
    "Smooth",
    "SmoothFunction",
    "empirical_risk",
    "get_loss",
    "hinge",
    "least_squares",
    "least_squares_objective",
    "logistic",
    "logistic_objective",
    "smooth",
    "softmax_cross_entropy",
    "squared_hinge",
    "squared_hinge_objective",
]


# ---------------------------------------------------------------------------------------------------------------
# Elementwise losses
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Loss:
    """Base class of elementwise losses (frozen, hence hashable: usable as static pytree data).

    Attributes:
        name: short identifier.
        smoothness: Lipschitz constant of ``grad`` in ``z`` (for labels ±1 where relevant), None if nonsmooth.
        targets: class attribute, what ``y`` must be: ``"pm1"`` (labels ±1), ``"real"`` or ``"class"``
            (integer class indices).
    """

    name: str
    smoothness: float | None
    targets: ClassVar[str] = "real"

    def value(self, z, y):  # pragma: no cover - abstract
        raise NotImplementedError

    def grad(self, z, y):  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True)
class _Hinge(Loss):
    r"""Hinge loss :math:`\ell(z, y) = (1 - yz)_+` (SVM). Not differentiable at :math:`yz = 1`;
    ``grad`` returns the subgradient :math:`-y\,\mathbb 1[yz < 1]` (0 at the kink). ``smoothness`` is None."""

    targets: ClassVar[str] = "pm1"

    def value(self, z, y):
        return jnp.maximum(0, 1 - y * z)

    def grad(self, z, y):
        m = y * z
        return -y * (m < 1).astype(m.dtype)


@dataclass(frozen=True)
class _SquaredHinge(Loss):
    r"""Squared hinge :math:`\ell(z, y) = (1 - yz)_+^2` (L2-loss SVM, as in LIBLINEAR).
    :math:`\ell' = -2y(1 - yz)_+`, which is Lipschitz with constant :math:`2y^2 = 2` for :math:`y = \pm1`."""

    targets: ClassVar[str] = "pm1"

    def value(self, z, y):
        return jnp.square(jnp.maximum(0, 1 - y * z))

    def grad(self, z, y):
        return -2 * y * jnp.maximum(0, 1 - y * z)


@dataclass(frozen=True)
class _Logistic(Loss):
    r"""Logistic loss :math:`\ell(z, y) = \log(1 + e^{-yz})`, computed as ``logaddexp(0, -yz)`` (no overflow
    for any finite :math:`z`). :math:`\ell' = -y\,\sigma(-yz)` with the stable sigmoid, and
    :math:`\ell'' = y^2\sigma(yz)(1-\sigma(yz)) \le y^2/4`, so ``smoothness`` = 1/4 for :math:`y = \pm 1`
    (attained at :math:`z = 0`)."""

    targets: ClassVar[str] = "pm1"

    def value(self, z, y):
        return jnp.logaddexp(0, -y * z)

    def grad(self, z, y):
        return -y * jax.nn.sigmoid(-y * z)


@dataclass(frozen=True)
class _LeastSquares(Loss):
    r"""Least squares :math:`\ell(z, y) = \frac12 (z - y)^2`; :math:`\ell' = z - y`, ``smoothness`` = 1."""

    targets: ClassVar[str] = "real"

    def value(self, z, y):
        return 0.5 * jnp.square(z - y)

    def grad(self, z, y):
        return z - y


@dataclass(frozen=True)
class _SoftmaxCrossEntropy(Loss):
    r"""Softmax cross-entropy on logits :math:`z \in \mathbb R^{n\times C}` and integer labels
    :math:`y \in \{0..C-1\}^n`: :math:`\ell(z, y) = \log\sum_c e^{z_c} - z_y` per row (``value`` has shape
    ``(n,)``); ``grad`` :math:`= \operatorname{softmax}(z) - e_y` (shape ``(n, C)``).

    ``smoothness`` = 1/2: the Hessian in :math:`z` is :math:`H = \operatorname{diag}(p) - pp^\top`,
    :math:`p = \operatorname{softmax}(z)`. Row :math:`c` of :math:`H` has diagonal :math:`p_c(1-p_c)` and
    off-diagonal absolute sum :math:`p_c\sum_{k\ne c}p_k = p_c(1-p_c)`, so by Gershgorin every eigenvalue is
    at most :math:`\max_c 2p_c(1-p_c) \le 1/2`; equality for :math:`C = 2`, :math:`p = (1/2, 1/2)`. This is
    Böhning's bound :math:`H \preceq \frac12(I - \frac1C\mathbf 1\mathbf 1^\top)` (D. Böhning, "Multinomial
    logistic regression algorithm", Ann. Inst. Statist. Math. 44:197-200, 1992)."""

    targets: ClassVar[str] = "class"

    def value(self, z, y):
        zy = jnp.take_along_axis(z, y[..., None], axis=-1)[..., 0]
        return jax.nn.logsumexp(z, axis=-1) - zy

    def grad(self, z, y):
        return jax.nn.softmax(z, axis=-1) - jax.nn.one_hot(y, z.shape[-1], dtype=z.dtype)


hinge = _Hinge("hinge", None)
squared_hinge = _SquaredHinge("squared_hinge", 2.0)
logistic = _Logistic("logistic", 0.25)
least_squares = _LeastSquares("least_squares", 1.0)
softmax_cross_entropy = _SoftmaxCrossEntropy("softmax_cross_entropy", 0.5)

_LOSSES = {l.name: l for l in (hinge, squared_hinge, logistic, least_squares, softmax_cross_entropy)}


def get_loss(loss: Loss | str) -> Loss:
    """A :class:`Loss` instance, or the module-level loss of that name."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str) and loss in _LOSSES:
        return _LOSSES[loss]
    raise ValueError(f"loss must be a Loss or one of {sorted(_LOSSES)}, got {loss!r}")


# ---------------------------------------------------------------------------------------------------------------
# Smooth objectives
# ---------------------------------------------------------------------------------------------------------------
class LipschitzUnknownError(ValueError):
    """Raised by :meth:`Smooth.lipschitz` when no Lipschitz constant of the gradient is known."""


@register_pytree_node_class
class Smooth:
    r"""A differentiable objective :math:`f` with an :math:`L`-Lipschitz gradient, as a JAX pytree.

    Interface used by the gradient solvers: ``f(x)`` (scalar), ``f.grad(x)``, ``f.value_and_grad(x)``,
    ``f.lipschitz()`` (an upper bound on :math:`L`; jit-safe). The defaults differentiate ``__call__`` with
    ``jax.grad``. Subclasses must implement ``__call__`` and the pytree protocol (``tree_flatten`` /
    ``tree_unflatten``) and be decorated with :func:`jax.tree_util.register_pytree_node_class`; put arrays in
    the children and only hashable configuration in the auxiliary data.
    """

    def __call__(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def grad(self, x):
        """:math:`\\nabla f(x)`."""
        return jax.grad(self.__call__)(x)

    def value_and_grad(self, x):
        """``(f(x), grad f(x))``."""
        return jax.value_and_grad(self.__call__)(x)

    def lipschitz(self):
        """An upper bound on the Lipschitz constant of the gradient."""
        raise LipschitzUnknownError(
            f"{type(self).__name__} has no known Lipschitz constant; pass lipschitz= when building it, "
            "or step= to the solver (or let the solver estimate it by backtracking)"
        )

    def tree_flatten(self):
        return (), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls()


def _is_static_number(v) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, (numbers.Real, np.generic)):
        return True
    return isinstance(v, np.ndarray) and v.ndim == 0


@register_pytree_node_class
class SmoothFunction(Smooth):
    """A user function ``fun(x, *args)`` as a :class:`Smooth`; build it with :func:`smooth`.

    Children (leaves): ``args`` and, when it is a JAX array, ``lipschitz``. Static: ``fun`` and a Python-float
    ``lipschitz`` (or None).
    """

    def __init__(self, fun: Callable, args: tuple, lipschitz: Any = None):
        self.fun = fun
        self.args = tuple(args)
        self._lipschitz = lipschitz

    def __call__(self, x):
        return self.fun(x, *self.args)

    def lipschitz(self):
        if self._lipschitz is None:
            name = getattr(self.fun, "__name__", repr(self.fun))
            raise LipschitzUnknownError(
                f"no Lipschitz constant given for the smooth function {name!r}: pass lipschitz= to "
                "optlab.losses.smooth(...), or step= to the solver (or let the solver estimate it by backtracking)"
            )
        return self._lipschitz

    def tree_flatten(self):
        if self._lipschitz is None or isinstance(self._lipschitz, float):
            return (self.args, None), (self.fun, self._lipschitz)
        return (self.args, self._lipschitz), (self.fun, None)

    @classmethod
    def tree_unflatten(cls, aux, children):
        fun, static_l = aux
        args, leaf_l = children
        return cls(fun, args, static_l if static_l is not None else leaf_l)

    def __repr__(self):
        name = getattr(self.fun, "__name__", repr(self.fun))
        return f"SmoothFunction({name}, n_args={len(self.args)}, lipschitz={self._lipschitz!r})"


def smooth(fun: Callable, *args, lipschitz=None) -> SmoothFunction:
    r"""Wrap a differentiable JAX function :math:`f(x, *args)` as a :class:`Smooth`.

    ``args`` (arrays or pytrees of arrays) become pytree leaves, so jitted code taking the returned object is
    compiled once per shape and re-used for new ``args``; ``fun`` is static (pass the same function object to
    avoid recompiling; a fresh ``lambda`` each time recompiles).

    Args:
        fun: ``fun(x, *args) -> scalar``, differentiable by JAX in ``x``.
        *args: data passed to ``fun``.
        lipschitz: Lipschitz constant of :math:`\nabla_x f`. A Python/NumPy number is static (checked > 0);
            a JAX array is a leaf. ``None``: :meth:`~Smooth.lipschitz` raises :class:`LipschitzUnknownError`,
            and solvers need an explicit ``step=`` or backtracking.

    Example:
        >>> import jax.numpy as jnp
        >>> f = smooth(lambda x, c: 0.5 * jnp.sum((x - c) ** 2), jnp.ones(3), lipschitz=1.0)
        >>> float(f(jnp.zeros(3))), f.lipschitz()
        (1.5, 1.0)
    """
    if not callable(fun):
        raise TypeError(f"fun must be callable, got {type(fun).__name__}")
    if lipschitz is not None:
        if _is_static_number(lipschitz):
            lipschitz = float(lipschitz)
            if not (np.isfinite(lipschitz) and lipschitz > 0):
                raise ValueError(f"lipschitz must be a positive finite number, got {lipschitz}")
        elif not isinstance(lipschitz, jax.Array):
            raise TypeError(f"lipschitz must be a number or a JAX scalar, got {type(lipschitz).__name__}")
    return SmoothFunction(fun, args, lipschitz)


@register_pytree_node_class
class EmpiricalRisk(Smooth):
    r"""Regularised empirical risk :math:`f(x) = \frac1n\sum_i \ell(a_i^\top x, y_i) + \frac{\lambda_2}2\|x\|^2`.

    Build it with :func:`empirical_risk`. Children: ``A`` (dense JAX array or BCOO) and ``y``; static: the
    loss and ``l2``. For :data:`softmax_cross_entropy`, ``x`` is ``(d, C)`` and the norm is Frobenius.

    ``grad`` is explicit: :math:`\frac1n A^\top\ell'(Ax, y) + \lambda_2 x` (a subgradient for the hinge loss).
    ``lipschitz()`` returns :math:`\beta\,\hat\sigma^2(1+\epsilon)/n + \lambda_2`, :math:`\beta` the loss's
    ``smoothness`` and :math:`\hat\sigma` :func:`optlab.operators.spectral_norm` of ``A`` (JAX power
    iteration: jit-safe, but re-run at every call, so call it once and keep the number). Power iteration
    approaches :math:`\|A\|_2` from below; the relative margin
    :math:`\epsilon = \max(10^{-6}, 16\,\varepsilon_{\text{dtype}})` turns the converged estimate into an
    upper bound. For least squares the bound is exact up to :math:`\epsilon`; for logistic it is the classical
    :math:`\|A\|_2^2/(4n)`.
    """

    def __init__(self, loss: Loss, A, y, l2: float = 0.0):
        self.loss = loss
        self.A = A
        self.y = y
        self.l2 = l2

    @property
    def n(self) -> int:
        return self.A.shape[0]

    def _penalty(self, x):
        if self.l2 == 0.0:
            return 0.0
        return 0.5 * self.l2 * jnp.sum(jnp.square(x))

    def __call__(self, x):
        z = matvec(self.A, x)
        return jnp.mean(self.loss.value(z, self.y)) + self._penalty(x)

    def _grad_from_z(self, z, x):
        g = rmatvec(self.A, self.loss.grad(z, self.y)) / self.n
        return g + self.l2 * x if self.l2 != 0.0 else g

    def grad(self, x):
        return self._grad_from_z(matvec(self.A, x), x)

    def value_and_grad(self, x):
        z = matvec(self.A, x)
        value = jnp.mean(self.loss.value(z, self.y)) + self._penalty(x)
        return value, self._grad_from_z(z, x)

    def lipschitz(self):
        beta = self.loss.smoothness
        if beta is None:
            raise LipschitzUnknownError(
                f"the {self.loss.name} loss is not differentiable, so its empirical risk has no Lipschitz "
                "gradient: use a solver that handles a nonsmooth loss, or a smooth surrogate (squared_hinge, "
                "logistic); if you know a suitable step, pass step= to the solver"
            )
        sigma = spectral_norm(self.A)
        margin = max(1e-6, 16 * float(jnp.finfo(sigma.dtype).eps))
        return beta * jnp.square(sigma) * (1 + margin) / self.n + self.l2

    def tree_flatten(self):
        return (self.A, self.y), (self.loss, self.l2)

    @classmethod
    def tree_unflatten(cls, aux, children):
        loss, l2 = aux
        A, y = children
        return cls(loss, A, y, l2)

    def __repr__(self):
        kind = "BCOO" if isinstance(self.A, jsparse.BCOO) else "dense"
        return f"EmpiricalRisk({self.loss.name}, A={kind}{tuple(self.A.shape)} {self.A.dtype}, l2={self.l2})"


def empirical_risk(loss: Loss | str, A, y, *, l2: float = 0.0) -> EmpiricalRisk:
    r"""The smooth objective :math:`f(x) = \frac1n\sum_{i=1}^n \ell(a_i^\top x, y_i) + \frac{\lambda_2}2\|x\|^2`.

    Args:
        loss: a :class:`Loss` (e.g. :data:`logistic`) or its name.
        A: ``(n, d)`` data, dense NumPy/JAX (dtype kept; integer data become the default float) or SciPy
            sparse (converted to BCOO with duplicates summed; the compiled code then depends on the number of
            stored entries too).
        y: ``(n,)`` targets: ±1 labels for hinge, squared hinge and logistic; reals for least squares; integer
            classes ``0..C-1`` for softmax cross-entropy (then ``x`` is ``(d, C)``). Cast to ``A``'s dtype
            (int32 for classes).
        l2: :math:`\lambda_2 \ge 0` (static).

    Raises:
        ValueError: NaN/Inf in ``A`` or ``y`` (naming which), incompatible shapes, labels of the wrong kind,
            negative ``l2``. Traced inputs (inside ``jit``) skip the value checks.

    Example:
        >>> import numpy as np
        >>> A = np.array([[1.0, 0.0], [0.0, 2.0]]); y = np.array([1.0, -1.0])
        >>> f = empirical_risk(logistic, A, y, l2=0.1)
        >>> round(float(f(np.zeros(2))), 6)  # log 2
        0.693147
    """
    loss = get_loss(loss)
    if not _is_static_number(l2) or not np.isfinite(float(l2)) or float(l2) < 0:
        raise ValueError(f"l2 must be a nonnegative finite Python number (it is static), got {l2!r}")
    l2 = float(l2)

    if not (sp.issparse(A) or isinstance(A, (jax.Array, jsparse.BCOO))):
        A = np.asarray(A)
    if len(A.shape) != 2:
        raise ValueError(f"A must be a 2-D (n_samples, n_features) matrix, got shape {tuple(A.shape)}")
    check_finite("A", A)
    if not isinstance(y, jax.Array):
        y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != A.shape[0]:
        raise ValueError(
            f"A and y have incompatible shapes: A is {tuple(A.shape)} and y is {tuple(y.shape)}; "
            f"y must be a vector of length n = A.shape[0] = {A.shape[0]}"
        )
    check_finite("y", y)

    A = as_jax(A)  # keeps the dtype (float64 becomes float32 only when jax_enable_x64 is off)
    if not jnp.issubdtype(A.dtype, jnp.floating):
        A = as_jax(A, dtype=jnp.result_type(float))  # the default float dtype
    dtype = A.dtype
    yc = concrete(y)
    if loss.targets == "class":
        if yc is not None:
            if yc.size and (np.any(yc != np.round(yc)) or yc.min() < 0):
                raise ValueError(
                    f"y must hold integer class indices 0..C-1 for {loss.name}; got values in "
                    f"[{yc.min()}, {yc.max()}]"
                )
        y = jnp.asarray(y).astype(jnp.int32)
    else:
        if loss.targets == "pm1" and yc is not None and yc.size:
            bad = ~np.isin(yc, (-1, 1))
            if bad.any():
                found = np.unique(yc)[:5]
                raise ValueError(
                    f"y must hold labels -1/+1 for the {loss.name} loss; found values {found.tolist()}"
                    + (" (for 0/1 labels pass y = 2*y - 1)" if np.all(np.isin(yc, (0, 1))) else "")
                )
        y = jnp.asarray(y).astype(dtype)
    return EmpiricalRisk(loss, A, y, l2)


def least_squares_objective(A, b, l2: float = 0.0) -> EmpiricalRisk:
    r""":math:`f(x) = \frac{1}{2n}\|Ax - b\|^2 + \frac{\lambda_2}{2}\|x\|^2` (scikit-learn ``Lasso``'s data term
    when ``l2 = 0``); :math:`L = \|A\|_2^2/n + \lambda_2`."""
    return empirical_risk(least_squares, A, b, l2=l2)


def logistic_objective(A, b, l2: float = 0.0) -> EmpiricalRisk:
    r""":math:`f(x) = \frac1n\sum_i\log(1+e^{-b_i a_i^\top x}) + \frac{\lambda_2}{2}\|x\|^2`, labels ±1;
    :math:`L = \|A\|_2^2/(4n) + \lambda_2`."""
    return empirical_risk(logistic, A, b, l2=l2)


def squared_hinge_objective(A, b, l2: float = 0.0) -> EmpiricalRisk:
    r""":math:`f(x) = \frac1n\sum_i(1 - b_i a_i^\top x)_+^2 + \frac{\lambda_2}{2}\|x\|^2`, labels ±1;
    :math:`L = 2\|A\|_2^2/n + \lambda_2`."""
    return empirical_risk(squared_hinge, A, b, l2=l2)
