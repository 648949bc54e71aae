r"""Working-set solver for sparse generalised linear models: :func:`glm` and the warm-started :func:`glm_path`.

Problem (``loss`` smooth, ``P`` separable, optional unpenalised intercept ``b``):

.. math:: \min_{w, b}\; F(w, b) = \frac1n\sum_{i=1}^n \ell(x_i^\top w + b,\, y_i) + \sum_{j=1}^p P(w_j).

Outer loop (Massias, Gramfort & Salmon, *Celer*, ICML 2018; Bertrand, Klopfenstein, Massias et al., *Beyond
L1: faster and better sparse models with skglm*, NeurIPS 2022):

1. compute the full gradient :math:`g = X^\top\ell'(z, y)/n` and the per-feature KKT scores
   (:mod:`.optimality`); for ℓ1 / elastic net also the duality gap and the gap-safe screening test, which removes
   features for good;
2. stop when the duality gap is at most ``tol`` times :math:`F(0, b_0)` (ℓ1 / elastic net without intercept, or
   with an intercept for least squares) or, otherwise, when the largest KKT score is at most ``tol``;
3. otherwise take as working set the current support plus the highest-scoring features, of size
   :math:`\max(p_0, 2|\text{support}|)`, padded to a power of two (:mod:`.blocks`), and solve the problem
   restricted to it with the compiled inner solver (:mod:`.inner`, coordinate descent + Anderson extrapolation)
   to the tolerance ``0.3`` × the current KKT violation.

Reported times exclude compilation (the inner solver is compiled ahead of time per size class; the compile
seconds go to ``trace.meta["compile_time"]``).
"""
from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from .. import losses as _losses
from .. import prox as _prox
from ..operators import check_finite
from ..trace import Result, Trace
from . import optimality as opt
from .blocks import ChunkedColumns, DenseBlock, SparseBlock, size_class
from .compiled import compiled
from .inner import cd_solve

__all__ = ["glm", "glm_path", "lambda_max", "GLMPath", "SOLVERS", "LOSSES"]

LOSSES = ("least_squares", "logistic", "squared_hinge")
SOLVERS = ("cd", "fista", "ista", "pig", "gist")
_PENALTIES = "l1, elastic_net, mcp, scad, lsp, capped_l1 (from optlab.prox)"


# ------------------------------------------------------------------------------------------------- validation
def _float_dtype(X):
    dt = np.dtype(X.dtype)
    if dt == np.float32:
        return np.float32
    return np.float64 if jax.config.jax_enable_x64 else np.float32


def _check_inputs(X, y, loss, penalty):
    if isinstance(loss, str):
        if loss not in LOSSES:
            raise ValueError(f"glm: loss must be one of {LOSSES} (or the optlab.losses object), got {loss!r}")
        loss = _losses.get_loss(loss)
    if not isinstance(loss, _losses.Loss) or loss.name not in LOSSES:
        raise ValueError(f"glm: loss must be one of {LOSSES}, got {loss!r}; the hinge loss is not smooth "
                         "(use optlab.svm_admm or the squared hinge)")
    if not opt.penalty_is_supported(penalty):
        raise ValueError(f"glm: penalty must be a separable sparse penalty, one of {_PENALTIES}; got {penalty!r}")
    for leaf in jax.tree_util.tree_leaves(penalty):
        if np.ndim(leaf) > 1:
            raise ValueError(f"glm: penalty parameters must be scalars or length-p vectors, got shape "
                             f"{np.shape(leaf)}")
    if sp.issparse(X):
        X = sp.csc_matrix(X)
        X.sum_duplicates()
    else:
        if isinstance(X, (list, tuple)) or not hasattr(X, "shape"):
            X = np.asarray(X)
        if X.dtype.kind not in "fiub":
            raise TypeError(f"glm: X must be a numeric matrix, got dtype {X.dtype}")
    if X.ndim != 2:
        raise ValueError(f"glm: X must be a 2-D (n_samples, n_features) matrix, got shape {tuple(X.shape)}")
    n, p = X.shape
    if n == 0 or p == 0:
        raise ValueError(f"glm: X must have at least one sample and one feature, got shape {(n, p)}")
    check_finite("X", X)
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"glm: y must be a vector of length n = X.shape[0] = {n}, got shape {y.shape}")
    check_finite("y", y)
    if loss.targets == "pm1" and not np.all(np.isin(y, (-1, 1))):
        hint = " (for 0/1 labels pass y = 2*y - 1)" if np.all(np.isin(y, (0, 1))) else ""
        raise ValueError(f"glm: y must hold labels -1/+1 for the {loss.name} loss; found values "
                         f"{np.unique(y)[:5].tolist()}{hint}")
    for leaf in jax.tree_util.tree_leaves(penalty):
        if np.ndim(leaf) == 1 and np.shape(leaf)[0] != p:
            raise ValueError(f"glm: per-feature penalty parameters must have length p = {p}, got {np.shape(leaf)}")
    dt = _float_dtype(X)
    X = X.astype(dt, copy=False) if sp.issparse(X) else np.asarray(X, dtype=dt)
    return X, y.astype(dt), loss, dt


