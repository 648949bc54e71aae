r"""ADMMiRNN: training a tanh recurrent network by ADMM, without backpropagation through time (Tang, Kan, Sun, Xiao,
Lai, Qiao & Li, "ADMMiRNN: Training RNN with Stable Convergence via an Efficient ADMM Approach", ECML-PKDD 2020,
arXiv:2006.05622).

:func:`admm_irnn` is the solver; its docstring has the model, the augmented Lagrangian, every block update and the
order of one iteration. :func:`algorithm` is the method as an :class:`optlab.algorithm.Algorithm` (run by
:func:`optlab.harness.solve` under any executor of :mod:`optlab.parallel`). The block updates (:func:`update_o`,
:func:`update_vc`, :func:`update_as_backward`, ...) act on the time-major working state :class:`AdmmIrnnState` and
are public so that each can be checked on its own. :func:`bptt` trains the same network by backpropagation through
time (the baselines). The measurements behind the defaults are in ``experiments/README_admm_irnn.md``.

**Data-parallel** (``parallel=Sync(n)`` or ``SimulatedAsync(n, max_delay)``) [ours]. The per-sample auxiliaries
and multipliers :math:`A, S, O, \Lambda^1, \Lambda^2, \Lambda^3` are carried with their rows
(:class:`AdmmIrnnCarry`: an :class:`optlab.algorithm.Rows`, sample-major), so each worker holds those of its
samples; padding rows carry weight 0 in every sum. The :math:`O`, :math:`S_t`, :math:`A_t` and multiplier updates
and the re-projection act on each sample alone given the weights. The two weight blocks are least-squares problems
over all samples, solved from normal equations whose Gram matrix and right-hand side are sums over rows,

.. math:: \Bigl(\rho\sum_w Z_w^\top D_w Z_w + \varepsilon I\Bigr)\theta = \rho\sum_w Z_w^\top D_w Y_w
          + \varepsilon\theta_k \qquad (D_w\text{: the row weights of worker } w),

each a ``comm.reduce`` of its own (``vc_backward_gram``/``vc_backward_rhs``, ``uwb_gram``/``uwb_rhs``,
``vc_forward_gram``/``vc_forward_rhs``), as are the residual sums of the trace (``residual_sq``) and, with the
adaptive schedule, the loss sums of the guard (``aux_loss_sum``; without re-projection every iteration also
``forward_loss_sum``). ``Sync``: the serial iterates up to the order of the sums.

``SimulatedAsync``: no name is a barrier (:attr:`optlab.algorithm.Algorithm.fresh` is empty), so its rounds stay
asynchronous. An arriving worker runs the whole iteration at the shared state it last read (weights, ρ, the previous
forward loss) on its own rows and delivers its Gram/right-hand-side terms and its residual and loss sums; the server
solves the three weight systems with the totals of the table (an absent worker's last delivered terms, at most
``max_delay`` iterations old) around its current weights. The guard therefore judges a *delayed* forward loss, and
the server accepts or rejects its weights (and doubles ρ1, ρ2) on that total; a worker's rows go back to the start
of its round when its own reading of the guard rejects. With ``max_delay=0`` every round is the synchronous one, bit
for bit. The loss sums are not barriers on purpose: the guard's decision puts per-row state back, which must not
depend on a barrier total (it exists only in the server's update). This is the stale-synchronous parameter server
(Ho et al., NIPS 2013) applied to ADMM's global least-squares blocks, keeping absent workers' last contributions as
asynchronous ADMM does (Zhang & Kwok, ICML 2014); for this nonconvex method it carries no convergence guarantee.
"""
from __future__ import annotations

import functools
import numbers
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import harness, operators, validate
from ..algorithm import Algorithm, Comm, Rows, serial_comm
from ..losses import softmax_cross_entropy
from . import mlp
from .baselines.optax_train import train as _optax_train

__all__ = ["admm_irnn", "AdmmIrnnState", "AdmmIrnnProblem", "AdmmIrnnCarry", "AdmmIrnnData", "StepConfig", "init",
           "make_step", "algorithm", "pack", "unpack", "pack_problem", "unpack_problem", "forward", "predict",
           "augmented_lagrangian", "residuals", "update_o", "update_vc", "update_s", "update_a", "update_uwb",
           "update_as_backward", "update_as_forward", "update_multipliers", "multiplier_estimate", "penalty_schedule",
           "DEFAULT_RHO", "PAPER_RHO", "METHODS", "init_params", "rnn_classify", "rnn_sequence", "bptt"]

DEFAULT_RHO = (1.0, 1.0, 1.0)             # with re-projection (the default, ``reproject_every=1``)
DEFAULT_RHO_PLAIN = (1000.0, 1000.0, 3.0)  # plain ADMM (``reproject_every=0``): large ρ1, ρ2 against the trap
PAPER_RHO = (1.0, 1.0, 1.0)               # ``method="paper"``: the authors' ρ = 1 (their MNIST run; SPEC §2)


class _ByMethod:
    """The default of an option that ``method`` sets (tells "not given" apart from every value, None included)."""

    def __repr__(self):
        return "<set by method>"


_BY_METHOD = _ByMethod()

# The named configurations of ``admm_irnn(method=...)``: the options each one fixes (docstring "Methods").
METHODS = {
    "default": {"reproject_every": 1, "rho_schedule": "adaptive"},
    "paper": {"reproject_every": 0, "rho_schedule": None, "multiplier_estimate": False},
}
_CE = softmax_cross_entropy
_PER_SAMPLE = ("A", "S", "O", "L1", "L2", "L3")


class AdmmIrnnState(NamedTuple):
    """The time-major working state of one iteration (what the block updates take and return)."""

    U: jax.Array    # (d, h)
    W: jax.Array    # (h, h)
    b: jax.Array    # (h,)
    V: jax.Array    # (h, C)
    c: jax.Array    # (C,)
    A: jax.Array    # (T, n, h) pre-activations
    S: jax.Array    # (T, n, h) hidden states
    O: jax.Array    # (To, n, C) outputs at the output steps (To = 1 classify, T sequence)
    L1: jax.Array   # (T, n, h) multipliers of A_t = X_tU + S_{t-1}W + b
    L2: jax.Array   # (T, n, h) multipliers of S_t = tanh(A_t)
    L3: jax.Array   # (To, n, C) multipliers of O_t = S_tV + c
    rho: jax.Array  # (3,) penalties
    k: jax.Array    # iteration counter
    f_prev: Any = None  # forward-pass training loss after the previous iteration (adaptive schedule)


class AdmmIrnnProblem(NamedTuple):
    """The time-major working problem."""

    X: jax.Array            # (T, n, d) time-major inputs
    Y: jax.Array            # (To, n) integer labels at the output steps
    X_test: Any             # (T, m, d) or None
    Y_test: Any             # (To, m) or None
    rho_growth: jax.Array   # scalar >= 1
    rho_max: jax.Array      # (3,)
    gap_tol: jax.Array      # adaptive schedule: allowed forward-pass loss excess over the auxiliary loss
    ls_prox: jax.Array      # relative proximal weight of the least-squares blocks
    weight: Any = None      # (n,) row weights (1 real, 0 padding) or None: every row counts once (serial runs)
    n: Any = None           # number of real rows (with ``weight``) or None: X.shape[1]


class AdmmIrnnCarry(NamedTuple):
    """What the algorithm carries from one iteration to the next (``Result.state``): the weights and scalars of
    :class:`AdmmIrnnState`, and its per-sample fields sample-major in ``rows`` (``A``, ``S``: (n, T, h); ``O``:
    (n, To, C); ``L1``, ``L2``, ``L3`` like A, S, O) so that executors can split them over workers."""

    U: jax.Array
    W: jax.Array
    b: jax.Array
    V: jax.Array
    c: jax.Array
    rows: Rows
    rho: jax.Array
    k: jax.Array
    f_prev: jax.Array


class AdmmIrnnData(NamedTuple):
    """The algorithm's problem: :class:`AdmmIrnnProblem` with the training rows sample-major in ``rows`` (``X``:
    (n, T, d), ``Y``: (n, To), ``weight``: (n,) or None)."""

    rows: Rows
    X_test: Any
    Y_test: Any
    rho_growth: jax.Array
    rho_max: jax.Array
    gap_tol: jax.Array
    ls_prox: jax.Array
    n: Any


