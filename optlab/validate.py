"""Input validation shared by the public solvers: pure checks whose messages name the argument and the fix.

Every function either returns the (normalised) value or raises ``TypeError`` (wrong kind of value) or
``ValueError`` (right kind, wrong value) with a message that starts with the argument's name. The checks run on
concrete values, before anything is compiled: a value traced by ``jax.jit``/``jax.vmap`` is passed through
unchecked (the caller validated it, or chose to trace it).

* numbers: :func:`count` (integers, no silent truncation of ``10.7``), :func:`positive`, :func:`nonnegative`,
  :func:`tolerance`, :func:`in_interval`, :func:`choice`;
* seeds: :func:`seed` (an integer in ``[0, 2**32)`` or a JAX PRNG key; ``1.9``, ``-1`` and ``2**32`` are errors,
  not aliases of ``1``, ``2**32 - 1`` and ``0``);
* starting points: :func:`float_array` (floating, finite, of a given shape), :func:`float_tree` (the same for
  every leaf of a pytree, optionally matching a template's structure and shapes), :func:`finite_tree`;
* layer widths: :func:`widths` (integers >= 1, ``4.5`` is an error);
* data: :func:`dense_matrix` (2-D, non-empty, finite, real; sparse matrices rejected where unsupported);
* executors: :func:`executor` (``parallel=`` must be an executor, not e.g. the string ``"sync"``), :func:`blocks`
  (row blocks over its workers);
* solver-specific ranges: :func:`gist_search` (GIST's line-search constants).
"""
from __future__ import annotations

import math
import numbers
from typing import Iterable

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from . import operators
from .executor import as_executor

__all__ = ["count", "positive", "nonnegative", "tolerance", "in_interval", "choice", "seed", "float_array",
           "float_tree", "finite_tree", "dense_matrix", "executor", "blocks", "gist_search", "widths"]

SEED_LIMIT = 2**32


def _is_traced(value) -> bool:
    return isinstance(value, jax.core.Tracer)


def _real(name: str, value, example) -> float:
    """``value`` as a Python float; a TypeError naming ``name`` for non-numbers (bools, strings, arrays)."""
    if isinstance(value, (bool, np.bool_)) or isinstance(value, str):
        raise TypeError(f"{name} must be a number, got {value!r}; pass e.g. {name}={example}")
    arr = operators.concrete(value)
    if arr is None:
        return value
    if arr.shape != () or arr.dtype.kind not in "fiu":
        raise TypeError(f"{name} must be a real scalar, got {value!r}; pass e.g. {name}={example}")
    return float(arr)