# ------------------------------------------------------------------------------------------------ design
class _Design:
    """The full design matrix: products for the outer loop (NumPy BLAS / SciPy, no copy of ``X``) and
    working-set blocks (:mod:`.blocks`)."""

    def __init__(self, X, y):
        self.sparse = sp.issparse(X)
        self.X = X
        self.n, self.p = X.shape
        if self.sparse:
            sq = sp.csc_matrix((X.data * X.data, X.indices, X.indptr), shape=X.shape)
            self.col_sq = np.asarray(sq.sum(axis=0)).ravel()
            self.chunks = ChunkedColumns(X, y, X.dtype)
        else:
            self.col_sq = np.einsum("ij,ij->j", X, X)

    def matvec(self, w):
        return self.X @ w

    def rmatvec(self, v):
        return self.X.T @ v

    def block(self, ws, K, dt):
        if self.sparse:
            return SparseBlock.gather(self.chunks, ws, K)
        return DenseBlock.gather(self.X, ws, K, dt)


# ------------------------------------------------------------------------------------------------ helpers
def _intercept_only(loss, y):
    """The optimal intercept of the model without features (the :math:`b_0` of :func:`lambda_max`)."""
    if loss.name == "least_squares":
        return float(np.mean(y))
    if loss.name == "logistic":
        q = np.clip(np.mean(y == 1), 1e-12, 1 - 1e-12)
        return float(np.log(q / (1 - q)))
    q = np.mean(y == 1)  # squared hinge: minimise q(1-b)_+^2 + (1-q)(1+b)_+^2 -> b = 2q - 1
    return float(2 * q - 1)


def lambda_max(X, y, loss="least_squares", *, fit_intercept=False) -> float:
    r"""The smallest ℓ1 level :math:`\lambda` for which :math:`w = 0` solves the ℓ1 problem:
    :math:`\|X^\top\ell'(b_0, y)\|_\infty / n` with :math:`b_0` the intercept-only optimum (0 without intercept)."""
    X, y, loss, dt = _check_inputs(X, y, loss, _prox.l1(1.0))
    b0 = _intercept_only(loss, y) if fit_intercept else 0.0
    raw = np.asarray(loss.grad(jnp.full(y.shape, b0, dt), jnp.asarray(y)))
    return float(np.max(np.abs(X.T @ raw)) / X.shape[0])


def _as_penalty_dtype(pen, dt):
    return jax.tree_util.tree_map(lambda a: jnp.asarray(a, dt), pen)


def _restrict(pen, ws, K):
    """The penalty on the padded working set (per-feature parameters gathered, padding copies entry 0)."""
    def take(a):
        if jnp.ndim(a) == 1:
            a = np.asarray(a)
            out = np.full(K, a[ws[0]] if ws.size else a[0], a.dtype)
            out[: ws.size] = a[ws]
            return jnp.asarray(out)
        return a
    return jax.tree_util.tree_map(take, pen)


def _objective(loss, pen, w, z, y):
    return jnp.mean(loss.value(z, y)) + pen.value(w)


@functools.lru_cache(maxsize=None)
def _raw_fn(loss, center):
    r"""Jitted ``z -> (r, mean(r))`` with :math:`r = \ell'(z, y)`, centred when ``center``."""
    def raw(z, y):
        r = loss.grad(z, y)
        m = jnp.mean(r)
        return (r - m if center else r), m
    return jax.jit(raw)