def _swap(x):
    return jnp.swapaxes(x, 0, 1)


def pack(state: AdmmIrnnState) -> AdmmIrnnCarry:
    """The carried form of a working state (per-sample fields sample-major in ``rows``)."""
    fields = state._asdict()
    rows = Rows(**{f: _swap(fields.pop(f)) for f in _PER_SAMPLE})
    return AdmmIrnnCarry(rows=rows, **fields)


def unpack(carry: AdmmIrnnCarry) -> AdmmIrnnState:
    """The working (time-major) state of a carried one."""
    fields = carry._asdict()
    rows = fields.pop("rows")
    return AdmmIrnnState(**fields, **{f: _swap(getattr(rows, f)) for f in _PER_SAMPLE})


def pack_problem(problem: AdmmIrnnProblem) -> AdmmIrnnData:
    fields = problem._asdict()
    rows = Rows(X=_swap(fields.pop("X")), Y=fields.pop("Y").T, weight=fields.pop("weight"))
    return AdmmIrnnData(rows=rows, **fields)


def unpack_problem(data: AdmmIrnnData) -> AdmmIrnnProblem:
    fields = data._asdict()
    rows = fields.pop("rows")
    return AdmmIrnnProblem(X=_swap(rows.X), Y=rows.Y.T, weight=rows.weight, **fields)


def _params(state):
    return {"U": state.U, "W": state.W, "b": state.b, "V": state.V, "c": state.c}


def _n(problem):
    """The number of real samples: a static int in serial runs, a traced scalar with row weights."""
    return problem.X.shape[1] if problem.n is None else problem.n


def _weighted(x, problem):
    """``x`` (T, n, ...) with sample i's slices multiplied by its row weight (``x`` itself without weights)."""
    w = problem.weight
    return x if w is None else x * w.reshape((1, -1) + (1,) * (x.ndim - 2))


def _sq(R, problem):
    """Σ (weighted) R² over all samples of this worker."""
    return jnp.vdot(_weighted(R, problem), R)


def _row_mean(name, values, problem, comm: Comm):
    """Mean of ``values`` (To, n) over output steps and real samples: the sum over rows goes through ``comm``."""
    total = jnp.sum(values) if problem.weight is None else jnp.sum(values * problem.weight)
    return comm.reduce(name, total) / (values.shape[0] * _n(problem))


def _states(U, W, b, X):
    """Pre-activations and states ``(A, S)`` of the recurrence over time-major ``X`` (T, n, d)."""
    def cell(s, x):
        a = x @ U + s @ W + b
        s = jnp.tanh(a)
        return s, (a, s)

    s0 = jnp.zeros((X.shape[1], W.shape[0]), X.dtype)
    _, (A, S) = jax.lax.scan(cell, s0, X)
    return A, S


_states_compiled = jax.jit(_states)   # called outside a trace (init): one program per shape, not one per call


def forward(params, X):
    """Run the RNN forward on time-major ``X`` (T, n, d); returns ``(A, S, O)`` with ``O`` at every step."""
    states = _states if isinstance(X, jax.core.Tracer) else _states_compiled
    A, S = states(params["U"], params["W"], params["b"], X)
    return A, S, S @ params["V"] + params["c"]


def predict(params, X_seq, task="classify"):
    """Scores of the forward pass for ``X_seq`` (n, T, d): (n, C) at the last step for ``"classify"``,
    (n, T, C) for ``"sequence"``. Uses only the weights, never the auxiliary variables."""
    X = jnp.swapaxes(jnp.asarray(X_seq), 0, 1)
    _, _, O = forward(params, X)
    return O[-1] if task == "classify" else jnp.swapaxes(O, 0, 1)


def _shift(S):
    """S_{t-1} for t = 1..T (S_0 = 0)."""
    return jnp.concatenate([jnp.zeros_like(S[:1]), S[:-1]], axis=0)


def residuals(state, problem):
    """``(R1, R2, R3)`` of the three constraint families (shapes of A, S, O)."""
    X = problem.X
    To = state.O.shape[0]
    R1 = state.A - (X @ state.U + _shift(state.S) @ state.W + state.b)
    R2 = state.S - jnp.tanh(state.A)
    R3 = state.O - (state.S[-To:] @ state.V + state.c)
    return R1, R2, R3


def augmented_lagrangian(state, problem, comm: Comm = serial_comm):
    """:math:`\\mathcal L_\\rho` of :func:`admm_irnn` (per-sample normalised)."""
    R1, R2, R3 = residuals(state, problem)
    r1, r2, r3 = state.rho[0], state.rho[1], state.rho[2]
    w = functools.partial(_weighted, problem=problem)
    loss = jnp.sum(w(_CE.value(state.O, problem.Y)))
    pen = (jnp.vdot(w(state.L1), R1) + r1 / 2 * jnp.vdot(w(R1), R1) + jnp.vdot(w(state.L2), R2)
           + r2 / 2 * jnp.vdot(w(R2), R2) + jnp.vdot(w(state.L3), R3) + r3 / 2 * jnp.vdot(w(R3), R3))
    return comm.reduce("augmented_lagrangian", loss + pen) / _n(problem)


# ------------------------------------------------------------------------------------- block updates
def update_o(state, problem, steps: int = 10):
    """O: gradient steps of length 1/(ρ3 + 1/2) on the per-row prox of the loss (monotone)."""
    r3 = state.rho[2]
    To = state.O.shape[0]
    q = state.S[-To:] @ state.V + state.c - state.L3 / r3
    eta = 1.0 / (r3 + 0.5)

    def body(_, o):
        return o - eta * (_CE.grad(o, problem.Y) + r3 * (o - q))

    return state._replace(O=jax.lax.fori_loop(0, steps, body, state.O))


def _ls_gram(ZtZ, ZtY, theta_k, rho, eps_rel):
    """argmin_θ ρ/2‖Zθ − Y‖² + ε/2‖θ − θ_k‖² from the Gram matrix ZᵀZ and ZᵀY, with ε = eps_rel·ρ·mean diag(ZᵀZ)
    (+ tiny)."""
    G = rho * ZtZ
    eps = eps_rel * jnp.trace(G) / G.shape[0] + jnp.finfo(G.dtype).tiny ** 0.5
    G = G + eps * jnp.eye(G.shape[0], dtype=G.dtype)
    rhs = rho * ZtY + eps * theta_k
    return jnp.linalg.solve(G, rhs)   # LU (LAPACK); XLA-CPU's triangular solves of cho_solve are ~50x slower


def update_vc(state, problem, comm: Comm = serial_comm, name: str = "vc"):
    """(V, c) jointly: regularised linear least squares over all output steps and samples. The Gram matrix and
    right-hand side are sums over rows (reduces ``{name}_gram``, ``{name}_rhs``)."""
    To, n, C = state.O.shape
    h = state.V.shape[0]
    r3 = state.rho[2]
    S = state.S[-To:].reshape(-1, h)
    Z = jnp.concatenate([S, jnp.ones((S.shape[0], 1), S.dtype)], axis=1)
    target = (state.O + state.L3 / r3).reshape(-1, C)
    Zt = Z.T if problem.weight is None else (Z * jnp.tile(problem.weight, To)[:, None]).T
    G, R = comm.reduce(f"{name}_gram", Zt @ Z), comm.reduce(f"{name}_rhs", Zt @ target)
    theta = _ls_gram(G, R, jnp.concatenate([state.V, state.c[None]], 0), r3, problem.ls_prox)
    return state._replace(V=theta[:h], c=theta[h])


