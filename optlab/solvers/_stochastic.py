r"""Shared machinery of the stochastic linear-model solvers (SPDHG, SPDPEG and the stochastic-ADMM baselines).

Problem family (SPEC §4, §5, §7): with rows :math:`a_i` of :math:`A\in\mathbb R^{n\times d}`, labels
:math:`b_i`, a penalty matrix :math:`F\in\mathbb R^{m\times d}`,

.. math:: P(x) = \frac1n\sum_i \ell(a_i^\top x, b_i) + \frac\gamma2\|x\|^2 + \mu\|Fx\|_1 + r(x).

What lives here (so that every solver module only writes its update):

* :class:`LinData` -- the data rows, dense or as padded sparse rows (ELL: per row the column indices and values
  of its nonzeros, padded with zeros to the longest row), so that one sample costs :math:`O(\mathrm{nnz}(a_i))`
  and sparse data are never densified; no per-sample gradient matrix is ever formed.
* :class:`Op` -- the penalty matrix :math:`F`, dense or as padded rows of F and of Fᵀ (products by gathers).
* :func:`make_epoch_step` -- the one stochastic loop: a harness step is one *segment* of an epoch
  (``segments`` per epoch; the default 1 makes one harness step one epoch). At the first segment of an epoch
  a fresh permutation of the n samples is drawn (keyed by the seed and the epoch number held in the state) (sampling without replacement,
  reshuffled every epoch), and the segment runs the method's per-batch update over its share of the
  permutation inside one compiled ``fori_loop``. With a batch size ``B`` that does not divide ``n`` the
  ``n mod B`` samples at the end of each epoch's permutation are skipped that epoch (different ones each epoch).
* online averages (uniform or weighted) and the objective / test-loss metrics evaluated at the averaged iterate.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
from jax import lax

from .. import losses as _losses
from .. import operators

__all__ = ["LinData", "Op", "Loop", "prepare_data", "prepare_F", "check_common", "make_epoch_step",
           "init_loop", "margins", "spread", "batch_grad", "full_grad", "average", "objective_at", "test_loss_at"]


# --------------------------------------------------------------------------------------------- data
class LinData(NamedTuple):
    """Data rows. ``cols is None``: ``vals`` is the dense ``(n, d)`` matrix; otherwise ``vals``/``cols`` are
    ``(n, k)`` padded sparse rows (padding: value 0 at column 0)."""

    vals: jax.Array
    cols: Any
    y: jax.Array


@jax.tree_util.register_pytree_node_class
class Op:
    """The penalty matrix F (m x d), dense (``mat``) or sparse as two padded-row (ELL) tables: the nonzeros of every
    row of F (``rcols``, ``rvals``: (m, k_r)) and of every row of Fᵀ (``ccols``, ``cvals``: (d, k_c)), so that both
    :math:`Fx` and :math:`F^\top u` are gathers and row sums (no scatter, which is slow inside a compiled loop on
    CPU). Padding entries have value 0 at index 0. m, d are static."""

    def __init__(self, mat, rcols, rvals, ccols, cvals, shape):
        self.mat, self.rcols, self.rvals, self.ccols, self.cvals = mat, rcols, rvals, ccols, cvals
        self.shape = tuple(shape)

    def tree_flatten(self):
        return (self.mat, self.rcols, self.rvals, self.ccols, self.cvals), self.shape

    @classmethod
    def tree_unflatten(cls, shape, children):
        return cls(*children, shape)

    def __matmul__(self, x):                       # F x
        if self.mat is not None:
            return self.mat @ x
        return jnp.sum(self.rvals * x[self.rcols], axis=1)

    def rmatvec(self, u):                          # F^T u
        if self.mat is not None:
            return u @ self.mat
        return jnp.sum(self.cvals * u[self.ccols], axis=1)

    def to_scipy(self):
        if self.mat is not None:
            return sp.csr_matrix(np.asarray(self.mat))
        m, _ = self.shape
        rows = np.repeat(np.arange(m), self.rcols.shape[1])
        return sp.csr_matrix((np.asarray(self.rvals).ravel(), (rows, np.asarray(self.rcols).ravel())), shape=self.shape)


def _ell(csr, dtype):
    """Padded rows (ELL) of a CSR matrix: (cols, vals), each (rows, max nonzeros per row) (at least 1 column)."""
    csr = sp.csr_matrix(csr)
    csr.sum_duplicates()
    counts = np.diff(csr.indptr)
    k = max(int(counts.max()) if counts.size else 0, 1)
    n = csr.shape[0]
    vals = np.zeros((n, k), dtype)
    cols = np.zeros((n, k), np.int32)
    pos = np.arange(csr.nnz) - np.repeat(csr.indptr[:-1], counts)
    rows = np.repeat(np.arange(n), counts)
    vals[rows, pos] = csr.data
    cols[rows, pos] = csr.indices
    return cols, vals


def _as_csr(X, name):
    if sp.issparse(X):
        return sp.csr_matrix(X)
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (n_samples, n_features) matrix, got shape {X.shape}")
    return None


def prepare_data(X, y, loss, dtype, *, name="X", layout="auto") -> LinData:
    """Validate ``X`` (NumPy/JAX dense or SciPy sparse) and ``y`` and store them for per-sample access.

    ``layout="auto"`` keeps dense input dense and stores sparse input as padded rows unless its longest row
    holds more than half of the columns (then dense rows are cheaper). Labels must be ±1 for the logistic loss.
    """
    if isinstance(X, jax.Array):
        X = np.asarray(X)
    csr = _as_csr(X, name)
    n, d = X.shape
    if n < 1 or d < 1:
        raise ValueError(f"{name} is empty (shape {X.shape})")
    operators.check_finite(name, X)
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"y must be a vector with one entry per row of {name} ({n}), got shape {y.shape}")
    if not np.issubdtype(y.dtype, np.number):
        raise TypeError(f"y must be numeric, got dtype {y.dtype}")
    operators.check_finite("y", y.astype(float))
    if loss.targets == "pm1" and not np.all(np.isin(y, (-1, 1))):
        bad = np.unique(y[~np.isin(y, (-1, 1))])[:5]
        raise ValueError(f"y: the {loss.name} loss needs labels in {{-1, +1}}, found {bad.tolist()}; "
                         "map them first, e.g. y = np.where(y == positive_class, 1, -1)")
    if csr is None:
        if layout == "sparse":
            csr = sp.csr_matrix(X)
        else:
            return LinData(jnp.asarray(X, dtype), None, jnp.asarray(y, dtype))
    csr.sum_duplicates()
    k = max(int(np.diff(csr.indptr).max()), 1)
    if layout == "dense" or (layout == "auto" and 2 * k > d):
        return LinData(jnp.asarray(csr.toarray(), dtype), None, jnp.asarray(y, dtype))
    cols, vals = _ell(csr, dtype)
    return LinData(jnp.asarray(vals), jnp.asarray(cols), jnp.asarray(y, dtype))


def row_sq_norms(data: LinData) -> np.ndarray:
    return np.asarray(jnp.sum(data.vals * data.vals, axis=1))


def prepare_F(F, d, dtype, *, max_dense=1_000_000) -> tuple[Op, float]:
    """Validate ``F`` (dense or SciPy sparse, ``d`` columns) and return ``(Op, ‖F‖₂²)``."""
    if F is None:
        raise ValueError("F must be a matrix with d columns (e.g. ol.operators.first_difference(d) or "
                         "ol.operators.graph_guided(X)); use np.zeros((1, d)) for no structured penalty")
    if isinstance(F, jax.Array):
        F = np.asarray(F)
    if not sp.issparse(F):
        F = np.asarray(F)
        if F.ndim != 2:
            raise ValueError(f"F must be a 2-D matrix, got shape {F.shape}")
    if F.shape[1] != d:
        raise ValueError(f"F has {F.shape[1]} columns but X has {d} features; F must be m x {d}")
    if F.shape[0] < 1:
        raise ValueError("F has no rows; use np.zeros((1, d)) for no structured penalty")
    operators.check_finite("F", F)
    norm2 = float(operators.spectral_norm(F, iters=500, tol=1e-10)) ** 2
    m = F.shape[0]
    if sp.issparse(F):
        csr = sp.csr_matrix(F)
        csr.sum_duplicates()
        rc, rv = _ell(csr, dtype)
        cc, cv = _ell(csr.T, dtype)
        # a gather costs several multiply-adds inside the compiled loop (measured on a9a's graph: dense 123 x 123
        # products 2.7x faster than padded rows with 35 entries per row), so padded rows only pay off when they are
        # much smaller than the dense matrix (e.g. difference matrices: 2 entries per row)
        if m * d <= max_dense and 4 * (rc.size + cc.size) > m * d:
            return Op(jnp.asarray(csr.toarray(), dtype), None, None, None, None, (m, d)), norm2
        return Op(None, jnp.asarray(rc), jnp.asarray(rv), jnp.asarray(cc), jnp.asarray(cv), (m, d)), norm2
    return Op(jnp.asarray(F, dtype), None, None, None, None, (m, d)), norm2


def check_common(mu, gamma, epochs, batch_size, n, segments):
    for name, v in (("mu", mu), ("gamma", gamma)):
        if not (isinstance(v, (int, float, np.floating, np.integer)) and np.isfinite(v) and v >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
    if not (isinstance(epochs, (int, np.integer)) and epochs > 0):
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if not (isinstance(batch_size, (int, np.integer)) and 1 <= batch_size <= n):
        raise ValueError(f"batch_size must be an integer in [1, n] = [1, {n}], got {batch_size!r}")
    if not (isinstance(segments, (int, np.integer)) and 1 <= segments <= n // batch_size):
        raise ValueError(f"segments (log points per epoch) must be an integer in [1, n // batch_size] = "
                         f"[1, {n // batch_size}], got {segments!r}")


def as_matrix(X):
    """SciPy sparse and array objects as they are; anything else (lists) as a NumPy array."""
    return X if sp.issparse(X) or hasattr(X, "shape") else np.asarray(X)


def working_dtype(X):
    dt = np.asarray(X.data if sp.issparse(X) else X[:1]).dtype
    if not np.issubdtype(dt, np.floating):
        dt = np.float64
    return jax.dtypes.canonicalize_dtype(dt)


# ----------------------------------------------------------------------------------- sample access
def margins(data: LinData, x, b):
    """:math:`a_i^\\top x` for the sample indices ``b`` (shape (B,))."""
    v = data.vals[b]
    if data.cols is None:
        return v @ x
    return jnp.sum(v * x[data.cols[b]], axis=1)


def spread(data: LinData, b, c, d):
    """:math:`\\sum_{i\\in b} c_i a_i` (a d-vector)."""
    v = data.vals[b]
    if data.cols is None:
        return c @ v
    return jnp.zeros(d, v.dtype).at[data.cols[b]].add(v * c[:, None])


def batch_grad(loss, data: LinData, x, b):
    """Mini-batch gradient :math:`\\frac1B\\sum_{i\\in b}\\ell'(a_i^\\top x, b_i)a_i` of the loss part."""
    c = loss.grad(margins(data, x, b), data.y[b]) / b.shape[0]
    return spread(data, b, c, x.shape[0])


def all_margins(data: LinData, x):
    if data.cols is None:
        return data.vals @ x
    return jnp.sum(data.vals * x[data.cols], axis=1)


def full_grad(loss, data: LinData, x):
    c = loss.grad(all_margins(data, x), data.y) / data.y.shape[0]
    if data.cols is None:
        return c @ data.vals
    return jnp.zeros(x.shape[0], x.dtype).at[data.cols].add(data.vals * c[:, None])


def mean_loss(loss, data: LinData, x):
    return jnp.mean(loss.value(all_margins(data, x), data.y))


def core_of(state):
    """The method's own state (``state`` is ``(core, Loop)`` for the stochastic solvers, the core for batch ones)."""
    if isinstance(state, tuple) and len(state) == 2 and isinstance(state[1], Loop):
        return state[0]
    return state


