"""The tuning protocol of the comparison experiments: every compared method gets the same grid over its own knob and
the same budget, and the value it runs at is chosen on its **training objective at a fixed budget**.

Protocol (issue 18; used by ``spdhg``, ``spdpeg``, ``ipdlam``, ``admm-irnn`` and ``svm-admm``):

* **knob**: the method's step-size scale where it has one (``scale`` of SPDHG, SPDPEG, EGADM and the stochastic ADMM
  family, the learning rate of SGD/Adam/RMSProp), otherwise its natural knob (the penalty ρ of the ADMM-type and
  penalty methods, the perturbation ε of LQA, the step growth η of GIST); each experiment's ``grids(quick)`` names
  it per method;
* **grid**: the method's default value times :data:`FACTORS` = ×{1/4, 1/2, 1, 2, 4} (quick mode: :data:`QUICK_FACTORS`
  = ×{1/2, 1, 2}), the same factors for every method, so the default itself is always a candidate;
* **edge rule**: when the best value is at an end of the grid, the grid grows past that end by the same ratio (×2 or
  ×1/2) and the new value is scored, until the best is inside the grid, the new value diverges or scores worse, or
  :data:`EXTENSIONS` new values (quick mode: :data:`QUICK_EXTENSIONS`) have been tried — the same rule for every
  method, so no method is compared at a value the grid merely cut off (a full run of 2026-12-03 without this rule
  had 68 of 72 baseline rows of ``spdhg`` at the top of the grid);
* **budget**: :data:`TUNE_FRACTION` = 1/5 of the method's run in the experiment, in the method's own unit (epochs,
  passes, sweeps, iterations; at least one), the same fraction for every method (:func:`budget`);
* **criterion**: the method's own training objective at the end of the tuning budget (the quantity the comparison
  plots; cheap: no validation split, no test data touched). Lower is better; a run that diverges (NaN/inf) scores
  +inf; ties — scores within a relative :data:`TIE_RTOL` = 1e-6 of the best, differences that are solver noise,
  not speed — go to the value nearest the default (in log ratio). If every value diverges the default is kept and
  the table says so;
* the chosen value then runs the experiment's full budget (where the tuning budget *is* the full budget, the tuning
  run is reused);
* **full-run check** (:func:`confirm`): a short budget cannot see a value that descends fast and then blows up or
  turns back (the full run of 2026-12-04 at 8f52ba5 had 8 of 209 tuned rows whose full run ended above the
  value's own tuning score, e.g. SGD on sentiment at lr = 1: training loss 0.648 at 12 iterations, 10.6 at 60,
  accuracy 0.5; EGADM on svmguide3 at scale ×22.6: objective 0.61 → 153), nor one that is fastest early and ends
  worse (the short-horizon bias of step-size tuning: iPDLAM's ρ scale ×128 won its 1/5 budget in the run of 92cc02b
  and ended below ×32's test accuracy). So the best :data:`FINALISTS` = 2 values by tuning score both run the full
  budget, and the one with the lower final objective is kept. A full run that diverges or ends more than a relative
  :data:`REGRESS_RTOL` = 1 % above its value's tuning score fails the check and cannot be kept; while no full run
  has passed, the next best value by tuning score runs the full budget too, at most :data:`MAX_FULL_RUNS` full runs
  in all; if all of them fail, the one with the lowest final objective is kept and the table says so. Every value
  that ran the full budget is in the table's chosen column with its final objective (and whether it failed the
  check) and in ``*_tuning.csv`` (column ``full_run_objective``), the same rule for every method. For the BPTT
  baselines of ``admm-irnn`` the full run is their equal-time run;
* **tables**: the rows of a tuned method carry the chosen value in column :data:`COLUMN` (``"scale=2"``) and the grid
  and budget in :data:`GRID_COLUMN`; rows at fixed published settings (the papers' own values, exact solvers) say
  so there instead (:func:`untuned_fields`). Every grid score is written to the experiment's ``*_tuning.csv``, with
  the wall time of each grid run (``wall_s``, compile included: the cost of the protocol within the run).

Choosing on the training objective measures what these comparisons are about (optimisation speed on the training
problem) and costs nothing beyond the grid runs; it does not guard against a value that optimises fast but
generalises worse, which the test columns of the tables show separately. Short tuning budgets favour aggressive
values (the short-horizon bias of step-size tuning); 1/5 of the run is the compromise between that and cost, and the
full runs of the two finalists remove the bias between them, not beyond them (in the run of 47f2732 iPDLAM's ρ scale
×32, which ended best in the run of 8f52ba5, ranks fifth at the tuning budget, so ×128 and ×256 ran in full).
"""
from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Callable