def update_uwb(state, problem, comm: Comm = serial_comm):
    """(U, W, b) jointly: regularised linear least squares over all steps and samples (reduces ``uwb_gram``,
    ``uwb_rhs``)."""
    T, n, h = state.A.shape
    d = problem.X.shape[2]
    r1 = state.rho[0]
    X = problem.X.reshape(-1, d)
    Sp = _shift(state.S).reshape(-1, h)              # S_{t-1}, t = 1..T (S_0 = 0)
    target = (state.A + state.L1 / r1).reshape(-1, h)
    gram = lambda a, b: jnp.einsum("ki,kj->ij", a, b)  # noqa: E731  aᵀb without forming Z = [X S 1]
    if problem.weight is None:
        Xw, Sw, tw, count = X, Sp, target, X.shape[0]
    else:   # the weighted left factors Zᵀ D
        wt = jnp.tile(problem.weight, T)[:, None]
        Xw, Sw, tw, count = X * wt, Sp * wt, target * wt, jnp.sum(wt)
    xs, ss = Xw.sum(0), Sw.sum(0)
    G = jnp.block([[gram(Xw, X), gram(Xw, Sp), xs[:, None]],
                   [gram(Sw, X), gram(Sw, Sp), ss[:, None]],
                   [xs[None], ss[None], jnp.full((1, 1), count, X.dtype)]])
    ZtY = jnp.concatenate([gram(Xw, target), gram(Sw, target), tw.sum(0)[None]], 0)
    theta_k = jnp.concatenate([state.U, state.W, state.b[None]], 0)
    theta = _ls_gram(comm.reduce("uwb_gram", G), comm.reduce("uwb_rhs", ZtY), theta_k, r1, problem.ls_prox)
    return state._replace(U=theta[:d], W=theta[d:d + h], b=theta[d + h])


def update_s(state, problem):
    """All S_t at once (they are decoupled): the h×h SPD systems of :func:`admm_irnn`."""
    T = state.S.shape[0]
    To = state.O.shape[0]
    r1, r2, r3 = state.rho[0], state.rho[1], state.rho[2]
    Hi_mid, Hi_last, _ = _s_systems(state)
    rhs = r2 * jnp.tanh(state.A) - state.L2
    # coupling through A_{t+1} (t < T)
    P = state.A[1:] + state.L1[1:] / r1 - problem.X[1:] @ state.U - state.b
    rhs = rhs.at[:-1].add(r1 * (P @ state.W.T))
    # coupling through O_t (t in the output steps)
    Q = state.O + state.L3 / r3 - state.c
    rhs = rhs.at[T - To:].add(r3 * (Q @ state.V.T))
    S_last = rhs[-1:] @ Hi_last
    S = S_last if T == 1 else jnp.concatenate([rhs[:-1] @ Hi_mid, S_last], axis=0)
    return state._replace(S=S)


def update_a(state, problem, steps: int = 2, halvings: int = 3):
    """A elementwise: safeguarded Gauss–Newton on φ(a) = ρ1/2 (a − m)² + ρ2/2 (s' − tanh a)² (monotone)."""
    r1, r2 = state.rho[0], state.rho[1]
    m = problem.X @ state.U + _shift(state.S) @ state.W + state.b - state.L1 / r1
    sp = state.S + state.L2 / r2
    return state._replace(A=_a_solve(state.A, m, sp, r1, r2, steps, halvings))


def _a_solve(a0, m, sp, r1, r2, steps, halvings):
    """``steps`` safeguarded Newton / Gauss–Newton steps with halving on φ(a) = ρ1/2 (a − m)² + ρ2/2 (s' − tanh a)²,
    elementwise from ``a0``; never increases φ in any element."""

    def phi(a):
        return r1 / 2 * (a - m) ** 2 + r2 / 2 * (sp - jnp.tanh(a)) ** 2

    def gn_step(_, a):
        th = jnp.tanh(a)
        dth = 1 - th * th
        g = r1 * (a - m) - r2 * (sp - th) * dth
        # Newton where the true curvature is safely positive, Gauss–Newton (always > 0) elsewhere
        gn = r1 + r2 * dth * dth
        hess = gn + 2 * r2 * (sp - th) * th * dth
        d = -g / jnp.where(hess > 0.1 * r1, hess, gn)
        f0 = r1 / 2 * (a - m) ** 2 + r2 / 2 * (sp - th) ** 2

        # step halving only while some element has not decreased yet (usually the full step is accepted)
        def cond(c):
            j, _, done = c
            return (j <= halvings) & ~jnp.all(done)

        def body(c):
            j, new, done = c
            cand = a + jnp.ldexp(jnp.ones((), a.dtype), -j) * d
            ok = (~done) & (phi(cand) <= f0)
            return j + 1, jnp.where(ok, cand, new), done | ok

        _, new, _ = jax.lax.while_loop(cond, body, (jnp.int32(0), a, jnp.zeros(a.shape, bool)))
        return new

    return jax.lax.fori_loop(0, steps, gn_step, a0)


def _s_systems(state):
    """Inverses of the two SPD matrices of the S-update (``t < T`` and ``t = T``) and the flag "every step is an
    output step"; S_t = rhs_t · H⁻¹ is one (n·T)×h×h product (cheaper than triangular solves on XLA-CPU)."""
    h = state.S.shape[2]
    To, T = state.O.shape[0], state.S.shape[0]
    r1, r2, r3 = state.rho[0], state.rho[1], state.rho[2]
    eye = jnp.eye(h, dtype=state.S.dtype)
    VVt = state.V @ state.V.T
    seq = To == T
    H_mid = r2 * eye + r1 * (state.W @ state.W.T) + (r3 * VVt if seq else 0.0)
    H_last = r2 * eye + r3 * VVt
    return jnp.linalg.inv(H_mid), jnp.linalg.inv(H_last), seq   # cho_solve's triangular solves: slow on XLA-CPU


def update_as_backward(state, problem, steps: int = 2, halvings: int = 3):
    """Gauss–Seidel over time, backward: S_T, A_T, S_{T-1}, A_{T-1}, …, S_1, A_1, each an exact (S_t) or monotone
    (A_t) minimiser of the AL in its block with all other variables at their newest values, so a change at the
    output reaches every step in one sweep (the all-at-once :func:`update_s`/:func:`update_a` move it one step
    per iteration)."""
    T = state.S.shape[0]
    To = state.O.shape[0]
    r1, r2, r3 = state.rho[0], state.rho[1], state.rho[2]
    Hi_mid, Hi_last, seq = _s_systems(state)
    base = r2 * jnp.tanh(state.A) - state.L2                      # rhs terms of S_t from A_t (updated below)
    base = base.at[T - To:].add(r3 * ((state.O + state.L3 / r3 - state.c) @ state.V.T))
    pre = state.L1 / r1 - problem.X @ state.U - state.b            # P_t = A_{t+1}(new) + pre_{t+1}
    m = problem.X @ state.U + _shift(state.S) @ state.W + state.b - state.L1 / r1   # uses S_{t-1} (old: later)

    def s_of(rhs_wo_a, a, Hi):
        return (rhs_wo_a + r2 * jnp.tanh(a)) @ Hi

    rest = base - r2 * jnp.tanh(state.A)                           # rhs without the tanh(A_t) term
    S_T = s_of(rest[-1], state.A[-1], Hi_last)
    A_T = _a_solve(state.A[-1], m[-1], S_T + state.L2[-1] / r2, r1, r2, steps, halvings)
    if T == 1:
        return state._replace(S=S_T[None], A=A_T[None])

    def body(a_next, xs):
        rest_t, a_t, pre_next, m_t, l2_t = xs
        s_t = s_of(rest_t + r1 * ((a_next + pre_next) @ state.W.T), a_t, Hi_mid)
        a_new = _a_solve(a_t, m_t, s_t + l2_t / r2, r1, r2, steps, halvings)
        return a_new, (a_new, s_t)

    xs = (rest[:-1], state.A[:-1], pre[1:], m[:-1], state.L2[:-1])
    _, (A, S) = jax.lax.scan(body, A_T, xs, reverse=True)
    return state._replace(A=jnp.concatenate([A, A_T[None]]), S=jnp.concatenate([S, S_T[None]]))


