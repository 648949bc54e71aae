"""The tuning protocol of the comparison experiments (optlab/experiments/_tuning.py, issue 18).

Fast: the protocol itself against closed forms and brute force on tiny problems, every experiment's quick-mode grids
against the methods it compares, and every summary-row builder carrying the chosen value. Slow (real runs): the
SVM experiment's table 1 on heart_scale and the quick SPDHG experiment's summary CSV.
"""
import csv
import math
import os
import types
from pathlib import Path

import numpy as np
import pytest

from optlab.experiments import _tuning
from optlab.trace import Trace, write_table


# ------------------------------------------------------------------------------------------- the protocol
def _gd_quadratic(step, k=5, x0=3.0, curvature=0.8):
    """k gradient steps on f(x) = (c/2) x²: x_k = (1 − c·step)^k x0, f(x_k) in closed form."""
    return 0.5 * curvature * ((1 - curvature * step) ** k * x0) ** 2


def test_tune_picks_the_argmin_of_the_closed_form_objective():
    grid = _tuning.Grid.scaled("step", 1.0, quick=False)          # 0.25 .. 4
    tuned = _tuning.tune(lambda v: _gd_quadratic(v), grid, lambda r: r, budget="5 steps")
    expected = [_gd_quadratic(v) for v in grid.values]
    assert tuned.scores == pytest.approx(expected)
    assert tuned.chosen == grid.values[int(np.argmin(expected))] == 1.0     # 1 − 0.8·1 = 0.2 is the fastest
    assert tuned.result == pytest.approx(min(expected))
    f = tuned.fields()
    assert f[_tuning.COLUMN] == "step=1"
    assert "0.25" in f[_tuning.GRID_COLUMN] and "5 steps" in f[_tuning.GRID_COLUMN]


def test_divergence_scores_inf_ties_go_to_the_default_and_all_diverged_keeps_the_default():
    grid = _tuning.Grid("lr", 1.0, (0.5, 1.0, 2.0, 4.0))
    tuned = _tuning.tune(lambda v: {4.0: float("nan"), 2.0: float("inf")}.get(v, 1.0), grid, lambda r: r,
                         budget="1 epoch")
    assert tuned.scores[2:] == (math.inf, math.inf)
    assert tuned.chosen == 1.0                      # 0.5 and 1 tie: the default is nearest
    near = _tuning.tune(lambda v: 1.0 + 1e-9 * v, grid, lambda r: r, budget="1 epoch")   # noise-level differences
    assert near.chosen == 1.0
    clear = _tuning.tune(lambda v: 1.0 - 1e-3 * v, grid, lambda r: r, budget="1 epoch")
    assert clear.chosen == 4.0
    dead = _tuning.tune(lambda v: float("nan"), grid, lambda r: r, budget="1 epoch")
    assert dead.all_diverged and dead.chosen == 1.0
    assert "diverged" in dead.fields()[_tuning.COLUMN]
    rows = tuned.rows(method="m")
    assert [r["value"] for r in rows] == list(grid.values) and sum(r["chosen"] for r in rows) == 1
    assert len(tuned.seconds) == len(grid.values) and all(r["wall_s"] >= 0 for r in rows)


def _gd_two_curvatures(step, k, x0=1e-3, z0=10.0, stiff=1.0, flat=0.01):
    """k gradient steps on f(x, z) = (stiff·x² + flat·z²)/2, in closed form: a step above 2/stiff descends fast on
    the flat direction (z0 large) while the stiff one (x0 small) grows slowly, then blows up."""
    return 0.5 * (stiff * ((1 - stiff * step) ** k * x0) ** 2 + flat * ((1 - flat * step) ** k * z0) ** 2)


