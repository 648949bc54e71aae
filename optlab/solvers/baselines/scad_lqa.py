r"""SCAD-SVM by local quadratic approximation (Zhang, Ahn, Lin & Park 2006, *Bioinformatics* 22(1):88–95,
"Gene selection using support vector machines with non-convex penalty"); the SPEC §1 baseline.

Problem (the same as :func:`optlab.svm_admm` with ``penalty=ol.prox.scad(lam, a)``), labels :math:`y_i \in \{\pm1\}`,
:math:`f_i = x_i^\top w + c`:

.. math:: \min_{w, c}\; F(w, c) = \frac1n\sum_{i=1}^n (1 - y_i f_i)_+ + \sum_j p_\lambda(|w_j|),

with the SCAD penalty :math:`p_\lambda` (Fan & Li 2001) and its derivative
:math:`p'_\lambda(u) = \lambda` for :math:`u \le \lambda`, :math:`(a\lambda - u)_+/(a-1)` beyond.

**Iteration** (derived here from the paper's description; a majorise–minimise scheme). Write the hinge as
:math:`(1 - y_if_i)_+ = \tfrac12(1 - y_if_i) + \tfrac12|r_i|` with :math:`r_i = y_i - f_i` (so
:math:`|r_i| = |1 - y_if_i|` for :math:`y_i = \pm1`) and replace, at the current point :math:`(w^0, c^0)`,

* :math:`|r_i| \le \dfrac{r_i^2}{2|r_i^0|} + \dfrac{|r_i^0|}2` (LQA of the absolute value), and
* :math:`p_\lambda(|w_j|) \le p_\lambda(|w_j^0|) + \dfrac{p'_\lambda(|w_j^0|)}{2|w_j^0|}\bigl(w_j^2 - (w_j^0)^2\bigr)`
  (Fan & Li 2001; a majoriser because :math:`p_\lambda(\sqrt s)` is concave in :math:`s`, Hunter & Li 2005).

Both are tight at the current point, so minimising the quadratic surrogate never increases :math:`F` (as long as
no :math:`|r_i^0|` is floored, see below). With :math:`\beta = (c, w)`, :math:`\tilde x_i = (1, x_i)`,
:math:`D = \operatorname{diag}\bigl(1/(2n|r_i^0|)\bigr)` and :math:`Q = \operatorname{diag}\bigl(0,
p'_\lambda(|w^0|)/|w^0|\bigr)`, setting the surrogate's gradient to zero gives one linear system per iteration:

.. math:: (\tilde X^\top D \tilde X + Q)\,\beta^+ = \frac1{2n}\sum_i \Bigl(y_i + \frac{y_i}{|r_i^0|}\Bigr)\tilde x_i .

At a fixed point with no :math:`r_i = 0` this reads :math:`\nabla_w \tfrac1n\sum(1 - y_if_i)_+ +
p'_\lambda(|w_j|)\operatorname{sign}(w_j) = 0` on the active coordinates (and :math:`\sum_{y_if_i<1} y_i = 0`): the
SCAD-SVM stationarity condition.

As in the paper, a coordinate with :math:`|w_j| \le` ``zero_tol`` (default :math:`10^{-3}`) is deleted for good
(its weight :math:`p'/|w_j|` would blow up; a deleted variable never re-enters — the known weakness of LQA that
LLA removes), and :math:`|r_i^0|` is floored at ``eps`` (default :math:`10^{-6}`) so points on the margin do not
make :math:`D` infinite (a perturbed LQA in the sense of Hunter & Li 2005). Start: a standard linear SVM
(scikit-learn ``LinearSVC(loss="hinge", C=1, random_state=0)``, as the paper starts from the ℓ2-SVM; seeded, so
a call does not depend on NumPy's global random state) unless ``x0`` is given.
Stops when :math:`\|\beta^+ - \beta\|/\max(\|\beta^+\|, 1) \le` ``tol``. The system is solved by the
pseudo-inverse (minimum-norm solution): it is singular when :math:`Q` vanishes on collinear columns (one-hot data).

Cost per iteration: forming :math:`\tilde X^\top D\tilde X` (:math:`O(nd^2)`) and one dense :math:`(d+1)`-square
solve, so this baseline is for moderate :math:`d` (the paper's microarray setting uses the :math:`n \times n`
Woodbury form instead; not needed for the SPEC §1 data sets). SciPy sparse ``X`` is densified (a baseline; refused
above ``max_dense_entries``).

Example:
    >>> import numpy as np
    >>> from optlab.solvers.baselines.scad_lqa import scad_lqa
    >>> rng = np.random.default_rng(0); X = rng.normal(size=(200, 8))
    >>> y = np.where(X[:, 0] - X[:, 1] + 0.5 * rng.normal(size=200) > 0, 1.0, -1.0)
    >>> res = scad_lqa(X, y, lam=0.05, progress=False)
    >>> res.status, int(np.sum(np.asarray(res.params["w"]) != 0)) < 8
    ('converged', True)
"""
from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from ... import harness, prox, validate
from ...algorithm import Algorithm