def average(xbar, wsum, x, w, active=True):
    """Online weighted average: returns the new average and the new weight sum. While ``active`` is False
    (burn-in) the "average" simply follows ``x`` and no weight is accumulated."""
    w = jnp.where(active, w, jnp.zeros_like(w))
    wsum = wsum + w
    frac = jnp.where(wsum > 0, w / jnp.where(wsum > 0, wsum, 1), jnp.ones_like(w))
    return xbar + frac * (x - xbar), wsum


# -------------------------------------------------------------------------------------- the loop
class Loop(NamedTuple):
    """The sampling state shared by all stochastic solvers: the current epoch's permutation, the segment
    index within the epoch, the seed and the number of epochs started (which key the next permutation)."""

    perm: jax.Array     # (n,) int32
    seg: jax.Array      # () int32
    seed: jax.Array     # () uint32
    epoch: jax.Array    # () uint32, epochs started


def init_loop(n: int, seed: int) -> Loop:
    return Loop(jnp.arange(n, dtype=jnp.int32), jnp.zeros((), jnp.int32),
                jnp.asarray(int(seed) % 2**32, jnp.uint32), jnp.zeros((), jnp.uint32))


def _fmix32(h):
    """MurmurHash3's 32-bit finaliser: a bijection of uint32 with good avalanche."""
    h = h ^ (h >> 16)
    h = h * jnp.uint32(0x85EBCA6B)
    h = h ^ (h >> 13)
    h = h * jnp.uint32(0xC2B2AE35)
    return h ^ (h >> 16)


