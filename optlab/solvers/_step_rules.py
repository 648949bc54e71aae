r"""Step rules of the stochastic primal-dual solvers (SPDHG, SPDPEG): the steps of the three variants
(:func:`primal_step`), the problem-scaled decay of the GC step (:func:`step_decay`) and the stability check of the
SPDPEG extragradient (:func:`extragradient_condition`)."""
from __future__ import annotations

import warnings

import jax.numpy as jnp
import numpy as np

from .. import validate


def primal_step(variant: str, scale, decay, gamma, L, k, a: int):
    """The step at iteration ``k`` (int32) of the variants of :func:`optlab.spdhg` (``a = 1``, ``decay`` = ω) and of
    :func:`optlab.spdpeg` (``a = 2``, ``L`` = C), whose docstrings give the formulas."""
    kf = k.astype(scale.dtype)
    if variant == "gc":
        return scale / (jnp.sqrt(kf + 1) * decay + L)
    if variant == "sc_uniform":
        return a * scale / (gamma * (kf + 1) + a * L)
    return 2 * a * scale / (gamma * (kf + 2) + 2 * a * L)


#: ``step_decay="auto"``: the GC step falls to half its start after this many epochs (see :func:`step_decay`).
DECAY_EPOCHS = 1.0


def step_decay(decay, L: float, per_epoch: int) -> float:
    r"""The weight :math:`\omega` of :math:`\sqrt{k+1}` in the GC steps :math:`r_k = s/(\omega\sqrt{k+1} + L)` of
    SPDHG and SPDPEG (there with :math:`C` for :math:`L`).

    The papers' :math:`\omega = 1` (``decay=1``; Qiao et al. 2018, Lin et al. 2018) is not invariant to the scale
    of the data: with :math:`k` counting samples, :math:`\sqrt{k}` outgrows :math:`L` after a few hundred steps on
    small, well-scaled problems (steps far below :math:`1/L` for most of the run) and never on large or badly
    scaled ones. ``"auto"`` [ours] ties the decay to :math:`L` and the epoch: :math:`\omega = L/\sqrt K` with
    :math:`K` = :data:`DECAY_EPOCHS` epochs of ``per_epoch`` iterations, so
    :math:`r_k = s/\bigl(L(1 + \sqrt{(k+1)/K})\bigr)` keeps the :math:`O(1/\sqrt k)` decay of the GC analysis
    (only its constant changes), counted in epochs. Returns :math:`\omega` (a number is checked and kept)."""
    if isinstance(decay, str):
        if decay != "auto":
            raise ValueError(f"step_decay must be 'auto' or a positive number (1 = the paper's rule), got {decay!r}")
        return float(L) / float(np.sqrt(DECAY_EPOCHS * max(int(per_epoch), 1)))
    return validate.positive("step_decay", decay, example="1.0 (the paper's rule)")


#: ``burn_in="auto"``: average only the last (1 - AVERAGE_FROM) of the run (suffix averaging).
AVERAGE_FROM = 0.5


def burn_in(burn_in, epochs) -> float:
    r"""Epochs before the averaging of SPDHG / SPDPEG starts. ``"auto"`` [ours]: :data:`AVERAGE_FROM` of
    ``epochs``, i.e. the output is the average of the last half of the iterates (α-suffix averaging, Rakhlin,
    Shamir & Sridharan, ICML 2012, which keeps the GC rate and drops the early, far-off iterates that a uniform
    average from :math:`k = 0` carries; the papers average from the start: ``burn_in=0``). Until then the reported
    iterate is the last one (so a run stopped early by ``maxiter`` or ``tol`` may return the last iterate). Tied to
    ``epochs`` only, so a run stopped by ``maxiter`` and resumed from its checkpoint is the same problem. A number is
    kept (checked by the solver)."""
    if isinstance(burn_in, str):
        if burn_in != "auto":
            raise ValueError(f"burn_in must be 'auto' or a number of epochs >= 0 (0 = the papers' averaging), "
                             f"got {burn_in!r}")
        try:
            return AVERAGE_FROM * float(epochs)
        except (TypeError, ValueError):
            return 0.0          # the solver's own check reports a bad epochs
    return burn_in


#: the SPDPEG step condition: kappa <= STABLE_EDGE; ``step_check="damp"`` scales a violating step down to DAMPED.
STABLE_EDGE = 1.0
DAMPED = 0.95
STEP_CHECKS = ("damp", "raise", "off")


def extragradient_condition(eta0: float, L: float, beta: float, normF2: float, same_point: bool) -> float:
    r""":math:`\kappa = \max(\eta_0 L/c,\ \eta_0\beta\|F\|_2^2)` of the SPDPEG predictor-corrector at its largest
    (first) step :math:`\eta_0`; stable for :math:`\kappa < 1`.

    On a quadratic sample loss of curvature :math:`h \le L` the resampled extragradient (``"resample"``) maps
    :math:`x \mapsto (1 - t + t^2)x`, :math:`t = \eta h`, which contracts iff :math:`t < 1` (:math:`c = 1`); the
    authors' ``"same_point"`` corrector is a gradient step, :math:`1 - t`, stable for :math:`t < 2` (:math:`c = 2`).
    Where the :math:`\ell_1` prox leaves :math:`y_k = 0` the :math:`(x, \lambda)` pair is an extragradient on the
    bilinear saddle :math:`\lambda^\top Fx` with steps :math:`\eta` and :math:`\beta`, whose iteration matrix has
    modulus :math:`1 - \tau + \tau^2`, :math:`\tau = \eta\beta\sigma^2` for each singular value :math:`\sigma` of
    :math:`F`: stable iff :math:`\eta\beta\|F\|_2^2 < 1` (Korpelevich 1976). :math:`L = \beta_\ell\max_i\|a_i\|^2`
    bounds the curvature (tight for least squares; for the logistic loss at zero margins)."""
    return max(eta0 * L / (2.0 if same_point else 1.0), eta0 * beta * normF2)


def check_extragradient(kappa: float, step_check: str, scale: float = 1.0, beta: float = 1.0) -> float:
    """The factor to multiply ``scale`` by so that the SPDPEG step condition holds (1.0 when it holds):
    ``"damp"`` returns ``DAMPED / kappa`` at or beyond the edge (with a ``RuntimeWarning`` naming ``scale`` and
    ``beta``), ``"raise"`` raises a ``ValueError``, ``"off"`` returns 1.0 (run as given, e.g. to reproduce a
    blow-up)."""
    if step_check not in STEP_CHECKS:
        raise ValueError(f"step_check must be one of {STEP_CHECKS}, got {step_check!r}")
    if step_check == "off" or not kappa >= STABLE_EDGE:
        return 1.0
    if step_check == "raise":
        raise ValueError(f"spdpeg: the first step violates the extragradient step condition (kappa = {kappa:.4g} >= "
                         f"{STABLE_EDGE:g}; see optlab.solvers._step_rules.extragradient_condition): the iterates "
                         f"would blow up. Pass a smaller scale (at most {DAMPED / kappa:.4g} x the given one) or a "
                         "smaller beta (beta='auto' balances it), or step_check='damp' to scale the step down")
    factor = DAMPED / kappa
    warnings.warn(f"spdpeg: scale {scale:.4g} with beta {beta:.4g} violates the extragradient step condition (kappa = "
                  f"{kappa:.4g} >= {STABLE_EDGE:g}, the iterates would blow up); damped to scale {scale * factor:.4g} "
                  f"(kappa = {kappa * factor:.3g}). Pass a smaller scale or beta, or step_check='off' to run as given",
                  RuntimeWarning, stacklevel=4)
    return factor