def update_as_forward(state, problem, steps: int = 2, halvings: int = 3):
    """Gauss–Seidel over time, forward: A_1, S_1, A_2, S_2, …, A_T, S_T (each block as in
    :func:`update_as_backward`; A_t sees the new S_{t-1}, S_t the new A_t and the old A_{t+1})."""
    T = state.S.shape[0]
    To = state.O.shape[0]
    r1, r2, r3 = state.rho[0], state.rho[1], state.rho[2]
    Hi_mid, Hi_last, _ = _s_systems(state)
    rest = -state.L2
    rest = rest.at[T - To:].add(r3 * ((state.O + state.L3 / r3 - state.c) @ state.V.T))
    P = state.A[1:] + state.L1[1:] / r1 - problem.X[1:] @ state.U - state.b       # old A_{t+1}
    rest = rest.at[:-1].add(r1 * (P @ state.W.T))
    xm = problem.X @ state.U + state.b - state.L1 / r1
    sp_old = state.S + state.L2 / r2
    Hi = jnp.concatenate([jnp.broadcast_to(Hi_mid, (T - 1,) + Hi_mid.shape), Hi_last[None]])

    def body(s_prev, xs):
        xm_t, a_t, sp_t, rest_t, Hi_t, l2_t = xs
        a_new = _a_solve(a_t, xm_t + s_prev @ state.W, sp_t, r1, r2, steps, halvings)
        s_new = (rest_t + r2 * jnp.tanh(a_new)) @ Hi_t
        return s_new, (a_new, s_new)

    s0 = jnp.zeros_like(state.S[0])
    _, (A, S) = jax.lax.scan(body, s0, (xm, state.A, sp_old, rest, Hi, state.L2))
    return state._replace(A=A, S=S)


def update_multipliers(state, problem):
    """Λ_i ← Λ_i + ρ_i R_i; returns ``(state, (R1, R2, R3))`` with the residuals before the update."""
    R1, R2, R3 = residuals(state, problem)
    r1, r2, r3 = state.rho[0], state.rho[1], state.rho[2]
    return state._replace(L1=state.L1 + r1 * R1, L2=state.L2 + r2 * R2, L3=state.L3 + r3 * R3), (R1, R2, R3)


def multiplier_estimate(state, problem):
    r"""The least-squares multiplier estimate at the current point: the :math:`\Lambda` that make the gradient of
    the Lagrangian :math:`\ell(O) + \langle\Lambda, R\rangle` with respect to the auxiliaries :math:`(A, S, O)`
    vanish (Nocedal & Wright, *Numerical Optimization*, 2nd ed., eq. 18.21: :math:`\Lambda = \arg\min
    \|\nabla_z\ell + J_z^\top\Lambda\|`; here the constraint Jacobian :math:`J_z` in the auxiliaries is square and
    block-triangular, so the minimum is zero and the estimate is unique). Solving from the last step back:

    .. math:: \Lambda^3_t = -\nabla\ell(O_t),\quad
              \Lambda^2_t = [t<T]\,\Lambda^1_{t+1}W^\top + [t\in\mathcal T]\,\Lambda^3_tV^\top,\quad
              \Lambda^1_t = \Lambda^2_t\odot(1 - \tanh^2A_t),

    i.e. minus the adjoints of backpropagation through time. At a feasible point (after :func:`_reproject`) the
    penalty terms have zero gradient too, so the augmented Lagrangian is then stationary in every auxiliary block,
    and :math:`\sum_t X_t^\top\Lambda^1_t = -\partial_U\sum_i\ell_i` (the BPTT gradient; tested)."""
    T = state.A.shape[0]
    To = state.O.shape[0]
    L3 = -_CE.grad(state.O, problem.Y)
    out = jnp.zeros(state.A.shape[:2] + L3.shape[2:], L3.dtype).at[T - To:].set(L3)   # Λ3 on every step, 0 off 𝒯

    def back(l1_next, xs):
        a_t, l3_t = xs
        l2 = l1_next @ state.W.T + l3_t @ state.V.T
        l1 = l2 * (1 - jnp.tanh(a_t) ** 2)
        return l1, (l1, l2)

    _, (L1, L2) = jax.lax.scan(back, jnp.zeros_like(state.A[0]), (state.A, out), reverse=True)
    return state._replace(L1=L1, L2=L2, L3=L3)


def _reproject(state, problem, multipliers: bool = False):
    """Auxiliaries onto the forward pass of the current weights (every residual zero); the multipliers are kept
    (``multipliers=False``) or replaced by :func:`multiplier_estimate` at the re-projected point."""
    A, S, O = forward(_params(state), problem.X)
    state = state._replace(A=A, S=S, O=O[O.shape[0] - state.O.shape[0]:])
    return multiplier_estimate(state, problem) if multipliers else state


# ---------------------------------------------------------------------------------------------- step
def penalty_schedule(start, f, aux, problem, adaptive: bool, reproject: bool, info: dict):
    """The end-of-iteration penalty rule. ``start`` is the state at the start of the iteration, ``f`` / ``aux`` the
    forward-pass / auxiliary training loss after it (None unless ``adaptive``). Returns ``(rho, f_prev, reject)``:
    the next penalties, the loss to remember, and (adaptive with re-projection only, else None) whether to undo the
    iteration; adds ``forward_gap`` / ``rejected`` to ``info``. The rule: ρ ← min(γρ, ρ_max) and the adaptive
    doubling and rejection of :func:`admm_irnn` (**Penalty schedule**); the guard is never relaxed (see
    experiments/README_admm_irnn.md)."""
    rho = start.rho * problem.rho_growth
    if not adaptive:
        return jnp.minimum(rho, problem.rho_max), start.f_prev, None
    gap = f - aux
    rose = f > start.f_prev
    up = (gap > problem.gap_tol * (1 + aux)) | rose
    rho = jnp.minimum(jnp.where(up, rho * jnp.asarray([2.0, 2.0, 1.0], rho.dtype), rho), problem.rho_max)
    info["forward_gap"] = gap
    if not reproject:
        return rho, f, None
    reject = rose & (start.rho[0] < problem.rho_max[0])
    info["rejected"] = reject.astype(f.dtype)
    return rho, jnp.where(reject, start.f_prev, f), reject


@functools.lru_cache(maxsize=None)
def make_step(o_steps: int = 10, a_steps: int = 2, a_halvings: int = 3, adaptive: bool = False,
              sweep: str = "sequential", reproject: int = 0, estimate: bool = False):
    """One iteration on the working state, ``step(state, problem, comm=serial_comm) -> (state, info)`` (cached on
    its static configuration); every sum over samples goes through ``comm.reduce``."""

    def step(state: AdmmIrnnState, problem: AdmmIrnnProblem, comm: Comm = serial_comm):
        start = state
        theta_old = jnp.concatenate([x.reshape(-1) for x in _params(state).values()])
        # backward sweep
        state = update_o(state, problem, o_steps)
        state = update_vc(state, problem, comm, "vc_backward")
        if sweep == "sequential":
            state = update_as_backward(state, problem, a_steps, a_halvings)
        else:
            state = update_s(state, problem)
            state = update_a(state, problem, a_steps, a_halvings)
        state = update_uwb(state, problem, comm)
        # forward sweep
        if sweep == "sequential":
            state = update_as_forward(state, problem, a_steps, a_halvings)
        else:
            state = update_a(state, problem, a_steps, a_halvings)
            state = update_s(state, problem)
        state = update_vc(state, problem, comm, "vc_forward")
        state = update_o(state, problem, o_steps)
        state, (R1, R2, R3) = update_multipliers(state, problem)
        if reproject:
            state = jax.lax.cond((state.k + 1) % reproject == 0, functools.partial(_reproject, multipliers=estimate),
                                 lambda s, p: s, state, problem)
        theta = jnp.concatenate([x.reshape(-1) for x in _params(state).values()])
        n = _n(problem)
        sq = comm.reduce("residual_sq", jnp.stack([_sq(R1, problem), _sq(R2, problem), _sq(R3, problem)]))
        info = {
            "r1": jnp.sqrt(sq[0] / n), "r2": jnp.sqrt(sq[1] / n), "r3": jnp.sqrt(sq[2] / n),
            "rel_change": jnp.linalg.norm(theta - theta_old) / jnp.maximum(jnp.linalg.norm(theta),
                                                                         jnp.finfo(theta.dtype).tiny),
            "rho1": state.rho[0], "rho3": state.rho[2],
        }
        info["residual"] = jnp.sqrt(sq[0] / n + sq[1] / n + sq[2] / n)
        f = aux = None
        if adaptive:
            aux = _aux_loss(state, problem, comm, "aux_loss_sum")
            # re-projected every iteration: O is the forward pass, so the forward loss is the auxiliary loss
            f = aux if reproject == 1 else _train_loss(state, problem, comm, "forward_loss_sum")
        rho, f, reject = penalty_schedule(start, f, aux, problem, adaptive, bool(reproject), info)
        if reject is not None:
            state = jax.tree.map(lambda old, new: jnp.where(reject, old, new), start, state)
        return state._replace(rho=rho, k=start.k + 1, f_prev=f), info

    step.__name__ = (f"admm_irnn_step_o{o_steps}_a{a_steps}x{a_halvings}{'_adaptive' if adaptive else ''}_{sweep}"
                     f"_rp{reproject}{'_est' if estimate else ''}")
    return step


