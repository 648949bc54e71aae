# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Proximal inertial gradient (PIG): non-ergodic rates, numerically
#
# PIG (`ol.pig`) adds an inertial term $\beta(x_k - x_{k-1})$ to the proximal gradient step:
# $x_{k+1} = \operatorname{prox}_{\gamma g}(x_k - \gamma\nabla f(x_k) + \beta(x_k - x_{k-1}))$. The paper's claim is a
# non-ergodic $O(1/k)$ rate of $F(x_k) - F^*$, i.e. $k\,(F(x_k) - F^*)$ bounded. Here: a lasso on generated data,
# PIG for three β against ISTA and FISTA, and the multi-block variant `ol.pig_blocks`.
# `optlab reproduce pig` runs all the paper's panels.

# %%
import os

import jax
import matplotlib.pyplot as plt
import numpy as np

import optlab as ol

jax.config.update("jax_enable_x64", True)   # float64: gaps below float32 rounding (~1e-7·|F|) stay visible
plt.rcParams["figure.dpi"] = 72
quick = os.environ.get("OPTLAB_QUICK", "1") != "0"
n, d = (300, 600) if quick else (1000, 4000)
ds = ol.data.make_sparse_regression(n=n, d=d, k=20, noise=0.1, correlation=0.5, seed=0)
A, b = ds.X, ds.y
lam = 0.05 * np.max(np.abs(A.T @ b)) / n
f, g = ol.losses.least_squares_objective(A, b), ol.prox.l1(lam)
F_star, _ = ol.references.lasso_optimum(A, b, lam)
L = f.lipschitz()

# %% [markdown]
# PIG's default step is $\gamma = (1-\beta)/L$; `step=` overrides it (the theory allows up to $2(1-\beta)/L$).

# %%
x0 = np.zeros(d)
kw = dict(maxiter=1500 if quick else 5000, tol=0.0, f_star=F_star, progress=False)
runs = {"ISTA": ol.ista(f, g, x0, **kw), "FISTA": ol.fista(f, g, x0, **kw)}
for beta in (0.3, 0.5, 0.7):
    runs[f"PIG β={beta}"] = ol.pig(f, g, x0, beta=beta, step=0.95 * 2 * (1 - beta) / L, **kw)
for label, res in runs.items():
    tr = res.trace
    k = tr.iters[-1]
    print(f"{label:<10} F−F* = {tr.last('objective') - F_star:.2e}   k·(F−F*) = {k * (tr.last('objective') - F_star):.2e}"
          f"   {tr.times[-1]:.3f}s")

# %%
traces = {label: res.trace for label, res in runs.items()}
fig, axes = ol.plot.grid(2, ncols=2)
ol.plot.convergence(traces, "objective", reference=F_star, ax=axes[0], logx=True, title="F(x_k) − F*",
                    ylabel="F(x_k) − F*")
axes[0].set_ylim(bottom=1e-13)
for label, tr in traces.items():       # the non-ergodic claim: k·(F(x_k) − F*) stays bounded
    k = tr.iters[1:].astype(float)
    axes[1].loglog(k, np.maximum(k * (tr["objective"][1:] - F_star), 1e-16), label=label)
axes[1].set(xlabel="iteration k", ylabel="k·(F(x_k) − F*)", title="bounded for the O(1/k) rate", ylim=(1e-12, None))
axes[1].legend(fontsize="small")
fig.tight_layout()
plt.show()

# %% [markdown]
# Multi-block PIG: split $x$ into two blocks, each with its own ℓ1 penalty (λ and 2λ), and update one block per
# iteration, cyclically or in random order (`ol.pig_blocks`; `params` is the list of blocks).

# %%
half = d // 2
gs = [ol.prox.l1(lam), ol.prox.l1(2 * lam)]
blocks = [np.zeros(half), np.zeros(d - half)]
kb = dict(maxiter=400 if quick else 2000, tol=0.0, progress=False)
blk = {"cyclic": ol.pig_blocks(f, gs, blocks, order="cyclic", **kb),
       "random (seed 0)": ol.pig_blocks(f, gs, blocks, order="random", seed=0, **kb)}
best = min(float(np.min(r.trace["objective"])) for r in blk.values())
ax = ol.plot.convergence({k: r.trace for k, r in blk.items()}, "objective", reference=best - 1e-12, logx=True,
                         title="pig_blocks, two ℓ1 blocks", ylabel="F − best F seen")
plt.show()
print({k: [np.asarray(p).shape for p in r.params] for k, r in blk.items()})