@functools.lru_cache(maxsize=None)
def _evaluate_fn(loss, with_gap):
    """Jitted outer evaluation: objective, KKT scores (0 on screened features), their max, and for ℓ1 /
    elastic net the duality gap and the gap-safe screening mask."""
    def evaluate(pen, w, z, y, g, raw, lips, col_norms, screened):
        primal = _objective(loss, pen, w, z, y)
        scores = jnp.where(screened, 0, opt.kkt_scores(pen, w, g, lips))
        if not with_gap:
            return primal, scores, jnp.asarray(jnp.nan, w.dtype), jnp.zeros(w.shape, bool)
        gap, _, s = opt.duality_gap(loss.name, pen, primal, raw, g, y)
        return primal, scores, gap, opt.screen(pen, g, s, gap, col_norms, float(loss.smoothness), y.shape[0])
    return jax.jit(evaluate)


def _run(kind, static, jitted, args):
    exe, secs = compiled(kind, static, jitted, args)
    return exe(*args), secs


_MIN_CLASS = 16  # smallest padded working set: tiny classes would only add compilations
_METRICS = ("objective", "gap", "kkt", "ws_size", "screened", "outer")


def glm(X, y, loss="least_squares", penalty=None, *, solver="cd", fit_intercept=False, tol=1e-6,
        max_iter=100, max_epochs=50_000, p0=None, anderson=5, screening=True, inner_ratio=0.3, w0=None,
        b0=None, label=None) -> Result:
    r"""Sparse generalised linear model by a working-set method (see the module docstring).

    Args:
        X: ``(n, p)`` dense array or SciPy sparse matrix (float64 kept when ``jax_enable_x64`` is on).
        y: ``(n,)`` targets: reals for least squares, labels ±1 for logistic and squared hinge.
        loss: ``"least_squares"``, ``"logistic"``, ``"squared_hinge"`` (or the :mod:`optlab.losses` object);
            the data term is :math:`\frac1n\sum_i\ell(x_i^\top w + b, y_i)` (least squares:
            :math:`\frac1{2n}\|y - Xw - b\|^2`, scikit-learn's ``Lasso`` scaling).
        penalty: a separable penalty from :mod:`optlab.prox`: ``l1`` (scalar or per-feature ``lam``),
            ``elastic_net``, ``mcp``, ``scad``, ``lsp``, ``capped_l1``.
        solver: the inner solver; ``"cd"``: compiled proximal coordinate descent with Anderson extrapolation
            (the only one: on CPU it measured fastest, see experiments/bench_peers.py).
        fit_intercept: fit an unpenalised intercept ``b``.
        tol: ℓ1 / elastic net (no intercept, or least squares with one): stop when the duality gap is at most
            ``tol`` × :math:`F(0, b_0)`; otherwise when the largest KKT score (gradient units) is at most ``tol``.
        max_iter: outer iterations. max_epochs: coordinate-descent epochs per inner solve.
        p0: smallest working set; default ``max(10, p // 20)``, 5% of the features (on the 5,000×2,000 Lasso
            of the benchmark 100 and 200 need 4 and 3 outer iterations against 7 for 10, which dominates the
            time; on a9a (p = 123) and w8a (p = 300) 10 beats 100 by 1.3-1.5×: a working set of most features
            is no working set). anderson: extrapolation depth ``M`` (0 = off). screening: gap-safe screening
            (ℓ1 / elastic net). inner_ratio: inner tolerance as a fraction of the current KKT violation.
        w0, b0: warm start. label: trace label.

    Returns:
        :class:`optlab.Result` with ``params = {"w": (p,) array, "b": float}`` (NumPy), ``trace`` (one row per
        outer iteration: ``objective``, ``gap`` (NaN where not defined), ``kkt``, ``ws_size``, ``screened``,
        ``outer``; iterations are cumulative epochs, times exclude compilation), ``predict(X)``.

    Raises:
        ValueError / TypeError: unsupported loss or penalty, shapes that do not match, NaN/Inf in ``X`` or
        ``y``, labels other than ±1 for the classification losses, bad options.
    """
    if penalty is None:
        raise ValueError(f"glm: penalty is required, e.g. optlab.prox.l1(0.1); supported: {_PENALTIES}")
    if solver not in ("cd",):
        raise ValueError(f"glm: solver must be 'cd' (compiled coordinate descent with Anderson extrapolation), "
                         f"got {solver!r}")
    for name, val, lo in (("tol", tol, 0), ("inner_ratio", inner_ratio, 0)):
        if not (np.isscalar(val) and np.isfinite(val) and val > lo):
            raise ValueError(f"glm: {name} must be a finite number > {lo}, got {val!r}")
    for name, val, lo in (("max_iter", max_iter, 1), ("max_epochs", max_epochs, 1),
                          ("p0", 1 if p0 is None else p0, 1), ("anderson", anderson, 0)):
        if not (isinstance(val, (int, np.integer)) and val >= lo):
            raise ValueError(f"glm: {name} must be an integer >= {lo}, got {val!r}")
    t0 = time.perf_counter()
    X, y, loss, dt = _check_inputs(X, y, loss, penalty)
    D = _Design(X, y)
    n, p = D.n, D.p
    p0 = max(10, p // 20) if p0 is None else p0
    beta = float(loss.smoothness)
    lips = beta * D.col_sq / n
    lips = np.where(lips > 0, lips, 1.0).astype(dt)
    col_norms = np.sqrt(D.col_sq).astype(dt)
    pen = _as_penalty_dtype(penalty, dt)
    # the gap needs a dual-feasible rescaling, impossible with an unpenalised feature (weight 0) in pure ℓ1
    unweighted = isinstance(penalty, _prox.L1) and np.any(np.asarray(penalty.lam) == 0)
    with_gap = opt.has_gap(penalty) and not unweighted and (not fit_intercept or loss.name == "least_squares")
    center = bool(fit_intercept and loss.name == "least_squares")

    b_start = _intercept_only(loss, y) if fit_intercept else 0.0
    w = np.zeros(p, dt) if w0 is None else np.array(w0, dtype=dt).reshape(-1)
    if w.shape != (p,):
        raise ValueError(f"glm: w0 must have length p = {p}, got shape {np.shape(w0)}")
    check_finite("w0", w)
    b = float(b0) if (b0 is not None and fit_intercept) else b_start
    z = (D.matvec(w) + b).astype(dt) if w.any() else np.full(n, b, dt)
    f0 = float(np.mean(np.asarray(loss.value(np.full(n, b_start, dt), y))))
    scale = max(f0, float(np.finfo(dt).tiny))
    screened = np.zeros(p, bool)
    raw_fn, eval_fn = _raw_fn(loss, center), _evaluate_fn(loss, with_gap)
    static = (loss, center, with_gap)
    y_dev, lips_dev, col_norms_dev = jnp.asarray(y), jnp.asarray(lips), jnp.asarray(col_norms)  # sent once

    meta = {"solver": "glm", "label": label or f"glm[{loss.name}+{penalty.name}]", "inner": solver,
            "loss": loss.name, "penalty": repr(penalty), "n": n, "p": p, "sparse": D.sparse,
            "dtype": np.dtype(dt).name, "tol": tol, "fit_intercept": bool(fit_intercept),
            "stop": "gap" if with_gap else "kkt", "anderson": anderson, "screening": bool(screening and with_gap)}
    trace = Trace.empty(_METRICS, meta)
    compile_time = 0.0
    epochs = 0
    status, converged = "maxiter", False
    for outer in range(max_iter + 1):
        (raw, raw_mean), secs = _run("outer", static, raw_fn, (z, y_dev))
        compile_time += secs
        raw = np.asarray(raw)
        g = (D.rmatvec(raw) / n).astype(dt)
        (primal, scores, gap, drop), secs = _run("outer", static, eval_fn,
                                                 (pen, w, z, y_dev, g, raw, lips_dev, col_norms_dev, screened))
        compile_time += secs
        scores = np.array(scores)
        if with_gap and screening:
            screened |= np.asarray(drop) & (w == 0)
            scores[screened] = 0
        kkt = float(scores.max(initial=0))
        if fit_intercept:
            kkt = max(kkt, abs(float(raw_mean)))
        gap = float(gap)
        trace.append(epochs, time.perf_counter() - t0 - compile_time,
                     {"objective": float(primal), "gap": gap, "kkt": kkt, "ws_size": 0,
                      "screened": int(screened.sum()), "outer": outer})
        done = (gap <= tol * scale) if with_gap else (kkt <= tol)
        if done:
            status, converged = "converged", True
            break
        if outer == max_iter:
            break
        # ---- working set: the support plus the most violating features, padded to a size class
        support = w != 0
        n_active = int((~screened).sum())
        ws_size = int(min(max(p0, 2 * int(support.sum())), n_active))
        ws_size = max(ws_size, int(support.sum()), 1)
        prio = scores.astype(np.float64)
        prio[support] = np.inf
        prio[screened] = -np.inf
        ws = np.sort(np.argpartition(-prio, ws_size - 1)[:ws_size]) if ws_size < p else np.arange(p)
        K = size_class(max(ws_size, _MIN_CLASS))
        block = D.block(ws, K, dt)
        w_ws = np.zeros(K, dt)
        w_ws[:ws_size] = w[ws]
        lips_ws = np.ones(K, dt)
        lips_ws[:ws_size] = lips[ws]
        tol_in = max(inner_ratio * kkt, float(np.finfo(dt).eps))
        (w_new, b_new, z_new, ep, _crit, _acc), secs = cd_solve(
            loss, fit_intercept, anderson, block, y_dev, w_ws, np.asarray(b, dt), z, lips_ws,
            np.int32(ws_size), _restrict(pen, ws, K), np.asarray(tol_in, dt), np.int32(max_epochs))
        compile_time += secs
        w = w.copy()
        w[ws] = np.asarray(w_new)[:ws_size]
        b = float(b_new)
        z = np.asarray(z_new)
        epochs += int(ep)
        trace.metrics["ws_size"][-1] = ws_size
    trace.meta.update(compile_time=compile_time, status=status, outer_iterations=outer, epochs=epochs,
                      nnz=int((w != 0).sum()))
    params = {"w": w, "b": b}
    return Result(params=params, trace=trace, n_iter=epochs, converged=converged, status=status,
                  state={"screened": screened, "z": z}, predict_fn=_predict)


def _predict(params, X):
    return np.asarray(X @ params["w"]).ravel() + params["b"]


@dataclasses.dataclass
class GLMPath:
    """A regularisation path: ``penalties[i]`` was fitted to ``coefs[i]``, ``intercepts[i]``; ``results[i]`` is
    its :class:`optlab.Result`."""

    penalties: list
    coefs: np.ndarray
    intercepts: np.ndarray
    results: list[Result]


def glm_path(X, y, loss="least_squares", penalties: Sequence[Any] | np.ndarray = None, *, penalty="l1",
             **kwargs) -> GLMPath:
    """Fit :func:`glm` along a sequence of penalties, each warm-started at the previous solution.

    ``penalties`` is either a sequence of :mod:`optlab.prox` penalties, or an array of levels ``lam`` (best in
    decreasing order) combined with ``penalty`` (a name such as ``"mcp"`` plus its parameters in
    ``penalty_params={"gamma": 3.0}``, or a callable ``lam -> Penalty``). Other keyword arguments go to
    :func:`glm`. Compiled inner solvers are shared along the path (no recompilation for new ``lam``).
    """
    if penalties is None or len(penalties) == 0:
        raise ValueError("glm_path: penalties must be a non-empty sequence of penalties or of levels lam")
    params = kwargs.pop("penalty_params", {})
    if all(isinstance(q, _prox.Penalty) for q in penalties):
        pens = list(penalties)
    else:
        lams = np.asarray(penalties, dtype=float)
        if lams.ndim != 1 or not np.all(np.isfinite(lams)) or np.any(lams < 0):
            raise ValueError("glm_path: levels lam must be a 1-D sequence of finite numbers >= 0")
        make = penalty if callable(penalty) else (lambda lam: _prox.get(penalty, lam=float(lam), **params))
        pens = [make(lam) for lam in lams]
    results, coefs, icpts = [], [], []
    w0, b0 = kwargs.pop("w0", None), kwargs.pop("b0", None)
    for pen in pens:
        res = glm(X, y, loss, pen, w0=w0, b0=b0, **kwargs)
        w0, b0 = res.params["w"], res.params["b"]
        results.append(res)
        coefs.append(w0)
        icpts.append(b0)
    return GLMPath(pens, np.stack(coefs), np.asarray(icpts), results)