def test_full_run_check_rejects_a_value_that_blows_up_after_the_tuning_budget():
    grid = _tuning.Grid("step", 1.25, (0.625, 1.25, 2.5))
    short, full = 4, 20
    tuned = _tuning.tune(lambda v: _gd_two_curvatures(v, short), grid, lambda r: r, budget="4 of 20 steps")
    assert tuned.chosen == 2.5                           # fastest over 4 steps: |1 - 2.5| = 1.5 has not shown yet
    result, checked = _tuning.confirm(tuned, lambda v: _gd_two_curvatures(v, full), lambda r: r)
    # brute force over the closed form: the best full run among values whose full run does not end above its score
    stable = [v for v in grid.values if _gd_two_curvatures(v, full) <= _gd_two_curvatures(v, short) * 1.01]
    assert 2.5 not in stable and checked.chosen == 1.25 == min(stable, key=lambda v: _gd_two_curvatures(v, short))
    assert result == pytest.approx(_gd_two_curvatures(1.25, full))
    assert [v for v, _ in checked.full_runs] == [2.5, 1.25]
    assert [f for _, f in checked.full_runs] == pytest.approx([_gd_two_curvatures(2.5, full), result])
    assert checked.rejected[0][0] == 2.5 and not checked.none_stable
    assert "rejected by the full-run check: step=2.5 ended at" in checked.fields()[_tuning.COLUMN]
    rows = {r["value"]: r for r in checked.rows()}
    assert rows[1.25]["chosen"] and rows[2.5]["full_run_objective"] > rows[2.5]["training_objective"]
    assert math.isnan(rows[0.625]["full_run_objective"])
    # two finalists that pass with the same final objective: the better tuning score is kept, nothing else runs
    same, kept = _tuning.confirm(checked, lambda v: 0.0, lambda r: r)
    assert kept.chosen == 1.25 and kept.full_runs == ((1.25, 0.0), (2.5, 0.0)) and same == 0.0
    assert kept.rejected == () and kept.outrun == ((2.5, 0.0),)   # 2.5: second best tuning score
    # a tuning budget that is the whole run: its run is the result, nothing reruns
    whole, unchanged = _tuning.confirm(tuned, lambda v: pytest.fail("no full run expected"), lambda r: r, whole=True)
    assert whole == tuned.result and unchanged is tuned


def test_full_run_check_tolerance_cap_and_none_stable():
    grid = _tuning.Grid("lr", 1.0, (0.25, 0.5, 1.0, 2.0, 4.0))
    scores = {0.25: 5.0, 0.5: 4.0, 1.0: 3.0, 2.0: 2.0, 4.0: 1.0}
    tuned = _tuning.tune(lambda v: scores[v], grid, lambda r: r, budget="1 epoch")
    assert tuned.chosen == 4.0
    # ends 0.5 % above its score: within REGRESS_RTOL (stochastic noise), kept
    res, ok = _tuning.confirm(tuned, lambda v: scores[v] * 1.005, lambda r: r)
    assert ok.chosen == 4.0 and ok.rejected == ()
    # every full run rises: at most MAX_FULL_RUNS of them, the lowest final kept, the table says so
    calls = []
    rising = {4.0: 9.0, 2.0: 7.0, 1.0: float("nan"), 0.5: 8.0, 0.25: 4.0}
    res, bad = _tuning.confirm(tuned, lambda v: calls.append(v) or rising[v], lambda r: r)
    assert calls == [4.0, 2.0, 1.0, 0.5] and len(calls) == _tuning.MAX_FULL_RUNS
    assert bad.none_stable and bad.chosen == 2.0 and res == 7.0
    assert "every full run failed the full-run check" in bad.fields()[_tuning.COLUMN]
    # a grid on which every value diverged: the default runs, unchecked
    dead = _tuning.tune(lambda v: float("nan"), grid, lambda r: r, budget="1 epoch")
    res, d = _tuning.confirm(dead, lambda v: float("nan"), lambda r: r)
    assert d.chosen == 1.0 and d.full_runs == ()


def _sgd_noisy_quadratic(step, k, x0=10.0, curvature=1.0, noise=1.0):
    """E f(x_k) of k SGD steps on f(x) = (c/2)x² with gradient noise of variance σ², in closed form:
    E x_k² = a^k x0² + step²σ²(1 − a^k)/(1 − a), a = (1 − c·step)². A larger step descends faster and ends at a higher
    noise floor: the short-horizon bias of step-size tuning."""
    a = (1 - curvature * step) ** 2
    return 0.5 * curvature * (a ** k * x0 ** 2 + step ** 2 * noise * (1 - a ** k) / (1 - a))


