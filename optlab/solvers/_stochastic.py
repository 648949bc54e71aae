r"""Shared machinery of the stochastic linear-model solvers (SPDHG, SPDPEG and the stochastic-ADMM baselines).

Problem family: with rows :math:`a_i` of :math:`A\in\mathbb R^{n\times d}`, labels :math:`b_i`, a penalty matrix
:math:`F\in\mathbb R^{m\times d}`,

.. math:: P(x) = \frac1n\sum_i \ell(a_i^\top x, b_i) + \frac\gamma2\|x\|^2 + \mu\|Fx\|_1 + r(x).

What lives here (so that every solver module only writes its update):

* the data rows as an :class:`optlab.algorithm.Rows` (``vals``, ``cols``, ``y``, ``weight``): dense, or padded
  sparse rows (ELL: per row the column indices and values of its nonzeros, padded with zeros to the longest row), so
  that one sample costs :math:`O(\mathrm{nnz}(a_i))` and sparse data are never densified;
* :class:`Op` -- the penalty matrix :math:`F`, dense or as padded rows of F and of Fᵀ (products by gathers);
* **stratified sampling in blocks** (:func:`make_step`). The rows are cut into ``n_blocks`` contiguous blocks of
  :math:`n_b = \lceil n/n_\text{blocks}\rceil` rows (the last one padded with rows of ``weight`` 0). Every epoch
  each block :math:`j` is shuffled (a fresh permutation keyed by the seed, the block and the epoch), and iteration
  :math:`k` draws the next ``batch_size`` rows :math:`I_{k,j}` of every block (without replacement); the mini-batch
  gradient is the mean over the union :math:`I_k = \bigcup_j I_{k,j}`:

  .. math:: G_k = \frac{\sum_{i\in I_k} w_i\,\ell'(a_i^\top x_k, b_i)\,a_i}{\sum_{i\in I_k} w_i}.

  An epoch is :math:`\lfloor n_b/B\rfloor` iterations (the rows past the last whole batch of a block are skipped that
  epoch, different ones each epoch). ``n_blocks = 1`` is plain sampling without replacement. The sums over
  :math:`I_k` go through ``comm.reduce``; a data-parallel executor gives each worker whole blocks (the data-parallel
  paragraph of :func:`optlab.spdhg`);
* one harness step is one *segment* of an epoch (``segments`` per epoch): one compiled ``fori_loop`` whose reduces
  are barriers (``Algorithm.fresh``) unless the segment is a single iteration (what a simulated asynchronous
  executor then does: the data-parallel paragraph of :func:`optlab.spdhg`). A simulated asynchronous executor
  therefore needs ``segments`` = iterations per epoch to be asynchronous at all (it warns otherwise); the simulated
  clock charges a worker its blocks' mini-batches per iteration (``Algorithm.minibatch``), not a share of the rows;
* online averages (uniform or weighted) and the objective / test-loss metrics evaluated at the averaged iterate.
"""
from __future__ import annotations

import functools
import time
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
from jax import lax

from .. import harness
from .. import losses as _losses
from .. import operators, validate
from ..algorithm import Algorithm, MiniBatchWork, Rows, serial_comm

__all__ = ["LinData", "Op", "Sampler", "StochState", "Sampling", "prepare_data", "prepare_F", "block_rows",
           "check_common", "sampling", "init_state", "make_step", "segment_algorithm", "algorithm", "batch_algorithm",
           "solve", "margins", "spread", "minibatch_grad", "full_grad", "average", "objective_at", "resolve_scale",
           "SCALE_GRID"]

#: Step multipliers tried by ``scale="auto"``.
SCALE_GRID = tuple(2.0 ** p for p in range(-4, 4))


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


def prepare_data(X, y, loss, dtype, *, name="X", layout="auto") -> LinData:
    """Validate ``X`` (NumPy/JAX dense or SciPy sparse) and ``y`` and store them for per-sample access.

    ``layout="auto"`` keeps dense input dense and stores sparse input as padded rows unless its longest row
    holds more than half of the columns (then dense rows are cheaper). Labels must be ±1 for the logistic loss.
    """
    X = validate.dense_matrix(name, X, allow_sparse=True)     # 2-d, non-empty, finite
    csr = sp.csr_matrix(X) if sp.issparse(X) else None
    X = X if csr is not None else np.asarray(X)
    n, d = X.shape
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