class StepConfig(NamedTuple):
    """The static options of one iteration (the arguments of :func:`make_step`; hashable: they key the compiled
    loop)."""

    o_steps: int = 10
    a_steps: int = 2
    a_halvings: int = 3
    adaptive: bool = False
    sweep: str = "sequential"
    reproject: int = 0
    estimate: bool = False


def init_params(d: int, hidden: int, n_classes: int, seed: int = 0, dtype=jnp.float64) -> dict:
    """Seeded RNN weights: U ~ N(0, 1/d), W a random orthogonal matrix (QR of a Gaussian, signs fixed), V ~ N(0,
    1/h), b = c = 0 (shared by ADMMiRNN and the BPTT baselines, so both start from the same network). W orthogonal
    (spectral radius 1) keeps the early steps' inputs in the last hidden state (measured in
    experiments/README_admm_irnn.md)."""
    rng = np.random.default_rng(seed)  # drawn in float64 then cast: the same network for every dtype
    draw = lambda *shape: jnp.asarray(rng.standard_normal(shape), dtype)  # noqa: E731
    q, r = np.linalg.qr(rng.standard_normal((hidden, hidden)))
    q = q * np.sign(np.diag(r))[None]   # Haar-distributed
    return {
        "U": draw(d, hidden) / float(np.sqrt(d)),
        "W": jnp.asarray(q, dtype),
        "b": jnp.zeros(hidden, dtype),
        "V": draw(hidden, n_classes) / float(np.sqrt(hidden)),
        "c": jnp.zeros(n_classes, dtype),
    }


def init(problem: AdmmIrnnProblem, hidden: int, n_classes: int, rho, seed: int = 0, params=None) -> AdmmIrnnState:
    """Weights from :func:`init_params` (or ``params``, a warm start); A, S, O from the forward pass (so every
    residual starts at zero); multipliers zero."""
    T, n, d = problem.X.shape
    To = problem.Y.shape[0]
    fresh = init_params(d, hidden, n_classes, seed, problem.X.dtype)
    # a warm start (e.g. Result.params of a BPTT run): the same keys and shapes, finite
    params = fresh if params is None else validate.float_tree("warm_start", params, like=fresh, dtype=fresh["U"].dtype)
    A, S, O = forward(params, problem.X)
    O = O[T - To:]
    return AdmmIrnnState(A=A, S=S, O=O, L1=jnp.zeros_like(A), L2=jnp.zeros_like(S), L3=jnp.zeros_like(O),
                         rho=jnp.asarray(rho, problem.X.dtype), k=jnp.zeros((), jnp.int32),
                         f_prev=jnp.asarray(jnp.finfo(problem.X.dtype).max, problem.X.dtype), **params)


# -------------------------------------------------------------------------------------------- metrics
def _forward_scores(state, X, To):
    _, _, O = forward(_params(state), X)
    return O[X.shape[0] - To:]


def _train_loss(state, problem, comm: Comm = serial_comm, name: str = "train_loss"):
    O = _forward_scores(state, problem.X, problem.Y.shape[0])
    return _row_mean(name, _CE.value(O, problem.Y), problem, comm)


def _train_acc(state, problem, comm: Comm = serial_comm):
    O = _forward_scores(state, problem.X, problem.Y.shape[0])
    correct = (jnp.argmax(O, -1) == problem.Y).astype(jnp.float32)   # float32, as jnp.mean of booleans
    return _row_mean("train_acc", correct, problem, comm)


def _aux_loss(state, problem, comm: Comm = serial_comm, name: str = "aux_loss"):
    return _row_mean(name, _CE.value(state.O, problem.Y), problem, comm)


def _test_loss(state, problem, comm: Comm = serial_comm):   # the test set is shared: no sum over training rows
    O = _forward_scores(state, problem.X_test, problem.Y_test.shape[0])
    return jnp.mean(_CE.value(O, problem.Y_test))


def _test_acc(state, problem, comm: Comm = serial_comm):
    O = _forward_scores(state, problem.X_test, problem.Y_test.shape[0])
    return jnp.mean(jnp.argmax(O, -1) == problem.Y_test)


def _residual_total(state, problem, comm: Comm = serial_comm):
    R1, R2, R3 = residuals(state, problem)
    return jnp.sqrt(comm.reduce("residual", _sq(R1, problem) + _sq(R2, problem) + _sq(R3, problem)) / _n(problem))


def _working(carry: AdmmIrnnCarry, data: AdmmIrnnData):
    """The working (time-major) state and problem of the carried ones. The optimization barriers (here and before
    :func:`pack`) materialise the transposed arrays: XLA would otherwise fold the transposes into the sweep's
    products and reductions and change their rounding. With them small runs give the bits of time-major storage
    (tested); at large sizes float32 rounding-level differences remain (experiments/README_admm_irnn.md)."""
    return jax.lax.optimization_barrier((unpack(carry), unpack_problem(data)))


@functools.lru_cache(maxsize=None)
def _carried(fn):
    """A working-state metric as a metric of the carried state and problem."""
    def metric(carry, data, comm):
        return fn(*_working(carry, data), comm)

    metric.__name__ = fn.__name__
    return metric


_METRICS = (("augmented_lagrangian", augmented_lagrangian), ("residual", _residual_total),
            ("train_loss", _train_loss), ("train_acc", _train_acc), ("aux_loss", _aux_loss))
_TEST_METRICS = (("test_loss", _test_loss), ("test_acc", _test_acc))


@functools.lru_cache(maxsize=None)
def algorithm(config: StepConfig = StepConfig(), task: str = "classify", with_test: bool = False) -> Algorithm:
    """ADMMiRNN as an :class:`optlab.algorithm.Algorithm` on :class:`AdmmIrnnCarry` / :class:`AdmmIrnnData`: one
    :func:`make_step` iteration on the working (time-major) form; ``with_test`` adds the test-set metrics."""
    iterate = make_step(*config)

    def step(carry: AdmmIrnnCarry, data: AdmmIrnnData, comm: Comm):
        state, info = iterate(*_working(carry, data), comm)
        return pack(jax.lax.optimization_barrier(state)), info

    step.__name__ = iterate.__name__
    metrics = tuple((name, _carried(fn)) for name, fn in _METRICS + (_TEST_METRICS if with_test else ()))
    return Algorithm(name="admm_irnn", step=step, metrics=metrics, params=_params, stop_metric="rel_change",
                     predict=rnn_classify if task == "classify" else rnn_sequence)


# ------------------------------------------------------------------------------------- input checks
def _check_seq(name, X_seq, dtype=None):
    if isinstance(X_seq, (list, tuple)):
        X_seq = np.asarray(X_seq)
    if not hasattr(X_seq, "shape") or np.ndim(X_seq) != 3:
        raise ValueError(f"{name} must be a 3-D array (n, T, d_in) of sequences, got shape "
                         f"{getattr(X_seq, 'shape', None)}; a single sequence needs X[None], one feature X[..., None]")
    n, T, d = X_seq.shape
    if n == 0 or T == 0 or d == 0:
        raise ValueError(f"{name} has shape {X_seq.shape}: need n >= 1 samples, T >= 1 steps, d_in >= 1 features")
    X_seq = jnp.asarray(X_seq)
    if not jnp.issubdtype(X_seq.dtype, jnp.floating):
        X_seq = X_seq.astype(dtype or jax.dtypes.canonicalize_dtype(jnp.float64))
    elif dtype is not None:
        X_seq = X_seq.astype(dtype)
    operators.check_finite(name, X_seq)
    return X_seq