def test_finalists_run_in_full_and_the_lower_final_objective_wins():
    grid = _tuning.Grid("lr", 0.2, (0.1, 0.2, 0.4))
    short, full = 10, 50
    tuned = _tuning.tune(lambda v: _sgd_noisy_quadratic(v, short), grid, lambda r: r, budget="10 of 50 steps")
    assert tuned.chosen == 0.4                       # fastest over 10 steps, already at its noise floor
    calls = []
    result, checked = _tuning.confirm(tuned, lambda v: calls.append(v) or _sgd_noisy_quadratic(v, full), lambda r: r)
    # brute force: the two best tuning scores run in full; the lower closed-form full objective is kept
    finalists = sorted(grid.values, key=lambda v: _sgd_noisy_quadratic(v, short))[:_tuning.FINALISTS]
    assert calls == finalists == [0.4, 0.2]
    assert checked.chosen == min(finalists, key=lambda v: _sgd_noisy_quadratic(v, full)) == 0.2
    assert result == pytest.approx(_sgd_noisy_quadratic(0.2, full))
    assert checked.rejected == () and not checked.none_stable        # 0.4 passed the check: it just ends higher
    assert checked.outrun == ((0.4, pytest.approx(_sgd_noisy_quadratic(0.4, full))),)
    text = checked.fields()[_tuning.COLUMN]
    assert text.startswith("lr=0.2 (full run 0.05556; also run in full, not lower by more than a tie: lr=0.4 ended at 0.125")
    rows = {r["value"]: r for r in checked.rows()}
    assert rows[0.2]["chosen"] and not rows[0.4]["chosen"] and math.isnan(rows[0.1]["full_run_objective"])
    # a finalist that fails the check cannot win even with the lower final objective; one that passes is kept
    low_but_rose = {0.4: tuned.scores[2] * 1.05, 0.2: 0.6}        # 0.4: 5 % above its own tuning score
    res2, kept = _tuning.confirm(tuned, lambda v: low_but_rose[v], lambda r: r)
    assert low_but_rose[0.4] < low_but_rose[0.2] and kept.chosen == 0.2 and kept.failed == (0.4,)
    assert "rejected by the full-run check: lr=0.4" in kept.fields()[_tuning.COLUMN]


def test_grid_budget_and_bad_input():
    assert _tuning.Grid.scaled("scale", 2.0, quick=True).values == (1.0, 2.0, 4.0)
    assert _tuning.Grid.scaled("scale", 2.0, quick=False).values == (0.5, 1.0, 2.0, 4.0, 8.0)
    assert [_tuning.budget(n) for n in (1, 3, 5, 10, 100, 1000)] == [1, 1, 1, 2, 20, 200]
    with pytest.raises(ValueError, match="run_length"):
        _tuning.budget(0)
    with pytest.raises(ValueError, match="not a number"):
        _tuning.Grid.scaled("scale", "auto", quick=True)
    with pytest.raises(ValueError, match="positive"):
        _tuning.Grid.scaled("scale", -1.0, quick=True)
    with pytest.raises(TypeError, match="Grid"):
        _tuning.tune(lambda v: v, (1, 2), lambda r: r, budget="x")
    assert _tuning.untuned_fields("exact LP") == {_tuning.COLUMN: "untuned (exact LP)", _tuning.GRID_COLUMN: ""}


