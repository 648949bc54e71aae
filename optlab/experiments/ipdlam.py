"""iPDLAM on MNIST: iPDLAM vs DLAM vs BCD vs optax SGD / Adam / RMSProp; β and warm-up ablations (Qiao et al., ICASSP 2021).

Data: ``optlab.data.load("mnist")`` = the 10,000-image t10k IDX set split 8,000 train / 2,000 test (seeded by
``seed``), pixels scaled to [0, 1], float32. Network: 784-h-10 MLP, ReLU hidden layer, softmax cross-entropy,
same seeded initialisation (He normal, zero biases) for every method. Times are solver seconds with compile time
and metric evaluation excluded (:mod:`optlab.harness`); the machine is a shared 2-core CPU, so times are noisy.

Methods (one "iteration" = one full-batch block sweep for iPDLAM/DLAM, one full-batch step for "Adam (full
batch)", one epoch of mini-batches of 128 for SGD / Adam / RMSProp):

* **iPDLAM**: β = 0.8 constant, ρ0 = 1e-2, κ = 1.05, ρ_max = 10 (the issue's prototype settings), backtracked block
  constants (``c_shrink`` 0.5, ``c_grow`` 2, δ = 0.5, at most 30 growths), no regulariser;
* **DLAM**: the same with β = 0;
* ablations (full mode), all at iPDLAM's tuned ρ scale s (ρ0 = 1e-2·s, ρ_max = 10·s), so that only the ablated
  part differs from the tuned iPDLAM row: β = 0.5 and β = 0 (the DLAM row itself when DLAM's tuning chose the same
  s); warm-up off: fixed ρ = ρ_max (κ = 1);
* tuning (:mod:`optlab.experiments._tuning`, :func:`grids`): every compared method's knob (iPDLAM/DLAM ρ0 and ρ_max
  together, BCD γ = ρ together, the optax learning rates) over default × {1/4, 1/2, 1, 2, 4} (quick × {1/2, 1, 2}),
  extended past an end by the end's ratio while the best value sits there (at most 3 more values, quick 1), for 1/5
  of its run, chosen on its training loss there; the values above are the defaults (the grid centres). The 1/5
  budget (60 sweeps) ends before the ρ warm-up reaches ρ_max (ln 1000 / ln 1.05 ≈ 142 sweeps), so for iPDLAM/DLAM
  the score ranks the warm-up's start;
* optax: SGD (lr 0.1), Adam (lr 1e-3), RMSProp (lr 1e-3), mini-batch 128, and Adam full batch (lr 1e-3);
* BCD (Zeng et al. 2019, :mod:`optlab.solvers.baselines.bcd`): three-splitting, closed-form block updates, γ = ρ = 1,
  α = 5 (their MNIST values), squared loss on one-hot targets (their loss; so its training loss is not plotted with
  the cross-entropy curves, the CSV has it as ``train_sq_loss``), same 784-h-10 network and initial weights (their
  784-1500×3-10 network is not reproduced).

Quick mode (CI; about 70 s of CPU time, 4 min wall when the 2 cores are shared at load 15): h = 256, 100
iPDLAM/DLAM sweeps, 5 optax epochs, 10 BCD iterations, no full-batch Adam and no ablations. Full mode: h = 256,
300 sweeps / steps, 30 optax epochs, 150 BCD iterations (BCD is the slowest per iteration). The objective plotted
for every method is the network's training loss (mean cross-entropy of a forward pass); for iPDLAM/DLAM the
penalty objective Φ_ρ is plotted separately (it is not comparable across methods: it is measured at the auxiliary
variables a_l, and ρ changes during the warm-up). Results and discussion: ``experiments/README_ipdlam.md``.

Writes ``ipdlam_traces.csv`` (long format), ``ipdlam_summary.csv`` (the table: test accuracy and training loss
at equal iterations and at equal time, final values, seconds per iteration, the chosen value in column ``tuned``),
``ipdlam_tuning.csv`` (every grid value's score), ``ipdlam_mnist.png`` (all methods
vs iteration and time) and, in full mode, ``ipdlam_ablation.png`` (β and warm-up). Without the MNIST files (quick
runs) a generated stand-in of the same shape is used (:mod:`optlab.data.standin`): the CSVs' ``data`` column, the
data set name and the figure titles then say "stand-in".
"""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from optlab.experiments import _tuning, register
from optlab.experiments._datasets import DataSets
from optlab.experiments._progress import expect, step