def _check_labels(name, y, n, T, task):
    y = np.asarray(y)
    want = (n,) if task == "classify" else (n, T)
    if y.shape != want:
        raise ValueError(f"{name} must have shape {want} for task={task!r} (X_seq is (n={n}, T={T}, d_in)), "
                         f"got {y.shape}")
    if y.size and not np.all(np.equal(np.mod(y, 1), 0)):
        raise ValueError(f"{name} must hold integer class indices 0..C-1")
    y = y.astype(np.int64)
    if y.size and y.min() < 0:
        raise ValueError(f"{name} holds a negative label ({y.min()}); labels must be class indices 0..C-1")
    return y


def _check_rho(rho):
    r = np.broadcast_to(np.asarray(rho, float), (3,)) if np.ndim(rho) == 0 else np.asarray(rho, float)
    if r.shape != (3,):
        raise ValueError(f"rho must be a number or three numbers (rho1, rho2, rho3), got {rho!r}")
    if not np.all(np.isfinite(r)) or not np.all(r > 0):
        raise ValueError(f"rho must be positive and finite, got {tuple(r)}; small penalties let the auxiliary "
                         "variables fit the labels while the forward pass does not (defaults: (1, 1, 1) with re-projection, (1000, 1000, 3) without)")
    return r


def _parse_schedule(schedule, rho):
    """None (constant), "adaptive", a growth factor γ ≥ 1, or a dict {"growth": γ, "max": ρ_max, "adaptive": bool,
    "gap_tol": δ}. Returns (growth, rho_max, adaptive, gap_tol)."""
    if schedule is None:
        return 1.0, rho, False, 0.05
    if isinstance(schedule, str):
        if schedule != "adaptive":
            raise ValueError(f"rho_schedule must be None, 'adaptive', a growth factor >= 1 or a dict, got {schedule!r}")
        schedule = {"adaptive": True}
    if isinstance(schedule, numbers.Real):
        schedule = {"growth": float(schedule)}
    if not isinstance(schedule, dict) or set(schedule) - {"growth", "max", "adaptive", "gap_tol"}:
        raise ValueError(f"rho_schedule must be None, 'adaptive', a growth factor >= 1, or "
                         f"dict(growth=..., max=..., adaptive=..., gap_tol=...), got {schedule!r}")
    g = validate.in_interval("rho_schedule growth", float(schedule.get("growth", 1.0)), 1.0, hint="1 = constant ρ")
    adaptive = bool(schedule.get("adaptive", False))
    rmax = np.broadcast_to(np.asarray(schedule.get("max", 1e3 * rho if adaptive or g > 1 else rho), float), (3,))
    if not np.all(rmax >= rho):
        raise ValueError(f"rho_schedule max {tuple(rmax)} must be >= rho {tuple(rho)}")
    gap_tol = validate.positive("rho_schedule gap_tol", float(schedule.get("gap_tol", 0.05)), example="0.05")
    return g, rmax, adaptive, gap_tol


def _check_data(task, X_seq, y, X_test, y_test, n_classes, dtype):
    """``(X, y, X_test, y_test, C)``: the sequences and labels (training and optional test) checked against each
    other, and the class count C (default: 1 + the largest label)."""
    validate.choice("task", task, ("classify", "sequence"))
    X = _check_seq("X_seq", X_seq, dtype)
    n, T, d = X.shape
    y = _check_labels("y", y, n, T, task)
    if (X_test is None) != (y_test is None):
        raise ValueError("pass both X_test and y_test, or neither")
    Xt = yt = None
    if X_test is not None:
        Xt = _check_seq("X_test", X_test, X.dtype)
        if Xt.shape[1:] != (T, d):
            raise ValueError(f"X_test must have shape (m, T={T}, d_in={d}) like X_seq, got {Xt.shape}")
        yt = _check_labels("y_test", y_test, Xt.shape[0], T, task)
    C = n_classes if n_classes is not None else int(max(y.max(), yt.max() if yt is not None else 0)) + 1
    C = validate.count("n_classes", C, minimum=2)
    for name, labels in (("y", y), ("y_test", yt)):
        if labels is not None and labels.size and labels.max() >= C:
            raise ValueError(f"{name} holds label {labels.max()} outside the class range 0..{C - 1} (n_classes={C})")
    return X, y, Xt, yt, C


def _resolve_method(method, reproject_every, rho_schedule, multiplier_estimate):
    """``(reproject_every, rho_schedule, multiplier_estimate)`` with the options ``method`` sets filled in; an option
    the caller gave that contradicts the method is an error naming both."""
    validate.choice("method", method, tuple(METHODS))
    fixed = METHODS[method]
    given = {"reproject_every": reproject_every, "rho_schedule": rho_schedule,
             "multiplier_estimate": multiplier_estimate}
    for name, want in fixed.items():
        got = given[name]
        if got is _BY_METHOD or (name == "multiplier_estimate" and got is None):
            given[name] = want
        elif method == "paper" and got != want:
            raise ValueError(
                f"method='paper' fixes {name}={want!r} (the paper's iteration: dual ascent on the multipliers, no "
                f"re-projection, constant ρ, no guard), but {name}={got!r} was given; drop {name} or use "
                f"method='default'")
    return given["reproject_every"], given["rho_schedule"], given["multiplier_estimate"]


