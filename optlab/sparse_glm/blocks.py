r"""Working-set column blocks: the columns :math:`X_{\mathcal W}` of the features in a working set, padded to a
*size class* so that one compiled inner solver serves every working set of that class.

* :class:`DenseBlock`: ``cols`` of shape ``(K, n)`` (row ``j`` = column ``ws[j]`` of ``X``, contiguous).
* :class:`SparseBlock`: chunked CSC: the stored entries of each column in consecutive chunks of ``C`` entries
  (``idx``/``val`` of shape ``(T, C)``, the last chunk of a column padded with ``(0, 0.0)`` entries, which add
  nothing), so a coordinate step costs that column's length, not the longest column's.

``K`` is the working-set size rounded up to a power of two and ``T`` (sparse) the number of chunks rounded up
to a power of two, so the number of compilations grows like :math:`\log_2` of the sizes rather than with every
working set. Padded columns are all zero.

Both are pytrees with the four products the inner solvers need: ``grad_dot(j, loss, z, y)``
(:math:`X_j^\top \ell'(z, y)`, evaluating :math:`\ell'` only where column ``j`` is stored when sparse),
``axpy(j, a, z)`` (:math:`z + aX_j`), ``matvec(w)`` (:math:`X_{\mathcal W} w`), ``add_matvec(w, z, k)``
(:math:`z + X_{\mathcal W} w`) and ``rmatvec(v)``
(:math:`X_{\mathcal W}^\top v`).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = ["ChunkedColumns", "DenseBlock", "SparseBlock", "size_class"]


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

    def grad_dot(self, j, loss, z, y):
        return jnp.dot(self.cols[j], loss.grad(z, y))

    def axpy(self, j, a, z):
        return z + a * self.cols[j]

    def matvec(self, w):
        return w @ self.cols

    def add_matvec(self, w, z, k):
        r""":math:`z + X_{\mathcal W} w` (``k``, the number of real columns, unused: one BLAS product)."""
        return z + w @ self.cols

    def rmatvec(self, v):
        return self.cols @ v


class ChunkedColumns:
    r"""All columns of a CSC matrix in chunked form, built once per fit: column ``j`` fills the chunk rows
    ``first[j] .. first[j+1]-1`` of ``idx``/``val`` (shape ``(T, C)``: row indices and values; the last chunk of
    a column padded with ``(0, 0.0)``). Working-set blocks are then row selections (:meth:`SparseBlock.gather`).

    Real columns have very unequal lengths (a9a: 19 to 31,042 entries), so padding every column to the longest
    one would multiply the work of an epoch; with chunks a coordinate step costs that column's length rounded
    up to ``C``, in :math:`\lceil\text{nnz}_j/C\rceil` chunk steps."""

    def __init__(self, Xcsc, y, dtype, chunk: int | None = None):
        C = self.chunk_size(Xcsc) if chunk is None else int(chunk)
        lengths = np.diff(Xcsc.indptr).astype(np.int64)
        nch = -(-lengths // C)
        first = np.zeros(lengths.size + 1, np.int64)
        np.cumsum(nch, out=first[1:])
        T = int(first[-1]) + 1  # one all-zero chunk at the end (row T - 1) for padding
        idx = np.zeros(T * C, np.int32)
        val = np.zeros(T * C, dtype)
        # entry e of column j moves from indptr[j] + o to first[j] * C + o
        dst = np.arange(Xcsc.nnz, dtype=np.int64) + np.repeat(first[:-1] * C - Xcsc.indptr[:-1], lengths)
        idx[dst] = Xcsc.indices
        val[dst] = Xcsc.data
        idx = idx.reshape(T, C)
        self.C, self.n, self.first, self.nch, self.zero_row = C, Xcsc.shape[0], first, nch, T - 1
        # on the device once per fit; working-set blocks select chunk rows inside the compiled solver
        self.idx, self.val = jnp.asarray(idx), jnp.asarray(val.reshape(T, C))
        self.yv = jnp.asarray(np.asarray(y, dtype)[idx])  # the targets of every entry: one gather less per step

    @staticmethod
    def chunk_size(Xcsc, step_cost: int = 256) -> int:
        r"""The chunk length ``C`` (a power of two, 8 to 1,024) minimising the work of one pass over all columns,
        counted in entries: the padded entries :math:`\sum_j C\lceil\text{nnz}_j/C\rceil` plus ``step_cost``
        per chunk step (the loop overhead of one step, measured on CPU at about the cost of 256 entries)."""
        lengths = np.diff(Xcsc.indptr).astype(np.int64)
        best, best_cost = 8, np.inf
        for C in (8, 16, 32, 64, 128, 256, 512, 1024):
            steps = int(np.sum(-(-lengths // C)))
            cost = steps * (C + step_cost)
            if cost < best_cost:
                best, best_cost = C, cost
        return best


@jax.tree_util.register_pytree_node_class
class SparseBlock:
    r"""Working-set columns in chunked form (:class:`ChunkedColumns`): column ``j`` of the block is the chunk rows
    ``cs[j] .. cs[j+1]-1`` of ``idx``/``val``/``yv`` (shape ``(T, C)``; ``yv`` the targets :math:`y_i` of the
    entries) and ``col[t]`` the column of chunk row ``t``.

    As built by :meth:`gather` the arrays are those of the whole matrix and ``rows`` (length ``T``) selects the
    block's chunk rows; :meth:`ready` (inside the compiled solver) makes the selection, so no entry data
    crosses from the host per working set."""

    def __init__(self, idx, val, yv, cs, col, n, rows=None):
        self.idx, self.val, self.yv, self.cs, self.col, self.n, self.rows = idx, val, yv, cs, col, n, rows

    def tree_flatten(self):
        return (self.idx, self.val, self.yv, self.cs, self.col, self.rows), self.n

    @classmethod
    def tree_unflatten(cls, n, children):
        idx, val, yv, cs, col, rows = children
        return cls(idx, val, yv, cs, col, n, rows)

    @classmethod
    def gather(cls, cols: ChunkedColumns, ws: np.ndarray, K: int) -> "SparseBlock":
        """Columns ``ws`` as ``K`` block columns (``K - ws.size`` empty), the chunk count padded to a power of
        two."""
        nch = cols.nch[ws]
        cs = np.zeros(K + 1, np.int64)
        np.cumsum(nch, out=cs[1: ws.size + 1])
        cs[ws.size + 1:] = cs[ws.size]
        used = int(cs[-1])
        T = size_class(max(used, 1))
        rows = np.full(T, cols.zero_row, np.int32)
        rows[:used] = np.arange(used, dtype=np.int64) + np.repeat(cols.first[ws] - cs[: ws.size], nch)
        col = np.zeros(T, np.int32)
        col[:used] = np.repeat(np.arange(ws.size, dtype=np.int32), nch)
        return cls(cols.idx, cols.val, cols.yv, jnp.asarray(cs, jnp.int32), jnp.asarray(col), cols.n,
                   jnp.asarray(rows))

    def ready(self):
        """The block with its own chunk rows (inside jit: one row gather per array)."""
        if self.rows is None:
            return self
        return SparseBlock(self.idx[self.rows], self.val[self.rows], self.yv[self.rows], self.cs, self.col, self.n)

    def grad_dot(self, j, loss, z, y):
        def step(t, acc):
            return acc + jnp.dot(self.val[t], loss.grad(z[self.idx[t]], self.yv[t]))
        return lax.fori_loop(self.cs[j], self.cs[j + 1], step, jnp.zeros((), z.dtype))

    def axpy(self, j, a, z):
        stop = jnp.where(a != 0, self.cs[j + 1], self.cs[j])  # a zero step touches nothing
        return lax.fori_loop(self.cs[j], stop, lambda t, z: z.at[self.idx[t]].add(a * self.val[t]), z)

    def matvec(self, w):
        return jnp.zeros(self.n, self.val.dtype).at[self.idx].add(w[self.col][:, None] * self.val)

    def add_matvec(self, w, z, k):
        r""":math:`z + X_{\mathcal W} w` column by column over the first ``k`` columns: columns with
        :math:`w_j = 0` cost nothing (few change in an extrapolation step or lie in the support)."""
        return lax.fori_loop(0, k, lambda j, z: self.axpy(j, w[j], z), z)

    def rmatvec(self, v):
        per_chunk = jnp.sum(self.val * v[self.idx], axis=1)
        return jax.ops.segment_sum(per_chunk, self.col, num_segments=self.cs.shape[0] - 1,
                                   indices_are_sorted=True)