SETTINGS = {
    True: {"hidden": 256, "iters": 100, "kappa": 1.05, "epochs": 5, "fb_iters": 0, "bcd_iters": 10, "ablations": False},
    False: {"hidden": 256, "iters": 300, "kappa": 1.05, "epochs": 30, "fb_iters": 300, "bcd_iters": 150,
            "ablations": True},
}
IPDLAM = {"rho0": 1e-2, "rho_max": 10.0, "activation": "relu", "loss": "cross_entropy"}
OPTAX = {"SGD": ("sgd", 0.1), "Adam": ("adam", 1e-3), "RMSProp": ("rmsprop", 1e-3)}
BATCH = 128
FULL_BATCH_ADAM = "Adam (full batch)"
UNITS = {"iPDLAM (β=0.8)": "sweeps", "DLAM (β=0)": "sweeps", "BCD (Zeng et al.)": "iterations",
         FULL_BATCH_ADAM: "steps", **{f"{k} (mb {BATCH})": "epochs" for k in OPTAX}}


def _optax_method(label):
    """(optax name, batch size or None) of an optax row label."""
    if label == FULL_BATCH_ADAM:
        return "adam", None
    return OPTAX[label.split(" (mb")[0]][0], BATCH


def grids(quick: bool) -> dict:
    """The tuning grid of every compared method (:mod:`optlab.experiments._tuning`): iPDLAM and DLAM scale their
    penalty (ρ0 and ρ_max together, "rho_scale"), BCD its penalties γ = ρ together ("gamma=rho"), the optax
    methods their learning rate ("lr"). Full-batch Adam is listed but only runs in full mode."""
    G = _tuning.Grid.scaled
    out = {"iPDLAM (β=0.8)": G("rho_scale", 1.0, quick), "DLAM (β=0)": G("rho_scale", 1.0, quick)}
    out.update({f"{k} (mb {BATCH})": G("lr", lr, quick) for k, (_, lr) in OPTAX.items()})
    out["BCD (Zeng et al.)"] = G("gamma=rho", 1.0, quick)
    out[FULL_BATCH_ADAM] = G("lr", 1e-3, quick)
    return out


def _lengths(s) -> dict:
    """The run length of every method this mode runs, in its own unit (:data:`UNITS`)."""
    out = {"iPDLAM (β=0.8)": s["iters"], "DLAM (β=0)": s["iters"],
           **{f"{k} (mb {BATCH})": s["epochs"] for k in OPTAX}, "BCD (Zeng et al.)": s["bcd_iters"]}
    if s["fb_iters"]:
        out[FULL_BATCH_ADAM] = s["fb_iters"]
    return out


def _value_at(tr, metric, *, iteration=None, time=None):
    """The metric at the last log point with iteration ≤ ``iteration`` (or time ≤ ``time``)."""
    xs = tr.iters if iteration is not None else tr.times
    bound = iteration if iteration is not None else time
    if metric not in tr.metrics:
        return float("nan")
    idx = np.nonzero(xs <= bound + 1e-12)[0]
    return float(tr[metric][idx[-1]]) if idx.size else float("nan")


def _table(traces, tuning=None, untuned=""):
    """The summary rows of ``traces`` at equal iterations and equal time, with the tuning columns: each method's
    chosen value from ``tuning`` (``{label: Tuned}``), or ``untuned`` as the reason it is not tuned."""
    k_eq = min(int(tr.iters[-1]) for tr in traces.values())
    t_eq = min(float(tr.times[-1]) for tr in traces.values())
    rows = []
    for label, tr in traces.items():
        rows.append({
            "method": label,
            "iterations": int(tr.iters[-1]),
            f"test_acc@iter{k_eq}": f"{_value_at(tr, 'test_acc', iteration=k_eq):.4f}",
            f"train_loss@iter{k_eq}": f"{_value_at(tr, 'train_loss', iteration=k_eq):.4f}",
            f"test_acc@{t_eq:.1f}s": f"{_value_at(tr, 'test_acc', time=t_eq):.4f}",
            f"train_loss@{t_eq:.1f}s": f"{_value_at(tr, 'train_loss', time=t_eq):.4f}",
            "final_test_acc": f"{tr['test_acc'][-1]:.4f}",
            "final_train_acc": f"{tr['train_acc'][-1]:.4f}",
            "final_train_loss": f"{_value_at(tr, 'train_loss', iteration=tr.iters[-1]):.4f}",
            "solver_time_s": f"{tr.times[-1]:.2f}",
            "s_per_iter": f"{tr.times[-1] / max(1, tr.iters[-1]):.4f}",
            "compile_s": f"{tr.meta['compile_time']:.2f}",
            **(tuning[label].fields() if tuning and label in tuning else _tuning.untuned_fields(untuned)),
        })
    return rows, k_eq, t_eq


