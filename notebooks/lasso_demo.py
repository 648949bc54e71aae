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
# # Lasso demo: ISTA and FISTA through the optlab harness
#
# Runs the `lasso-demo` experiment (`optlab/experiments/lasso_demo.py`; the same code as
# `optlab reproduce lasso-demo`) and plots the relative suboptimality against iterations and solver time
# (compile time excluded). Set `OPTLAB_QUICK=0` for the full-size run.

# %%
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt

import optlab as ol
from optlab.experiments import get

quick = os.environ.get("OPTLAB_QUICK", "1") != "0"
out = Path(tempfile.mkdtemp(prefix="lasso-demo-"))
summary = get("lasso-demo").run(out=out, quick=quick, seed=0)

# %% [markdown]
# Each run returns a `Trace`: iterations, solver times, metrics, and metadata (solver, dataset, compile time).

# %%
traces = summary["traces"]
for dataset, runs in traces.items():
    for label, tr in runs.items():
        print(f"{dataset:>20} {label:<22} iters={tr.iters[-1]:>5}  time={tr.times[-1]:.3f}s  "
              f"compile={tr.meta['compile_time']:.2f}s  final rel gap={tr['rel_gap'][-1]:.2e}")

# %%
fig, axes = ol.plot.grid(2 * len(traces), ncols=2)
for i, (dataset, runs) in enumerate(traces.items()):
    ol.plot.convergence(runs, "rel_gap", x="iter", ax=axes[2 * i], title=dataset, ylabel="(F − F*)/|F*|")
    ol.plot.convergence(runs, "rel_gap", x="time", ax=axes[2 * i + 1], title=dataset, ylabel="(F − F*)/|F*|")
fig.tight_layout()
plt.show()