def admm_irnn(X_seq, y, hidden: int = 128, *, task: str = "classify", iters: int = 500, rho=None,
              rho_schedule=_BY_METHOD, seed: int = 0, X_test=None, y_test=None, n_classes: int | None = None,
              o_steps: int = 5, a_steps: int = 1, a_halvings: int = 3, sweep: str = "sequential",
              method: str = "default", reproject_every=_BY_METHOD, multiplier_estimate: bool | None = None,
              warm_start=None,
              ls_prox: float | None = None, dtype=None, maxiter: int | None = None, tol: float = 0.0,
              metrics=None, parallel=None, **run):
    r"""Train a tanh RNN by ADMM: ADMMiRNN (Tang, Kan, Sun, Xiao, Lai, Qiao & Li, ECML-PKDD 2020, arXiv:2006.05622).

    **Model.** A vanilla tanh RNN unfolded over :math:`t = 1..T` (one sample per row; inputs
    :math:`X_t \in \mathbb R^{n\times d}`, :math:`S_0 = 0`):

    .. math:: A_t = X_tU + S_{t-1}W + \mathbf 1b^\top,\quad S_t = \tanh(A_t),\quad O_t = S_tV + \mathbf 1c^\top,

    with :math:`U, W, V, b, c` shared by all steps and softmax cross-entropy :math:`\ell` on the output steps
    :math:`\mathcal T` (:math:`t = T` for ``task="classify"``, every :math:`t` for ``task="sequence"``).

    **Augmented Lagrangian** [ours: the function every block update decreases]. :math:`A_t, S_t, O_t` become
    variables with multipliers :math:`\Lambda^1_t, \Lambda^2_t, \Lambda^3_t`; residuals :math:`R^1_t = A_t - X_tU -
    S_{t-1}W - \mathbf 1b^\top`, :math:`R^2_t = S_t - \tanh A_t`, :math:`R^3_t = O_t - S_tV - \mathbf 1c^\top`; divided
    by the number of samples :math:`n`, so the penalties do not depend on :math:`n`:

    .. math::
        \mathcal L_\rho = \frac1n\Bigl[\sum_{t\in\mathcal T}\sum_i \ell(o_{t,i}, y_{t,i})
          + \sum_{t=1}^T\bigl(\langle\Lambda^1_t, R^1_t\rangle + \tfrac{\rho_1}2\|R^1_t\|^2
          + \langle\Lambda^2_t, R^2_t\rangle + \tfrac{\rho_2}2\|R^2_t\|^2\bigr)
          + \sum_{t\in\mathcal T}\bigl(\langle\Lambda^3_t, R^3_t\rangle + \tfrac{\rho_3}2\|R^3_t\|^2\bigr)\Bigr].

    **Block updates**, each an exact or monotone minimiser of :math:`\mathcal L_\rho` in its block:

    * :math:`O` (:func:`update_o`): per row :math:`\min_o \ell(o, y) + \frac{\rho_3}2\|o - q\|^2`,
      :math:`q = S_tV + c - \Lambda^3_t/\rho_3`: ``o_steps`` gradient steps of length :math:`1/(\rho_3 + \frac12)`
      (the cross-entropy Hessian is :math:`\preceq \frac12 I`), warm-started.
    * :math:`(V, c)` (:func:`update_vc`): :math:`\min\sum_{t\in\mathcal T}\frac{\rho_3}2\|S_tV + \mathbf 1c^\top
      - (O_t + \Lambda^3_t/\rho_3)\|^2`, normal equations of the design :math:`Z = [S_t\;\mathbf 1]`.
    * :math:`S_t` (:func:`update_s`, closed form): with :math:`P_t = A_{t+1} + \Lambda^1_{t+1}/\rho_1 - X_{t+1}U -
      \mathbf 1b^\top` and :math:`Q_t = O_t + \Lambda^3_t/\rho_3 - \mathbf 1c^\top`,

      .. math:: S_t\bigl(\rho_2 I + [t<T]\rho_1WW^\top + [t\in\mathcal T]\rho_3VV^\top\bigr)
                = \rho_2\tanh A_t - \Lambda^2_t + [t<T]\rho_1P_tW^\top + [t\in\mathcal T]\rho_3Q_tV^\top.
    * :math:`A` (:func:`update_a`, elementwise, nonconvex 1-D): :math:`\phi(a) = \frac{\rho_1}2(a - m)^2 +
      \frac{\rho_2}2(s' - \tanh a)^2`, :math:`m = X_tU + S_{t-1}W + b - \Lambda^1_t/\rho_1`, :math:`s' = S_t +
      \Lambda^2_t/\rho_2`: ``a_steps`` safeguarded Newton steps (Gauss–Newton curvature :math:`\rho_1 +
      \rho_2(1-\tanh^2a)^2` where the exact one is below :math:`0.1\rho_1`), ``a_halvings`` step halvings: monotone.
    * :math:`(U, W, b)` (:func:`update_uwb`): :math:`\min\sum_t\frac{\rho_1}2\|X_tU + S_{t-1}W + \mathbf 1b^\top -
      (A_t + \Lambda^1_t/\rho_1)\|^2`, design :math:`Z = [X_t\; S_{t-1}\;\mathbf 1]`.

    Both least-squares blocks add :math:`\frac{\varepsilon}2\|\theta - \theta_k\|^2` (``ls_prox``: :math:`\varepsilon`
    relative to the mean diagonal of :math:`\rho Z^\top Z`) so the normal equations are always positive definite.

    **Iteration**: backward :math:`O \to (V,c) \to (S_T, A_T, \dots, S_1, A_1) \to (U,W,b)`, forward :math:`(A_1,
    S_1, \dots, A_T, S_T) \to (V,c) \to O`, then :math:`\Lambda^i \mathrel{+}= \rho_iR^i`, the re-projection and the
    penalty schedule. ``sweep="sequential"`` visits :math:`S_t, A_t` one step at a time (Gauss–Seidel over time,
    :func:`update_as_backward` / :func:`update_as_forward`); ``"jacobi"`` updates all :math:`S_t`, then all
    :math:`A_t`. [ours, below; measurements in ``experiments/README_admm_irnn.md``:]

    * *Re-projection* (``reproject_every=1``): after the multiplier update :math:`A, S, O \leftarrow`
      forward(:math:`U, W, b, V, c`), so every residual is zero at the start of the next sweep and the auxiliaries
      cannot fit the labels while the network does not (the trap of plain ADMM with small ρ); the penalties can then
      be small. The trace's ``residual``, ``r1``, ``r2``, ``r3`` are those *before* the re-projection.
    * *Multiplier estimate* (``multiplier_estimate=True``): at the re-projected point :math:`\Lambda` is set to the
      least-squares multiplier estimate (Nocedal & Wright 2006, eq. 18.21; :func:`multiplier_estimate`), which
      makes the Lagrangian stationary in every auxiliary block and equals minus the BPTT adjoints.
    * *Penalty schedule* (:func:`penalty_schedule`): ``"adaptive"`` doubles :math:`\rho_1, \rho_2` when the
      forward-pass loss rose (the step-length guard) or exceeds the auxiliary loss by more than
      :math:`\delta(1 + \text{aux})` (the trap detector); with re-projection a step that raised the loss is also
      rejected (state back to the start of the iteration) unless :math:`\rho_1` is at its cap.

    Differences from the authors' code: exact block minimisers instead of linearised steps with a constant
    :math:`\tau`, no rescaling of iterates, :math:`(U, W, b)` and :math:`(V, c)` as joint blocks.

    **Methods** (``method``): both run the block sweep above and the dual step; they differ in what happens after it.
    Write :math:`\theta = (U, W, b, V, c)`, :math:`z = (A, S, O)`, :math:`f(\theta)` the forward-pass training loss,
    and :math:`\tilde z_{k+1}, \theta_{k+1}` the result of the sweep at iteration :math:`k`.

    * ``"paper"`` — the paper's iteration (Tang et al. 2020, Alg. 1): dual ascent, no re-projection, constant
      penalties, no guard,

      .. math:: z_{k+1} = \tilde z_{k+1},\qquad \Lambda^i_{k+1} = \Lambda^i_k + \rho_i R^i(z_{k+1},
                \theta_{k+1}),\qquad \rho_{k+1} = \rho_k,

      with :math:`\rho` = (1, 1, 1) unless given (:data:`PAPER_RHO`, the authors' MNIST value). It sets
      ``reproject_every=0``, ``rho_schedule=None``, ``multiplier_estimate=False``; giving any of these with another
      value is an error. The residuals stay nonzero, so the auxiliaries can fit the labels while the forward pass
      does not (the small-ρ trap).
    * ``"default"`` [ours] — the three additions above after the dual step (ρ = (1, 1, 1) to start):

      .. math:: z_{k+1} = \mathrm{forward}(\theta_{k+1}),\qquad \Lambda_{k+1} = \hat\Lambda(z_{k+1},
                \theta_{k+1}),

      where :math:`\hat\Lambda` is :func:`multiplier_estimate`, and, when :math:`f(\theta_{k+1}) > f(\theta_k)`,
      the iteration is undone and :math:`\rho_1, \rho_2 \leftarrow 2\rho_1, 2\rho_2`. Every sweep then starts at a
      feasible point with minus the BPTT adjoints as multipliers, so one iteration is a preconditioned BPTT step on
      :math:`\theta` with a monotone guard on :math:`f` — not the paper's algorithm, but the one that trains
      reliably. Its options (``reproject_every``, ``rho_schedule``, ``multiplier_estimate``, ``rho``) can each be
      changed; ``reproject_every=0, rho_schedule=None, multiplier_estimate=False`` with ``rho=PAPER_RHO`` is
      ``method="paper"`` bit for bit.

    Args:
        X_seq: (n, T, d_in) input sequences (NumPy or JAX; its float dtype is the working dtype unless
            ``dtype`` is given; integer inputs become float64/float32).
        y: labels: (n,) class indices for ``task="classify"`` (loss on the last step), (n, T) for
            ``task="sequence"`` (loss at every step, e.g. next-character prediction).
        hidden: hidden units h.
        iters: iterations (one backward + forward sweep and a multiplier update each); ``maxiter`` is an alias
            (the contract name) and wins when given.
        rho: (ρ1, ρ2, ρ3) or one number for all three; must be > 0. Default (1, 1, 1) with re-projection and
            for ``method="paper"``, (1000, 1000, 3) with ``reproject_every=0`` under ``method="default"``.
        method: ``"default"`` (re-projection + multiplier estimate + guard) or ``"paper"`` (the paper's dual-ascent
            iteration); see **Methods**. Recorded in ``trace.meta["method"]``.
        rho_schedule: ``"adaptive"`` (default), None (constant), a growth factor γ ≥ 1,
            or ``{"growth": γ, "max": ρ_max, "adaptive": bool, "gap_tol": δ}``: ρ ← min(γρ, ρ_max) after every
            iteration, plus the adaptive rule above (ρ_max default 1000·ρ, δ = 0.05); logs ``forward_gap`` and
            (with re-projection) ``rejected``.
        seed: seeds the initial weights (:func:`init_params`).
        X_test, y_test: optional held-out data; adds ``test_loss`` and ``test_acc`` (forward pass) to the trace.
        n_classes: C (default: 1 + the largest label in y and y_test).
        o_steps, a_steps, a_halvings: inner iterations of the O and A block updates.
        sweep: ``"sequential"`` (default) or ``"jacobi"``.
        reproject_every: re-project after every k-th iteration (default 1; 0 = plain ADMM).
        multiplier_estimate: replace the multipliers at each re-projection by their least-squares estimate
            (default: True when ``reproject_every >= 1``; needs re-projection).
        warm_start: initial weights ``{"U", "W", "b", "V", "c"}`` (e.g. ``Result.params`` of a :func:`bptt` run).
        ls_prox: relative proximal weight of the least-squares blocks (default 1e-8 float64, 1e-5 float32).
        tol: stop when the relative weight change ``rel_change <= tol`` (default 0: run all iterations).
        metrics: extra ``name -> fn(state, problem)`` of :class:`AdmmIrnnCarry` and :class:`AdmmIrnnData`.
        **run: the harness options ``log_every``, ``max_time``, ``callback``, ``progress``, ``checkpoint``,
            ``resume``, ``jit`` (:func:`optlab.harness.solve`).
        parallel: an executor of :mod:`optlab.parallel` (``Sync(n)``, ``SimulatedAsync(n, max_delay)``): the
            samples split over ``n`` workers, the weight least-squares blocks from normal equations summed over
            them (asynchronous semantics: this module's docstring); adds ``sim_time`` (simulated) and ``arrived``.

    Returns:
        :class:`optlab.Result` with ``params = {"U", "W", "b", "V", "c"}``, ``predict(X_seq)`` (forward pass: (n, C)
        last-step scores for classification, (n, T, C) for sequences) and ``state`` an :class:`AdmmIrnnCarry`. The
        trace logs ``augmented_lagrangian``, ``residual`` (RMS per sample), ``r1``, ``r2``, ``r3``,
        ``train_loss``/``train_acc`` (forward pass, mean per output step), ``aux_loss`` (the loss at the auxiliary
        outputs O), ``rel_change``, ``rho1``, ``rho3`` and, with test data, ``test_loss``/``test_acc``.

    Example:
        >>> import numpy as np, optlab as ol
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(64, 4, 3)); y = (X[:, :, 0].sum(1) > 0).astype(int)
        >>> res = ol.admm_irnn(X, y, hidden=8, iters=50, progress=False)
        >>> res.predict(X).shape
        (64, 2)
        >>> bool(res.trace["train_loss"][-1] < res.trace["train_loss"][0])
        True
    """
    X, y, Xt, yt, C = _check_data(task, X_seq, y, X_test, y_test, n_classes, dtype)
    n, T, d = X.shape
    hidden = validate.count("hidden", hidden, minimum=1)
    iters = validate.count("maxiter" if maxiter is not None else "iters", iters if maxiter is None else maxiter)
    seed, tol = validate.seed("seed", seed), validate.tolerance("tol", tol)
    reproject_every, rho_schedule, multiplier_estimate = _resolve_method(method, reproject_every, rho_schedule,
                                                                         multiplier_estimate)
    reproject_every = validate.count("reproject_every", reproject_every)
    validate.choice("sweep", sweep, ("sequential", "jacobi"))
    if multiplier_estimate is None:
        multiplier_estimate = reproject_every > 0
    if not isinstance(multiplier_estimate, (bool, np.bool_)):
        raise ValueError(f"multiplier_estimate must be True, False or None, got {multiplier_estimate!r}")
    if multiplier_estimate and not reproject_every:
        raise ValueError("multiplier_estimate=True needs re-projection (reproject_every >= 1): the estimate is taken "
                         "at the re-projected (feasible) point; pass multiplier_estimate=False for plain ADMM")
    if rho is None:
        rho = PAPER_RHO if method == "paper" else DEFAULT_RHO if reproject_every else DEFAULT_RHO_PLAIN
    rho = _check_rho(rho)
    growth, rho_max, adaptive, gap_tol = _parse_schedule(rho_schedule, rho)
    if ls_prox is None:
        ls_prox = 1e-8 if X.dtype == jnp.float64 else 1e-5
    ls_prox = validate.nonnegative("ls_prox", ls_prox)
    config = StepConfig(validate.count("o_steps", o_steps), validate.count("a_steps", a_steps),
                        validate.count("a_halvings", a_halvings), adaptive, sweep, reproject_every,
                        bool(multiplier_estimate))

    def labels(v):
        return jnp.asarray(v[None] if task == "classify" else v.T)

    split = parallel is not None   # rows may be padded: per-row weights and the real row count
    problem = AdmmIrnnProblem(
        X=jnp.swapaxes(X, 0, 1), Y=labels(y),
        X_test=None if Xt is None else jnp.swapaxes(Xt, 0, 1), Y_test=None if Xt is None else labels(yt),
        rho_growth=jnp.asarray(growth, X.dtype), rho_max=jnp.asarray(rho_max, X.dtype),
        gap_tol=jnp.asarray(gap_tol, X.dtype), ls_prox=jnp.asarray(ls_prox, X.dtype),
        weight=jnp.ones(n, X.dtype) if split else None, n=jnp.asarray(n, X.dtype) if split else None)
    state = init(problem, hidden, C, rho, seed, warm_start)
    meta = {"method": method, "task": task, "hidden": hidden, "n": n, "T": T, "d_in": d, "n_classes": C,
            "rho": tuple(float(r) for r in rho), "rho_schedule": repr(rho_schedule), "seed": seed,
            "dtype": str(X.dtype), "o_steps": o_steps, "a_steps": a_steps, "ls_prox": float(ls_prox),
            "sweep": sweep, "reproject_every": reproject_every, "multiplier_estimate": bool(multiplier_estimate)}
    return harness.solve(algorithm(config, task, Xt is not None), pack(state), pack_problem(problem),
                         executor=parallel, maxiter=iters, tol=tol, metrics=metrics, meta=meta,
                         **run)


