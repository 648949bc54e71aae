r"""Why a row of ``optlab bench defaults`` fails (``optlab bench defaults_diagnose``; issue 18).

For a problem :math:`\min_x P(x) = f(x) + \frac\gamma2\|x\|^2 + \mu\|Fx\|_1 + \text{l1}\|x\|_1`,
:math:`f(x) = \frac1n\sum_i\ell(a_i^\top x, b_i)`, of :mod:`optlab.experiments.bench_defaults` it measures

* the **noise-free floor** (:func:`noise_free_floor`): the gap that the deterministic, full-batch version of the
  same primal-dual iteration, linearised PDHG (:func:`optlab.lpdhg`; Qiao, Lin, Qin & Lu, Neurocomputing 2018,
  arXiv:1801.06934), reaches in the same number of data passes (one iteration = one full gradient = one pass, so
  30 epochs = 30 iterations) at its best **constant** step :math:`r = c/L_f` over ``c`` in :data:`FLOOR_FACTORS`
  (1/4 … 1024), :math:`L_f` the smoothness of :math:`f` (:func:`smoothness`). Both its outputs are kept: the
  uniform average that :func:`optlab.lpdhg` reports and the last iterate (the better one for a deterministic
  method). It answers whether removing the sampling noise at the same data cost would reach the target; a
  stochastic method takes n steps per pass, so it can end below this floor;
* the **tuned** gaps (:func:`tuned_gaps`): SPDHG and SPDPEG after the same epochs at their default scale
  times :data:`TUNE_FACTORS` (the experiments' grid, default × {1/4 … 4}, widened to × {1/8 … 32}), other
  settings at their defaults;
* the **knob sweep** (:func:`knob_sweep`): SPDHG over its other step knobs as well — scale × the decay of the step
  (``step_decay="auto"``: counted in epochs; or :math:`\omega = L_\max/\sqrt{\text{epochs}\cdot n}`, counted over the
  whole run) × the averaging window (the last half, the whole run, the last 3 epochs) — so that a failing row shows
  whether any setting of the method reaches the target, not only another scale (``spdhg_any_gap``);
* **problem facts** (:func:`problem_facts`): :math:`L_\max = \beta_\ell\max_i\|a_i\|^2` (the per-sample bound the
  stochastic steps use), :math:`L_f = \beta_\ell\lambda_\max(A^\top A)/n`, the spectrum of the loss Hessian at the
  reference optimum (:func:`loss_hessian`), the range of the feature scales (:func:`column_scales`), linear
  separability (:func:`is_separable`), :math:`P^*` and :math:`\|x^*\|`.

A diverged run counts as ``inf``. SPDPEG damps a scale beyond its step condition to κ = 0.95, so its larger
scales all run the same step; :func:`tuned_gaps` also runs them unchecked (``step_check="off"``) to show what the
larger steps themselves give.
Usage: ``optlab bench defaults_diagnose [--problems "svmguide3 GGLR,..."] [--count 24] [--epochs 30]
[--sets splice,...] [--out results/bench]``: the problems named by ``--problems``, else the failing rows of
``bench_defaults.csv`` in ``--out``, else the failing rows of a fresh run of the data-set part. Writes
``bench_defaults_diagnose.csv`` (one row per problem) and ``bench_defaults_diagnose_runs.csv`` (every run).
"""
from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

import numpy as np

from optlab.experiments import bench_defaults as B

#: constant LPDHG steps r = c / L_f for the noise-free floor: the usual 1/L_f · {1/4 … 4} and far beyond (c > 2 can
#: still be stable: L_f bounds the logistic curvature at zero margins; near the optimum of separable data the
#: curvature is orders of magnitude smaller).
FLOOR_FACTORS = tuple(2.0 ** k for k in range(-2, 11))       # 1/4 … 1024
#: SPDHG / SPDPEG scales: the default scale times these (the experiments' grid default × {1/4 … 4}, widened).
TUNE_FACTORS = tuple(2.0 ** k for k in range(-3, 6))         # 1/8 … 32
#: the knob sweep (:func:`knob_sweep`): SPDHG scales, step decays ("auto" or "run": omega = L_max / sqrt(epochs n)) and
#: averaging windows ("half" = burn_in "auto", "all" = 0, "last3" = the last 3 epochs)
SWEEP_SCALES = (1.0, 4.0, 16.0, 64.0)
SWEEP_DECAYS = ("auto", "run")
SWEEP_WINDOWS = ("half", "all", "last3")
#: loss smoothness beta_l: the curvature bound of the sample loss in its margin.
LOSS_SMOOTHNESS = {"logistic": 0.25, "least_squares": 1.0}


