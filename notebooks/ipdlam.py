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
# # iPDLAM: inertial proximal alternating minimisation for MLP training (SPEC §3)
#
# Runs the `ipdlam` experiment (`optlab/experiments/ipdlam.py`, the same code as `optlab reproduce ipdlam`) on the
# MNIST 8,000/2,000 split: iPDLAM (β = 0.8), DLAM (β = 0), BCD (Zeng et al. 2019) and optax SGD / Adam / RMSProp
# on the same 784-h-10 ReLU network. Needs `OPTLAB_DATA` pointing at the data folder (with `mnist/`); set `OPTLAB_QUICK=0` for the
# full run (ablations included). Times exclude compilation and are from a shared CPU: noisy.
#
# Penalty objective: $\Phi_\rho = \frac1n\sum_i \ell((a_{L-1}W_L + b_L)_i, y_i) + \frac{\rho}{2n}\sum_{l<L}\|a_l - \sigma(a_{l-1}W_l + b_l)\|^2$;
# blocks $W_1, a_1, \dots, W_L$ each take an inertial proximal-linearised step with a backtracked constant;
# $\rho_{k+1} = \min(\rho_{\max}, \kappa\rho_k)$.

# %%
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt

import optlab as ol
from optlab.experiments import get

quick = os.environ.get("OPTLAB_QUICK", "1") != "0"
try:
    ol.data.load("mnist")
    have_data = True
except Exception as err:  # noqa: BLE001 - no data here: say so and skip the run
    print(f"MNIST not available ({err}); set OPTLAB_DATA to the data folder to run this notebook")
    have_data = False

summary = None
if have_data:
    out = Path(tempfile.mkdtemp(prefix="ipdlam-"))
    summary = get("ipdlam").run(out=out, quick=quick, seed=0)

# %% [markdown]
# The table: test accuracy and training loss at equal iterations and at equal solver time, and seconds per
# iteration (one iteration = one block sweep for iPDLAM/DLAM, one epoch of mini-batches for the optax methods).

# %%
if summary is not None:
    print(summary["table"])

# %%
if summary is not None:
    traces = summary["traces"]
    main = {k: v for k, v in traces.items() if "fixed" not in k and k != "iPDLAM (β=0.5)"}
    ce = {k: v for k, v in main.items() if "train_loss" in v.metrics}   # BCD minimises a squared loss
    fig, axes = ol.plot.grid(4, ncols=2)
    ol.plot.convergence(ce, "train_loss", x="iter", ax=axes[0], title="training loss (cross-entropy)", logx=True)
    ol.plot.convergence(ce, "train_loss", x="time", ax=axes[1], title="training loss (cross-entropy)", logx=True)
    ol.plot.convergence(main, "test_acc", x="iter", ax=axes[2], title="test accuracy", logy=False, logx=True)
    ol.plot.convergence(main, "test_acc", x="time", ax=axes[3], title="test accuracy", logy=False, logx=True)
    for ax in axes[2:]:
        ax.set_ylim(0.8, 1.0)
    fig.tight_layout()
    plt.show()

# %% [markdown]
# The penalty objective Φ_ρ of iPDLAM and DLAM (at the same ρ schedule, so comparable between the two), and ρ.

# %%
if summary is not None:
    pen = {k: v for k, v in traces.items() if "DLAM" in k}
    fig, axes = ol.plot.grid(2, ncols=2)
    ol.plot.convergence(pen, "objective", ax=axes[0], title="Φ_ρ", ylabel="Φ_ρ")
    ol.plot.convergence(pen, "rho", ax=axes[1], title="penalty parameter ρ_k", ylabel="ρ")
    fig.tight_layout()
    plt.show()