# ---------------------------------------------------------------------------------- BPTT baselines
def rnn_classify(params, X_seq):
    """Forward pass, last-step scores (n, C), for batch-first ``X_seq`` (n, T, d) (the baselines' model)."""
    return predict(params, X_seq, "classify")


def rnn_sequence(params, X_seq):
    """Forward pass, every step's scores (n, T, C)."""
    return predict(params, X_seq, "sequence")


@functools.lru_cache(maxsize=None)
def _grad_norm_metric(model_apply):
    def grad_norm(state, prob):
        g = jax.grad(lambda p: mlp.mean_loss("cross_entropy", model_apply(p, prob.X), prob.y))(state.params)
        return jnp.sqrt(sum(jnp.vdot(x, x) for x in jax.tree.leaves(g)))

    return grad_norm


def bptt(X_seq, y, hidden: int = 128, optimizer: str = "adam", *, learning_rate: float = 1e-3, task="classify",
         epochs: int = 100, batch_size=None, seed: int = 0, X_test=None, y_test=None, n_classes=None, dtype=None,
         **kwargs):
    """The same RNN trained by backpropagation through time with an optax optimizer (``"sgd"``, ``"adam"``,
    ``"rmsprop"`` ...) through :func:`optlab.solvers.baselines.optax_train.train` and the harness: same
    initial weights as :func:`admm_irnn` for the same ``seed``, same input checks; one harness iteration is one
    epoch (a full-batch step when ``batch_size=None``). The trace adds ``grad_norm`` (full-batch gradient norm,
    the stability plot's quantity) to ``train_loss``/``train_acc``/``test_*``."""
    X, y, Xt, yt, C = _check_data(task, X_seq, y, X_test, y_test, n_classes, dtype)
    params0 = init_params(X.shape[2], validate.count("hidden", hidden, minimum=1), C, validate.seed("seed", seed),
                          X.dtype)
    apply = rnn_classify if task == "classify" else rnn_sequence
    metrics = {"grad_norm": _grad_norm_metric(apply), **kwargs.pop("metrics", {})}
    return _optax_train(apply, params0, X, jnp.asarray(y), optimizer, learning_rate=learning_rate,
                        loss="cross_entropy", epochs=epochs, batch_size=batch_size, seed=seed, X_test=Xt,
                        y_test=None if yt is None else jnp.asarray(yt), metrics=metrics,
                        meta={"model": "tanh RNN (BPTT)", "hidden": hidden, "task": task}, **kwargs)