def _dense(M) -> np.ndarray:
    import scipy.sparse as sp

    return M.toarray().astype(np.float64) if sp.issparse(M) else np.asarray(M, np.float64)


def _check_loss(loss: str) -> float:
    if loss not in LOSS_SMOOTHNESS:
        raise ValueError(f"loss must be one of {tuple(LOSS_SMOOTHNESS)}, got {loss!r}")
    return LOSS_SMOOTHNESS[loss]


def objective(X, y, F, mu: float, gamma: float, l1: float, loss: str, x) -> float:
    r""":math:`P(x) = \frac1n\sum_i\ell(a_i^\top x, b_i) + \frac\gamma2\|x\|^2 + \mu\|Fx\|_1 + \text{l1}\|x\|_1` in
    float64 (logistic :math:`\log(1 + e^{-b z})`, least squares :math:`\frac12(z - b)^2`)."""
    _check_loss(loss)
    x = np.asarray(x, np.float64)
    z = np.asarray(X @ x, np.float64).ravel()
    y = np.asarray(y, np.float64)
    data = np.logaddexp(0.0, -y * z) if loss == "logistic" else 0.5 * (z - y) ** 2
    return float(data.mean() + 0.5 * gamma * x @ x + mu * np.abs(np.asarray(F @ x)).sum() + l1 * np.abs(x).sum())


def smoothness(X, loss: str = "logistic") -> tuple[float, float]:
    r"""``(L_max, L_f)``: :math:`L_\max = \beta_\ell\max_i\|a_i\|^2` (each sample gradient's Lipschitz constant, the
    bound the stochastic steps are scaled by) and :math:`L_f = \beta_\ell\lambda_\max(A^\top A)/n` (the full
    gradient's; :math:`L_f \le L_\max`, far below it when rows are unequal or features correlate weakly)."""
    beta = _check_loss(loss)
    A = _dense(X)
    n = A.shape[0]
    L_max = beta * float(np.max(np.einsum("ij,ij->i", A, A)))
    L_f = beta * float(np.linalg.eigvalsh(A.T @ A / n)[-1])
    return L_max, L_f


def loss_hessian(X, y, x, loss: str = "logistic", gamma: float = 0.0) -> np.ndarray:
    r"""The Hessian of the smooth part :math:`f(x) + \frac\gamma2\|x\|^2` at ``x``:
    :math:`\frac1n A^\top\operatorname{diag}(w)A + \gamma I` with :math:`w_i = \sigma(z_i)(1 - \sigma(z_i))`,
    :math:`z_i = b_i a_i^\top x` (logistic), :math:`w_i = 1` (least squares). Dense ``(d, d)``, float64."""
    _check_loss(loss)
    A = _dense(X)
    n, d = A.shape
    if loss == "logistic":
        z = np.asarray(y, np.float64) * (A @ np.asarray(x, np.float64))
        s = 0.5 * (1.0 + np.tanh(0.5 * z))                      # sigma(z) without overflow
        w = s * (1.0 - s)
    else:
        w = np.ones(n)
    return (A * w[:, None]).T @ A / n + gamma * np.eye(d)


def hessian_spectrum(X, y, x, loss: str = "logistic", gamma: float = 0.0) -> np.ndarray:
    """The eigenvalues (ascending) of :func:`loss_hessian` (``numpy.linalg.eigvalsh``; fine for d ≤ a few hundred)."""
    return np.linalg.eigvalsh(loss_hessian(X, y, x, loss, gamma))


