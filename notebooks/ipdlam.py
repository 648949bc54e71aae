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
# # iPDLAM: inertial proximal alternating minimisation for MLP training (`ol.ipdlam`)
#
# The MLP's layers become blocks of a penalty problem,
# $\Phi_\rho = \frac1n\sum_i \ell((a_{L-1}W_L + b_L)_i, y_i) + \frac{\rho}{2n}\sum_{l<L}\|a_l - \sigma(a_{l-1}W_l + b_l)\|^2$,
# and each block $W_1, a_1, \dots, W_L$ takes an inertial proximal-linearised step; $\rho$ grows geometrically.
# iPDLAM (β = 0.8) vs its β = 0 ablation DLAM (`ol.dlam`) and Adam on the same network
# (`optlab.solvers.baselines.optax_train.train_mlp`, same initial weights), on scikit-learn's 8×8 digits
# (1,797 images, bundled). `optlab reproduce ipdlam` runs the paper's MNIST setting.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

import optlab as ol
from optlab.solvers.baselines.optax_train import train_mlp

plt.rcParams["figure.dpi"] = 72
quick = os.environ.get("OPTLAB_QUICK", "1") != "0"
ds = ol.data.load("digits", split=0.2, seed=0)
X, X_test = ds.X / 16.0, ds.X_test / 16.0
y, y_test = ds.y, ds.y_test
layers = [64, 64, 10] if quick else [64, 256, 10]
iters = 60 if quick else 300
print(X.shape, X_test.shape, layers)

# %%
common = dict(layers=layers, X_test=X_test, y_test=y_test, seed=0, progress=False, log_every=max(1, iters // 30))
runs = {
    "iPDLAM (β=0.8)": ol.ipdlam(X, y, iters=iters, beta=0.8, **common),
    "DLAM (β=0)": ol.dlam(X, y, iters=iters, **common),
    "Adam (full batch)": train_mlp(X, y, optimizer="adam", learning_rate=1e-2, epochs=iters, **common),
}
for label, res in runs.items():
    tr = res.trace
    print(f"{label:<18} train loss {tr.last('train_loss'):.3f}  test acc {tr.last('test_acc'):.3f}  "
          f"{tr.times[-1]:.2f}s ({tr.times[-1] / tr.iters[-1] * 1e3:.1f} ms/iteration)")

# %% [markdown]
# `params` is the network (`W`, `b`: one array per layer); the trace also holds iPDLAM's penalty objective Φ_ρ
# and ρ. One iteration is one sweep over the blocks (iPDLAM, DLAM) or one full-batch Adam step.

# %%
traces = {label: res.trace for label, res in runs.items()}
fig, axes = ol.plot.grid(3, ncols=3, panel_size=(4.2, 3.2))
ol.plot.convergence(traces, "train_loss", ax=axes[0], title="training loss (cross-entropy)")
ol.plot.convergence(traces, "test_acc", ax=axes[1], logy=False, title="test accuracy")
pen = {k: v for k, v in traces.items() if "rho" in v.metrics}
ol.plot.convergence(pen, "objective", ax=axes[2], title="penalty objective Φ_ρ", ylabel="Φ_ρ")
fig.tight_layout()
plt.show()
print([np.asarray(W).shape for W in runs["iPDLAM (β=0.8)"].params["W"]])
