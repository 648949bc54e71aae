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
# # Nonconvex-penalised SVM by ADMM (SPEC §1)
#
# Runs the `svm-admm` experiment (`experiments/svm_admm.py`, the same code as `optlab reproduce svm-admm`) on
# heart_scale and mushrooms with the papers' splits, prints the table per data set and plots the ADMM objective
# against iterations and solver time (compile time excluded), and the ℓ1 gap to the exact LP optimum (HiGHS).
# Needs `OPTLAB_DATA` pointing at the LIBSVM files; set `OPTLAB_QUICK=0` for the full-size run.

# %%
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt

import optlab as ol
from experiments import get

quick = os.environ.get("OPTLAB_QUICK", "1") != "0"
out = Path(tempfile.mkdtemp(prefix="svm-admm-"))
summary = get("svm-admm").run(out=out, quick=quick, seed=0)

# %% [markdown]
# One table per data set: method, its own objective, solver time, iterations, NZF % and test accuracy.

# %%
for name, table in summary["tables"].items():
    print(f"== {name} ==\n{table}\n")

# %%
traces = summary["traces"]
fig, axes = ol.plot.grid(2 * len(traces), ncols=2)
for i, (name, runs) in enumerate(traces.items()):
    admm = {k: v for k, v in runs.items() if k.startswith("ADMM")}
    ol.plot.convergence(admm, "objective", x="iter", ax=axes[2 * i], title=f"{name}: objective")
    ol.plot.convergence(admm, "kkt", x="time", ax=axes[2 * i + 1], title=f"{name}: max relative residual")
fig.tight_layout()