def column_scales(X) -> dict:
    r"""Feature scales: the root mean square :math:`\|A_{:j}\|/\sqrt n` of each column; returns its min and max over
    the nonzero columns, their ratio and the number of all-zero columns."""
    A = _dense(X)
    rms = np.sqrt(np.einsum("ij,ij->j", A, A) / A.shape[0])
    nz = rms[rms > 0]
    lo, hi = (float(nz.min()), float(nz.max())) if nz.size else (0.0, 0.0)
    return {"col_rms_min": lo, "col_rms_max": hi, "col_rms_ratio": hi / lo if lo > 0 else float("inf"),
            "zero_columns": int(np.sum(rms == 0))}


def is_separable(X, y) -> bool:
    r"""Whether the labels ±1 are linearly separable through the origin (the models have no intercept): whether
    the linear program :math:`b_i a_i^\top w \ge 1\ \forall i` is feasible (``scipy.optimize.linprog``, HiGHS).
    On separable data the logistic loss has no minimiser (it tends to 0 along :math:`tw`, :math:`t\to\infty`), so
    with a tiny μ and γ = 0 the optimum :math:`x^*` is far from 0 and :math:`P^*` near 0."""
    import scipy.sparse as sp
    from scipy.optimize import linprog

    yv = np.asarray(y, np.float64).ravel()
    if not np.all(np.isin(yv, (-1.0, 1.0))):
        raise ValueError("y must hold labels -1 / +1 for the separability check; binarise it first")
    M = sp.csr_matrix(X, dtype=np.float64) if sp.issparse(X) else np.asarray(X, np.float64)
    d = M.shape[1]
    A_ub = -(sp.diags(yv) @ M) if sp.issparse(M) else -(yv[:, None] * M)
    res = linprog(np.zeros(d), A_ub=A_ub, b_ub=-np.ones(len(yv)), bounds=(None, None), method="highs")
    if res.status not in (0, 2):
        raise RuntimeError(f"the separability LP did not finish: {res.message}")
    return res.status == 0                      # 0: feasible (a separating w found), 2: infeasible


def _floor_run(pb, c: float, passes: int, L_max: float, L_f: float):
    """One LPDHG run at the constant step c / L_f: ``(P(average), P(last iterate), step)``."""
    import optlab as ol

    # LPDHG's GC step is scale / (omega sqrt(k+1) + L_max): omega -> 0 makes it the constant scale / L_max
    scale = c * L_max / L_f
    res = ol.lpdhg(pb.X, pb.y, B.stacked_F(pb), pb.mu, pb.gamma, loss=pb.loss, maxiter=passes, scale=scale,
                   step_decay=1e-12, progress=False)
    step = float(res.trace.last("eta"))
    x_last = np.asarray(res.state.x, np.float64)
    return float(res.trace.last("objective")), objective(pb.X, pb.y, pb.F, pb.mu, pb.gamma, pb.l1, pb.loss,
                                                         x_last), step


def noise_free_floor(pb, passes: int = 30, factors=FLOOR_FACTORS) -> dict:
    """The objectives of linearised PDHG after ``passes`` full-gradient iterations at the constant steps
    ``c / L_f`` (``c`` in ``factors``): ``{"runs": [{factor, step, avg, last}], "best": min objective over runs
    and both outputs, "best_factor", "best_output"}`` (a diverged run's values are ``inf``)."""
    L_max, L_f = smoothness(pb.X, pb.loss)
    runs = []
    for c in factors:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            avg, last, step = _floor_run(pb, float(c), passes, L_max, L_f)
        avg, last = (v if np.isfinite(v) else np.inf for v in (avg, last))
        runs.append({"factor": float(c), "step": step, "avg": avg, "last": last})
    best = min(runs, key=lambda r: min(r["avg"], r["last"]))
    output = "last" if best["last"] <= best["avg"] else "avg"
    return {"runs": runs, "best": best[output], "best_factor": best["factor"], "best_output": output,
            "L_max": L_max, "L_f": L_f}


