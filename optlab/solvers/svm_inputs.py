"""Input checks and the model of the linear SVM solvers (:func:`optlab.svm_admm`, :func:`optlab.svm_consensus_admm`):
data matrix, two-valued labels, penalty, ADMM penalties, working dtype; the slack prox, ``nzf`` and ``predict``."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
from jax.experimental import sparse as jsparse

from .. import operators
from .svm_linsolve import Av

__all__ = ["encode_labels", "check_X", "check_data", "check_rho", "check_penalty", "slack_prox", "nzf", "predict"]


def encode_labels(y):
    """Map two-valued labels to ±1: returns ``(b, classes)`` with ``classes[0] -> -1``, ``classes[1] -> +1``."""
    y = np.asarray(y)
    if y.ndim != 1:
        y = y.reshape(-1) if y.ndim == 2 and 1 in y.shape else None
        if y is None:
            raise ValueError("y must be a 1-d array of labels")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise ValueError("y contains NaN or Inf; labels must be two distinct finite values")
    try:
        classes = np.unique(y)
    except TypeError as err:
        raise TypeError(f"y: labels must be comparable (numbers or strings), got {err}") from err
    if classes.size != 2:
        raise ValueError(f"y must take exactly two distinct values (only binary classification is supported), "
                         f"got {classes.size}: "
                         f"{classes[:5].tolist()}{' ...' if classes.size > 5 else ''}")
    return np.where(y == classes[1], 1.0, -1.0), classes


def check_X(X):
    """``(X, dtype)``: a SciPy sparse matrix or array (JAX arrays become NumPy), and its float working dtype
    (integers promoted; float64 becomes float32 when JAX runs without x64)."""
    if isinstance(X, jsparse.BCOO):
        raise TypeError("X: pass a SciPy sparse matrix (CSR/CSC) or a dense array, not a BCOO")
    X = X if sp.issparse(X) else np.asarray(X)
    if X.dtype.kind not in "fiub":
        raise TypeError(f"X must be a real numeric array, got dtype {X.dtype}")
    if X.ndim != 2:
        raise ValueError(f"X must be a 2-d array (n_samples, n_features), got shape {X.shape}")
    operators.check_finite("X", X)
    dtype = X.dtype if X.dtype.kind == "f" else np.dtype(jnp.result_type(float))
    if jnp.dtype(dtype) == jnp.float64 and not jax.config.jax_enable_x64:
        dtype = np.dtype(np.float32)
    return X, dtype


def check_data(X, y):
    """:func:`check_X`, at least 2 rows and 1 column, labels by :func:`encode_labels`, matching lengths.

    Returns ``(X, b, classes, dtype)``."""
    X, dtype = check_X(X)
    n, d = X.shape
    if n < 2:
        raise ValueError(f"X must have at least 2 samples (rows), got {n}")
    if d < 1:
        raise ValueError("X must have at least 1 feature (column), got 0")
    b, classes = encode_labels(y)
    if b.shape[0] != n:
        raise ValueError(f"X has {n} rows but y has {b.shape[0]} labels")
    return X, b, classes, dtype


def check_penalty(penalty) -> None:
    if not (hasattr(penalty, "prox") and hasattr(penalty, "value")):
        raise TypeError(f"penalty must be an optlab.prox penalty (e.g. ol.prox.mcp(lam=0.01, gamma=3.0)), "
                        f"got {type(penalty).__name__}")


def check_rho(name, value):
    """``None`` (problem-scaled default) or a concrete finite scalar > 0 (the factorisation depends on it)."""
    if value is None:
        return None
    v = operators.concrete(value)
    if v is None:
        raise ValueError(f"{name} must be a concrete number: the factorisation depends on rho1/rho2 "
                         "(vmap over the penalty's parameters instead)")
    if not (np.ndim(v) == 0 and np.isreal(v) and np.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be a finite scalar > 0, got {value!r} (or None for the problem-scaled default)")
    return value


def slack_prox(v, kappa, mask):
    """``e = ξ − s`` of the slack step (step 3 of :func:`optlab.svm_admm`): the prox of ``κ(·)₊`` split into its
    positive and negative parts, ``v − κ`` above ``κ``, 0 on ``[0, κ]``, ``v`` below 0; 0 where ``mask`` is 0."""
    return jnp.where(v > kappa, v - kappa, jnp.where(v < 0, v, 0)) * mask


def nzf(state, problem, comm=None):
    """Percentage of nonzero features of the returned model ``state.z``."""
    return 100.0 * jnp.mean((state.z != 0).astype(state.z.dtype))


def predict(params, X):
    """±1 labels ``sign(X w + b)`` of the model ``params = {"w", "b"}``."""
    X = operators.as_jax(X) if sp.issparse(X) else jnp.asarray(X)
    if not jnp.issubdtype(X.dtype, jnp.floating):     # integer data: promote X (casting w would truncate it)
        X = X.astype(params["w"].dtype)
    return jnp.sign(Av(X, params["w"].astype(X.dtype)) + params["b"])
