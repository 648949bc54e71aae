"""ADMMiRNN (SPEC §2): ADMM training of a tanh RNN against SGD, Adam and RMSProp (optax, BPTT), same network,
same data, same initial weights, same harness. Settings, numbers, memory and limits: ``README_admm_irnn.md``.

Tasks (data through ``optlab.data.load``; seeds: data split 0, weights ``seed``):

* ``mnist-rows``: MNIST images as 28-step sequences of 28-pixel rows (the IDX t10k set in ``$OPTLAB_DATA``, the
  loader's seeded stratified 8,000/2,000 split; the first ``n`` / ``n_test`` images of each part), classify from
  the last step.
* ``mnist-1step``: the authors' 784 → 128 → 10 model: the whole image as a single RNN step (T = 1).
* ``char``: next-character model on the *Metamorphosis* excerpt: one-hot inputs (61 symbols), 25-step windows
  (non-overlapping, consecutive, from the start of the text; the last 10 % of the windows held out); loss in
  **bits per character** against the unigram entropy of the text (``meta["unigram_entropy_bits"]`` = 4.264).
* ``sentiment``: ``imdb_sentences`` (seeded 800/200 split), words lower-cased, vocabulary = the most frequent
  training words plus "unknown" (index 0), one-hot inputs, the last 16 words (left-padded with zero vectors),
  classify from the last step; hidden 32.

Methods: ADMMiRNN with its defaults, labelled "ADMMiRNN (default: re-projection + guard)" (primal–dual re-projection
every iteration: auxiliaries onto the forward pass, multipliers onto their least-squares estimate; ρ = (1, 1, 1)
with the adaptive step-length guard; Gauss–Seidel-over-time sweeps); the paper's iteration (``method="paper"``: dual
ascent, no re-projection, constant ρ, no guard) at the authors' ρ (1 on the MNIST tasks and on sentiment, 0.025 on
the character model), labelled "ADMMiRNN (paper: ...)", on every task of the default run and on ``char`` in quick
mode (on the full-size MNIST rows it would add about 1.5 min to the quick run); in the default run also the
ablations on MNIST rows: re-projection with the dual-ascent multipliers kept (the previous default) and plain ADMM
without re-projection at its defaults ρ = (1000, 1000, 3) adaptive (plain ADMM at ρ = 1 constant, the trap, is the
paper row). BPTT baselines full batch (one epoch = one step). Tuning (:mod:`optlab.experiments._tuning`,
:func:`grids`): the default ADMMiRNN's ρ and the baselines' learning rates (SGD 0.5, Adam 1e-2, RMSProp 3e-3) ×
{1/4, 1/2, 1, 2, 4} (quick × {1/2, 1, 2}) for 1/5 of the task's iterations, chosen on the training loss there, per
task; the paper row and the ablations are not tuned. Each baseline at its chosen rate runs once with ``max_time`` =
the default ADMMiRNN's solver time (compile excluded); its trace up to ADMMiRNN's iteration count is the "equal
iterations" row, the whole trace the "equal time" row. Float32 throughout. Where a data set is missing (quick runs),
a generated stand-in of the same shape is used (:mod:`optlab.data.standin`) and every task label, CSV row (column
``data``) and figure says "stand-in". Writes ``admm_irnn_traces.csv`` (long format, ≤ 60 points per run via
``Trace.thinned``), ``admm_irnn_summary.csv`` (chosen values in column ``tuned``), ``admm_irnn_tuning.csv``,
``admm_irnn_curves.png``, ``admm_irnn_stability.png``.
"""
from __future__ import annotations

import re
import time
from collections import Counter
from pathlib import Path

import numpy as np

from optlab.experiments import _tuning, register
from optlab.experiments._datasets import DataSets
from optlab.experiments._progress import expect, step

BASELINES = {"SGD": ("sgd", 0.5), "Adam": ("adam", 1e-2), "RMSProp": ("rmsprop", 3e-3)}
DEFAULT_LABEL = "ADMMiRNN (default: re-projection + guard)"
# method="paper" at the authors' ρ: 1 in their MNIST code, 0.025 in their character model (SPEC §2); sentiment has no
# authors' value and runs at the method's default 1
PAPER_RHO = {"mnist-rows": 1.0, "mnist-1step": 1.0, "char": 0.025, "sentiment": 1.0}