def prepare_F(F, d, dtype, *, max_dense=1_000_000) -> tuple[Op, float]:
    """Validate ``F`` (dense or SciPy sparse, ``d`` columns) and return ``(Op, ‖F‖₂²)``."""
    if F is None:
        raise ValueError("F must be a matrix with d columns (e.g. ol.operators.first_difference(d) or "
                         "ol.operators.graph_guided(X)); use np.zeros((1, d)) for no structured penalty")
    F = validate.dense_matrix("F", F, allow_sparse=True)     # 2-d, at least one row, finite
    F = F if sp.issparse(F) else np.asarray(F)
    if F.shape[1] != d:
        raise ValueError(f"F has {F.shape[1]} columns but X has {d} features; F must be m x {d}")
    norm2 = float(operators.spectral_norm(F, iters=500, tol=1e-10)) ** 2
    m = F.shape[0]
    if sp.issparse(F):
        csr = sp.csr_matrix(F)
        csr.sum_duplicates()
        rc, rv = _ell(csr, dtype)
        cc, cv = _ell(csr.T, dtype)
        # a gather costs several multiply-adds inside the compiled loop: padded rows only when >= 4x smaller
        if m * d <= max_dense and 4 * (rc.size + cc.size) > m * d:
            return Op(jnp.asarray(csr.toarray(), dtype), None, None, None, None, (m, d)), norm2
        return Op(None, jnp.asarray(rc), jnp.asarray(rv), jnp.asarray(cc), jnp.asarray(cv), (m, d)), norm2
    return Op(jnp.asarray(F, dtype), None, None, None, None, (m, d)), norm2


def prepare(X, y, F, loss, X_test, y_test, n_blocks: int, layout="auto"):
    """The data of a stochastic solver: ``(rows, test, F, ‖F‖₂², L, dtype, meta)``: the training rows in ``n_blocks``
    blocks (:func:`block_rows`), the test set (or None), the penalty matrix (:func:`prepare_F`), the per-sample
    Lipschitz bound (:func:`lipschitz_max_row`), the working dtype and the ``trace.meta`` fields they give."""
    dtype = working_dtype(X)
    data = prepare_data(X, y, loss, dtype, layout=layout)
    n, d = X.shape
    Fop, normF2 = prepare_F(F, d, dtype)
    L = lipschitz_max_row(loss, data)
    test = None
    if X_test is not None:
        if X_test.shape[1] != d:
            raise ValueError(f"X_test has {X_test.shape[1]} columns, X has {d}")
        test = prepare_data(X_test, y_test, loss, dtype, name="X_test", layout=layout)
    meta = {"L": L, "normF": float(np.sqrt(normF2)), "loss": loss.name, "dtype": str(np.dtype(dtype)), "n": int(n),
            "d": int(d), "m": int(Fop.shape[0]), "sparse_rows": data.cols is not None}
    return block_rows(data, n_blocks), test, Fop, normF2, L, dtype, meta


def as_matrix(X):
    """SciPy sparse and array objects as they are; anything else (lists) as a NumPy array."""
    return X if sp.issparse(X) or hasattr(X, "shape") else np.asarray(X)


def working_dtype(X):
    dt = np.asarray(X.data if sp.issparse(X) else X[:1]).dtype
    if not np.issubdtype(dt, np.floating):
        dt = np.float64
    return jax.dtypes.canonicalize_dtype(dt)