def count(name: str, value, *, minimum: int = 0, maximum: int | None = None) -> int:
    """An integer count (iterations, widths, block sizes) in ``[minimum, maximum]``.

    Integral floats (``1e4``) are accepted; other floats (``10.7``), bools and strings are ``TypeError``s, never
    truncated."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be an integer, got {value!r}; pass e.g. {name}={max(minimum, 1)}")
    if not isinstance(value, numbers.Integral):
        if not (math.isfinite(float(value)) and float(value).is_integer()):
            raise TypeError(f"{name} must be an integer, got {value!r} (it is not truncated); pass e.g. "
                            f"{name}={max(minimum, int(math.floor(float(value))) if math.isfinite(value) else 1)}")
    value = int(value)
    if value < minimum or (maximum is not None and value > maximum):
        where = (("a positive integer" if minimum == 1 else f"an integer >= {minimum}") if maximum is None
                 else f"an integer in [{minimum}, {maximum}]")
        raise ValueError(f"{name} must be {where}, got {value}")
    return value


def positive(name: str, value, *, example="1.0") -> float:
    """A finite number ``> 0`` (steps, penalties, scales)."""
    v = _real(name, value, example)
    if _is_traced(v):
        return v
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}; pass e.g. {name}={example}")
    return v


def nonnegative(name: str, value, *, example="0.0") -> float:
    """A finite number ``>= 0`` (regularisation weights, burn-in)."""
    v = _real(name, value, example)
    if _is_traced(v):
        return v
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}; pass e.g. {name}={example}")
    return v


def tolerance(name: str, value) -> float:
    """A stopping tolerance: finite and ``>= 0`` (``0`` disables the test); ``None`` counts as ``0``."""
    if value is None:
        return 0.0
    v = _real(name, value, "1e-6")
    if _is_traced(v):
        return v
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}; {name}=0 disables the tolerance test")
    return v


def in_interval(name: str, value, low=-math.inf, high=math.inf, *, low_open=False, high_open=False,
                hint: str = "", finite: bool = True) -> float:
    """A number in the interval from ``low`` to ``high`` (open ends as flagged); finite unless ``finite=False``
    (then ``±inf`` is allowed where the interval contains it, NaN never)."""
    v = _real(name, value, (low + high) / 2 if math.isfinite(low + high) else 1.0)
    if _is_traced(v):
        return v
    ok = (math.isfinite(v) or not (finite or math.isnan(v))) and (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
    if not ok:
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{name} must be in {interval}, got {value!r}" + (f"; {hint}" if hint else ""))
    return v


def choice(name: str, value, options: Iterable):
    """One of ``options`` (strings compared exactly)."""
    options = tuple(options)
    if not any(value == o and type(value) is type(o) for o in options):
        raise ValueError(f"{name} must be one of {', '.join(repr(o) for o in options)}; got {value!r}")
    return value


def is_key(value) -> bool:
    """A single JAX PRNG key: typed (``jax.random.key``) of shape (), or raw ``uint32[2]`` key data."""
    dtype = getattr(value, "dtype", None)
    if dtype is None:
        return False
    if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        return getattr(value, "shape", None) == ()
    return isinstance(value, jax.Array) and dtype == jnp.uint32 and value.shape == (2,)


def seed(name: str, value) -> int:
    """A random seed as a Python int in ``[0, 2**32)``; a JAX PRNG key (typed, or a raw ``uint32[2]`` from
    ``jax.random.PRNGKey``) is turned into one by drawing 32 bits from it (deterministic per key)."""
    if is_key(value):
        key = value if jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key) else jax.random.wrap_key_data(value)
        return int(jax.random.bits(key, dtype=jnp.uint32))
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer in [0, 2**32) or a JAX PRNG key, got {value!r}; "
                        f"pass e.g. {name}=0 (floats are not rounded: 1 and 1.9 would give the same stream)")
    value = int(value)
    if not 0 <= value < SEED_LIMIT:
        raise ValueError(f"{name} must be in [0, 2**32), got {value}; seeds outside it would alias others "
                         f"(-1 ≡ 2**32-1, 2**32 ≡ 0); pass e.g. {name}={value % SEED_LIMIT} explicitly")
    return value


def float_array(name: str, value, *, shape: tuple | None = None, ndim: int | None = None, dtype=None,
                allow_int: bool = False):
    """A finite floating-point array (JAX) of ``shape`` (or ``ndim``); integers are an error unless
    ``allow_int`` (then converted to ``dtype`` or the default float). Traced values skip the value checks."""
    if sp.issparse(value):
        raise TypeError(f"{name} must be a dense array, got a SciPy sparse matrix; pass {name}.toarray()")
    try:
        arr = jnp.asarray(value)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a numeric array, got {type(value).__name__}: {err}") from None
    kind = np.dtype(arr.dtype).kind
    if kind == "c" or kind not in "fiub" or (kind == "b"):
        raise TypeError(f"{name} must be a real floating-point array, got dtype {arr.dtype}")
    if kind != "f":
        if not allow_int:
            raise TypeError(f"{name} must be a floating-point array, got dtype {arr.dtype}; pass "
                            f"{name}.astype(float)")
        arr = arr.astype(dtype if dtype is not None else jnp.result_type(float))
    elif dtype is not None:
        arr = arr.astype(dtype)
    if shape is not None and tuple(arr.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {tuple(arr.shape)}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-d, got shape {tuple(arr.shape)}")
    operators.check_finite(name, arr)
    return arr


def float_tree(name: str, tree, *, like=None, dtype=None):
    """Every leaf of the pytree ``tree`` a finite floating-point array; with ``like`` (a template pytree), the same
    structure and leaf shapes. Returns the tree with leaves as JAX arrays (cast to ``dtype`` if given)."""
    leaves, treedef = jax.tree.flatten(tree)
    if not leaves:
        raise ValueError(f"{name} is empty (no arrays)")
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]]
    if like is not None:
        like_leaves, like_def = jax.tree.flatten(like)
        if like_def != treedef:
            raise ValueError(f"{name} must have the structure {like_def}, got {treedef}")
        shapes = [np.shape(x) for x in like_leaves]
    else:
        shapes = [None] * len(leaves)
    out = [float_array(f"{name}{p}", x, shape=s, dtype=dtype) for p, x, s in zip(paths, leaves, shapes)]
    return jax.tree.unflatten(treedef, out)


def dense_matrix(name: str, X, *, allow_sparse: bool = False, min_rows: int = 1, solver: str = ""):
    """A real 2-D, non-empty, finite matrix. SciPy sparse input is returned as is when ``allow_sparse`` (values
    checked), else a ``TypeError`` naming the fix (``.toarray()``). Integer/bool arrays are promoted to float."""
    who = f"{solver} needs" if solver else "needs"
    if sp.issparse(X):
        if not allow_sparse:
            raise TypeError(f"{name}: {who} a dense array, got a SciPy sparse matrix ({X.format}); pass "
                            f"{name}.toarray() (or a solver that takes sparse data, e.g. ol.svm_admm)")
        if X.ndim != 2 or X.dtype.kind not in "fiub":
            raise TypeError(f"{name} must be a real 2-d matrix, got dtype {X.dtype}")
        arr = X
    else:
        try:
            arr = np.asarray(X) if not isinstance(X, jax.Array) else X
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name} must be a numeric 2-d array, got {type(X).__name__}: {err}") from None
        if np.dtype(arr.dtype).kind not in "fiub":
            raise TypeError(f"{name} must be a real numeric array, got dtype {arr.dtype}")
        if arr.ndim != 2:
            raise ValueError(f"{name} must be a 2-d array (n_samples, n_features), got shape {tuple(arr.shape)}")
    if arr.shape[0] < min_rows or arr.shape[1] < 1:
        raise ValueError(f"{name} is empty or too small: shape {tuple(arr.shape)}; it needs at least {min_rows} "
                         f"row(s) and 1 column")
    operators.check_finite(name, arr)
    return arr


def blocks(n_blocks, executor, n: int) -> int:
    """``n_blocks``, the row blocks of a data-parallel solver (default: the executor's worker count): an integer in
    ``[1, n]`` that the worker count divides, so that every worker holds the same number of whole blocks."""
    W = executor.n_workers
    n_blocks = count("n_blocks", W if n_blocks is None else n_blocks, minimum=1)
    if n_blocks > n:
        raise ValueError(f"n_blocks={n_blocks} is larger than the number of samples n={n}; use at most n blocks "
                         "(with parallel=, n_blocks defaults to the number of workers)")
    if n_blocks % W:
        raise ValueError(f"n_blocks={n_blocks} must be a multiple of the number of workers ({W}) so that every worker "
                         f"holds whole blocks; pass n_blocks={W * -(-n_blocks // W)} or leave it unset")
    return n_blocks


def executor(parallel):
    """``parallel=``: ``None`` (serial) or an executor of :mod:`optlab.parallel`; anything else (``"sync"``, ``4``)
    is a ``TypeError`` that shows how to build one."""
    return as_executor(parallel)


def gist_search(sigma, eta, L_min, L_max):
    """GIST's line-search constants (Gong et al., ICML 2013): sufficient decrease ``sigma > 0`` (finite), step
    growth ``eta > 1``, ``0 < L_min < L_max`` (``L_max`` may be ``inf``). Returns them as floats."""
    sigma = positive("sigma", sigma, example="1e-5")
    eta = in_interval("eta", eta, 1.0, math.inf, low_open=True, high_open=True,
                      hint="the Lipschitz estimate is multiplied by eta after each rejected step; e.g. eta=2")
    L_min = positive("L_min", L_min, example="1e-30")
    L_max_v = _real("L_max", L_max, "1e30")
    if not (L_max_v > L_min) or math.isnan(L_max_v):
        raise ValueError(f"L_min must be < L_max, got L_min={L_min!r}, L_max={L_max!r}")
    return sigma, eta, L_min, L_max_v


def widths(name: str, layers, *, first: int | None = None) -> list[int]:
    """Layer widths: a sequence of at least two integers >= 1 (``4.5`` is an error, not ``4``); with ``first``,
    ``layers[0]`` must equal it (the number of features)."""
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Iterable):
        raise TypeError(f"{name} must be a list of layer widths, e.g. {name}=[d, 64, n_classes], got {layers!r}")
    out = [count(f"{name}[{i}]", w) for i, w in enumerate(layers)]
    if any(w < 1 for w in out):
        raise ValueError(f"{name} must be positive integer widths, got {out}")
    if len(out) < 2:
        raise ValueError(f"{name} needs at least an input and an output width, got {out}")
    if first is not None and out[0] != first:
        raise ValueError(f"{name}[0] must be the number of features ({first}), got {out[0]}")
    return out


def finite_tree(name: str, tree) -> None:
    """Raise ``ValueError`` naming ``name`` if any floating leaf of ``tree`` is NaN or Inf (concrete leaves only)."""
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        operators.check_finite(f"{name}{jax.tree_util.keystr(path)}", leaf)