__all__ = ["FACTORS", "QUICK_FACTORS", "EXTENSIONS", "QUICK_EXTENSIONS", "TUNE_FRACTION", "TIE_RTOL", "REGRESS_RTOL",
           "FINALISTS", "MAX_FULL_RUNS", "COLUMN", "GRID_COLUMN", "Grid", "Tuned", "factors", "budget", "tune", "confirm",
           "untuned_fields"]

FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0)
QUICK_FACTORS = (0.5, 1.0, 2.0)
EXTENSIONS = 10         # at most this many values past an edge of a full-mode grid (×4096 or ×1/4096 of the default;
#                         with 5 (×128), 46 of 96 tuned rows of spdhg and 12 of 76 of spdpeg, all baselines, ended at
#                         ×128 in the run of 92cc02b, so the cap, not the score, chose them; with 3, 57 of 72 at ×32)
QUICK_EXTENSIONS = 1
TUNE_FRACTION = 0.2
TIE_RTOL = 1e-6
REGRESS_RTOL = 1e-2     # the full-run check: a full run may end at most this far (relative) above its tuning score
FINALISTS = 2           # the best values by tuning score that all run the full budget; the lowest final objective wins
MAX_FULL_RUNS = 4       # the finalists and, while none has passed the check, fallbacks (was 3 in the run of 92cc02b,
#                         which stopped sentiment SGD after lr 1, 0.5, 0.25 all rose, before trying 0.125)
COLUMN = "tuned"
GRID_COLUMN = "tuning_grid"


def factors(quick: bool) -> tuple[float, ...]:
    """The multipliers of each method's default: :data:`QUICK_FACTORS` in quick mode, else :data:`FACTORS`."""
    return QUICK_FACTORS if quick else FACTORS


def budget(run_length: int) -> int:
    """The tuning budget for a run of ``run_length`` units: ``round(TUNE_FRACTION · run_length)``, at least 1."""
    if not isinstance(run_length, int) or isinstance(run_length, bool) or run_length < 1:
        raise ValueError(f"run_length must be a positive integer (epochs, passes or iterations), got {run_length!r}")
    return max(1, round(TUNE_FRACTION * run_length))


@dataclasses.dataclass(frozen=True)
class Grid:
    """The candidate values of one knob; ``default`` is the value the method runs at untuned.

    ``base`` is the origin the factors scale from (value = base + (default − base)·factor; 0 for a plain scale, 1 for
    GIST's step growth η > 1) and ``extend`` how many values :func:`tune` may add past an end of the grid (the edge
    rule; 0 = the grid as given)."""

    knob: str
    default: float
    values: tuple[float, ...]
    base: float = 0.0
    extend: int = 0

    def __post_init__(self):
        if not self.values:
            raise ValueError(f"grid of {self.knob!r} is empty; pass at least one value")
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in self.values):
            raise ValueError(f"grid of {self.knob!r} holds a non-finite value: {self.values}")
        if not isinstance(self.extend, int) or self.extend < 0:
            raise ValueError(f"extend of grid {self.knob!r} must be a non-negative integer, got {self.extend!r}")
        if self.extend and (list(self.values) != sorted(self.values) or min(self.values) <= self.base):
            raise ValueError(f"a grid that may extend ({self.knob!r}) needs increasing values above its base "
                             f"{self.base}, got {self.values}")

    @classmethod
    def scaled(cls, knob: str, default: float, quick: bool, base: float = 0.0) -> "Grid":
        """``base + (default − base) × factors(quick)``, extendable by :data:`EXTENSIONS` (quick:
        :data:`QUICK_EXTENSIONS`) values past either end (``default`` must be a finite number above ``base``)."""
        try:
            d = float(default)
        except (TypeError, ValueError):
            raise ValueError(f"the default of {knob!r} is {default!r}, not a number: pass the method's numeric "
                             "default to scale") from None
        if not (math.isfinite(d) and d > base):
            raise ValueError(f"the default of {knob!r} must be finite and above {base:g} (positive for a plain "
                             f"scale) to be scaled, got {default!r}")
        return cls(knob, d, tuple(base + (d - base) * f for f in factors(quick)), base,
                   QUICK_EXTENSIONS if quick else EXTENSIONS)

    def beyond(self, top: bool) -> float:
        """The next value past the top (or bottom) end, at the ratio of the two values at that end (about ``base``)."""
        v = [x - self.base for x in self.values]
        ratio = v[-1] / v[-2] if top else v[0] / v[1]
        return self.base + (v[-1] if top else v[0]) * ratio

    def text(self, value: float) -> str:
        return f"{self.knob}={value:.3g}"

    def describe(self, budget_text: str) -> str:
        return f"{self.knob} ∈ {{{', '.join(f'{v:.3g}' for v in self.values)}}}, {budget_text}, training objective"


