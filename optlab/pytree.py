r"""Iterates that are pytrees: validation and the vector-space operations the first-order solvers need.

A solver's iterate :math:`x` is either one floating array or a pytree of floating arrays (e.g.
``{"w": (d,), "b": ()}``), seen as the vector of all its leaves: :math:`\langle a, b\rangle = \sum_\ell
\langle a_\ell, b_\ell\rangle` and :math:`\|a\| = (\sum_\ell \|a_\ell\|^2)^{1/2}`. For a single array the
functions below perform exactly the array operations (``jnp.vdot``, ``jnp.linalg.norm``), so array runs are
bit for bit what they were before pytrees were accepted.

Example:
    >>> import jax.numpy as jnp
    >>> x = {"w": jnp.array([3.0, 0.0]), "b": jnp.array(4.0)}
    >>> float(norm(x)), float(vdot(x, x))
    (5.0, 25.0)
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from . import losses, operators

__all__ = ["is_array_like", "as_iterate", "check_against", "vdot", "norm", "dtype", "axpy"]


def is_array_like(x) -> bool:
    """True for one array (JAX/NumPy array, scalar, or a nested list of numbers); False for other pytrees."""
    if isinstance(x, (jax.Array, np.ndarray, np.generic, int, float, bool)):
        return True
    if isinstance(x, list):
        try:
            return np.asarray(x).dtype != object
        except (ValueError, TypeError):
            return False
    return False


def _fix_hint(path: str) -> str:
    return "pass x0.astype(float)" if not path else "cast that leaf with .astype(float)"


def as_iterate(x0, name: str = "x0"):
    """``x0`` as the solver's iterate: a floating, finite JAX array, or a pytree of those.

    Raises:
        TypeError: a non-floating array or leaf (the message names the leaf's path and the fix).
        ValueError: an empty pytree, leaves of different dtypes, or a non-finite value.
    """
    if is_array_like(x0):
        x = jnp.asarray(x0)
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise TypeError(f"{name} must be a floating-point array, got dtype {x.dtype}; pass {name}.astype(float)")
        operators.check_finite(name, x)
        return x
    pairs, treedef = jax.tree_util.tree_flatten_with_path(x0)
    if not pairs:
        raise ValueError(f"{name} is an empty pytree ({treedef}); give at least one array to optimise")
    leaves = []
    for path, leaf in pairs:
        where = f"{name}{jax.tree_util.keystr(path)}"
        try:
            arr = jnp.asarray(leaf)
        except TypeError as err:
            raise TypeError(f"{where} must be a floating-point array, got {type(leaf).__name__}") from err
        if not jnp.issubdtype(arr.dtype, jnp.floating):
            raise TypeError(f"{where} must be a floating-point array, got dtype {arr.dtype}; pass "
                            f"{where}.astype(float) (every leaf of {name} is optimised)")
        operators.check_finite(where, arr)
        leaves.append(arr)
    dts = {str(a.dtype) for a in leaves}
    if len(dts) > 1:
        raise ValueError(f"the leaves of {name} have different dtypes {sorted(dts)}; cast them to one "
                         "floating dtype (it is the working dtype)")
    return jax.tree.unflatten(treedef, leaves)


def check_against(f, x, name: str = "x0", solver: str = "the solver"):
    """Check that the smooth part ``f`` accepts ``x`` and returns a real scalar; errors name ``x``'s expected shape.

    For an :func:`optlab.losses.empirical_risk` with data ``A`` of shape ``(n, d)``, ``x`` must be an array of
    shape ``(d,)`` (or ``(d, C)`` for softmax cross-entropy)."""
    A = getattr(f, "A", None) if isinstance(f, losses.EmpiricalRisk) else None
    if A is not None:
        d = A.shape[1]
        multiclass = getattr(f.loss, "name", "") == "softmax_cross_entropy"
        want = f"({d}, C)" if multiclass else f"({d},)"
        if not isinstance(x, jax.Array):
            raise TypeError(f"{solver}: f is an empirical risk on A of shape {tuple(A.shape)}, so {name} must be "
                            f"one array of shape {want}; a pytree {name} needs a user f(params) -> scalar "
                            "(ol.losses.smooth)")
        if x.ndim != (2 if multiclass else 1) or x.shape[0] != d:
            raise ValueError(f"{solver}: {name} has shape {tuple(x.shape)} but f's data A has shape "
                             f"{tuple(A.shape)}, so {name} must have shape {want}; e.g. {name} = np.zeros({d})")
    try:
        out = jax.eval_shape(f, x)
    except Exception as err:  # noqa: BLE001 - any tracing failure is a mismatch between f and x0
        shapes = jax.tree.map(lambda a: tuple(a.shape), x)
        raise ValueError(f"{solver}: f cannot be evaluated at {name} (shapes {shapes}): {type(err).__name__}: "
                         f"{err}; give {name} the shape(s) f expects") from err
    if out.shape != ():
        raise TypeError(f"f must return a scalar, got shape {out.shape} at {name}")
    return out


def dtype(x):
    """The working dtype of an iterate (its leaves share one dtype, see :func:`as_iterate`)."""
    return x.dtype if isinstance(x, jax.Array) else jax.tree.leaves(x)[0].dtype


def vdot(a, b):
    r""":math:`\langle a, b\rangle` over all leaves."""
    if isinstance(a, jax.Array):
        return jnp.vdot(a, b)
    parts = [jnp.vdot(u, v) for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b))]
    total = parts[0]
    for p in parts[1:]:
        total = total + p
    return total


def norm(a):
    r""":math:`\|a\|_2` over all leaves (``jnp.linalg.norm`` for one array)."""
    if isinstance(a, jax.Array):
        return jnp.linalg.norm(a)
    return jnp.sqrt(vdot(a, a))


def axpy(alpha, x, y):
    r""":math:`\alpha x + y` leaf by leaf (``alpha`` a scalar)."""
    return jax.tree.map(lambda u, v: alpha * u + v, x, y)