# ----------------------------------------------------------------------------------------- blocks of rows
def block_rows(data: LinData, n_blocks: int) -> Rows:
    """The training rows as :class:`~optlab.algorithm.Rows`, padded to ``n_blocks`` blocks of equal size.

    ``weight`` is ``None`` when no padding is needed (every row counts once; the default single block), else 1 on
    the real rows and 0 on the padding rows."""
    n = data.y.shape[0]
    n_b = -(-n // n_blocks)
    pad = n_b * n_blocks - n
    if pad == 0:
        return Rows(vals=data.vals, cols=data.cols, y=data.y, weight=None)

    def padded(a):
        return None if a is None else jnp.concatenate([a, jnp.zeros((pad,) + a.shape[1:], a.dtype)])

    weight = jnp.concatenate([jnp.ones(n, data.vals.dtype), jnp.zeros(pad, data.vals.dtype)])
    return Rows(vals=padded(data.vals), cols=padded(data.cols), y=padded(data.y), weight=weight)


def check_common(mu, gamma, epochs, batch_size, n, segments, n_blocks=1):
    """Validate the common arguments; returns ``(rows per block, iterations per epoch)``."""
    validate.nonnegative("mu", mu)
    validate.nonnegative("gamma", gamma)
    if not (isinstance(epochs, (int, np.integer)) and epochs > 0):
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    n_b = -(-n // n_blocks)
    where = "n" if n_blocks == 1 else f"the rows per block, ceil(n / n_blocks) = ceil({n} / {n_blocks})"
    if not (isinstance(batch_size, (int, np.integer)) and 1 <= batch_size <= n_b):
        raise ValueError(f"batch_size (rows drawn from each block per iteration) must be an integer in [1, {where}]"
                         f" = [1, {n_b}], got {batch_size!r}; use a smaller batch_size or fewer blocks/workers")
    per_epoch = n_b // batch_size
    if not (isinstance(segments, (int, np.integer)) and 1 <= segments <= per_epoch):
        raise ValueError(f"segments (log points per epoch) must be an integer in [1, iterations per epoch] = "
                         f"[1, {per_epoch}], got {segments!r}")
    return n_b, per_epoch


# ----------------------------------------------------------------------------------- sample access
def margins(data, x, b=slice(None)):
    """:math:`a_i^\\top x` for the row indices ``b`` (default: all rows; ``data``: :class:`LinData` or the training
    :class:`Rows`)."""
    v = data.vals[b]
    if data.cols is None:
        return v @ x
    return jnp.sum(v * x[data.cols[b]], axis=1)


def spread(data, b, c, d):
    """:math:`\\sum_{i\\in b} c_i a_i` (a d-vector)."""
    v = data.vals[b]
    if data.cols is None:
        return c @ v
    return jnp.zeros(d, v.dtype).at[data.cols[b]].add(v * c[:, None])


def minibatch_grad(loss, rows: Rows, x, b, total: int, comm, name: str = "grad"):
    r""":math:`G = \sum_{i\in I} w_i\ell'(a_i^\top x, b_i)a_i / \sum_{i\in I} w_i` over the union :math:`I` of the
    blocks' batches; ``b`` are this worker's rows of :math:`I` and ``total`` = :math:`|I|` (padding included). The
    coefficients are divided by ``total`` before the sum (as the single-block method always did); with padding rows
    in the batch the result is rescaled by ``total / Σ w`` (a second reduce, ``name + "_count"``)."""
    c = loss.grad(margins(rows, x, b), rows.y[b])
    if rows.weight is not None:
        c = c * rows.weight[b]
    g = comm.reduce(name, spread(rows, b, c / total, x.shape[0]))
    if rows.weight is not None:
        g = g * (total / comm.reduce(name + "_count", jnp.sum(rows.weight[b])))
    return g


def full_grad(loss, rows: Rows, x, n: int, comm, name: str = "grad"):
    """:math:`\\frac1n\\sum_i w_i\\ell'(a_i^\\top x, b_i)a_i` over all rows (the batch methods)."""
    c = loss.grad(margins(rows, x), rows.y)
    if rows.weight is not None:
        c = c * rows.weight
    return comm.reduce(name, spread(rows, slice(None), c / n, x.shape[0]))


def average(xbar, wsum, x, w, active=True):
    """Online weighted average: returns the new average and the new weight sum. While ``active`` is False
    (burn-in) the "average" simply follows ``x`` and no weight is accumulated."""
    w = jnp.where(active, w, jnp.zeros_like(w))
    wsum = wsum + w
    frac = jnp.where(wsum > 0, w / jnp.where(wsum > 0, wsum, 1), jnp.ones_like(w))
    return xbar + frac * (x - xbar), wsum


# -------------------------------------------------------------------------------------- the loop
class Sampler(NamedTuple):
    """The shared sampling counters: the segment the next harness step runs, the epochs started, the seed."""

    seg: jax.Array      # () int32
    epoch: jax.Array    # () uint32
    seed: jax.Array     # () uint32


class StochState(NamedTuple):
    """``core``: the method's iterates (shared); ``rows``: per-row state -- ``perm`` (each block's order of its rows
    in the current epoch, as indices within the block), ``tag`` (1 + the epoch that order belongs to; 0: none yet) and
    any per-sample state of the method (SAG's gradient table); ``sampler``: the counters."""

    core: Any
    rows: Rows
    sampler: Sampler


def sampling_seed(seed=None, key=None):
    r"""The 32-bit sampling seed from exactly one of ``seed`` (an integer, default 0) and ``key`` (a JAX PRNG key:
    new-style ``jax.random.key(i)`` or raw ``uint32[2]`` from ``jax.random.PRNGKey(i)``), as the ``key`` argument of
    :func:`optlab.spdhg` describes. Returns a Python int for an integer seed, else a ``uint32`` scalar array (from a
    key: ``jax.random.bits(key, (), uint32)``; the key may be traced)."""
    if seed is not None and key is not None:
        raise ValueError("pass either seed= (an integer) or key= (a JAX PRNG key), not both")
    if key is None:
        seed = 0 if seed is None else seed
        if isinstance(seed, (bool, np.bool_)) or not (isinstance(seed, (int, np.integer)) or
                                                      (hasattr(seed, "dtype") and jnp.issubdtype(seed.dtype, jnp.integer)
                                                       and jnp.ndim(seed) == 0)):
            hint = "; for a JAX PRNG key pass key=" if hasattr(seed, "dtype") else ""
            raise TypeError(f"seed must be an integer, got {type(seed).__name__}{hint}")
        return seed
    key = jnp.asarray(key) if isinstance(key, np.ndarray) else key      # raw key data held in NumPy
    if hasattr(key, "dtype") and jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and jnp.ndim(key) != 0:
        raise ValueError(f"key must be a single PRNG key (shape ()), got shape {jnp.shape(key)}; to run several "
                         "keys use jax.vmap over them in jit mode")
    if not validate.is_key(key):
        raise TypeError(f"key must be a JAX PRNG key (jax.random.key(0)) or raw uint32[2] key data "
                        f"(jax.random.PRNGKey(0)), got {type(key).__name__} {getattr(key, 'dtype', '')} "
                        f"{jnp.shape(key) if hasattr(key, 'shape') else ''}".rstrip())
    return jax.random.bits(key, (), jnp.uint32)


def seed_meta(seed) -> int | None:
    """The seed for the run's metadata: an int when concrete, None when traced (``jax.vmap`` over keys)."""
    c = operators.concrete(seed)
    return None if c is None else int(np.asarray(c))


def init_state(core, n_rows: int, n_blocks: int, seed, **per_row) -> StochState:
    """The state before the first step; ``n_rows`` counts the padded rows (``n_blocks`` blocks of equal size).
    ``seed`` may be a traced integer (e.g. ``jax.vmap`` over seeds)."""
    n_b = n_rows // n_blocks
    seed = jnp.asarray(int(seed) % 2**32 if isinstance(seed, (int, np.integer)) else seed).astype(jnp.uint32)
    perm = jnp.tile(jnp.arange(n_b, dtype=jnp.int32), n_blocks)
    rows = Rows(perm=perm, tag=jnp.zeros(n_rows, jnp.uint32), **per_row)
    return StochState(core, rows, Sampler(jnp.zeros((), jnp.int32), jnp.zeros((), jnp.uint32), seed))


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


def _block_permutations(seed, epoch, first_block, n_local_blocks: int, n_b: int):
    """The epoch's permutations of this worker's blocks, concatenated: block ``j`` uses the seed
    ``seed xor (j·0x9E3779B9)`` (block 0: the seed itself)."""
    blocks = jnp.asarray(first_block).astype(jnp.uint32) + lax.iota(jnp.uint32, n_local_blocks)
    perms = jax.vmap(lambda j: _permutation(seed ^ (j * jnp.uint32(0x9E3779B9)), epoch, n_b))(blocks)
    return perms.reshape(-1)


@functools.lru_cache(maxsize=None)
def make_step(update: Callable, batch_size: int, segments: int, block_size: int, info: Callable,
              with_rel_change: bool = False):
    """``step(state, problem, comm)`` running one segment of an epoch of
    ``update(core, rows_state, problem, b, comm) -> (core, rows_state)`` (``b``: this worker's rows of the
    iteration's batch, ``rows_state``: the per-row state); cached, so hashable.

    ``info(core)`` gives the step's diagnostics; ``with_rel_change`` adds the averaged iterate's relative change."""
    B, S, n_b = int(batch_size), int(segments), int(block_size)
    nb = n_b // B
    seg_len = -(-nb // S)

    def step(state: StochState, problem, comm):
        core, rows, smp = state
        L = rows.perm.shape[0] // n_b                      # blocks held here (all of them in serial)
        new_epoch = smp.seg == 0
        epoch = jnp.where(new_epoch, smp.epoch, smp.epoch - jnp.uint32(1))   # the epoch this segment belongs to

        def draw(_):
            return (_block_permutations(smp.seed, epoch, comm.worker * L, L, n_b),
                    jnp.full_like(rows.tag, epoch + jnp.uint32(1)))

        perm, tag = lax.cond(rows.tag[0] != epoch + jnp.uint32(1), draw, lambda _: (rows.perm, rows.tag), None)
        rows = rows.replace(perm=perm, tag=tag)

        def batch(j):
            p = lax.dynamic_slice_in_dim(perm.reshape(L, n_b), j * B, B, axis=1)
            return (p + (jnp.arange(L, dtype=p.dtype) * n_b)[:, None]).reshape(-1)

        start = smp.seg * seg_len
        if seg_len == 1:                    # one iteration per harness step: its reduces are at the top level
            core_new, rows = update(core, rows, problem, batch(start), comm)
        else:
            end = jnp.minimum(start + seg_len, nb)
            core_new, rows = lax.fori_loop(start, end, lambda j, c: update(c[0], c[1], problem, batch(j), comm),
                                           (core, rows))
        smp = Sampler((smp.seg + 1) % S, jnp.where(new_epoch, smp.epoch + jnp.uint32(1), smp.epoch), smp.seed)
        return StochState(core_new, rows, smp), diagnostics(info, core, core_new, with_rel_change)

    step.__name__ = f"{getattr(update, '__name__', 'stochastic')}_step"
    return step


# ------------------------------------------------------------------------------------------ metrics
def objective_at(loss, x, problem, comm, n: int):
    """:math:`P(x)` with the problem's ``mu``, ``gamma``, ``F`` and (if present) extra penalty ``r``; the loss sum
    over the rows is ``comm.reduce("loss_sum", ·)``."""
    rows = problem.data
    v = loss.value(margins(rows, x), rows.y)
    if rows.weight is not None:
        v = v * rows.weight
    val = comm.reduce("loss_sum", jnp.sum(v)) / n + 0.5 * problem.gamma * jnp.vdot(x, x)
    val = val + problem.mu * jnp.sum(jnp.abs(problem.F @ x))
    r = getattr(problem, "r", None)
    if r is not None:
        val = val + r._value(x)
    return val


@functools.lru_cache(maxsize=None)
def objective_metric(loss_name: str, n: int, at: str = "xbar"):
    """``fn(state, problem, comm)``: :math:`P` at the averaged iterate (``at="xbar"``) or the last one (``"x"``)."""
    loss = get_loss(loss_name)

    def fn(state, problem, comm):
        return objective_at(loss, getattr(_core(state), at), problem, comm, n)

    return fn


@functools.lru_cache(maxsize=None)
def test_loss_metric(loss_name: str):
    """``fn(state, problem, comm)``: the mean loss on the test set at the averaged iterate (shared: no reduce)."""
    loss = get_loss(loss_name)

    def fn(state, problem, comm):
        del comm
        return jnp.mean(loss.value(margins(problem.test, _core(state).xbar), problem.test.y))

    return fn


def _core(state):
    return state.core if isinstance(state, StochState) else state


def _params(state):
    return {"w": _core(state).xbar}


#: Reduce names of one stochastic iteration of the SPDHG-type methods (one mini-batch gradient).
GRAD_NAMES = frozenset({"grad", "grad_count"})


@functools.lru_cache(maxsize=None)
def segment_algorithm(name: str, update: Callable, info: Callable, loss_name: str, batch_size: int, segments: int,
                      block_size: int, n: int, with_test: bool, stop: bool, grad_names: frozenset = GRAD_NAMES,
                      barrier: frozenset = frozenset()) -> Algorithm:
    """:func:`algorithm` of a stochastic method whose harness step is one segment of an epoch of ``update``
    (:func:`make_step`, diagnostics ``info``): the reduces of one iteration (``grad_names``) are barriers unless a
    step is a single iteration; the ``barrier`` names always are. The simulated clock charges a step as its
    mini-batch iterations (:class:`~optlab.algorithm.MiniBatchWork`: one unit per iteration and block held)."""
    step = make_step(update, batch_size, segments, block_size, info, stop)
    seg_len = -(-(block_size // batch_size) // segments)        # iterations per harness step
    fresh = barrier | (frozenset() if seg_len == 1 else grad_names)
    return algorithm(name, step, loss_name, n, with_test, fresh, (), stop, MiniBatchWork(seg_len, block_size))


@functools.lru_cache(maxsize=None)
def algorithm(name: str, step: Callable, loss_name: str, n: int, with_test: bool, fresh: frozenset,
              extra_metrics: tuple = (), stop: bool = False, minibatch: MiniBatchWork | None = None) -> Algorithm:
    """The :class:`~optlab.algorithm.Algorithm` of a stochastic (or batch) linear-model method: its ``step``, the
    objective at the averaged iterate (and the test loss), ``params = {"w": averaged iterate}``; ``minibatch``: the
    work of a step of a sampling method (``None``: a full-gradient step)."""
    metrics = (("objective", objective_metric(loss_name, n)),)
    if with_test:
        metrics += (("test_loss", test_loss_metric(loss_name)),)
    return Algorithm(name=name, step=step, metrics=metrics + tuple(extra_metrics), params=_params,
                     stop_metric="rel_change" if stop else None, fresh=frozenset(fresh), growth_limit=GROWTH_LIMIT,
                     minibatch=minibatch)


def batch_algorithm(name: str, update: Callable, info: Callable, loss_name: str, n: int, with_test: bool, stop: bool,
                    extra_metrics: tuple = ()) -> Algorithm:
    """:func:`algorithm` of a batch reference method (LPDHG, EGADM): one harness step is one full-gradient iteration
    ``update(core, problem, comm) -> core``, diagnostics ``info``; ``stop`` adds ``rel_change`` (for ``tol``)."""
    def step(core, problem, comm):
        new = update(core, problem, comm)
        return new, diagnostics(info, core, new, stop)

    step.__name__ = f"{update.__name__}_step"
    return algorithm(name, step, loss_name, n, with_test, frozenset(), extra_metrics, stop)


def diagnostics(info: Callable, old, new, with_rel_change: bool) -> dict:
    """A step's diagnostics ``info(new)``, plus the averaged iterate's relative change when ``with_rel_change``."""
    diag = info(new)
    return {**diag, "rel_change": rel_change(old.xbar, new.xbar)} if with_rel_change else diag


class Sampling(NamedTuple):
    """The checked sampling arguments of a stochastic solver (:func:`sampling`)."""

    X: Any               # the data as a matrix (dense or SciPy sparse)
    n: int
    n_blocks: int
    block_size: int      # rows per block, ceil(n / n_blocks)
    batch_size: int
    segments: int
    epochs: int
    avg_start: int       # the iteration at which averaging starts (burn-in)
    tol: float
    seed: Any            # the sampling seed: an int, or a uint32 array (from a traced key)
    keyed: bool          # the seed came from key=


def sampling(X, mu, gamma, *, epochs, batch_size, n_blocks, segments, burn_in, parallel, tol, seed, key) -> Sampling:
    """The checks and the block/epoch arithmetic every stochastic solver shares (:func:`check_options`,
    :func:`optlab.validate.blocks`, :func:`check_common`, :func:`sampling_seed`; ``burn_in`` epochs become the
    iteration ``avg_start``)."""
    executor, tol, seed = check_options(parallel, tol, seed)
    X = as_matrix(X)
    n = X.shape[0]
    n_blocks = validate.blocks(n_blocks, executor, n)
    n_b, per_epoch = check_common(mu, gamma, epochs, batch_size, n, segments, n_blocks)
    avg_start = int(round(validate.nonnegative("burn_in", burn_in, example="1.0 (epochs)") * per_epoch))
    return Sampling(X, n, n_blocks, n_b, int(batch_size), int(segments), int(epochs), avg_start, tol,
                    sampling_seed(seed, key), key is not None)


def solve(make_alg, core, pb, smp: Sampling, meta: dict, *, scale=None, pilot_epochs=1, pilot_samples=5000,
          parallel=None, maxiter=None, run=None, per_row=None):
    """Run a stochastic solver: ``scale="auto"`` resolved by pilot runs (:func:`resolve_scale`), then
    ``harness.solve`` of ``make_alg(block_size, n_rows, with_test, stop)`` from ``core`` (per-row state
    ``per_row``) for ``maxiter`` harness steps (default ``epochs * segments``); ``meta`` gets the sampling fields."""
    B, NB, segs = smp.batch_size, smp.n_blocks, smp.segments
    meta.update({"epochs": smp.epochs, "seed": seed_meta(smp.seed), "key": smp.keyed, "n_blocks": NB,
                 "rows_per_block": smp.block_size, "padding_rows": smp.block_size * NB - smp.n, "batch_size": B,
                 "global_batch": NB * B, "iters_per_epoch": smp.block_size // B, "segments": segs})
    pb = resolve_scale(scale, make_alg, core, pb, smp, meta, pilot_epochs, pilot_samples)
    alg = make_alg(smp.block_size, smp.n, pb.test is not None, bool(smp.tol and smp.tol > 0))
    state = init_state(core, smp.block_size * NB, NB, smp.seed, **(per_row or {}))
    return harness.solve(alg, state, pb, executor=parallel, maxiter=smp.epochs * segs if maxiter is None else maxiter,
                         tol=smp.tol, meta=meta, **(run or {}))


def resolve_scale(scale, make_alg, core, pb, smp: Sampling, meta: dict, pilot_epochs, pilot_samples):
    """``scale="auto"``: pick the step multiplier from :data:`SCALE_GRID` by short serial pilot runs
    (``pilot_epochs`` epochs from ``core``, no test set, no stopping test) on at most ``pilot_samples`` rows (a
    seeded choice), keeping the best objective at the averaged iterate, and record the pilots in ``meta``; a number
    is kept. Returns the problem with the chosen scale; ``meta["scale"]`` is set."""
    if scale == "auto":
        seed = seed_meta(smp.seed)
        if seed is None:
            raise ValueError("scale='auto' picks the step by pilot runs on a seeded subsample, which needs a concrete "
                             "seed or key; under jax.vmap over keys pass a number as scale")
        pilot_epochs = validate.count("pilot_epochs", pilot_epochs, minimum=1)
        pilot_samples = validate.count("pilot_samples", pilot_samples, minimum=1)
        t0 = time.perf_counter()
        rows, n = pb.data, smp.n        # the real rows (no padding), or a seeded subsample of them
        idx = slice(n) if pilot_samples >= n else np.sort(np.random.default_rng(seed).permutation(n)[:pilot_samples])
        data = LinData(rows.vals[idx], None if rows.cols is None else rows.cols[idx], rows.y[idx])
        sub = block_rows(data, smp.n_blocks)
        alg = make_alg(sub.y.shape[0] // smp.n_blocks, data.y.shape[0], False, False)
        state = init_state(core, sub.y.shape[0], smp.n_blocks, smp.seed)
        objective = jax.jit(functools.partial(alg.metric_dict()["objective"], comm=serial_comm))
        steps, values = pilot_epochs * smp.segments, {}
        for s in SCALE_GRID:
            p = pb._replace(data=sub, scale=jnp.asarray(s, pb.scale.dtype))
            values[s] = float(objective(harness.solve(alg, state, p, jit=True, maxiter=steps, log_every=steps).state,
                                        p))
        finite = {s: v for s, v in values.items() if np.isfinite(v)}
        if not finite:
            raise RuntimeError("scale='auto': every pilot run diverged; pass a small scale explicitly")
        scale = min(finite, key=finite.get)
        pb = pb._replace(scale=jnp.asarray(scale, pb.scale.dtype))
        meta.update({"pilot_time": time.perf_counter() - t0,
                     "pilot_objectives": {str(k): v for k, v in values.items()}})
    meta["scale"] = float(scale)
    return pb


#: Step-size / averaging rules shared by SPDHG and SPDPEG.
VARIANTS = ("gc", "sc_uniform", "sc_nonuniform")


#: a logged objective above F0 + GROWTH_LIMIT·|F0| (F0: at the start) ends the run as "diverged". The averaged
#: iterate of a stable run stays near or below its start (these problems are convex, the averages converge); a
#: step far outside the stable range sends it up by orders of magnitude.
GROWTH_LIMIT = 1e2


def check_options(parallel, tol, seed=None):
    """``(executor, tol, seed)`` validated: ``parallel`` an executor (or None), ``tol >= 0`` finite, ``seed`` an
    integer in ``[0, 2**32)`` (or None: the default, or a ``key=`` given instead; see :func:`sampling_seed`)."""
    # a key given as seed= becomes its sampling seed; a uint32 array seed already came from sampling_seed(key=...)
    if seed is not None and (validate.is_key(seed) or not isinstance(seed, jax.Array)):
        seed = validate.seed("seed", seed)
    return validate.executor(parallel), validate.tolerance("tol", tol), seed


def batch_options(solver: str, X, mu, gamma, scale, parallel, tol):
    """The checks of a batch reference method (LPDHG, EGADM): ``scale`` a number, ``parallel``, ``tol``, ``mu``,
    ``gamma``. Returns ``(executor, tol, X as a matrix)``."""
    check_scale(scale)
    if scale == "auto":
        raise ValueError(f"{solver}: scale='auto' is only offered by the stochastic solvers; pass a number")
    executor, tol, _ = check_options(parallel, tol)
    X = as_matrix(X)
    check_common(mu, gamma, 1, 1, X.shape[0], 1)
    return executor, tol, X


def start_point(x0, d: int, dtype):
    """The starting point ``x0`` (default 0) as a finite ``(d,)`` array of the working dtype."""
    if x0 is None:
        return jnp.zeros(d, dtype)
    return validate.float_array("x0", x0, shape=(d,), dtype=dtype, allow_int=True)


def check_variant(variant, gamma):
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if variant != "gc" and not gamma > 0:
        raise ValueError(f"variant {variant!r} needs a strongly convex problem: gamma > 0 (got {gamma})")


def check_scale(scale):
    if not (scale == "auto" if isinstance(scale, str) else np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a positive number or 'auto', got {scale!r}")


def rel_change(old, new):
    return jnp.linalg.norm(new - old) / jnp.maximum(jnp.linalg.norm(new), jnp.finfo(new.dtype).tiny)


def lipschitz_max_row(loss, data: LinData) -> float:
    """:math:`L = \\beta\\max_i\\|a_i\\|^2` (β = loss smoothness): the per-sample gradient Lipschitz bound."""
    return float(loss.smoothness) * float(np.max(np.asarray(jnp.sum(data.vals * data.vals, axis=1))))


def get_loss(loss):
    loss = _losses.get_loss(loss)
    if loss.name not in ("logistic", "least_squares"):
        raise ValueError(f"loss must be 'logistic' or 'least_squares', got {loss.name!r}")
    return loss