def _permutation(seed, epoch, n):
    """The permutation of 0..n-1 used in ``epoch``: indices sorted by a keyed hash. The hash
    ``fmix32(fmix32(i·φ + salt) xor salt')`` (salts from seed and epoch) is a bijection of 32-bit integers (φ odd), so the n keys are distinct and
    the result is an exact permutation. [ours] A counter-based hash instead of ``jax.random``: the permutation
    compiles in a fraction of the time (one sort and a few integer operations), and the state needs no key."""
    salt = _fmix32(_fmix32(seed * jnp.uint32(0x9E3779B1) + jnp.uint32(0x7F4A7C15)) ^ (epoch * jnp.uint32(0x632BE5AB)))
    bits = _fmix32(_fmix32(lax.iota(jnp.uint32, n) * jnp.uint32(0x9E3779B1) + salt) ^ _fmix32(salt + jnp.uint32(1)))
    return lax.sort((bits, lax.iota(jnp.int32, n)), num_keys=1)[1]


def make_epoch_step(update: Callable, batch_size: int, segments: int, info: Callable | None = None):
    """``step(state, problem)`` running one segment of an epoch of ``update(core, problem, b) -> core``.

    ``state`` is ``(core, loop)``; ``problem.data`` is a :class:`LinData`. ``info(core, problem)`` gives the
    step's diagnostics (default: the last step size if the core has ``eta``).
    """
    B, S = int(batch_size), int(segments)

    def step(state, problem):
        core, loop = state
        n = problem.data.y.shape[0]
        nb = n // B
        seg_len = -(-nb // S)

        def fresh(_):
            return loop.epoch + jnp.uint32(1), _permutation(loop.seed, loop.epoch, n)

        epoch, perm = lax.cond(loop.seg == 0, fresh, lambda _: (loop.epoch, loop.perm), None)
        start = loop.seg * seg_len
        end = jnp.minimum(start + seg_len, nb)

        def body(j, c):
            return update(c, problem, lax.dynamic_slice(perm, (j * B,), (B,)))

        core = lax.fori_loop(start, end, body, core)
        loop = Loop(perm, (loop.seg + 1) % S, loop.seed, epoch)
        diag = info(core, problem) if info is not None else {}
        return (core, loop), diag

    return step


# ------------------------------------------------------------------------------------------ metrics
def objective_at(loss, x, problem):
    """:math:`P(x)` with the problem's ``mu``, ``gamma``, ``F`` and (if present) extra penalty ``r``."""
    val = mean_loss(loss, problem.data, x) + 0.5 * problem.gamma * jnp.vdot(x, x)
    val = val + problem.mu * jnp.sum(jnp.abs(problem.F @ x))
    r = getattr(problem, "r", None)
    if r is not None:
        val = val + r._value(x)
    return val


def test_loss_at(loss, x, problem):
    return mean_loss(loss, problem.test, x)


def lipschitz_max_row(loss, data: LinData) -> float:
    """:math:`L = \\beta\\max_i\\|a_i\\|^2` (β = loss smoothness): the per-sample gradient Lipschitz bound."""
    return float(loss.smoothness) * float(np.max(row_sq_norms(data)))


def get_loss(loss):
    loss = _losses.get_loss(loss)
    if loss.name not in ("logistic", "least_squares"):
        raise ValueError(f"loss must be 'logistic' or 'least_squares', got {loss.name!r}")
    return loss
