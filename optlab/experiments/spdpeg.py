"""SPDPEG (Lin et al., Neurocomputing 2018): fused logistic regression and GGRLR, SPDPEG vs EGADM, SGADM and the stochastic-ADMM baselines.

Protocol (the paper's, from its released driver, with the deviations listed below):

* fused LR: ``(1/n)Σ log(1 + exp(−b_i a_iᵀx)) + 5e-4‖x‖₁ + 5e-3‖Dx‖₁`` (D the first-difference matrix) on splice,
  svmguide3, mushrooms, a9a, w8a; GGRLR: ``… + (1e-2/2)‖x‖² + 1e-5‖Fx‖₁`` (F the signed graph of
  ``optlab.operators.graph``) on svmguide3, mushrooms, a9a, w8a. Quick: fused LR on splice and GGRLR on svmguide3;
* 5-fold cross-validation (scikit-learn ``KFold(5, shuffle=True, random_state=seed)`` over all rows; quick: the
  first 2 folds), 10 epochs (quick: 3), 10 log points per epoch, sampling without replacement, seed 0;
* methods: SPDPEG with our defaults (resampled extragradient, β = "auto", scale √8), SPDPEG with the authors'
  extragradient (``same_point``), SPDHG-GC with its defaults (on fused LR with the ℓ1 term stacked into F:
  ``5e-3‖[D; 0.1 I]x‖₁``, the same objective), SPDPEG with the paper's per-set scale and β = 1 (fused LR only, where the paper gives
  them), batch EGADM (one iteration = two passes; plotted against time like the others), SGADM, STOC-ADMM (GGRLR only:
  its x-step is a linear solve that cannot carry the ℓ1 term), RDA-ADMM, OPG-ADMM, Ada-SADMM (diag); every method
  but the paper-settings row has its step-size ``scale`` tuned by the experiments' protocol
  (:mod:`optlab.experiments._tuning`: default × {1/4, 1/2, 1, 2, 4}, quick × {1/2, 1, 2}; 1/5 of the epochs or
  passes; training objective at the averaged iterate) on fold 0's training rows, and runs every fold at that value;
* metrics at the averaged iterate: training objective, test loss (mean logistic loss on the held-out fold) and test
  accuracy, vs CPU time (compile excluded), mean ± standard deviation over folds (x: mean time at each log point);
* gap table: the objective after the last epoch relative to the CVXPY (CLARABEL) optimum, fold 0 only (the CVXPY
  solve per fold is the expensive part of the full run); on w8a (n·d > 6e6, CLARABEL failed) relative to the best
  run instead (column ``reference``).

Figures ``spdpeg_<problem>_<dataset>.png`` (objective, test loss, accuracy vs time with error bars); CSV
``spdpeg_traces.csv`` (long format, per fold; iteration = epoch segments; full runs keep every 5th log point = 2 per
epoch, and the metrics objective, test_loss, test_acc), ``spdpeg_summary.csv`` (the chosen scale in column ``tuned``),
``spdpeg_tuning.csv`` (every grid value's score).

Deviations from the authors' released code (Qiao et al. 2018; Lin et al. 2018):

1. G'_k is the same sample's gradient at the predictor x̂_k (a true extragradient); the authors re-use the gradient at
   x_k — run as "SPDPEG (same_point)".
2. Default steps: β = L/(√8‖F‖²) (balances the two terms of C, so C ≈ √8 L instead of 8‖F‖² — with β = 1 and a graph
   F of norm² ~10³ the paper's step is ~10⁻⁴ and the method barely moves) and scale √8 (first step ≈ 1/L). The
   paper's values (β = 1, per-set scale) are run too on fused LR.
3. Baselines follow their papers (decaying steps, SAG table used, same F for all), see ``experiments/spdhg.py``.
4. The graph F of GGRLR is built once per data set on all rows (not per fold), so every fold solves the same
   penalty; the CV folds are ours (seeded ``KFold``), not the authors' split files.
5. One objective everywhere with (γ/2)‖x‖².

Without a data set's file (quick runs) a generated stand-in of the same shape is used (:mod:`optlab.data.standin`):
its name reads "<name> (stand-in)" in the tables and figure titles and the CSVs' ``data`` column says "stand-in".
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from optlab import harness
from optlab.experiments import register
from optlab.experiments._datasets import DataSets
from optlab.experiments._progress import expect, step
from optlab.experiments import _tuning
from optlab.experiments._stochastic_common import (fmt, graph_F, long_rows, reference, scale_grid, test_accuracy,
                                                   tune_scale, write_table)
from optlab.experiments.spdhg import PAPER_RULE

FUSED = ("splice", "svmguide3", "mushrooms", "a9a", "w8a")
GGRLR = ("svmguide3", "mushrooms", "a9a", "w8a")
PAPER_SCALE = {"a9a": 4.0, "mushrooms": 4.0, "w8a": 7.0, "splice": 1.0, "svmguide3": 5.0}


EGADM = "EGADM (batch)"
#: Rows at fixed published settings (not tuned), with the reason the tables give.
UNTUNED = {"SPDPEG (paper scale, β=1)": "the paper's per-set scale and β = 1"}


def grids(quick: bool, problem: str = "fused", ds_name: str = "splice") -> dict:
    """The tuning grid of every compared method (all but :data:`UNTUNED`), EGADM included: ``{label: Grid}``."""
    import optlab as ol

    out = {label: scale_grid(fn, kw, quick) for label, (fn, kw) in _methods(problem, ds_name).items()
           if label not in UNTUNED}
    out[EGADM] = scale_grid(ol.egadm, {}, quick)
    return out


def _methods(problem, ds_name):
    import optlab as ol
    from optlab.solvers.baselines import stochastic_admm as B

    m = {"SPDPEG": (ol.spdpeg, {}), "SPDPEG (same_point)": (ol.spdpeg, {"extragradient": "same_point"}),
         "SPDHG-GC": (ol.spdhg, {})}
    if problem == "fused":
        m["SPDPEG (paper scale, β=1)"] = (ol.spdpeg, {"scale": PAPER_SCALE[ds_name], "beta": 1.0, **PAPER_RULE})
    m["SGADM"] = (B.sgadm, {})
    if problem == "ggrlr":
        m["STOC-ADMM"] = (B.stoc_admm, {})
    m.update({"RDA-ADMM": (B.rda_admm, {}), "OPG-ADMM": (B.opg_admm, {}), "Ada-SADMM (diag)": (B.ada_sadmm, {})})
    return m


def summary_row(trs, tuned, *, problem, dataset, data, method, f_ref, ref0) -> dict:
    """One row of ``spdpeg_summary.csv`` from the method's per-fold traces ``trs``: fold-0 gap to ``ref0``, means and
    spreads over folds, and the tuning columns (``tuned``: its :class:`~optlab.experiments._tuning.Tuned`, None for
    :data:`UNTUNED`)."""
    return {"problem": problem, "dataset": dataset, "data": data, "method": method,
            "rel_gap_fold0": fmt((trs[0].last("objective") - ref0) / abs(ref0)),
            "reference": "CVXPY" if np.isfinite(f_ref) else "best run (CVXPY failed)",
            "objective_mean": fmt(np.mean([tr.last("objective") for tr in trs]), ".6f"),
            "objective_std": fmt(np.std([tr.last("objective") for tr in trs]), ".2e"),
            "test_loss_mean": fmt(np.mean([tr.last("test_loss") for tr in trs]), ".5f"),
            "test_acc_mean": fmt(np.mean([tr.last("test_acc") for tr in trs]), ".4f"),
            "test_acc_std": fmt(np.std([tr.last("test_acc") for tr in trs]), ".4f"),
            "time_s_mean": fmt(np.mean([tr.times[-1] for tr in trs]), ".4g"),
            "f_cvxpy_fold0": fmt(f_ref, ".8g"), "folds": len(trs),
            **(tuned.fields() if tuned is not None else _tuning.untuned_fields(UNTUNED[method]))}


def _call(fn, X, y, F, problem, kw, **common):
    import optlab as ol

    if problem == "fused":
        mu, gamma, r = 5e-3, 0.0, ol.prox.l1(5e-4)
    else:
        mu, gamma, r = 1e-5, 1e-2, None
    if fn is ol.spdpeg:
        return fn(X, y, F, mu, r, gamma, **kw, **common)
    if fn is ol.spdhg:
        if r is not None:   # SPDHG has no separate r: stack it into F, mu‖[D; (l1/mu) I] x‖₁ = mu‖Dx‖₁ + l1‖x‖₁
            import scipy.sparse as sp

            F = sp.vstack([F, (5e-4 / mu) * sp.identity(F.shape[1])], format="csr")
        return fn(X, y, F, mu, gamma, **kw, **common)
    if fn is ol.egadm:
        return fn(X, y, F, mu, r, gamma, **kw, **common)
    return fn(X, y, F, mu, gamma, r=r, **kw, **common)


@register("spdpeg", "SPDPEG vs EGADM, SGADM and stochastic ADMM on fused LR and GGRLR (5-fold CV, error bars)")
def run(out: Path, quick: bool = False, seed: int = 0) -> dict:
    import jax

    jax.config.update("jax_enable_x64", True)
    from matplotlib.ticker import NullFormatter
    from sklearn.model_selection import KFold

    import optlab as ol
    from optlab.trace import write_long_csv

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    epochs, segments, n_folds = (3, 5, 2) if quick else (10, 10, 5)
    jobs = [("fused", "splice"), ("ggrlr", "svmguide3")] if quick else \
        [("fused", d) for d in FUSED] + [("ggrlr", d) for d in GGRLR]
    rows, summary, files, all_traces, tuning_rows = [], [], [], {}, []
    sets = DataSets(quick)
    # per job and fold: the CVXPY reference (fold 0), every method and EGADM (the tuning runs inside their step)
    expect(sum(1 + n_folds * (len(_methods(p, d)) + 1) for p, d in jobs))
    for problem, ds_name in jobs:
        harness.release_compiled_programs()   # programs of the last data set: keep the process under the map limit
        ds = sets.load(ds_name, split="none")
        label_ds, kind = sets.label(ds_name), sets.kind(ds_name)
        Xall, yall = ds.X, ds.y
        F = ol.operators.first_difference(Xall.shape[1]) if problem == "fused" else graph_F(Xall)[0]
        folds = list(KFold(5, shuffle=True, random_state=seed).split(np.arange(Xall.shape[0])))[:n_folds]
        traces, tuning = {}, {}
        f_ref = None
        for k, (tr_idx, te_idx) in enumerate(folds):
            X, y, Xt, yt = Xall[tr_idx], yall[tr_idx], Xall[te_idx], yall[te_idx]
            if k == 0:
                step(f"{problem} {label_ds}: CVXPY reference")
                mu, gamma, l1 = (5e-3, 0.0, 5e-4) if problem == "fused" else (1e-5, 1e-2, 0.0)
                f_ref = reference(X, y, F, mu, gamma, l1=l1)
            common = dict(X_test=Xt, y_test=yt, metrics={"test_acc": test_accuracy}, progress=False)
            for label, (fn, kw) in [*_methods(problem, ds_name).items(), (EGADM, (ol.egadm, {}))]:
                step(f"{problem} {label_ds} fold {k}: {label}")
                length = "maxiter" if fn is ol.egadm else "epochs"
                more = {} if fn is ol.egadm else dict(segments=segments, seed=seed)

                def one(kw, n, final, fn=fn, length=length, more=more):
                    return _call(fn, X, y, F, problem, kw, **{length: n}, **more,
                                 **(common if final else {"progress": False}))

                if label in UNTUNED:
                    res = one(kw, epochs, True)
                elif k == 0:     # tuned on fold 0's training rows; the chosen value runs every fold
                    res, tuning[label] = tune_scale(one, fn, kw, quick=quick, length=epochs,
                                                    unit="pass" if fn is ol.egadm else "epoch")
                    tuning_rows.extend(tuning[label].rows(problem=problem, dataset=label_ds, data=kind, method=label))
                else:
                    res = one({**kw, "scale": tuning[label].chosen}, epochs, True)
                traces.setdefault(label, []).append(res.trace)
        fig, axes = ol.plot.grid(3, ncols=3, panel_size=(4.6, 3.5))
        for label, trs in traces.items():
            for k, tr in enumerate(trs):
                rows += long_rows(tr, every=1 if quick else 5, solver=label, dataset=label_ds, problem=problem, fold=k,
                                  data=kind)
            t = np.mean([tr.times for tr in trs], axis=0)
            for ax, metric in zip(axes, ("objective", "test_loss", "test_acc")):
                v = np.array([tr[metric] for tr in trs])
                ax.errorbar(t[1:], v.mean(0)[1:], yerr=v.std(0)[1:], label=label, capsize=2, lw=1, elinewidth=0.6)
            ref0 = f_ref if np.isfinite(f_ref) else min(t[0].last("objective") for t in traces.values())
            summary.append(summary_row(trs, tuning.get(label), problem=problem, dataset=label_ds, data=kind,
                                       method=label, f_ref=f_ref, ref0=ref0))
        name = "fused LR" if problem == "fused" else "GGRLR"
        for ax, metric in zip(axes, ("training objective", "test loss", "test accuracy")):
            ax.set_title(f"{label_ds} {name}: {metric}", fontsize=9)
            ax.set_xlabel("time [s] (compile excluded)")
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.grid(True, which="both", alpha=0.3)
        axes[0].set_yscale("log")
        ol.plot.legend(axes[0], fontsize=6)
        sets.mark(fig, [ds_name])
        path = out / f"spdpeg_{problem}_{ds_name}.png"
        ol.plot.save(fig, path)
        files.append(path)
        all_traces[(problem, ds_name)] = traces
        write_long_csv(rows, out / "spdpeg_traces.csv")          # after every job: partial runs keep results
        write_table(summary, out / "spdpeg_summary.csv")
        write_table(tuning_rows, out / "spdpeg_tuning.csv")
    write_long_csv(rows, out / "spdpeg_traces.csv")
    table = write_table(summary, out / "spdpeg_summary.csv")
    files += [out / "spdpeg_traces.csv", out / "spdpeg_summary.csv", out / "spdpeg_tuning.csv"]
    print(table)
    return {"files": [str(f) for f in files], "table": table, "traces": all_traces}