__all__ = ["scad_lqa", "LQAState", "LQAProblem", "make_step", "scad_derivative"]


class LQAState(NamedTuple):
    beta: jax.Array       # (d + 1,) intercept first, then w
    active: jax.Array     # (d,) bool: not yet deleted
    k: jax.Array


class LQAProblem(NamedTuple):
    X: jax.Array          # (n, d) dense
    y: jax.Array          # (n,) ±1
    lam: jax.Array
    a: jax.Array
    eps: jax.Array        # floor of |r_i|
    zero_tol: jax.Array   # deletion threshold on |w_j|


def scad_derivative(u, lam, a):
    """:math:`p'_\\lambda(u)` of SCAD for :math:`u \\ge 0` (right derivative :math:`\\lambda` at 0)."""
    return jnp.where(u <= lam, lam, jnp.maximum(a * lam - u, 0) / (a - 1))


@functools.lru_cache(maxsize=None)
def make_step():
    """The pure ``step(state, problem, comm) -> (state, info)`` (one LQA / Newton–Raphson update; one process)."""
    def step(st: LQAState, pb: LQAProblem, comm=None):
        X, y = pb.X, pb.y
        n, d = X.shape
        dt = X.dtype
        c, w = st.beta[0], st.beta[1:]
        r = y - (X @ w + c)
        ra = jnp.maximum(jnp.abs(r), pb.eps)
        dvec = 1.0 / (2 * n * ra)
        aw = jnp.abs(w)
        q = jnp.where(st.active, scad_derivative(aw, pb.lam, pb.a) / jnp.maximum(aw, jnp.finfo(dt).tiny), 0)
        # X~^T D X~ in blocks (intercept first)
        xd = X * dvec[:, None]
        G = jnp.zeros((d + 1, d + 1), dt)
        G = G.at[0, 0].set(jnp.sum(dvec)).at[1:, 0].set(jnp.sum(xd, axis=0)).at[0, 1:].set(jnp.sum(xd, axis=0))
        G = G.at[1:, 1:].set(X.T @ xd + jnp.diag(q))
        g = y * (1 + 1 / ra) / (2 * n)
        rhs = jnp.concatenate([jnp.sum(g)[None], X.T @ g])
        # deleted coordinates: identity rows/columns and zero right-hand side, so w_j = 0 stays
        keep = jnp.concatenate([jnp.ones((1,), bool), st.active])
        G = jnp.where(keep[:, None] & keep[None, :], G, 0) + jnp.diag(jnp.where(keep, 0, 1).astype(dt))
        rhs = jnp.where(keep, rhs, 0)
        # minimum-norm solution (pseudo-inverse, as the R reference implementation uses): one-hot data such as
        # mushrooms make X~^T D X~ singular where Q vanishes (weights beyond a*lam)
        beta = jnp.linalg.pinv(G, hermitian=True) @ rhs
        active = st.active & (jnp.abs(beta[1:]) > pb.zero_tol)
        beta = beta.at[1:].set(jnp.where(active, beta[1:], 0))
        change = jnp.linalg.norm(beta - st.beta) / jnp.maximum(jnp.linalg.norm(beta), 1.0)
        return LQAState(beta=beta, active=active, k=st.k + 1), {"rel_change": change,
                                                                "n_active": jnp.sum(active)}

    step.__name__ = "scad_lqa_step"
    return step


def _objective(state, problem, comm=None):
    """:math:`F(w, c)` at ``state.beta = (c, w)`` (the SCAD value of :class:`optlab.prox.SCAD`)."""
    c, w = state.beta[0], state.beta[1:]
    f = problem.X @ w + c
    return jnp.mean(jnp.maximum(1 - problem.y * f, 0)) + prox.SCAD(problem.lam, problem.a).value(w)


def _nzf(state, problem, comm=None):
    return 100.0 * jnp.mean((state.beta[1:] != 0).astype(state.beta.dtype))


def _params(state):
    return {"w": state.beta[1:], "b": state.beta[0]}


def _predict(params, X):
    X = np.asarray(X.toarray() if sp.issparse(X) else X)
    return jnp.sign(jnp.asarray(X) @ params["w"] + params["b"])