def paper_label(rho: float) -> str:
    return f"ADMMiRNN (paper: dual ascent, ρ={rho:g}, no re-projection, no guard)"


def _is_admm(label: str) -> bool:
    """The two ADMMiRNN method rows (not the ablations)."""
    return label == DEFAULT_LABEL or label.startswith("ADMMiRNN (paper")


def _config(quick: bool) -> dict:
    if quick:   # CI (the notebook runs it once): the two must-show tasks only, MNIST rows at full size (README)
        return {"mnist-rows": dict(n=8000, n_test=2000, hidden=128, iters=20, log_every=2, paper=False),
                "char": dict(windows=200, hidden=128, iters=15)}
    # the default run (paper_figs/): what a shared 2-core CPU finishes in about half an hour (README)
    return {"mnist-rows": dict(n=8000, n_test=2000, hidden=128, iters=40, ablations=True),
            "mnist-1step": dict(n=4000, n_test=2000, hidden=128, iters=40),
            "char": dict(windows=500, hidden=128, iters=60),
            "sentiment": dict(vocab=300, T=16, hidden=32, iters=60)}


# ------------------------------------------------------------------------------------------- tasks
TASK_DATA = {"mnist-rows": "mnist", "mnist-1step": "mnist", "char": "metamorphosis", "sentiment": "imdb_sentences"}


def _mnist(cfg, one_step: bool, sets: DataSets | None = None):
    sets = sets or DataSets(quick=False)   # called alone: the real data
    ds = sets.load("mnist", flatten=False)
    n, m = cfg["n"], cfg["n_test"]
    X, Xt = np.asarray(ds.X[:n], np.float32), np.asarray(ds.X_test[:m], np.float32)
    if one_step:
        X, Xt = X.reshape(n, 1, 784), Xt.reshape(len(Xt), 1, 784)
    return dict(X=X, y=np.asarray(ds.y[:n]), X_test=Xt, y_test=np.asarray(ds.y_test[:m]), task="classify",
                n_classes=10)


