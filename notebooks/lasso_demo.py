# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Lasso: ISTA, FISTA and PIG through the optlab API
#
# The problem is $\min_x F(x) = \frac{1}{2n}\|Ax - b\|^2 + \lambda\|x\|_1$ on generated data (correlated
# columns, a 20-sparse truth). We build it from `ol.losses` and `ol.prox`, get the exact optimum from
# scikit-learn's coordinate descent (`ol.references.lasso_optimum`), call four solvers, read their traces and plot
# the relative suboptimality with `ol.plot`. `OPTLAB_QUICK=0` runs a larger problem;
# `optlab reproduce lasso-demo` is the full experiment.

# %%
import os

import jax
import matplotlib.pyplot as plt
import numpy as np

import optlab as ol

jax.config.update("jax_enable_x64", True)   # float64: gaps below float32 rounding (~1e-7·|F|) stay visible
plt.rcParams["figure.dpi"] = 72
quick = os.environ.get("OPTLAB_QUICK", "1") != "0"
n, d = (200, 500) if quick else (1000, 5000)
ds = ol.data.make_sparse_regression(n=n, d=d, k=20, noise=0.1, correlation=0.9, seed=0)
A, b = ds.X, ds.y
lam = 0.05 * np.max(np.abs(A.T @ b)) / n          # 5 % of the smallest λ with solution 0

f = ol.losses.least_squares_objective(A, b)        # smooth part, knows its gradient and Lipschitz constant
g = ol.prox.l1(lam)                                # nonsmooth part, knows its prox
F_star, x_star = ol.references.lasso_optimum(A, b, lam)
print(f"A: {A.shape}, λ = {lam:.4f}, L = {f.lipschitz():.2f}, F* = {F_star:.6f}, |supp x*| = {np.sum(x_star != 0)}")

# %% [markdown]
# Every solver takes `(f, g, x0)` and returns an `ol.Result`: `params` (the solution), `status`, `n_iter` and a
# `Trace` of metrics at the log points, with solver times that exclude compilation (`trace.meta["compile_time"]`).

# %%
x0 = np.zeros(d)
kw = dict(maxiter=2000 if quick else 5000, tol=1e-12, f_star=F_star, progress=False)
runs = {
    "ISTA": ol.ista(f, g, x0, **kw),
    "FISTA": ol.fista(f, g, x0, **kw),
    "FISTA (backtracking)": ol.fista(f, g, x0, backtracking=True, **kw),
    "PIG β=0.5": ol.pig(f, g, x0, beta=0.5, **kw),
}
for label, res in runs.items():
    tr = res.trace
    x = np.asarray(res.params)
    print(f"{label:<22} {res.status:<10} iters={res.n_iter:>5} solve={tr.times[-1]:.3f}s "
          f"compile={tr.meta['compile_time']:.2f}s  (F−F*)/F*={(tr.last('objective') - F_star) / F_star:.1e}  "
          f"|supp|={np.sum(x != 0)}  ‖x−x*‖={np.linalg.norm(x - x_star):.1e}")

# %% [markdown]
# ISTA and PIG nearly coincide: PIG's default step $\gamma = (1-\beta)/L$ makes its effective step
# $\gamma/(1-\beta) = 1/L$, ISTA's (the PIG notebook runs it with larger steps). The metrics a trace holds, and one of them as an array:

# %%
tr = runs["FISTA"].trace
print(sorted(tr.metrics), tr.iters[:5], tr["objective"][:3])

# %% [markdown]
# Relative suboptimality against iterations and against solver time (`reference=` subtracts F*):

# %%
traces = {label: res.trace for label, res in runs.items()}
fig, axes = ol.plot.grid(2, ncols=2)
ol.plot.convergence(traces, "objective", x="iter", reference=F_star, relative=True, ax=axes[0], logx=True,
                    title="lasso, generated data", ylabel="(F − F*)/F*")
ol.plot.convergence(traces, "objective", x="time", reference=F_star, relative=True, ax=axes[1],
                    title="lasso, generated data", ylabel="(F − F*)/F*")
for ax in axes:
    ax.set_ylim(bottom=1e-12)
fig.tight_layout()
plt.show()