def test_edge_rule_extends_the_grid_until_the_brute_force_argmin_is_inside():
    """The best value at an end of the grid: the grid grows by the end's ratio until the best is interior. On the
    closed form of k gradient steps on (c/2)x² the best step is 1/c: with c = 1/20,000 (best 20,000, far above the
    0.25..4 grid) the rule tries 8 .. 4096 (ten values, EXTENSIONS) and stops there, at the top; with c = 1/200 it
    tries 8 .. 512 and stops with 256 inside (|1 − 256/200| < |1 − 128/200|, 512 overshoots); with c = 1/10 (best
    10) it tries 8 and 16 and stops with 8 inside (16 is worse). Compared with brute force over the extended grid."""
    assert _tuning.EXTENSIONS == 10
    doubling = tuple(2.0 ** k for k in range(3, 13))                   # 8 .. 4096
    for curvature, added, chosen in ((1 / 20_000, doubling, 4096.0), (1 / 200, doubling[:7], 256.0),
                                     (1 / 10, (8.0, 16.0), 8.0)):
        grid = _tuning.Grid.scaled("step", 1.0, quick=False)
        tuned = _tuning.tune(lambda v: _gd_quadratic(v, curvature=curvature), grid, lambda r: r, budget="5 steps")
        assert tuned.grid.values == grid.values + added
        brute = [_gd_quadratic(v, curvature=curvature) for v in tuned.grid.values]
        assert tuned.scores == pytest.approx(brute)
        assert tuned.chosen == chosen == tuned.grid.values[int(np.argmin(brute))]
        assert len(tuned.seconds) == len(tuned.rows()) == len(tuned.grid.values)
        assert "16" in tuned.fields()[_tuning.GRID_COLUMN]
    # the bottom end (best step far below the grid: a curvature so large that only tiny steps do not overshoot)
    low = _tuning.tune(lambda v: _gd_quadratic(v, curvature=30.0), _tuning.Grid.scaled("step", 1.0, quick=True),
                       lambda r: r, budget="5 steps")
    assert low.grid.values == (0.25, 0.5, 1.0, 2.0)        # quick: one value past the end
    assert low.chosen == 0.25
    # an extension that diverges stops the rule, the edge value stays chosen
    div = _tuning.tune(lambda v: float("nan") if v > 4 else -v, _tuning.Grid.scaled("lr", 1.0, quick=False),
                       lambda r: r, budget="1 epoch")
    assert div.grid.values[-1] == 8.0 and div.scores[-1] == math.inf and div.chosen == 4.0
    # an explicit grid does not extend; ties at the edge (a plateau) do not extend either
    fixed = _tuning.tune(lambda v: -v, _tuning.Grid("lr", 1.0, (0.5, 1.0, 2.0)), lambda r: r, budget="1 epoch")
    assert fixed.grid.values == (0.5, 1.0, 2.0) and fixed.chosen == 2.0
    flat = _tuning.tune(lambda v: 1.0, _tuning.Grid.scaled("lr", 1.0, quick=False), lambda r: r, budget="1 epoch")
    assert flat.grid.values == _tuning.Grid.scaled("lr", 1.0, quick=False).values and flat.chosen == 1.0


def test_affine_grid_extends_about_its_base():
    """GIST's step growth η = 1 + (η0 − 1)·f scales the excess over 1: the extension doubles the excess."""
    grid = _tuning.Grid.scaled("eta", 2.0, quick=False, base=1.0)
    assert grid.values == (1.25, 1.5, 2.0, 3.0, 5.0)
    tuned = _tuning.tune(lambda v: -v, grid, lambda r: r, budget="1 iteration")
    assert tuned.grid.values[5:] == tuple(1.0 + 2.0 ** k for k in range(3, 13))       # 9, 17, 33, ..., 4097
    with pytest.raises(ValueError, match="above 1"):
        _tuning.Grid.scaled("eta", 1.0, quick=True, base=1.0)
    with pytest.raises(ValueError, match="increasing"):
        _tuning.Grid("lr", 1.0, (2.0, 1.0), extend=1)
    with pytest.raises(ValueError, match="extend"):
        _tuning.Grid("lr", 1.0, (1.0, 2.0), extend=-1)