def _char(cfg, sets: DataSets | None = None):
    sets = sets or DataSets(quick=False)   # called alone: the real data
    ds = sets.load("metamorphosis")
    codes = np.asarray(ds.X)
    V, T = len(ds.meta["vocab"]), 25
    n_all = min(cfg["windows"], (len(codes) - 1) // T)
    idx = np.arange(n_all)[:, None] * T + np.arange(T)[None]
    eye = np.eye(V, dtype=np.float32)
    X, Y = eye[codes[idx]], codes[idx + 1]
    k = int(0.9 * n_all)
    return dict(X=X[:k], y=Y[:k], X_test=X[k:], y_test=Y[k:], task="sequence", n_classes=V,
                entropy=float(ds.meta["unigram_entropy_bits"]))


def _sentiment(cfg, sets: DataSets | None = None):
    sets = sets or DataSets(quick=False)   # called alone: the real data
    ds = sets.load("imdb_sentences")
    tok = lambda s: re.findall(r"[a-z']+", str(s).lower())  # noqa: E731
    counts = Counter(w for s in ds.X for w in tok(s))
    vocab = {w: i + 1 for i, (w, _) in enumerate(counts.most_common(cfg["vocab"]))}  # 0 = unknown
    T, d = cfg["T"], cfg["vocab"] + 1

    def encode(sents):
        X = np.zeros((len(sents), T, d), np.float32)
        for i, s in enumerate(sents):
            ids = [vocab.get(w, 0) for w in tok(s)][-T:]
            for j, w in enumerate(ids):
                X[i, T - len(ids) + j, w] = 1.0
        return X

    return dict(X=encode(ds.X), y=np.asarray(ds.y), X_test=encode(ds.X_test), y_test=np.asarray(ds.y_test),
                task="classify", n_classes=2)


# ------------------------------------------------------------------------------------------- runs
def _truncated(trace, k):
    """The part of ``trace`` up to iteration ``k`` (the equal-iterations view of an equal-time baseline run)."""
    from optlab.trace import Trace

    keep = trace.iters <= k
    return Trace(trace.iters[keep], trace.times[keep], {m: v[keep] for m, v in trace.metrics.items()},
                 dict(trace.meta))


def grids(quick: bool) -> dict:
    """The tuning grid of every compared method (:mod:`optlab.experiments._tuning`): the default ADMMiRNN scales its
    penalties ρ = (1, 1, 1) ("rho", a number = the same value for all three), the BPTT baselines their learning
    rate ("lr"). The paper row (the authors' ρ) and the ablations run at fixed settings."""
    out = {DEFAULT_LABEL: _tuning.Grid.scaled("rho", 1.0, quick)}
    out.update({label: _tuning.Grid.scaled("lr", lr, quick) for label, (_, lr) in BASELINES.items()})
    return out


def _tuned(name, label, grid, run, iters):
    """The tuning protocol on ``run(v, n, final)``: every grid value for ``_tuning.budget(iters)`` iterations,
    scored by the training loss (forward pass) there."""
    n = _tuning.budget(iters)
    step(f"{name}: {label}")
    return _tuning.tune(lambda v: run(v, n, n == iters), grid, _train_loss,
                        budget=f"{n} of {iters} iterations"), n == iters


def _train_loss(result):
    """The tuning score and the full-run check's reading: the training loss (forward pass) at the end of the run."""
    return result.trace.last("train_loss")


def _runs(name, data, cfg, seed, paper_rho=None, quick=False):
    """ADMMiRNN (defaults, ρ tuned), the paper's iteration at ``paper_rho`` (unless None), optionally the ablations,
    and each BPTT baseline (learning rate tuned) once, run for the default ADMMiRNN's solver time: its trace up to
    ADMMiRNN's iteration count is the equal-iterations row, the whole trace the equal-time row.
    Returns ``({label: trace}, {label: Tuned})``."""
    import optlab as ol
    from optlab.solvers.admm_irnn import bptt

    common = dict(X_test=data["X_test"], y_test=data["y_test"], task=data["task"], n_classes=data["n_classes"],
                  seed=seed, progress=False)
    bare = {k: v for k, v in common.items() if k not in ("X_test", "y_test")}    # tuning runs: no test data
    iters = cfg["iters"]
    log_every = cfg.get("log_every", max(1, iters // 20))   # divides iters (the equal-iteration rows); each logged
    # point costs two forward passes over the training set and two over the test set
    admm = lambda **kw: ol.admm_irnn(data["X"], data["y"], cfg["hidden"], log_every=log_every, **common, **kw)  # noqa: E731
    grid = grids(quick)
    tuning = {}

    def admm_at(v, n, final):
        if final:
            return admm(iters=n, rho=v)
        return ol.admm_irnn(data["X"], data["y"], cfg["hidden"], log_every=n, iters=n, rho=v, **bare)

    tuning[DEFAULT_LABEL], whole = _tuned(name, DEFAULT_LABEL, grid[DEFAULT_LABEL], admm_at, iters)
    res, tuning[DEFAULT_LABEL] = _tuning.confirm(tuning[DEFAULT_LABEL], lambda v: admm_at(v, iters, True),
                                                 _train_loss, whole=whole)
    out = {DEFAULT_LABEL: res.trace}
    if paper_rho is not None:
        step(f"{name}: ADMMiRNN (paper)")
        out[paper_label(paper_rho)] = admm(iters=iters, method="paper", rho=paper_rho).trace
    if cfg.get("ablations"):   # the multipliers of dual ascent; no re-projection (ρ = 1 constant without
        # re-projection, the trap, is the paper row)
        step(f"{name}: ablation, ascent multipliers")
        out["re-projection, ascent multipliers"] = admm(iters=iters, multiplier_estimate=False).trace
        step(f"{name}: ablation, no re-projection")
        out["plain ADMM (no re-projection), adaptive ρ"] = admm(iters=iters, reproject_every=0).trace
    budget = out[DEFAULT_LABEL].times[-1]
    for label, (opt, lr) in BASELINES.items():
        # fewer log points than ADMMiRNN (each evaluates a full-batch gradient norm and the test metrics, and the
        # equal-time runs take ~10x more iterations); iters // 5 still divides iters
        tuning[label], _ = _tuned(name, f"{label} (BPTT)", grid[label], lambda v, n, final, opt=opt: bptt(
            data["X"], data["y"], cfg["hidden"], opt, learning_rate=v, epochs=n, log_every=n, **bare), iters)
        tr, tuning[label] = _tuning.confirm(
            tuning[label], lambda v, opt=opt: bptt(data["X"], data["y"], cfg["hidden"], opt, learning_rate=v,
                                                   epochs=1000 * iters, log_every=max(1, iters // 5),
                                                   max_time=budget, **common), _train_loss)
        tr = tr.trace
        out[label] = _truncated(tr, iters)
        out[f"{label} (equal time)"] = tr
    return out, tuning


def summary_row(tr, data, tuning, *, task, data_kind, method) -> dict:
    """One row of ``admm_irnn_summary.csv``: budget, iterations, times, losses, accuracies, bits per character and
    the tuning columns (``tuning``: ``{label: Tuned}`` of the task, see :func:`_tuning_fields`)."""
    bits_train, bits_test = _bits(tr, data)
    return {
        "task": task, "data": data_kind, "method": method,
        "budget": "equal time" if "equal time" in method else "equal iterations" if method in BASELINES
        or _is_admm(method) else "",
        "iterations": int(tr.iters[-1]), "solver_time_s": f"{tr.times[-1]:.3g}",
        "compile_time_s": f"{tr.meta.get('compile_time', float('nan')):.3g}",
        "train_loss": f"{tr.last('train_loss'):.4g}", "train_acc": f"{tr.last('train_acc'):.4f}",
        "test_acc": f"{tr.last('test_acc'):.4f}",
        "bits_per_char_train": f"{bits_train:.3f}", "bits_per_char_test": f"{bits_test:.3f}",
        "unigram_entropy_bits": f"{data.get('entropy', float('nan')):.3f}",
        "residual": f"{tr.last('residual'):.2e}" if "residual" in tr.metrics else "",
        **_tuning_fields(method, tuning),
    }


def _tuning_fields(label, tuning):
    """The tuning columns of a summary row: the chosen value of the method the row shows, else why it is untuned."""
    base = label.removesuffix(" (equal time)")
    if base in tuning:
        if label in BASELINES:     # a BPTT baseline's equal-iterations row: its full runs are the equal-time rows
            return tuning[base].fields(borrowed="chosen by the equal-time full runs")
        return tuning[base].fields()
    return _tuning.untuned_fields("the authors' ρ" if label.startswith("ADMMiRNN (paper") else "ablation")


def _bits(tr, data):
    if data["task"] != "sequence":
        return float("nan"), float("nan")
    return tr.last("train_loss") / np.log(2), tr.last("test_loss") / np.log(2)


def _row_legend(row):
    """One legend for a row of panels, in the row's last (otherwise empty) panel: every label once."""
    handles = {}
    for ax in row[:-1]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
        if ax.get_legend() is not None:
            ax.get_legend().remove()
    row[-1].axis("off")
    row[-1].legend(list(handles.values()), list(handles), loc="center left", fontsize=7, frameon=False)


@register("admm-irnn", "ADMMiRNN vs SGD/Adam/RMSProp (BPTT) on MNIST rows, MNIST one-step, characters, sentiment")
def run(out: Path, quick: bool = False, seed: int = 0) -> dict:
    import optlab as ol
    from optlab.trace import write_long_csv, write_table

    cfgs = _config(quick)
    sets = DataSets(quick)
    builders = {"mnist-rows": lambda c: _mnist(c, False, sets), "mnist-1step": lambda c: _mnist(c, True, sets),
                "char": lambda c: _char(c, sets), "sentiment": lambda c: _sentiment(c, sets)}
    expect(sum(1 + cfg.get("paper", True) + 2 * bool(cfg.get("ablations")) + len(BASELINES) for cfg in cfgs.values()))
    rows, summary, all_runs, tuning_rows = [], [], {}, []
    t_start = time.perf_counter()
    for task_key, cfg in cfgs.items():
        data = builders[task_key](cfg)
        task = sets.label(TASK_DATA[task_key], task_key)     # "mnist-rows (stand-in)" on stand-in data
        kind = sets.kind(TASK_DATA[task_key])
        runs, tuning = _runs(task, data, cfg, seed, PAPER_RHO[task_key] if cfg.get("paper", True) else None,
                             quick=quick)
        for label, t in tuning.items():
            tuning_rows += t.rows(task=task, data=kind, method=label)
        all_runs[task] = (runs, data)
        for label, tr in runs.items():
            tr.meta.update({"label": label, "dataset": task, "data": kind})
            rows += tr.thinned(60).long(solver=label, dataset=task, data=kind)
            summary.append(summary_row(tr, data, tuning, task=task, data_kind=kind, method=label))

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "admm_irnn_traces.csv", out / "admm_irnn_summary.csv", out / "admm_irnn_curves.png",
             out / "admm_irnn_stability.png", out / "admm_irnn_tuning.csv"]
    write_long_csv(rows, files[0])
    table = write_table(summary, files[1])
    write_table(tuning_rows, files[4])

    # curves: per task, training loss vs iteration and vs time, test accuracy vs iteration, and the row's legend in
    # a fourth panel of its own (seven methods' labels beside each panel squeezed the curves)
    fig, axes = ol.plot.grid(4 * len(all_runs), ncols=4, panel_size=(4.2, 3.3))
    for i, (task, (runs, data)) in enumerate(all_runs.items()):
        row = axes[4 * i: 4 * i + 4]
        it_runs = {k: tr for k, tr in runs.items() if "equal time" not in k}
        time_runs = {k: tr for k, tr in runs.items() if "equal time" in k or _is_admm(k)}
        ylab = "train loss (nats/char)" if data["task"] == "sequence" else "train loss (forward pass)"
        ol.plot.convergence(it_runs, "train_loss", x="iter", ax=row[0], title=f"{task}: loss vs iteration",
                            ylabel=ylab)
        if "entropy" in data:
            row[0].axhline(data["entropy"] * np.log(2), color="k", ls=":", lw=1, label="unigram entropy")
        ol.plot.convergence(time_runs, "train_loss", x="time", ax=row[1],
                            title=f"{task}: loss vs time (equal budget)", ylabel=ylab)
        ol.plot.convergence(it_runs, "test_acc", x="iter", ax=row[2], logy=False,
                            title=f"{task}: test accuracy (forward pass)", ylabel="test accuracy")
        _row_legend(row)
    sets.mark(fig)
    ol.plot.save(fig, files[2])

    # stability: ADMMiRNN's constraint residuals (before the re-projection) and the gradient methods' BPTT gradient
    # norms, per iteration, on panels of their own (two different quantities)
    fig, axes = ol.plot.grid(2 * len(all_runs), ncols=2, panel_size=(5.0, 3.4))
    for i, (task, (runs, _)) in enumerate(all_runs.items()):
        res_ax, grad_ax = axes[2 * i], axes[2 * i + 1]
        for label, tr in runs.items():
            if "grad_norm" not in tr.metrics:
                res_ax.semilogy(tr.iters[1:], tr["residual"][1:], label=label)  # NaN at start
            elif "equal time" not in label:
                grad_ax.semilogy(tr.iters, tr["grad_norm"], ls="--", label=label)
        res_ax.set_title(f"{task}: ADMMiRNN constraint residual (RMS)")
        grad_ax.set_title(f"{task}: BPTT gradient norm ‖∇ loss‖")
        for ax in (res_ax, grad_ax):
            ax.set_xlabel("iteration")
            ol.plot.legend(ax, fontsize=6)
    sets.mark(fig)
    ol.plot.save(fig, files[3])

    print(table)
    print(f"total wall time {time.perf_counter() - t_start:.0f} s")
    return {"files": [str(p) for p in files], "table": table, "summary": summary,
            "traces": {t: runs for t, (runs, _) in all_runs.items()}}
