r"""Working-set column blocks: the columns :math:`X_{\mathcal W}` of the features in a working set, padded to a
*size class* so that one compiled inner solver serves every working set of that class.

* :class:`DenseBlock`: ``cols`` of shape ``(K, n)`` (row ``j`` = column ``ws[j]`` of ``X``, contiguous).
* :class:`SparseBlock`: ``idx``/``val`` of shape ``(K, m)``: the row indices and values of the stored entries of
  each column, padded with ``(0, 0.0)`` entries (which add nothing).

``K`` is the working-set size rounded up to a power of two and ``m`` (sparse) the largest column length rounded
up to a power of two, so the number of compilations grows like :math:`\log_2 p` rather than with every
working-set size. Padded columns are all zero.

Both are pytrees with the four products the inner solvers need: ``dot(j, v)`` (:math:`X_j^\top v`),
``axpy(j, a, z)`` (:math:`z + aX_j`), ``matvec(w)`` (:math:`X_{\mathcal W} w`) and ``rmatvec(v)``
(:math:`X_{\mathcal W}^\top v`).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["DenseBlock", "SparseBlock", "size_class"]


def size_class(k: int, cap: int | None = None) -> int:
    """The smallest power of two >= ``k`` (and >= 1)."""
    return 1 << max(0, int(k) - 1).bit_length()


@jax.tree_util.register_pytree_node_class
class DenseBlock:
    """Dense columns, stored transposed: ``cols[j]`` is feature ``ws[j]`` (length ``n``).

    Built from a C-ordered ``X`` the gathered block is ``(n, K)`` (a cheap row-wise gather) and is transposed
    once inside the compiled solver (:meth:`ready`); from ``X.T`` (Fortran-ordered input) rows are gathered
    directly."""

    def __init__(self, cols, k=None):
        self.cols, self.k = cols, k  # k given: cols is (n, K) with the first k columns real

    def tree_flatten(self):
        return (self.cols, self.k), None

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(*children)

    @classmethod
    def gather(cls, X: np.ndarray, ws: np.ndarray, K: int, dtype) -> "DenseBlock":
        """Columns ``ws`` of ``X`` (``(n, p)``, any memory order) padded with zero columns to ``K``."""
        if X.flags.f_contiguous and not X.flags.c_contiguous:
            cols = np.zeros((K, X.shape[0]), dtype)
            cols[: ws.size] = X.T[ws]
            return cls(cols)
        # one row-wise gather; padded positions repeat column ws[0] and are zeroed inside jit (ready)
        pad = np.full(K, ws[0] if ws.size else 0, np.intp)
        pad[: ws.size] = ws
        return cls(np.asarray(X[:, pad], dtype), ws.size)

    def ready(self):
        """The block with ``cols`` of shape ``(K, n)`` (inside jit: one transpose)."""
        if self.k is None:
            return self
        real = jnp.arange(self.cols.shape[1]) < self.k
        return DenseBlock(jnp.where(real[:, None], self.cols.T, 0))

    def dot(self, j, v):
        return jnp.dot(self.cols[j], v)

    def axpy(self, j, a, z):
        return z + a * self.cols[j]

    def matvec(self, w):
        return w @ self.cols

    def rmatvec(self, v):
        return self.cols @ v


@jax.tree_util.register_pytree_node_class
class SparseBlock:
    """Sparse columns in padded CSC form: ``idx[j]``, ``val[j]`` are the stored entries of feature ``ws[j]``."""

    def __init__(self, idx, val, n):
        self.idx, self.val, self.n = idx, val, n

    def tree_flatten(self):
        return (self.idx, self.val), self.n

    @classmethod
    def tree_unflatten(cls, n, children):
        return cls(*children, n)

    @classmethod
    def gather(cls, Xcsc, ws: np.ndarray, K: int, dtype, m: int | None = None) -> "SparseBlock":
        """Columns ``ws`` of the CSC matrix, padded to ``K`` columns of ``m`` entries (default: the longest of
        them rounded up to a power of two; pass the longest column of the whole matrix to keep one class)."""
        start, stop = Xcsc.indptr[ws], Xcsc.indptr[ws + 1]
        lengths = stop - start
        if m is None:
            m = size_class(int(lengths.max()) if ws.size else 1)
        idx = np.zeros((K, m), np.int32)
        val = np.zeros((K, m), dtype)
        if ws.size and lengths.sum():
            rows = np.repeat(np.arange(ws.size), lengths)
            offs = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
            src = np.repeat(start, lengths) + offs
            idx[rows, offs] = Xcsc.indices[src]
            val[rows, offs] = Xcsc.data[src]
        return cls(jnp.asarray(idx), jnp.asarray(val), Xcsc.shape[0])

    def ready(self):
        return self

    def dot(self, j, v):
        return jnp.dot(self.val[j], v[self.idx[j]])

    def axpy(self, j, a, z):
        return z.at[self.idx[j]].add(a * self.val[j])

    def matvec(self, w):
        return jnp.zeros(self.n, self.val.dtype).at[self.idx].add(w[:, None] * self.val)

    def rmatvec(self, v):
        return jnp.sum(self.val * v[self.idx], axis=1)