@register("ipdlam", "iPDLAM vs DLAM vs BCD vs optax SGD/Adam/RMSProp on MNIST (8k/2k); β and ρ warm-up ablations")
def run(out: Path, quick: bool = False, seed: int = 0) -> dict:
    import optlab as ol
    from optlab.solvers.baselines.bcd import bcd
    from optlab.solvers.baselines.optax_train import train_mlp
    from optlab.trace import write_long_csv, write_table

    s = SETTINGS[bool(quick)]
    sets = DataSets(quick)
    ds = sets.load("mnist", seed=seed)
    dataset, kind = sets.label("mnist", "mnist-8k/2k"), sets.kind("mnist")
    expect(len(_lengths(s)) + 3 * s["ablations"])
    layers = [ds.X.shape[1], s["hidden"], 10]
    common = {"layers": layers, "seed": seed, "X_test": ds.X_test, "y_test": ds.y_test, "progress": False}
    log = max(1, s["iters"] // 40)

    bare = {k: v for k, v in common.items() if k not in ("X_test", "y_test")}     # tuning runs: no test data

    def pdlam(label, beta, kappa=s["kappa"], rho0=IPDLAM["rho0"], rho_max=IPDLAM["rho_max"], iters=s["iters"],
              final=True):
        return ol.ipdlam(ds.X, ds.y, iters=iters, beta=beta, rho0=rho0, rho_growth=kappa, rho_max=rho_max,
                         activation=IPDLAM["activation"], loss=IPDLAM["loss"], log_every=log if final else iters,
                         label=label, **(common if final else bare))

    def runner(label, length):
        """``run(v, n, final)`` of ``label`` at knob value ``v`` for ``n`` of its units (see :func:`grids`)."""
        if "DLAM" in label:
            beta = 0.8 if label.startswith("iPDLAM") else 0.0
            return lambda v, n, final: pdlam(label, beta, rho0=IPDLAM["rho0"] * v, rho_max=IPDLAM["rho_max"] * v,
                                             iters=n, final=final)
        if label.startswith("BCD"):
            return lambda v, n, final: bcd(ds.X, ds.y, iters=n, gamma=v, rho=v, label=label,
                                           log_every=max(1, n // 40) if final else n, **(common if final else bare))
        name, batch = _optax_method(label)
        return lambda v, n, final: train_mlp(ds.X, ds.y, optimizer=name, learning_rate=v, epochs=n, label=label,
                                             log_every=(1 if batch else log) if final else n,
                                             **({"batch_size": batch} if batch else {}), **(common if final else bare))

    lengths = _lengths(s)
    main, tuning, tuning_rows = {}, {}, []
    for label, grid in grids(bool(quick)).items():
        if label not in lengths:
            continue
        step(label)
        length, run_fn = lengths[label], runner(label, lengths[label])
        n = _tuning.budget(length)
        objective = lambda r: r.trace.last("train_loss")  # noqa: E731
        tuning[label] = _tuning.tune(lambda v: run_fn(v, n, n == length), grid, objective,
                                     budget=f"{n} of {length} {UNITS[label]}")
        main[label], tuning[label] = _tuning.confirm(tuning[label], lambda v: run_fn(v, length, True), objective,
                                                     whole=n == length)
        tuning_rows += tuning[label].rows(dataset=dataset, data=kind, method=label)
    bcd_label = "BCD (Zeng et al.)"
    main[bcd_label].trace.metrics["train_sq_loss"] = main[bcd_label].trace.metrics.pop("train_loss")  # not comparable
    ablation = {}
    ablation_note = "ablation"
    if s["ablations"]:       # every ablation row at iPDLAM's tuned ρ scale: only the ablated part differs
        scale = tuning["iPDLAM (β=0.8)"].chosen
        rho0, rho_max = IPDLAM["rho0"] * scale, IPDLAM["rho_max"] * scale
        ablation_note = f"ablation at iPDLAM's tuned ρ scale ×{scale:g}"
        ablation["iPDLAM (β=0.8)"] = main["iPDLAM (β=0.8)"]
        step("β = 0 at iPDLAM's ρ")
        if tuning["DLAM (β=0)"].chosen == scale:
            ablation["DLAM (β=0)"] = main["DLAM (β=0)"]
        else:
            label = f"DLAM (β=0) at ρ ×{scale:g}"
            ablation[label] = pdlam(label, 0.0, rho0=rho0, rho_max=rho_max)
        step("iPDLAM (β=0.5)")
        ablation["iPDLAM (β=0.5)"] = pdlam("iPDLAM (β=0.5)", 0.5, rho0=rho0, rho_max=rho_max)
        label = f"iPDLAM fixed ρ={rho_max:g}"
        step(label)
        ablation[label] = pdlam(label, 0.8, kappa=1.0, rho0=rho_max, rho_max=rho_max)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    all_traces = {**main, **ablation}
    for label, res in all_traces.items():
        res.trace.meta.update({"label": label, "dataset": dataset, "data": kind, "hidden": s["hidden"],
                               "quick": bool(quick)})
        rows += res.trace.long(solver=label, dataset=dataset, data=kind)
    files = [out / "ipdlam_traces.csv", out / "ipdlam_summary.csv", out / "ipdlam_mnist.png", out / "ipdlam_tuning.csv"]
    write_long_csv(rows, files[0])
    write_table(tuning_rows, files[3])
    table_rows, k_eq, t_eq = _table({k: r.trace for k, r in main.items()}, tuning)
    if ablation:
        abl_rows, _, _ = _table({k: r.trace for k, r in ablation.items() if k not in main},
                                untuned=ablation_note)
        table_rows += abl_rows
    for r in table_rows:
        r.update(dataset=dataset, data=kind)
    keys = list(table_rows[0])
    for r in table_rows[1:]:
        keys += [k for k in r if k not in keys]
    with open(files[1], "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=keys, restval="")
        writer.writeheader()
        writer.writerows(table_rows)

    traces = {k: r.trace for k, r in main.items()}
    ce = {k: v for k, v in traces.items() if "train_loss" in v.metrics}
    fig, axes = ol.plot.grid(6, ncols=2)
    ol.plot.convergence(ce, "train_loss", x="iter", ax=axes[0], title="training loss (cross-entropy)", logx=True)
    ol.plot.convergence(ce, "train_loss", x="time", ax=axes[1], title="training loss (cross-entropy)", logx=True)
    ol.plot.convergence(traces, "test_acc", x="iter", ax=axes[2], title="test accuracy (2,000 images)", logy=False,
                        logx=True)
    ol.plot.convergence(traces, "test_acc", x="time", ax=axes[3], title="test accuracy (2,000 images)", logy=False,
                        logx=True)
    pen = {k: v for k, v in traces.items() if "DLAM" in k}
    ol.plot.convergence(pen, "objective", x="iter", ax=axes[4], title="penalty objective Φ_ρ (iPDLAM/DLAM)",
                        ylabel="Φ_ρ")
    ol.plot.convergence(traces, "train_acc", x="iter", ax=axes[5], title="training accuracy", logy=False, logx=True)
    for ax in (axes[2], axes[3], axes[5]):
        ax.set_ylim(0.8, 1.0)
    sets.mark(fig)
    ol.plot.save(fig, files[2])
    if ablation:
        files.append(out / "ipdlam_ablation.png")
        atr = {k: r.trace for k, r in ablation.items()}
        beta_tr = {k: v for k, v in atr.items() if "fixed" not in k}
        warm_tr = {k: v for k, v in atr.items() if "fixed" in k or k == "iPDLAM (β=0.8)"}
        fig, axes = ol.plot.grid(4, ncols=2)
        ol.plot.convergence(beta_tr, "objective", ax=axes[0], title="β ablation: Φ_ρ (warm-up κ = 1.05)",
                            ylabel="Φ_ρ")
        ol.plot.convergence(beta_tr, "test_acc", ax=axes[1], title="β ablation: test accuracy", logy=False)
        ol.plot.convergence(warm_tr, "train_loss", ax=axes[2], title="warm-up ablation: training loss")
        ol.plot.convergence(warm_tr, "test_acc", ax=axes[3], title="warm-up ablation: test accuracy", logy=False)
        for ax in (axes[1], axes[3]):
            ax.set_ylim(0.8, 1.0)
        sets.mark(fig)
        ol.plot.save(fig, files[-1])

    table = ol.trace.format_table([{k: r.get(k, "") for k in keys} for r in table_rows])
    print(f"data: {dataset}; equal iterations: {k_eq}; equal time: {t_eq:.2f} s (compile time excluded; shared 2-core CPU)")
    print(table)
    return {"files": [str(p) for p in files], "table": table, "traces": {k: r.trace for k, r in all_traces.items()},
            "k_eq": k_eq, "t_eq": t_eq}