def tuned_gaps(pb, epochs: int = 30, factors=TUNE_FACTORS, seed: int = 0) -> dict:
    """SPDHG and SPDPEG final objectives after ``epochs`` at their default scale × ``factors`` (the rest at
    defaults; SPDPEG damps a scale beyond its step condition, recorded as ``damped`` = the κ it ran at, and
    ``spdpeg_unchecked`` runs that scale with ``step_check="off"`` where the default check damps it):
    ``{solver: [{factor, scale, objective, damped, step_check}]}``."""
    from optlab.solvers.spdpeg import DEFAULT_SCALE

    out = {"spdhg": [], "spdpeg": [], "spdpeg_unchecked": []}
    for c in factors:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            vals = B.run_defaults(pb, epochs, seed, spdhg={"scale": float(c)},
                                spdpeg={"scale": float(c) * DEFAULT_SCALE})
            if "spdpeg_damped" in vals:        # the same scale with the step condition off
                unchecked = B.run_defaults(pb, epochs, seed, ("spdpeg",),
                                         spdpeg={"scale": float(c) * DEFAULT_SCALE, "step_check": "off"})["spdpeg"]
            else:
                unchecked = vals["spdpeg"]
        damped = vals.get("spdpeg_damped")
        for name, base, v, kappa, check in (
                ("spdhg", 1.0, vals["spdhg"], None, ""),
                ("spdpeg", DEFAULT_SCALE, vals["spdpeg"], damped, "damp"),
                ("spdpeg_unchecked", DEFAULT_SCALE, unchecked, None, "damp" if damped is None else "off")):
            out[name].append({"factor": float(c), "scale": float(c) * base,
                              "objective": v if np.isfinite(v) else np.inf, "damped": kappa, "step_check": check})
    return out


def knob_sweep(pb, epochs: int = 30, scales=SWEEP_SCALES, decays=SWEEP_DECAYS, windows=SWEEP_WINDOWS,
               seed: int = 0) -> list[dict]:
    """SPDHG's final objective after ``epochs`` for every ``scale × step decay × averaging window`` (module
    docstring); ``[{scale, step_decay, window, objective}]`` (a diverged run: ``inf``)."""
    import itertools

    L_max = smoothness(pb.X, pb.loss)[0]
    decay_of = {"auto": "auto", "run": L_max / np.sqrt(epochs * pb.X.shape[0])}
    burn_of = {"half": "auto", "all": 0, "last3": max(epochs - 3, 0)}
    runs = []
    for scale, decay, window in itertools.product(scales, decays, windows):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            v = B.run_defaults(pb, epochs, seed, ("spdhg",), spdhg={
                "scale": float(scale), "step_decay": decay_of[decay], "burn_in": burn_of[window]})["spdhg"]
        runs.append({"scale": float(scale), "step_decay": decay, "window": window,
                     "objective": v if np.isfinite(v) else np.inf})
    return runs


def _rank_tol(ev) -> float:
    """Eigenvalues at or below this are zero to rounding (``numpy.linalg.matrix_rank``'s default tolerance)."""
    return float(len(ev) * np.finfo(np.float64).eps * max(abs(ev[-1]), abs(ev[0])))


def problem_facts(pb, x_star) -> dict:
    """The facts of :mod:`this module's docstring <optlab.experiments.bench_defaults_diagnose>` at the reference optimum
    ``x_star``. The spectra (Hessian at ``x_star``, Gram matrix :math:`A^\\top A/n`) are taken over the nonzero
    columns (an all-zero column, a feature absent from the training rows, only adds a zero eigenvalue); a condition
    number is ``inf`` when the matrix is singular to rounding (``*_rank`` < the nonzero columns)."""
    L_max, L_f = smoothness(pb.X, pb.loss)
    scales = column_scales(pb.X)
    A = _dense(pb.X)
    nz = np.einsum("ij,ij->j", A, A) > 0
    ev = hessian_spectrum(A[:, nz], pb.y, np.asarray(x_star)[nz], pb.loss, pb.gamma)
    gram = np.linalg.eigvalsh(A[:, nz].T @ A[:, nz] / A.shape[0])
    cond = lambda e: float(e[-1] / e[0]) if e[0] > _rank_tol(e) else float("inf")  # noqa: E731
    facts = {"L_max": L_max, "L_f": L_f, "L_max/L_f": L_max / L_f,
             "hess_min": float(ev[0]), "hess_max": float(ev[-1]), "hess_cond": cond(ev),
             "hess_below_1e-4max": int(np.sum(ev < 1e-4 * ev[-1])), "hess_rank": int(np.sum(ev > _rank_tol(ev))),
             "gram_cond": cond(gram), "gram_rank": int(np.sum(gram > _rank_tol(gram))),
             "x_star_norm": float(np.linalg.norm(x_star)), **scales}
    facts["separable"] = is_separable(pb.X, pb.y) if pb.loss == "logistic" else None
    return facts