@functools.lru_cache(maxsize=None)
def algorithm() -> Algorithm:
    """SCAD-LQA as an :class:`optlab.algorithm.Algorithm` (one process: its rows are not split)."""
    return Algorithm(name="scad_lqa", step=make_step(), metrics=(("objective", _objective), ("nzf", _nzf)),
                     params=_params, stop_metric="rel_change", predict=_predict)


def scad_lqa(X, y, lam, a=3.7, *, x0=None, eps=1e-6, zero_tol=1e-3, maxiter=500, tol=1e-6,
             max_dense_entries=50_000_000, **run):
    """SCAD-SVM (hinge + SCAD, unpenalised intercept) by local quadratic approximation (Zhang et al. 2006).

    Args:
        X: ``(n, d)`` dense array or SciPy sparse matrix (densified; at most ``max_dense_entries`` entries).
        y: ``(n,)`` labels in {-1, +1}.
        lam, a: SCAD parameters (``lam > 0``, ``a > 2``; the paper: ``a = 3.7``).
        x0: start ``{"w": w, "b": c}``; default a linear SVM (``LinearSVC(loss="hinge", C=1)``).
        eps: floor of :math:`|1 - y_if_i|` in the LQA of the hinge. zero_tol: deletion threshold on :math:`|w_j|`.
        maxiter, tol: stop on the relative change of :math:`(c, w)`.
        **run: the harness options (``log_every``, ``metrics``, ``checkpoint``, ``jit`` ...) of
            :func:`optlab.harness.solve`.

    Returns:
        :class:`optlab.Result` with ``params = {"w", "b"}``; trace metrics ``objective`` (the SCAD-SVM objective,
        comparable with ``svm_admm``'s), ``nzf`` (% nonzero weights), ``rel_change``, ``n_active``.
    """
    if sp.issparse(X):
        if X.shape[0] * X.shape[1] > max_dense_entries:
            raise ValueError(f"X: the LQA baseline works on a dense copy; {X.shape[0]} x {X.shape[1]} exceeds "
                             f"max_dense_entries={max_dense_entries} (raise it or use ol.svm_admm)")
        X = X.toarray()
    X = np.asarray(validate.dense_matrix("X", X, solver="scad_lqa"))
    y = np.asarray(y, dtype=np.float64).ravel()
    n, d = X.shape
    if y.shape != (n,) or not np.all(np.isin(y, (-1.0, 1.0))) or np.unique(y).size != 2:
        raise ValueError(f"y must hold {n} labels in {{-1, +1}} with both classes present")
    lam, eps, zero_tol = (validate.positive(k, v) for k, v in (("lam", lam), ("eps", eps), ("zero_tol", zero_tol)))
    if not (np.isfinite(a) and a > 2):
        raise ValueError(f"a must be > 2 (SCAD), got {a}")
    maxiter = validate.count("maxiter", maxiter, minimum=1)
    tol = validate.tolerance("tol", tol)
    dt = X.dtype if X.dtype.kind == "f" else np.dtype(jnp.result_type(float))
    if dt == np.float64 and not jax.config.jax_enable_x64:
        dt = np.dtype(np.float32)
    if x0 is None:
        from sklearn.svm import LinearSVC
        svc = LinearSVC(loss="hinge", C=1.0, dual=True, max_iter=20_000, random_state=0).fit(X, y)
        w0, c0 = svc.coef_.ravel(), float(svc.intercept_[0])
    else:
        if not (isinstance(x0, dict) and "w" in x0):
            raise TypeError(f"x0 must be None or a dict {{'w': (d,) array, 'b': float}}, got {type(x0).__name__}")
        w0 = np.asarray(validate.float_array("x0['w']", x0["w"], shape=(d,), allow_int=True), np.float64)
        c0 = float(validate.float_array("x0['b']", x0.get("b", 0.0), shape=(), allow_int=True))
    f = lambda v: jnp.asarray(v, dt)  # noqa: E731
    problem = LQAProblem(X=f(X), y=f(y), lam=f(lam), a=f(a), eps=f(eps), zero_tol=f(zero_tol))
    active = np.abs(w0) > zero_tol
    beta0 = np.concatenate([[c0], np.where(active, w0, 0.0)])
    state = LQAState(beta=f(beta0), active=jnp.asarray(active), k=jnp.zeros((), jnp.int32))
    meta = {"lam": float(lam), "a": float(a), "n": n, "d": d, "dtype": str(np.dtype(dt))}
    return harness.solve(algorithm(), state, problem, maxiter=maxiter, tol=tol, meta=meta, **run)
