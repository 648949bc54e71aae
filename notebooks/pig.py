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
# Runs the `pig` experiment (`optlab/experiments/pig.py`, the same code as `optlab reproduce pig`; its module docstring
# lists settings, seeds and references) and plots F(x_k) − F* against k on log-log axes with the c/k reference.
# Quick mode by default; set `OPTLAB_QUICK=0` for the full-size run.

# %%
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import optlab as ol
from optlab.experiments import get

quick = os.environ.get("OPTLAB_QUICK", "1") != "0"
out = Path(tempfile.mkdtemp(prefix="pig-"))
summary = get("pig").run(out=out, quick=quick, seed=0)

# %% [markdown]
# The non-ergodic claim: k·(F(x_k) − F*) stays bounded. Plot it for PIG in each rate panel.

# %%
panels = summary["panels"]
fig, axes = ol.plot.grid(4, ncols=2)
for ax, panel in zip(axes, [p for p in panels if p.startswith("(")]):
    for label, tr in panels[panel].items():
        if "ergodic" in label:
            continue
        k = tr.iters[1:].astype(float)
        ax.loglog(k, np.maximum(k * tr["subopt"][1:], 1e-300), label=label)
    ax.set_title(panel, fontsize="small")
    ax.set_xlabel("iteration k")
    ax.set_ylabel("k·(F(x_k) − F*)")
    ax.legend(fontsize="x-small")
fig.tight_layout()
plt.show()

# %% [markdown]
# The figures the experiment wrote (the same as `paper_figs/pig_*.png` in full mode):

# %%
for name in ("pig_rates.png", "pig_linear.png", "pig_beta.png", "pig_blocks.png"):
    img = plt.imread(out / name)
    plt.figure(figsize=(10, 10 * img.shape[0] / img.shape[1]))
    plt.imshow(img)
    plt.axis("off")
    plt.show()