def diagnose(pb, epochs: int = 30, f_cvxpy=None, x_star=None, log=print) -> dict:
    """One row of ``bench_defaults_diagnose.csv`` for the problem ``pb`` (gaps as in
    :func:`optlab.experiments.bench_defaults.relative_gaps`: relative, or absolute when P* ≈ 0)."""
    import optlab as ol
    if f_cvxpy is None or x_star is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            f_cvxpy, x_star = ol.references.structured_optimum(pb.X, pb.y, pb.F, pb.mu, pb.gamma, loss=pb.loss,
                                                               l1=pb.l1)
    defaults = B.run_defaults(pb, epochs, 0)
    floor = noise_free_floor(pb, epochs)
    tuned = tuned_gaps(pb, epochs)
    sweep = knob_sweep(pb, epochs)
    best_sweep = min(sweep, key=lambda r: r["objective"])
    best_tuned = {s: min(runs, key=lambda r: r["objective"]) for s, runs in tuned.items()}
    best_tuned["spdpeg_any"] = min(best_tuned.pop("spdpeg"), best_tuned.pop("spdpeg_unchecked"),
                                   key=lambda r: r["objective"])
    values = {"spdhg": defaults["spdhg"], "spdpeg": defaults["spdpeg"], "floor": floor["best"],
              **{f"{s}_tuned": r["objective"] for s, r in best_tuned.items()},
              "spdhg_any": min(best_sweep["objective"], best_tuned["spdhg"]["objective"])}
    f_star, gaps, kind = B.relative_gaps(values, f_cvxpy)
    facts = problem_facts(pb, x_star)
    target = B.ABS_TARGET if kind == "abs" else B.TARGET
    row = {"problem": pb.name, "n": pb.X.shape[0], "d": pb.X.shape[1], "epochs": epochs, "P*": f_star,
           "P*_cvxpy": f_cvxpy, "gap": kind, "target": target,
           "spdhg_default_gap": gaps["spdhg"], "spdpeg_default_gap": gaps["spdpeg"],
           "floor_gap": gaps["floor"], "floor_abs_gap": floor["best"] - f_star,
           "floor_step_x_Lf": floor["best_factor"], "floor_output": floor["best_output"],
           "floor_ok": B.passes(gaps["floor"], kind),
           "spdhg_tuned_gap": gaps["spdhg_tuned"], "spdhg_tuned_factor": best_tuned["spdhg"]["factor"],
           "spdpeg_tuned_gap": gaps["spdpeg_any_tuned"], "spdpeg_tuned_factor": best_tuned["spdpeg_any"]["factor"],
           "spdpeg_tuned_step_check": best_tuned["spdpeg_any"]["step_check"],
           "spdhg_any_gap": gaps["spdhg_any"],
           "spdhg_any_setting": (f"scale {best_sweep['scale']:g}, decay {best_sweep['step_decay']}, "
                                 f"average {best_sweep['window']}"
                                 if best_sweep["objective"] <= best_tuned["spdhg"]["objective"]
                                 else f"scale x{best_tuned['spdhg']['factor']:g} (tuned)"),
           **facts}
    log(f"   {pb.name}: floor {row['floor_gap']:.2e} (LPDHG, {epochs} passes, step {row['floor_step_x_Lf']:g}/L_f, "
        f"{row['floor_output']}), tuned SPDHG {row['spdhg_tuned_gap']:.2e} (x{row['spdhg_tuned_factor']:g}), "
        f"SPDPEG {row['spdpeg_tuned_gap']:.2e} (x{row['spdpeg_tuned_factor']:g}), SPDHG any setting "
        f"{row['spdhg_any_gap']:.2e} ({row['spdhg_any_setting']}); target {target:g} ({kind}); "
        f"cond(H*) {row['hess_cond']:.3g}, separable {row['separable']}")
    row["_floor_runs"], row["_tuned_runs"], row["_sweep_runs"] = floor["runs"], tuned, sweep
    return row


