"""Seeded synthetic problems with a known sparse ground truth.

Design: rows of X are i.i.d. Gaussian with unit variances and AR(1) correlations
``corr(X_i, X_j) = correlation**|i - j|`` (``correlation=0``: independent standard normal features), or,
for classification with ``density``, sparse with N(0, 1) nonzeros. ``w_true`` has ``k`` nonzeros at
``support`` (sorted, drawn uniformly without replacement) with values ``±U(1, 2)`` (random signs), so
that every true coefficient is bounded away from zero.
"""
from __future__ import annotations

import numbers

import numpy as np
import scipy.sparse as sp

from .base import Dataset

__all__ = ["make_sparse_regression", "make_sparse_classification"]


def _check_int(name: str, value, low: int, high: int | None = None) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < low or (high is not None and value > high):
        rng = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"{name}={value} must be in {rng}")
    return int(value)


def _check_common(n, d, k, noise, correlation, n_test, dtype):
    n = _check_int("n", n, 1)
    d = _check_int("d", d, 1)
    k = _check_int("k", k, 0, d)
    n_test = _check_int("n_test", n_test, 0)
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise={noise} must be a finite number >= 0")
    if not (0.0 <= correlation < 1.0):
        raise ValueError(f"correlation={correlation} must be in [0, 1)")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    return n, d, k, float(noise), float(correlation), n_test, dtype


def _sparse_truth(rng: np.random.Generator, d: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    support = np.sort(rng.choice(d, size=k, replace=False)).astype(np.int64)
    w = np.zeros(d)
    w[support] = rng.choice([-1.0, 1.0], size=k) * rng.uniform(1.0, 2.0, size=k)
    return w, support


def _gaussian_design(rng: np.random.Generator, n: int, d: int, correlation: float) -> np.ndarray:
    Z = rng.standard_normal((n, d))
    if correlation == 0.0 or d == 1:
        return Z
    from scipy.signal import lfilter

    c = np.sqrt(1.0 - correlation**2)
    Z[:, 0] /= c  # so that the first column keeps unit variance after the filter scales it by c
    return lfilter([c], [1.0, -correlation], Z, axis=1)  # x_j = rho x_{j-1} + sqrt(1-rho^2) z_j


def _sparse_design(rng: np.random.Generator, n: int, d: int, density: float) -> sp.csr_matrix:
    nnz = int(round(density * n * d))
    flat = rng.choice(n * d, size=nnz, replace=False)
    rows, cols = np.divmod(flat, d)
    X = sp.coo_matrix((rng.standard_normal(nnz), (rows, cols)), shape=(n, d)).tocsr()
    X.sort_indices()
    return X


def _split(X, y, n, n_test):
    if n_test == 0:
        return X, y, None, None
    return X[:n], y[:n], X[n:], y[n:]


def make_sparse_regression(n: int = 200, d: int = 500, k: int = 10, noise: float = 0.1,
                           correlation: float = 0.0, seed: int = 0, dtype=np.float64,
                           n_test: int = 0) -> Dataset:
    """Sparse linear regression ``y = X w_true + noise * N(0, 1)``, reproducible from ``seed``.

    Parameters
    ----------
    n, d : rows and columns of X. k : number of nonzeros of ``w_true`` (0 <= k <= d).
    noise : standard deviation of the Gaussian noise. correlation : AR(1) feature correlation in [0, 1).
    seed : seeds a ``numpy.random.default_rng``. dtype : float32 or float64 (X, y and w_true).
    n_test : extra rows drawn from the same model and returned as ``X_test, y_test``.

    Returns a :class:`Dataset` whose ``meta`` holds ``w_true`` (length d), ``support`` (sorted indices),
    ``noise``, ``correlation``, ``seed``.

    Example
    -------
    >>> ds = make_sparse_regression(100, 50, 5, seed=1)
    >>> ds.X.shape, int((ds.meta["w_true"] != 0).sum())
    ((100, 50), 5)
    """
    n, d, k, noise, correlation, n_test, dtype = _check_common(n, d, k, noise, correlation, n_test, dtype)
    rng = np.random.default_rng(seed)
    w, support = _sparse_truth(rng, d, k)
    X = _gaussian_design(rng, n + n_test, d, correlation)
    y = X @ w + noise * rng.standard_normal(n + n_test)
    X, y, w = X.astype(dtype), y.astype(dtype), w.astype(dtype)
    X_tr, y_tr, X_te, y_te = _split(X, y, n, n_test)
    meta = {"source": "synthetic: optlab.data.make_sparse_regression", "task": "regression", "w_true": w,
            "support": support, "k": k, "noise": noise, "correlation": correlation, "seed": seed,
            "n_features": d, "dtype": str(dtype),
            "split": f"{n} train rows" + (f", {n_test} test rows from the same model" if n_test else
                                          " (no test split)")}
    return Dataset(X_tr, y_tr, X_te, y_te, "synthetic_regression", meta)


def make_sparse_classification(n: int = 200, d: int = 500, k: int = 10, noise: float = 0.1,
                               correlation: float = 0.0, density: float | None = None, seed: int = 0,
                               dtype=np.float64, n_test: int = 0) -> Dataset:
    """Sparse linear classification ``y = sign(X w_true + noise * N(0, 1))`` in {-1, +1} (sign(0) = +1).

    ``density`` in (0, 1] gives a CSR X with that fraction of N(0, 1) nonzeros (positions uniform without
    replacement; ``correlation`` must then be 0); otherwise X is dense Gaussian as in
    :func:`make_sparse_regression`. ``meta`` holds ``w_true``, ``support``, ``noise``, ``seed`` and
    ``flip_rate`` (fraction of labels that disagree with ``sign(X w_true)``).

    Example
    -------
    >>> ds = make_sparse_classification(100, 50, 5, density=0.2, seed=1)
    >>> sorted(set(ds.y.tolist()))
    [-1.0, 1.0]
    """
    n, d, k, noise, correlation, n_test, dtype = _check_common(n, d, k, noise, correlation, n_test, dtype)
    if density is not None:
        if not (0.0 < density <= 1.0):
            raise ValueError(f"density={density} must be in (0, 1]")
        if correlation != 0.0:
            raise ValueError("correlation is only supported for dense X (density=None)")
    rng = np.random.default_rng(seed)
    w, support = _sparse_truth(rng, d, k)
    X = _gaussian_design(rng, n + n_test, d, correlation) if density is None else \
        _sparse_design(rng, n + n_test, d, float(density))
    margin = np.asarray(X @ w).ravel()
    noisy = margin + noise * rng.standard_normal(n + n_test)
    y = np.where(noisy >= 0, 1.0, -1.0)
    flip = float(np.mean(y != np.where(margin >= 0, 1.0, -1.0)))
    X, y, w = X.astype(dtype), y.astype(dtype), w.astype(dtype)
    X_tr, y_tr, X_te, y_te = _split(X, y, n, n_test)
    meta = {"source": "synthetic: optlab.data.make_sparse_classification", "task": "binary", "w_true": w,
            "support": support, "k": k, "noise": noise, "correlation": correlation, "density": density,
            "seed": seed, "n_features": d, "dtype": str(dtype), "flip_rate": flip, "classes": [-1, 1],
            "split": f"{n} train rows" + (f", {n_test} test rows from the same model" if n_test else
                                          " (no test split)")}
    return Dataset(X_tr, y_tr, X_te, y_te, "synthetic_classification", meta)
