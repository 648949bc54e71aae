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
# # Stochastic PDHG on graph-guided logistic regression (`ol.spdhg`)
#
# $\min_x \frac1n\sum_i \log(1 + e^{-y_i a_i^\top x}) + \frac\gamma2\|x\|^2 + \mu\|Fx\|_1$, with $F$ a graph's
# incidence matrix. Here $F$ is the first-difference matrix (`ol.operators.first_difference`, a chain graph) on
# generated data whose truth is piecewise constant; `ol.operators.graph(X)` builds the papers' graph from data.
# SPDHG (Qiao et al. 2018; variants `gc` for general convex, `sc_uniform`/`sc_nonuniform` for strongly convex)
# against STOC-ADMM and the batch linearised PDHG, with the CVXPY optimum as reference; then 20 runs as **one**
# batched call (`jax.vmap` over PRNG keys). `optlab reproduce spdhg` runs the paper's data sets.

# %%
import os

import jax
import matplotlib.pyplot as plt
import numpy as np

import optlab as ol

plt.rcParams["figure.dpi"] = 72
quick = os.environ.get("OPTLAB_QUICK", "1") != "0"
n, d = (2000, 20) if quick else (10000, 40)
rng = np.random.default_rng(0)
A = rng.normal(size=(n, d))
w_true = np.repeat(rng.normal(size=d // 5), 5) / np.sqrt(d)
y = np.where(A @ w_true + 0.5 * rng.normal(size=n) > 0, 1.0, -1.0)
A_test = rng.normal(size=(n // 4, d))
y_test = np.where(A_test @ w_true + 0.5 * rng.normal(size=n // 4) > 0, 1.0, -1.0)
F = ol.operators.first_difference(d)
mu, gamma = 1e-2, 1e-2
P_star, x_star = ol.references.structured_optimum(A, y, F, mu, gamma)
print(f"A {A.shape}, F {F.shape}, P* = {P_star:.6f}")

# %% [markdown]
# The stochastic solvers log once per epoch (`segments=k` logs k times per epoch); the objective is evaluated at
# the averaged iterate, the test loss when `X_test`/`y_test` are given.

# %%
epochs = 10 if quick else 30
common = dict(epochs=epochs, segments=2, seed=0, X_test=A_test, y_test=y_test, progress=False)
runs = {
    "SPDHG-GC": ol.spdhg(A, y, F, mu, gamma, variant="gc", **common),
    "SPDHG-SC2": ol.spdhg(A, y, F, mu, gamma, variant="sc_nonuniform", **common),
    "STOC-ADMM": ol.stoc_admm(A, y, F, mu, gamma, **common),
}
lin = ol.lpdhg(A, y, F, mu, gamma, maxiter=epochs, X_test=A_test, y_test=y_test, progress=False)
for label, res in {**runs, "linearised PDHG (batch)": lin}.items():
    tr = res.trace
    print(f"{label:<24} (P−P*)/P* = {(tr.last('objective') - P_star) / P_star:.2e}  "
          f"test loss = {tr.last('test_loss') if 'test_loss' in tr.metrics else float('nan'):.4f}  {tr.times[-1]:.2f}s")

# %% [markdown]
# Against epochs (one epoch = n sampled rows; a batch PDHG iteration reads all n rows, so it counts as one epoch):

# %%
traces = {label: res.trace.in_epochs() for label, res in runs.items()}   # harness steps are epoch segments
traces["linearised PDHG (batch)"] = lin.trace
fig, axes = ol.plot.grid(2, ncols=2)
ol.plot.convergence(traces, "objective", reference=P_star, relative=True, best_so_far=True, ax=axes[0],
                    title="objective gap", ylabel="best-so-far (P − P*)/P*")
stoch = {k: v for k, v in traces.items() if "test_loss" in v.metrics}
ol.plot.convergence(stoch, "test_loss", ax=axes[1], logy=False, title="test loss")
for ax in axes:
    ax.set_xlabel("epochs")
fig.tight_layout()
plt.show()

# %% [markdown]
# High probability: the same solver under `jax.vmap` over 20 PRNG keys (`key=`, `jit=True`) is one compiled,
# batched call; `history` holds each run's metrics at the log points.

# %%
keys = jax.random.split(jax.random.key(0), 20)
batched = jax.vmap(lambda k: ol.spdhg(A, y, F, mu, gamma, variant="sc_nonuniform", epochs=epochs, segments=2,
                                      key=k, jit=True, progress=False))(keys)
gaps = np.asarray(batched.history["objective"])[:, 1:] - P_star
ep = np.arange(1, gaps.shape[1] + 1) / 2
fig, ax = plt.subplots(figsize=(5, 3.4))
ax.loglog(ep, np.median(gaps, 0), label="median over 20 keys")
ax.loglog(ep, np.quantile(gaps, 0.95, axis=0), label="95 % quantile")
ax.set(xlabel="epochs", ylabel="P(x̄) − P*", title="SPDHG-SC2, one vmapped call")
ax.legend(fontsize="small")
plt.show()