def failing_rows(csv_path) -> list[str]:
    """The problem names of the rows of a ``bench_defaults.csv`` that miss the target."""
    import csv

    with open(csv_path, newline="") as fh:
        return [r["problem"] for r in csv.DictReader(fh) if r["ok"].strip().lower() not in ("true", "yes", "1")]


def _main(args, load: float) -> int:
    import optlab as ol
    out = Path(args.out)
    if args.problems:
        names = [s.strip() for s in args.problems.split(",") if s.strip()]
    elif (out / "bench_defaults.csv").exists():
        names = failing_rows(out / "bench_defaults.csv")
        print(f"diagnosing the failing rows of {out / 'bench_defaults.csv'}: {names}")
    else:
        sets = [s for s in args.sets.split(",") if s]
        rows = B.bench(B.dataset_problems(sets), args.epochs)
        names = [r["problem"] for r in rows if not r["ok"]]
    if not names:
        print("no failing rows to diagnose")
        return 0
    t0 = time.perf_counter()
    rows, runs = [], []
    for pb in B.problems_by_name(names, args.count):
        row = diagnose(pb, args.epochs)
        for r in row.pop("_floor_runs"):
            runs.append({"problem": pb.name, "method": "LPDHG (constant step c/L_f)", "factor": r["factor"],
                         "step": r["step"], "output": "average", "objective": r["avg"]})
            runs.append({"problem": pb.name, "method": "LPDHG (constant step c/L_f)", "factor": r["factor"],
                         "step": r["step"], "output": "last", "objective": r["last"]})
        for solver, rs in row.pop("_tuned_runs").items():
            runs.extend({"problem": pb.name, "method": solver, "factor": r["factor"], "scale": r["scale"],
                         "output": "average", "objective": r["objective"],
                         "step_check": r["step_check"], "damped_kappa": "" if r["damped"] is None else r["damped"]}
                        for r in rs)
        runs.extend({"problem": pb.name, "method": "spdhg (knob sweep)", "scale": r["scale"],
                     "step_decay": r["step_decay"], "output": f"average ({r['window']})", "objective": r["objective"]}
                    for r in row.pop("_sweep_runs"))
        rows.append(row)
    for r in runs:
        f_star = next(row for row in rows if row["problem"] == r["problem"])
        scale = 1.0 if f_star["gap"] == "abs" else abs(f_star["P*"])
        r["gap"] = (r["objective"] - f_star["P*"]) / scale
    print(f"diagnosis of {len(rows)} row(s), {args.epochs} epochs = {args.epochs} passes, float64; floor: LPDHG at "
          f"constant steps c/L_f, c in {FLOOR_FACTORS[0]:g}..{FLOOR_FACTORS[-1]:g} (x2), best of average and "
          f"last iterate; tuned: default scale x {TUNE_FACTORS[0]:g}..{TUNE_FACTORS[-1]:g} (x2); load average "
          f"at start {load:.2f} on {os.cpu_count()} CPUs; {time.perf_counter() - t0:.0f} s")
    print(ol.trace.format_table([{k: B._fmt(v) for k, v in r.items()} for r in rows]))
    out.mkdir(parents=True, exist_ok=True)
    ol.trace.write_long_csv([{**r, "load_average": load} for r in rows], out / "bench_defaults_diagnose.csv")
    ol.trace.write_long_csv(runs, out / "bench_defaults_diagnose_runs.csv")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="optlab bench defaults_diagnose", description=__doc__.splitlines()[0])
    p.add_argument("--problems", default="",
                   help="comma-separated problem names (default: the failing rows of bench_defaults.csv in --out)")
    p.add_argument("--count", type=int, default=24, help="generated problems to pick names from (default 24)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--sets", default=",".join(B.DATASETS),
                   help="data sets of the fresh run when no bench_defaults.csv is found")
    p.add_argument("--out", default="results/bench")
    args = p.parse_args(argv)

    import jax

    jax.config.update("jax_enable_x64", True)
    return _main(args, os.getloadavg()[0])