def _tiny_gglr(n=60, d=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.where(X @ rng.standard_normal(d) + 0.3 * rng.standard_normal(n) > 0, 1.0, -1.0)
    F = np.eye(d)[1:] - np.eye(d)[:-1]
    return X, y, F


def test_tune_scale_on_a_tiny_stochastic_admm_problem_matches_brute_force():
    """The experiments' scale tuning (shared helper of spdhg/spdpeg) on a 60 x 6 GGLR problem: the chosen scale is
    the argmin of independent runs at each scale for the tuning budget, and the returned run has the full length
    at that scale."""
    from optlab.experiments._stochastic_common import tune_scale
    from optlab.solvers.baselines import stochastic_admm as B

    X, y, F = _tiny_gglr()

    def one(kw, n, final):
        return B.opg_admm(X, y, F, 1e-3, 0.0, epochs=n, seed=0, progress=False, **kw)

    res, tuned = tune_scale(one, B.opg_admm, {}, quick=True, length=5)
    assert set(tuned.grid.values) >= {0.5, 1.0, 2.0} and len(tuned.grid.values) <= 4 and tuned.budget == "1 epoch"
    brute = [B.opg_admm(X, y, F, 1e-3, 0.0, epochs=1, seed=0, progress=False, scale=s).trace.last("objective")
             for s in tuned.grid.values]
    assert tuned.scores == pytest.approx(brute, rel=1e-10)
    assert tuned.chosen == tuned.grid.values[int(np.argmin(brute))]
    assert res.trace.meta.get("scale", tuned.chosen) == tuned.chosen
    full = B.opg_admm(X, y, F, 1e-3, 0.0, epochs=5, seed=0, progress=False, scale=tuned.chosen)
    assert res.trace.last("objective") == pytest.approx(full.trace.last("objective"), rel=1e-10)


# ------------------------------------------------------------------------------------------- the experiments
def test_spdhg_quick_grids_cover_every_compared_method():
    from optlab.experiments import spdhg

    for gamma in (0.0, 1e-2):
        compared = set(spdhg._methods("splice", gamma)) | {spdhg.LPDHG}
        g = spdhg.grids(True, "splice", gamma)
        assert compared - set(spdhg.UNTUNED) <= set(g), compared - set(g)
        assert all(grid.knob == "scale" and len(grid.values) == len(_tuning.QUICK_FACTORS) for grid in g.values())
    assert "STOC-ADMM" in spdhg.grids(True) and "RDA-ADMM" in spdhg.grids(True)


def test_spdpeg_quick_grids_cover_every_compared_method():
    from optlab.experiments import spdpeg

    for problem in ("fused", "ggrlr"):
        compared = set(spdpeg._methods(problem, "splice")) | {spdpeg.EGADM}
        g = spdpeg.grids(True, problem, "splice")
        assert compared - set(spdpeg.UNTUNED) <= set(g), compared - set(g)
    assert {"SGADM", "EGADM (batch)", "SPDPEG"} <= set(spdpeg.grids(True))
    assert "STOC-ADMM" in spdpeg.grids(True, "ggrlr")


def test_ipdlam_admm_irnn_svm_quick_grids_cover_every_compared_method():
    from optlab.experiments import admm_irnn, ipdlam, svm_admm

    assert set(ipdlam._lengths(ipdlam.SETTINGS[True])) <= set(ipdlam.grids(True))
    assert set(ipdlam._lengths(ipdlam.SETTINGS[False])) <= set(ipdlam.grids(False))
    assert {"iPDLAM (β=0.8)", "DLAM (β=0)", "BCD (Zeng et al.)", "SGD (mb 128)"} <= set(ipdlam.grids(True))
    assert {admm_irnn.DEFAULT_LABEL, *admm_irnn.BASELINES} <= set(admm_irnn.grids(True))
    assert {f"ADMM-{p}" for p in svm_admm.PENALTIES} | {"LQA-scad", "GIST-scad"} <= set(svm_admm.grids(True))
    for mod in (ipdlam, admm_irnn, svm_admm):
        assert all(len(g.values) == len(_tuning.QUICK_FACTORS) for g in mod.grids(True).values())
        assert all(len(g.values) == len(_tuning.FACTORS) for g in mod.grids(False).values())
        assert all(g.default in g.values for g in mod.grids(True).values())


def _fake_trace(metrics, n=3, meta=None):
    return Trace(np.arange(n), np.linspace(0.0, 1.0, n), {k: np.full(n, v, float) for k, v in metrics.items()},
                 {"compile_time": 0.1, **(meta or {})})


def _tuned(knob="scale"):
    return _tuning.tune(lambda v: abs(v - 2.0), _tuning.Grid.scaled(knob, 1.0, quick=True), lambda r: r,
                        budget="1 epoch")


def _csv_header_and_rows(rows, tmp_path):
    path = tmp_path / "summary.csv"
    write_table(rows, path)
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_summary_writers_carry_the_chosen_value(tmp_path):
    """Every experiment's summary-row builder puts the chosen value (or why a row is untuned) in the CSV."""
    from optlab.experiments import admm_irnn, ipdlam, spdhg, spdpeg

    t = _tuned()
    tr = _fake_trace({"objective": 1.0, "gap": 1e-3, "test_loss": 0.5, "test_acc": 0.9}, meta={"segments": 1})
    graph = types.SimpleNamespace(edges=[(0, 1)], alpha=0.005)
    rows = [spdhg.summary_row(tr, t, dataset="d", data="real", problem="GGLR", method="STOC-ADMM", f_star=0.9,
                              f_ref=0.9, graph=graph),
            spdhg.summary_row(tr, None, dataset="d", data="real", problem="GGLR", method="SPDHG-GC (paper)",
                              f_star=0.9, f_ref=0.9, graph=graph)]
    out = _csv_header_and_rows(rows, tmp_path)
    assert out[0][_tuning.COLUMN] == "scale=2" and out[1][_tuning.COLUMN].startswith("untuned (the paper")

    row = spdpeg.summary_row([tr, tr], t, problem="fused", dataset="d", data="real", method="SGADM", f_ref=0.9,
                             ref0=0.9)
    assert _csv_header_and_rows([row], tmp_path)[0][_tuning.COLUMN] == "scale=2"

    mlp = _fake_trace({"train_loss": 0.3, "test_acc": 0.9, "train_acc": 0.95})
    rows, _, _ = ipdlam._table({"SGD (mb 128)": mlp, "x": mlp}, {"SGD (mb 128)": _tuned("lr")}, untuned="ablation")
    out = _csv_header_and_rows(rows, tmp_path)
    assert out[0][_tuning.COLUMN] == "lr=2" and out[1][_tuning.COLUMN] == "untuned (ablation)"

    rnn = _fake_trace({"train_loss": 0.3, "test_acc": 0.9, "train_acc": 0.95, "test_loss": 0.4})
    data = {"task": "classify"}
    tuning = {"SGD": _tuned("lr")}
    rows = [admm_irnn.summary_row(rnn, data, tuning, task="t", data_kind="real", method=m)
            for m in ("SGD", "SGD (equal time)", admm_irnn.paper_label(1.0))]
    out = _csv_header_and_rows(rows, tmp_path)
    assert [r[_tuning.COLUMN] for r in out[:2]] == ["lr=2 (chosen by the equal-time full runs)", "lr=2"]
    assert out[2][_tuning.COLUMN] == "untuned (the authors' ρ)"


def test_svm_default_rhos_reproduce_the_solver_default():
    """rho_scale = 1 is the solver's own default: svm_admm at _rhos(_default_rhos(X), 1) equals svm_admm()."""
    import jax

    import optlab as ol
    from optlab.experiments import svm_admm

    jax.config.update("jax_enable_x64", True)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((40, 5))
    y = np.where(X[:, 0] + 0.5 * rng.standard_normal(40) > 0, 1.0, -1.0)
    pen = ol.prox.l1(0.05)
    a = ol.svm_admm(X, y, pen, maxiter=50, tol=0.0, progress=False)
    b = ol.svm_admm(X, y, pen, maxiter=50, tol=0.0, progress=False, **svm_admm._rhos(svm_admm._default_rhos(X), 1.0))
    np.testing.assert_allclose(np.asarray(a.params["w"]), np.asarray(b.params["w"]), rtol=1e-12, atol=1e-14)
    assert svm_admm._rhos((2.0, 3.0), 0.5) == {"rho1": 1.0, "rho2": 1.5}


# ------------------------------------------------------------------------------------------- real runs (slow)
def _data_file(*parts):
    root = os.environ.get("OPTLAB_DATA")
    return root is not None and Path(root, *parts).exists()


@pytest.mark.slow
@pytest.mark.data
def test_svm_table1_on_heart_scale_is_tuned(tmp_path):
    if not _data_file("libsvm", "heart_scale"):
        pytest.skip("heart_scale not under $OPTLAB_DATA")
    from optlab.experiments import svm_admm

    rows, _, _, tuning = svm_admm.run_dataset("heart_scale", 2.0 ** -6, quick=True)
    assert set(svm_admm.grids(True)) == set(tuning)
    by = {r["method"]: r for r in rows}
    for label, t in tuning.items():
        assert by[label][_tuning.COLUMN] == t.fields()[_tuning.COLUMN]
        best = min(t.scores)
        winner = t.grid.values[t.scores.index(best)]
        full = dict(t.full_runs)
        if not full:                    # the tuning budget was the whole run: the tuning argmin is kept
            assert t.scores[t.grid.values.index(t.chosen)] <= best + _tuning.TIE_RTOL * abs(best)
            continue
        # the finalists ran in full (the tuning argmin first); the lowest final objective among the passing runs won
        # (within the tie tolerance, which goes to the better tuning score)
        assert t.full_runs[0][0] == winner or t.scores[t.grid.values.index(t.full_runs[0][0])] <= best * (1 + 1e-6)
        passing = [f for v, f in t.full_runs if v not in t.failed] or list(full.values())
        assert full[t.chosen] <= min(passing) + _tuning.TIE_RTOL * abs(min(passing))
    # rows that run a chosen value from another start name it and where it was tuned, not that tuning's full runs
    for pen in ("scad", "mcp"):
        t, text = tuning[f"ADMM-{pen}"], by[f"ADMM-{pen} (l1 start)"][_tuning.COLUMN]
        assert text == f"{t.grid.text(t.chosen)} (tuned for ADMM-{pen} from a zero start)"
    assert by["HiGHS-LP-l1"][_tuning.COLUMN] == "untuned (exact LP)"


@pytest.mark.slow
def test_spdhg_quick_run_writes_the_chosen_values(tmp_path):
    from optlab.experiments import get

    get("spdhg").run(tmp_path, quick=True)
    with open(tmp_path / "spdhg_summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and all(r[_tuning.COLUMN] for r in rows)
    tuned = [r for r in rows if not r[_tuning.COLUMN].startswith("untuned")]
    assert {r["method"] for r in tuned} >= {"STOC-ADMM", "OPG-ADMM", "RDA-ADMM", "SPDHG-GC"}
    with open(tmp_path / "spdhg_tuning.csv", newline="") as fh:
        grid_rows = list(csv.DictReader(fh))
    # the full-run check: every chosen value ran the full budget and passed the check (or the row says why)
    assert all(r["full_run_objective"] not in ("", "nan") for r in grid_rows if r["chosen"] == "True")
    for r in grid_rows:
        if r["chosen"] == "True" and r["full_run_objective"] not in ("", "nan"):
            key = (r["dataset"], r["problem"], r["method"])
            row = next(x for x in tuned if (x["dataset"], x["problem"], x["method"]) == key)
            passed = float(r["full_run_objective"]) <= float(r["training_objective"]) * (1 + _tuning.REGRESS_RTOL)
            assert passed or "full-run check" in row[_tuning.COLUMN], (key, r)


def test_rows_running_a_value_outside_its_tuning_say_where_it_was_chosen():
    """A BPTT baseline's full runs are its equal-time rows (admm-irnn): its equal-iterations row names the value and
    where it was chosen, not full-run objectives that are not its own; the tuned rows keep the whole text."""
    from optlab.experiments import admm_irnn

    t = _tuning.Tuned(_tuning.Grid("lr", 1.0, (0.5, 1.0)), (2.0, 1.0), 1.0, "8 of 40 iterations",
                      full_runs=((1.0, 0.3), (0.5, 0.4)))
    tuning = {"SGD": t, admm_irnn.DEFAULT_LABEL: t}
    assert "full run 0.3" in t.fields()[_tuning.COLUMN]
    assert admm_irnn._tuning_fields("SGD (equal time)", tuning) == t.fields()
    assert admm_irnn._tuning_fields(admm_irnn.DEFAULT_LABEL, tuning) == t.fields()
    shorter = admm_irnn._tuning_fields("SGD", tuning)
    assert shorter == {_tuning.COLUMN: "lr=1 (chosen by the equal-time full runs)",
                       _tuning.GRID_COLUMN: t.fields()[_tuning.GRID_COLUMN]}
    assert admm_irnn._tuning_fields("re-projection, ascent multipliers", tuning)[_tuning.COLUMN] == "untuned (ablation)"
