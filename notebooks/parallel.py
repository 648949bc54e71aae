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
# # Parallel executors: Sync vs Async (simulated clock)
#
# Runs the `parallel` experiment (`optlab/experiments/parallel.py`, the same code as `optlab reproduce parallel`) for every
# method in `optlab.experiments.parallel.METHODS` — data-parallel proximal gradient (ℓ1-logistic regression),
# global-consensus SVM ADMM (ℓ1-hinge), data-parallel SPDHG (graph-guided logistic regression) and data-parallel
# ADMMiRNN (tanh RNN, sequence classification; metric: forward-pass training loss) — with
# `ol.parallel.Sync(W)` and `ol.parallel.Async(W, max_delay=3)`, for uniform worker speeds and a straggler.
# The time axis is a **simulated** clock (see `optlab.parallel`); see `experiments/README_parallel.md`.
# More devices on a CPU: start Jupyter with `XLA_FLAGS=--xla_force_host_platform_device_count=8`.
# Set `OPTLAB_QUICK=0` for the full run.

# %%
import os
import tempfile
from pathlib import Path

import jax
from IPython.display import Image, display

from optlab.experiments import get

print("devices:", len(jax.devices()))
quick = os.environ.get("OPTLAB_QUICK", "1") != "0"
out = Path(tempfile.mkdtemp(prefix="parallel-"))
summary = get("parallel").run(out=out, quick=quick, seed=0)

# %%
display(Image(filename=str(out / "parallel_convergence.png")))
display(Image(filename=str(out / "parallel_speedup.png")))
