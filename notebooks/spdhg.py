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
# # Stochastic PDHG on graph-guided logistic regression
#
# Runs the `spdhg` experiment (`optlab/experiments/spdhg.py`, the same code as `optlab reproduce spdhg`): SPDHG
# (Qiao, Lin, Qin, Lu 2018) against the stochastic-ADMM baselines on GGLR and GGRLR, an 80/20 split, best-so-far
# objective gap and test loss vs epochs, and the gap quantiles over seeds against the claimed rate shapes.
# Quick mode (the default here, `OPTLAB_QUICK=1`) uses splice only, 5 epochs and 20 seeds; set `OPTLAB_QUICK=0`
# for the full run (all six data sets, 10 epochs, 100 seeds). Needs `$OPTLAB_DATA`.

# %%
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt

import optlab as ol
from optlab.experiments import get

quick = os.environ.get("OPTLAB_QUICK", "1") != "0"
out = Path(tempfile.mkdtemp(prefix="spdhg-"))
summary = get("spdhg").run(out=out, quick=quick, seed=0)

# %% [markdown]
# Final relative gap of each method's averaged iterate (CVXPY optimum of the training problem), test loss and
# time per epoch (compile time excluded):

# %%
print(summary["table"])

# %% [markdown]
# Best-so-far objective gap against epochs (the paper's axes), one panel per problem:

# %%
for ds_name, problems in summary["traces"].items():
    fig, axes = ol.plot.grid(len(problems), ncols=2)
    for ax, (prob, traces) in zip(axes, problems.items()):
        ol.plot.convergence(traces, "gap", ax=ax, best_so_far=True, title=f"{ds_name} {prob}",
                            ylabel="best-so-far P(x̄) − P*")
        ax.set_xlabel("epochs")
        ax.legend(fontsize=6)
    fig.tight_layout()
    plt.show()

# %% [markdown]
# Gap over seeds (median and 95 % quantile) against c/√t, c·log t/t and c/t for the three step rules:

# %%
img = plt.imread(out / "spdhg_highprob.png")
plt.figure(figsize=(14, 4))
plt.imshow(img)
plt.axis("off")
plt.show()