@dataclasses.dataclass(frozen=True)
class Tuned:
    """The outcome of :func:`tune`: the grid, each value's score, the chosen value and the run at it."""

    grid: Grid
    scores: tuple[float, ...]
    chosen: float
    budget: str
    result: Any = dataclasses.field(default=None, repr=False, compare=False)
    seconds: tuple[float, ...] = dataclasses.field(default=(), compare=False)   # wall time of each grid run
    #: the full-run check (:func:`confirm`): ``(value, final objective of its full run)`` of every value that ran the
    #: full budget, in the order run
    full_runs: tuple[tuple[float, float], ...] = ()
    none_stable: bool = False
    #: the values of :attr:`full_runs` whose full run failed the check (diverged or ended above its tuning score)
    failed: tuple[float, ...] = ()

    @property
    def rejected(self) -> tuple[tuple[float, float], ...]:
        """The values whose full run failed the full-run check, with their full-run objectives."""
        return tuple(vf for vf in self.full_runs if self.none_stable or vf[0] in self.failed)

    @property
    def outrun(self) -> tuple[tuple[float, float], ...]:
        """The values whose full run passed the check but did not end lower than the chosen one's by more than a tie
        (:data:`TIE_RTOL`; ties go to the better tuning score)."""
        return tuple(vf for vf in self.full_runs if vf[0] != self.chosen and vf[0] not in self.failed)

    @property
    def all_diverged(self) -> bool:
        return not any(math.isfinite(s) for s in self.scores)

    def fields(self, borrowed: str = "") -> dict:
        """The table columns: the chosen value (:data:`COLUMN`) and the grid with its budget (:data:`GRID_COLUMN`).

        ``borrowed``: the row runs the chosen value in another setting than it was tuned in (another start, another
        λ); the column then names the value and where it was tuned (``"rho_scale=2 (tuned for ADMM-scad from a zero
        start)"``), not the full-run objectives of the tuning, which are not this row's."""
        if borrowed:
            return {COLUMN: f"{self.grid.text(self.chosen)} ({borrowed})", GRID_COLUMN: self.grid.describe(self.budget)}
        chosen = self.grid.text(self.chosen) + (" (every value diverged: default kept)" if self.all_diverged else "")
        if self.rejected:
            rose = "; ".join(f"{self.grid.text(v)} ended at {f:.4g}" for v, f in self.rejected)
            chosen += (f" (every full run failed the full-run check ({rose}): lowest final objective kept)"
                       if self.none_stable else f" (rejected by the full-run check: {rose})")
        if self.outrun:
            own = dict(self.full_runs).get(self.chosen, float("nan"))
            others = "; ".join(f"{self.grid.text(v)} ended at {f:.4g}" for v, f in self.outrun)
            chosen += f" (full run {own:.4g}; also run in full, not lower by more than a tie: {others})"
        return {COLUMN: chosen, GRID_COLUMN: self.grid.describe(self.budget)}

    def rows(self, **context) -> list[dict]:
        """One row per grid value (for the experiment's ``*_tuning.csv``)."""
        secs = self.seconds or (float("nan"),) * len(self.scores)
        full = dict(self.full_runs)
        return [{**context, "knob": self.grid.knob, "value": v, "default": v == self.grid.default,
                 "training_objective": s, "chosen": v == self.chosen, "budget": self.budget, "wall_s": t,
                 "full_run_objective": full.get(v, float("nan"))}
                for v, s, t in zip(self.grid.values, self.scores, secs)]


def untuned_fields(reason: str) -> dict:
    """The table columns of a row that is not tuned, saying why (``"paper's settings"``, ``"exact solver"``)."""
    return {COLUMN: f"untuned ({reason})", GRID_COLUMN: ""}


def _score(value) -> float:
    try:
        s = float(value)
    except (TypeError, ValueError):
        return math.inf
    return s if math.isfinite(s) else math.inf


