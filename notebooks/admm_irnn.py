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
# # ADMMiRNN: training a tanh RNN by ADMM (`ol.admm_irnn`) vs backpropagation through time
#
# ADMMiRNN (Tang et al. 2020) splits the unrolled RNN $h_t = \tanh(Ux_t + Wh_{t-1} + b)$, $o_t = Vh_t + c$ into
# per-step blocks coupled by constraints and updates them by ADMM; no gradient flows through time. We train it on a
# generated sequence-classification task (the label is the sign of $\sum_t \sin x_{t,0} + x_{T,1}/2$) and compare
# with the same network trained by BPTT with Adam and SGD (`optlab.solvers.admm_irnn.bptt`, same initial weights).
# `optlab reproduce admm-irnn` runs the paper's MNIST, character and sentiment tasks.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

import optlab as ol
from optlab.solvers.admm_irnn import bptt

plt.rcParams["figure.dpi"] = 72
quick = os.environ.get("OPTLAB_QUICK", "1") != "0"
n, T, hidden = (400, 6, 8) if quick else (4000, 10, 16)
rng = np.random.default_rng(0)


def draw(m):
    X = rng.normal(size=(m, T, 3))
    return X, (np.sin(X[:, :, 0]).sum(1) + 0.5 * X[:, -1, 1] > 0).astype(int)


(X, y), (X_test, y_test) = draw(n), draw(n // 2)
print(X.shape, np.bincount(y))

# %% [markdown]
# `admm_irnn` returns the RNN's weights (`params`: U, W, b, V, c) and a trace of the **forward-pass** training loss
# and accuracy (the network evaluated as trained, not the auxiliary variables), test metrics and the constraint
# residual. One iteration is one ADMM sweep over all blocks for ADMMiRNN and one full-batch gradient step for BPTT;
# `trace.times` compares their cost.

# %%
iters = 40 if quick else 300
common = dict(X_test=X_test, y_test=y_test, seed=0, progress=False)
admm = ol.admm_irnn(X, y, hidden, iters=iters, sweep="jacobi", log_every=max(1, iters // 20), **common)
print({k: np.asarray(v).shape for k, v in admm.params.items()})
runs = {"ADMMiRNN": admm.trace}
for label, (opt, lr) in {"BPTT Adam": ("adam", 1e-2), "BPTT SGD": ("sgd", 1e-1)}.items():
    runs[label] = bptt(X, y, hidden, opt, learning_rate=lr, epochs=iters, log_every=max(1, iters // 20),
                       **common).trace
for label, tr in runs.items():
    print(f"{label:<10} train loss {tr.last('train_loss'):.3f}  train acc {tr.last('train_acc'):.3f}  "
          f"test acc {tr.last('test_acc'):.3f}  {tr.times[-1]:.2f}s for {tr.iters[-1]} iterations")

# %%
fig, axes = ol.plot.grid(3, ncols=3, panel_size=(4.2, 3.2))
ol.plot.convergence(runs, "train_loss", ax=axes[0], title="training loss (forward pass)")
ol.plot.convergence(runs, "test_acc", ax=axes[1], logy=False, title="test accuracy")
ol.plot.convergence({"ADMMiRNN": admm.trace}, "residual", ax=axes[2], title="ADMM constraint residual")
fig.tight_layout()
plt.show()
