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
# # SPDPEG: stochastic primal-dual proximal extragradient
#
# Runs the `spdpeg` experiment (`optlab/experiments/spdpeg.py`, the same code as `optlab reproduce spdpeg`): SPDPEG
# (Lin, Qiao, Zhang, Feng, Zhang 2018) with its resampled and its authors' ("same_point") extragradient, the batch
# EGADM and the stochastic-ADMM baselines on fused logistic regression and GGRLR, cross-validated; objective, test
# loss and test accuracy vs time with error bars over folds. Quick mode (default here) runs fused LR on splice and
# GGRLR on svmguide3 with 2 folds and 3 epochs; `OPTLAB_QUICK=0` runs the full protocol. Needs `$OPTLAB_DATA`.

# %%
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from optlab.experiments import get

quick = os.environ.get("OPTLAB_QUICK", "1") != "0"
out = Path(tempfile.mkdtemp(prefix="spdpeg-"))
summary = get("spdpeg").run(out=out, quick=quick, seed=0)
print(summary["table"])

# %% [markdown]
# Training objective of each method, mean over folds, against epochs-equivalent log points (the figures written by
# the experiment plot the same runs against time, with error bars):

# %%
for (problem, ds_name), traces in summary["traces"].items():
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for label, trs in traces.items():
        seg = trs[0].meta.get("segments", 1)
        ep = np.asarray(trs[0].iters, float) / seg
        ax.plot(ep, np.mean([t["objective"] for t in trs], axis=0), label=label)
    ax.set_yscale("log")
    ax.set_xlabel("epochs (EGADM: iterations)")
    ax.set_ylabel("training objective (mean over folds)")
    ax.set_title(f"{ds_name}, {problem}")
    ax.legend(fontsize=6)
    plt.show()

# %%
for png in sorted(out.glob("spdpeg_*.png")):
    plt.figure(figsize=(14, 3.6))
    plt.imshow(plt.imread(png))
    plt.axis("off")
    plt.title(png.name)
    plt.show()