def tune(run: Callable[[float], Any], grid: Grid, objective: Callable[[Any], float], *, budget: str,
         on_value: Callable[[float], None] | None = None) -> Tuned:
    """Run ``run(v)`` for every ``v`` in ``grid`` and keep the value with the lowest ``objective(run(v))``.

    ``run`` runs the method at knob value ``v`` for the tuning budget (described by ``budget``, e.g. ``"1 epoch"``)
    and returns its result; ``objective`` reads the training objective from it (lower is better; NaN, inf or an
    exception of the solver's own numerics count as divergence, +inf). Ties (within a relative :data:`TIE_RTOL` of
    the best score) go to the value nearest the default in log ratio; when every value diverges the default is
    kept. While the best value is at an end of the grid, up to ``grid.extend`` values past that end are scored
    (:meth:`Grid.beyond`; the edge rule of the protocol); the returned :class:`Tuned` holds the grid as extended.
    ``on_value(v)`` is called before each run (progress).
    """
    if not isinstance(grid, Grid):
        raise TypeError(f"grid must be a tuning.Grid, got {type(grid).__name__}; build one with Grid.scaled(...)")
    values, scores, results, seconds = [], [], [], []

    def score(v, at):
        if on_value is not None:
            on_value(v)
        t0 = time.perf_counter()
        try:
            r = run(v)
        except FloatingPointError:
            r = None
        for seq, item in ((values, v), (seconds, time.perf_counter() - t0), (results, r),
                          (scores, math.inf if r is None else _score(objective(r)))):
            seq.insert(at, item)

    for v in grid.values:
        score(v, len(values))
    best = _best(values, scores, grid.default)
    for _ in range(grid.extend if len(values) > 1 else 0):     # the edge rule
        if not math.isfinite(scores[best]) or 0 < best < len(values) - 1:
            break
        top = best == len(values) - 1
        score(dataclasses.replace(grid, values=tuple(values)).beyond(top), len(values) if top else 0)
        best = _best(values, scores, grid.default)
    return Tuned(dataclasses.replace(grid, values=tuple(values)), tuple(scores), values[best], budget, results[best],
                 tuple(seconds))


def confirm(tuned: Tuned, run_full: Callable[[float], Any], objective: Callable[[Any], float], *,
            whole: bool = False) -> tuple[Any, Tuned]:
    """The full-run check of the protocol: ``run_full(v)`` runs the method at knob value ``v`` for the experiment's
    full budget; returns ``(result, tuned)``, the run the table shows and ``tuned`` updated (chosen value,
    :attr:`Tuned.full_runs`, :attr:`Tuned.failed`). ``whole``: the tuning budget was the full run, so the tuning run
    is the result (no full run, no check).

    Values run in the order of their tuning scores (ties as in :func:`tune`). The first :data:`FINALISTS` run the
    full budget. A run passes when ``objective(result)`` (the same reading as the tuning score) is finite and at most
    a relative :data:`REGRESS_RTOL` above the value's tuning score. While no run has passed, the next value runs too,
    up to :data:`MAX_FULL_RUNS` full runs. Kept: the passing run with the lowest final objective (within
    :data:`TIE_RTOL`, the better tuning score); if none passes, the run with the lowest final objective
    (``none_stable``). A grid on which every value diverged keeps the default without a check (its row says so).
    """
    if whole:
        return tuned.result, tuned
    if tuned.all_diverged:
        return run_full(tuned.chosen), tuned
    values, scores = list(tuned.grid.values), list(tuned.scores)
    order = [tuned.chosen]
    while True:           # every finite value, in the order of its tuning score
        left = [i for i, v in enumerate(values) if v not in order and math.isfinite(scores[i])]
        if not left:
            break
        order.append(values[left[_best([values[i] for i in left], [scores[i] for i in left], tuned.grid.default)]])
    full_runs, results, failed = [], [], []
    for rank, candidate in enumerate(order[:MAX_FULL_RUNS]):
        if rank >= FINALISTS and len(failed) < len(full_runs):
            break          # the finalists ran and one of them passed
        result = run_full(candidate)
        final = _score(objective(result))
        full_runs.append((candidate, final))
        results.append(result)
        score = scores[values.index(candidate)]
        if not final <= score + REGRESS_RTOL * abs(score):
            failed.append(candidate)
    passed = [i for i, (v, _) in enumerate(full_runs) if v not in failed]
    pool = passed or list(range(len(full_runs)))
    low = min(full_runs[i][1] for i in pool)
    keep = next(i for i in pool if full_runs[i][1] <= low + TIE_RTOL * abs(low))     # pool is in tuning order
    return results[keep], dataclasses.replace(tuned, chosen=full_runs[keep][0], result=results[keep],
                                              full_runs=tuple(full_runs), failed=tuple(failed),
                                              none_stable=not passed)


def _best(values, scores, default) -> int:
    """The index of the lowest score; ties (relative :data:`TIE_RTOL`) go to the value nearest ``default`` (log
    ratio); when every score is +inf, the value nearest the default."""
    def nearness(v):
        return abs(math.log(v / default)) if v > 0 and default > 0 else abs(v - default)

    finite = [i for i, s in enumerate(scores) if math.isfinite(s)]
    if not finite:
        return min(range(len(values)), key=lambda i: nearness(values[i]))
    low = min(scores[i] for i in finite)
    tied = [i for i in finite if scores[i] <= low + TIE_RTOL * abs(low)]
    return min(tied, key=lambda i: (nearness(values[i]), scores[i]))
