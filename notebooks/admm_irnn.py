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
# # ADMMiRNN: ADMM training of a tanh RNN vs SGD, Adam and RMSProp (BPTT)
#
# Runs the `admm-irnn` experiment (`optlab/experiments/admm_irnn.py`; the same code as `optlab reproduce admm-irnn`)
# and plots training loss and test accuracy of the **forward pass** against iterations and solver time, and the
# stability panel (BPTT gradient norms vs ADMMiRNN constraint residuals). Set `OPTLAB_QUICK=0` for the full run.
# The experiment's module docstring is its README (settings, seeds, deviations from the paper).

# %%
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt

import optlab as ol
from optlab.experiments import get

quick = os.environ.get("OPTLAB_QUICK", "1") != "0"
out = Path(tempfile.mkdtemp(prefix="admm-irnn-"))
summary = get("admm-irnn").run(out=out, quick=quick, seed=0)

# %% [markdown]
# The table: one row per task and method (equal iterations; "equal time" rows ran with ADMMiRNN's solver time
# as `max_time`). For the character model the loss is in bits per character, next to the unigram entropy.

# %%
for row in summary["summary"]:
    print(f"{row['task']:>12} {row['method']:<30} iters={row['iterations']:>6} time={row['solver_time_s']:>7}s "
          f"train_acc={row['train_acc']} test_acc={row['test_acc']} bits/char={row['bits_per_char_train']} "
          f"(unigram {row['unigram_entropy_bits']})")

# %% [markdown]
# The default re-projects the auxiliaries onto the forward pass after every iteration and puts the multipliers at
# their least-squares estimate there (minus the BPTT adjoints), so `aux_loss` and `train_loss` agree; `residual`
# is the constraint residual *before* that re-projection. The full run (`OPTLAB_QUICK=0`) adds the ablations:
# re-projection with the dual-ascent multipliers, plain ADMM, and the trap — with small penalties and no
# re-projection the auxiliary outputs fit the labels (`aux_loss` tiny) while the forward pass does not.

# %%
traces = summary["traces"]
for label, tr in traces["mnist-rows"].items():
    if "aux_loss" in tr.metrics:
        print(f"{label:<45} aux_loss={tr['aux_loss'][-1]:.3f} forward train_loss={tr['train_loss'][-1]:.3f} "
              f"residual={tr['residual'][-1]:.2e} test_acc={tr['test_acc'][-1]:.3f}")

# %%
fig, axes = ol.plot.grid(2 * len(traces), ncols=2)
for i, (task, runs) in enumerate(traces.items()):
    it_runs = {k: t for k, t in runs.items() if "equal time" not in k}
    ol.plot.convergence(it_runs, "train_loss", x="iter", ax=axes[2 * i], title=f"{task}: train loss")
    ol.plot.convergence(it_runs, "test_acc", x="iter", ax=axes[2 * i + 1], logy=False, title=f"{task}: test accuracy")
fig.tight_layout()
plt.show()
