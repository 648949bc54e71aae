r"""iPDLAM: inertial proximal deep-learning alternating minimisation, and DLAM (its β = 0 ablation).

Trains an MLP (:mod:`optlab.solvers.mlp`) on the penalty form of the training problem by inertial proximal
block updates; :func:`ipdlam` carries the equations (Qiao, Sun, Pan & Li, ICASSP 2021). The method is an
:class:`optlab.algorithm.Algorithm` (:func:`algorithm`): the samples and their auxiliary variables live in
:class:`optlab.algorithm.Rows`, every sum over samples goes through ``comm.reduce``, so ``parallel=`` runs it under
any executor of :mod:`optlab.parallel`. Design notes and measurements: ``experiments/README_ipdlam.md``.
"""
from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import harness, pytree, row_risk, validate
from .. import prox as prox_mod
from ..algorithm import Algorithm, Comm, Rows, serial_comm
from . import mlp

__all__ = ["ipdlam", "dlam", "Net", "Sums", "IPDLAMState", "IPDLAMProblem", "Config", "make_step", "init",
           "objective", "sweep", "build", "algorithm", "nets"]

_SCHEDULES = ("constant", "increasing")


class Net(NamedTuple):
    """One configuration of the blocks (what the sweep works on)."""
    W: tuple            # (W_1, ..., W_L), W_l of shape (h_{l-1}, h_l)
    b: tuple            # (b_1, ..., b_L)
    A: tuple            # (a_1, ..., a_{L-1}), each (n, h_l); () in mini-batch mode


class IPDLAMState(NamedTuple):
    W: tuple            # B^k weights (shared)
    b: tuple
    W_prev: tuple       # B^{k-1} weights (inertia)
    b_prev: tuple
    aux: Rows           # Rows(A=(a_1..a_{L-1}), A_prev=(...)): per-sample auxiliaries at k and k-1; empty in mini-batch
    c_W: jax.Array      # (L,) backtracked constants of the weight blocks
    c_A: jax.Array      # (L-1,) constants of the a_l blocks
    rho: jax.Array      # ρ_k, the penalty the next sweep uses
    k: jax.Array        # iteration counter (int32)
    key: jax.Array      # PRNG key (mini-batch permutations)


class IPDLAMProblem(NamedTuple):
    data: Rows          # Rows(X=X, y=y, weight=None | ones): weight only when run by a parallel executor
    n: Any              # number of real samples (the 1/n of Φ when weights are used), else None
    X_test: Any         # None when no test set is given
    y_test: Any
    regs: tuple         # one optlab.prox penalty per layer (prox.zero() for none)
    beta: jax.Array
    rho_growth: jax.Array
    rho_max: jax.Array
    c_shrink: jax.Array
    c_grow: jax.Array
    decrease: jax.Array
    c_min: jax.Array
    max_backtracks: jax.Array   # int32 (traced: changing the cap does not recompile)


class Config(NamedTuple):
    """Static configuration (hashable; keys the compiled step)."""
    n_layers: int
    activation: str
    loss: str
    beta_schedule: str = "constant"
    batch_size: int = 0             # 0: full batch
    n_batches: int = 1
    inner_sweeps: int = 3


def nets(state: IPDLAMState) -> tuple[Net, Net]:
    """``(B^k, B^{k-1})`` of a state as two :class:`Net`."""
    return (Net(state.W, state.b, state.aux.A), Net(state.W_prev, state.b_prev, state.aux.A_prev))


# ------------------------------------------------------------------------------------------------ objective
class Sums(NamedTuple):
    """How the sweep sums over samples. ``weight=None`` (serial): plain means over the rows it is given (n = their
    count). With per-row ``weight`` (data-parallel: padding rows weigh 0) and the global count ``n``: the local
    weighted sums of this worker's rows. ``total(name, local)`` is ``comm.reduce``: the sum over workers."""
    comm: Comm = serial_comm
    weight: Any = None
    n: Any = None

    def loss(self, loss_name, z, target):   # (1/n) Σ_i ℓ(z_i, y_i)
        if self.weight is None:
            return mlp.mean_loss(loss_name, z, target)
        return jnp.sum(self.weight * mlp.row_loss(loss_name, z, target)) / self.n

    def sq(self, rho, r):                  # (ρ/2n) ‖r‖²
        if self.weight is None:
            return rho / (2 * r.shape[0]) * jnp.vdot(r, r)
        return rho / (2 * self.n) * jnp.vdot(r * self.weight[:, None], r)

    def total(self, name, local):
        return self.comm.reduce(name, local)

    def total_tree(self, name, tree):      # one communicated quantity per leaf: name.0, name.1, ...
        leaves, treedef = jax.tree.flatten(tree)
        return treedef.unflatten([self.total(f"{name}.{j}", x) for j, x in enumerate(leaves)])


SERIAL = Sums()


def _sums(prob: IPDLAMProblem, comm: Comm) -> Sums:
    return Sums(comm, prob.data.weight, prob.n)


def _term(cfg: Config, i: int, inp, W, b, target, rho, sums: Sums = SERIAL):
    """Layer ``i``'s (0-based) term of Φ_ρ (local part): the loss for the last layer, the scaled penalty otherwise."""
    return _term_z(cfg, i, inp @ W + b, target, rho, sums)


def _term_z(cfg: Config, i: int, Z, target, rho, sums: Sums = SERIAL):
    """:func:`_term` as a function of the pre-activation ``Z = inp @ W + b``."""
    if i == cfg.n_layers - 1:
        return sums.loss(cfg.loss, Z, target)
    return sums.sq(rho, target - mlp.ACTIVATIONS[cfg.activation](Z))


def objective(cfg: Config, net: Net, X, y, rho, regs, sums: Sums = SERIAL):
    """Φ_ρ(W, b, a) on the samples ``X, y`` (exact, all terms; each layer's data term summed by ``sums``)."""
    total = 0.0
    for i in range(cfg.n_layers):
        inp = X if i == 0 else net.A[i - 1]
        target = y if i == cfg.n_layers - 1 else net.A[i]
        total = (total + sums.total(f"objective_{i}", _term(cfg, i, inp, net.W[i], net.b[i], target, rho, sums))
                 + regs[i].value(net.W[i]))
    return total


# ------------------------------------------------------------------------------------------- block update
def _block(prob: IPDLAMProblem, f, reg_value, prox_fn, B, B_prev, c_prev, beta, sums: Sums, name: str,
           weights: bool):
    """One inertial proximal-linearised block step with a capped backtracking search for its constant.

    ``f`` is the local part of the block's data terms; ``weights``: a weight block (its gradient is a sum over
    samples: ``total("grad_" + name)``), else a per-sample block (its squared step is a sum over samples).
    Returns ``(B_new, B_hat, c, accepted)``; ``B_new = B_hat`` when no trial passed the test.
    """
    B_hat = jax.tree.map(lambda x, xp: x + beta * (x - xp), B, B_prev)
    f_hat, g = jax.value_and_grad(f)(B_hat)
    f_hat = sums.total("value_" + name, f_hat)
    if weights:
        g = sums.total_tree("grad_" + name, g)
    phi_hat = f_hat + reg_value(B_hat)

    def trial(c):
        B_new = prox_fn(jax.tree.map(lambda x, gx: x - gx / c, B_hat, g), 1 / c)
        step = jax.tree.map(lambda a, b: a - b, B_new, B_hat)
        d2 = pytree.vdot(step, step)
        if not weights:
            d2 = sums.total("step_" + name, d2)
        phi_new = sums.total("trial_" + name, f(B_new)) + reg_value(B_new)
        return B_new, phi_new <= phi_hat - prob.decrease * c / 2 * d2

    c, B_new, ok = _search(prob, trial, c_prev, B_hat)
    return jax.tree.map(lambda a, b: jnp.where(ok, a, b), B_new, B_hat), B_hat, c, ok


def _search(prob: IPDLAMProblem, trial, c_prev, start):
    """The capped backtracking search of a block: ``trial(c) -> (point, passed)`` first at
    c0 = max(c_shrink·c_prev, c_min), then after each growth by c_grow, at most ``max_backtracks`` times (one traced
    trial: smaller programs). Returns ``(c, point, passed)``; a failed search keeps the previous constant ``c_prev``:
    the cap's c0·grow^max_backtracks would make every later step too small to pass the test in floating point (the
    block would never move again)."""
    def cond(carry):
        j, _, _, ok = carry
        return (~ok) & (j < prob.max_backtracks)

    def body(carry):
        j, c, _, _ = carry
        c = c * prob.c_grow
        point, ok = trial(c)
        return j + 1, c, point, ok

    dtype = jax.tree.leaves(start)[0].dtype
    c0 = jnp.maximum(c_prev * prob.c_shrink, prob.c_min).astype(dtype)
    _, c, point, ok = jax.lax.while_loop(cond, body, (jnp.int32(-1), c0 / prob.c_grow, start, jnp.array(False)))
    return jnp.where(ok, c, c_prev.astype(dtype)), point, ok


def _w_block_linear(prob: IPDLAMProblem, phi_z, inp, W, b, W_prev, b_prev, c_prev, beta, sums: Sums, name: str):
    """:func:`_block` for a weight block without regulariser, with every trial done in the space of
    pre-activations: the trial point is (Ŵ − G_W/c, b̂ − g_b/c), so its pre-activation is Ẑ − D/c with
    D = inp·G_W + 1g_bᵀ, and the search costs one product with ``inp`` however many trials it takes (three in all,
    like a forward–backward pass plus one). Returns ``(B_new, B_hat, c, accepted, Z_new)``."""
    W_hat, b_hat = W + beta * (W - W_prev), b + beta * (b - b_prev)
    Z_hat = inp @ W_hat + b_hat
    f_hat, gZ = jax.value_and_grad(phi_z)(Z_hat)
    f_hat = sums.total("value_" + name, f_hat)
    gW, gb = sums.total_tree("grad_" + name, (inp.T @ gZ, jnp.sum(gZ, axis=0)))
    D = inp @ gW + gb
    g2 = jnp.vdot(gW, gW) + jnp.vdot(gb, gb)

    def trial(c):
        Z = Z_hat - D / c
        return Z, sums.total("trial_" + name, phi_z(Z)) <= f_hat - prob.decrease / (2 * c) * g2

    c_new, Z, ok = _search(prob, trial, c_prev, Z_hat)
    W_new = jnp.where(ok, W_hat - gW / c_new, W_hat)   # c_new = the accepted c when ok
    b_new = jnp.where(ok, b_hat - gb / c_new, b_hat)
    return (W_new, b_new), (W_hat, b_hat), c_new, ok, jnp.where(ok, Z, Z_hat)


def _fresh_names(n_layers: int) -> frozenset:
    """The reduce names of the line searches (objective values, called inside loops): always fresh (a barrier)."""
    names = set()
    for i in range(n_layers):
        names |= {f"value_W{i}", f"trial_W{i}"}
        if i < n_layers - 1:
            names |= {f"value_A{i}", f"trial_A{i}", f"step_A{i}"}
    return frozenset(names)


def sweep(cfg: Config, prob: IPDLAMProblem, net: Net, prev: Net, c_W, c_A, rho, beta, X, y, record: bool = False,
          sums: Sums = SERIAL):
    """One Gauss–Seidel pass over the blocks W_1, a_1, …, W_L.

    Returns ``(net, c_W, c_A, n_rejected, records)``; ``records`` (only with ``record=True``, for tests) lists per
    block ``(net_with_B_hat, net_with_B_new, c)``: the two full configurations the sufficient-decrease inequality
    compares.
    """
    L = cfg.n_layers
    W, b, A = list(net.W), list(net.b), list(net.A)
    records, n_rejected = [], jnp.int32(0)

    def snapshot():
        return Net(tuple(W), tuple(b), tuple(A))

    for i in range(L):
        inp = X if i == 0 else A[i - 1]
        target = y if i == L - 1 else A[i]
        reg = prob.regs[i]

        if isinstance(reg, prox_mod.Zero):
            (W_i, b_i), hat, c, ok, Z = _w_block_linear(
                prob, lambda Z, i=i, target=target: _term_z(cfg, i, Z, target, rho, sums), inp, W[i], b[i],
                prev.W[i], prev.b[i], c_W[i], beta, sums, f"W{i}")
        else:
            def f_w(Wb, i=i, inp=inp, target=target):
                return _term(cfg, i, inp, Wb[0], Wb[1], target, rho, sums)

            (W_i, b_i), hat, c, ok = _block(
                prob, f_w, lambda Wb, reg=reg: reg.value(Wb[0]),
                lambda Wb, t, reg=reg: (reg.prox(Wb[0], t), Wb[1]), (W[i], b[i]), (prev.W[i], prev.b[i]), c_W[i],
                beta, sums, f"W{i}", weights=True)
            Z = None
        if record:
            W[i], b[i] = hat
            before = snapshot()
        W[i], b[i] = W_i, b_i
        c_W = c_W.at[i].set(c)
        n_rejected = n_rejected + (~ok).astype(jnp.int32)
        if record:
            records.append((before, snapshot(), c))
        if i == L - 1:
            break

        nxt_target = y if i + 1 == L - 1 else A[i + 1]
        # σ(a_{i-1}W_i + b_i) is fixed during the a_i block: computed once (from the accepted trial's Z if any)
        s_i = mlp.ACTIVATIONS[cfg.activation](Z if Z is not None else inp @ W[i] + b[i])

        def f_a(a, i=i, s_i=s_i, nxt_target=nxt_target):
            return sums.sq(rho, a - s_i) + _term(cfg, i + 1, a, W[i + 1], b[i + 1], nxt_target, rho, sums)

        a_i, hat, c, ok = _block(prob, f_a, lambda a: 0.0, lambda a, t: a, A[i], prev.A[i], c_A[i], beta, sums,
                                 f"A{i}", weights=False)
        if record:
            A[i] = hat
            before = snapshot()
        A[i] = a_i
        c_A = c_A.at[i].set(c)
        n_rejected = n_rejected + (~ok).astype(jnp.int32)
        if record:
            records.append((before, snapshot(), c))
    return snapshot(), c_W, c_A, n_rejected, records


def _beta_k(cfg: Config, beta, k):
    if cfg.beta_schedule == "increasing":
        return jnp.minimum(beta, k / (k + 3.0)).astype(beta.dtype)
    return beta


def _rel_change(new: Net, old: Net, rejected):
    """‖(W, b)^{k+1} − (W, b)^k‖ / ‖(W, b)^{k+1}‖; +inf after a sweep in which a search hit its cap (a block that
    stayed at B̂ is no evidence of convergence: with β = 0 it would read 0 and stop a run at any ``tol``)."""
    return jnp.where(rejected > 0, jnp.inf, mlp.rel_change((new.W, new.b), (old.W, old.b)))


@functools.lru_cache(maxsize=None)
def make_step(cfg: Config):
    """The pure ``step(state, problem, comm=serial_comm) -> (state, info)`` for a static configuration (cached).

    Full batch: one sweep over all blocks, then the ρ update. Mini-batch: one epoch (serial only).
    """

    def full_step(state: IPDLAMState, prob: IPDLAMProblem, comm: Comm = serial_comm):
        beta = _beta_k(cfg, prob.beta, state.k)
        net, prev = nets(state)
        new, c_W, c_A, rejected, _ = sweep(cfg, prob, net, prev, state.c_W, state.c_A, state.rho, beta,
                                           prob.data.X, prob.data.y, sums=_sums(prob, comm))
        out = IPDLAMState(W=new.W, b=new.b, W_prev=state.W, b_prev=state.b, aux=Rows(A=new.A, A_prev=net.A),
                          c_W=c_W, c_A=c_A, rho=jnp.minimum(prob.rho_max, prob.rho_growth * state.rho),
                          k=state.k + 1, key=state.key)
        info = {"rho": state.rho, "beta": beta, "rejected": rejected, "rel_change": _rel_change(new, net, rejected)}
        return out, info

    def batch_step(state: IPDLAMState, prob: IPDLAMProblem, comm: Comm = serial_comm):
        if comm is not serial_comm:
            raise ValueError("ipdlam: the mini-batch mode (batch_size) runs serially; pass batch_size=None to split "
                             "the samples over workers with parallel=")
        beta = _beta_k(cfg, prob.beta, state.k)
        key, sub = jax.random.split(state.key)
        n_used = cfg.n_batches * cfg.batch_size
        X, y = prob.data.X, prob.data.y
        idx = jax.random.permutation(sub, X.shape[0])[:n_used].reshape(cfg.n_batches, cfg.batch_size)

        def one_batch(carry, rows):
            W, b, W_prev, b_prev, c_W, c_A, rejected = carry
            Xb, yb = X[rows], y[rows]
            A = mlp.hidden({"W": W, "b": b}, Xb, cfg.activation)   # fresh a_l for this batch only

            def inner(_, c):
                net, prev, c_W, c_A, rejected = c
                new, c_W, c_A, rej, _ = sweep(cfg, prob, net, prev, c_W, c_A, state.rho, beta, Xb, yb)
                return new, net, c_W, c_A, rejected + rej

            net, prev, c_W, c_A, rejected = jax.lax.fori_loop(
                0, cfg.inner_sweeps, inner, (Net(W, b, A), Net(W_prev, b_prev, A), c_W, c_A, rejected))
            return (net.W, net.b, prev.W, prev.b, c_W, c_A, rejected), None

        carry0 = (state.W, state.b, state.W_prev, state.b_prev, state.c_W, state.c_A, jnp.int32(0))
        (W, b, W_prev, b_prev, c_W, c_A, rejected), _ = jax.lax.scan(one_batch, carry0, idx)
        out = IPDLAMState(W=W, b=b, W_prev=W_prev, b_prev=b_prev, aux=state.aux, c_W=c_W, c_A=c_A,
                          rho=jnp.minimum(prob.rho_max, prob.rho_growth * state.rho), k=state.k + 1, key=key)
        info = {"rho": state.rho, "beta": beta, "rejected": rejected,
                "rel_change": _rel_change(Net(W, b, ()), Net(state.W, state.b, ()), rejected)}
        return out, info

    step = batch_step if cfg.batch_size else full_step
    step.__name__ = f"ipdlam_{'batch' if cfg.batch_size else 'full'}_step"
    return step


# ------------------------------------------------------------------------------------------------ metrics
def _params(state):
    return {"W": state.W, "b": state.b}


def _metrics(cfg: Config, with_test: bool, with_train: bool) -> tuple:
    def obj(state, prob, comm):
        if cfg.batch_size:
            net = Net(state.W, state.b, mlp.hidden(_params(state), prob.data.X, cfg.activation))
        else:
            net = nets(state)[0]
        return objective(cfg, net, prob.data.X, prob.data.y, state.rho, prob.regs, _sums(prob, comm))

    fit = mlp.fit_metrics(lambda state, X: mlp.apply(_params(state), X, cfg.activation), cfg.loss, with_test)
    return ((("objective", obj),) + fit[:2] if with_train else ()) + fit[2:]


def _stationarity(cfg: Config):
    r"""``fn(state, problem, comm)``: the first-order optimality residual of the training problem at the state.

    Full batch: the norm over all blocks of :math:`\Phi_\rho`'s proximal-gradient mapping at :math:`(W, b, a)^k`
    (the ρ of the next sweep),

    .. math:: \Bigl(\sum_l \|G_{W_l}\|^2 + \|\nabla_{b_l}\Phi_\rho\|^2 + \sum_{l<L}\|\nabla_{a_l}\Phi_\rho\|^2\Bigr)^{1/2},
              \qquad G_{W_l} = \bigl(W_l - \operatorname{prox}_{s r_l}(W_l - s\nabla_{W_l}\Phi_\rho)\bigr)/s,

    zero exactly at the stationary points of :math:`\Phi_\rho` (:func:`optlab.row_risk.mapping_norm`: ``s`` is the
    block's step :math:`1/c_{W_l}`, raised where it is so small that the mapping would round to zero). Mini-batch
    mode: the same for the regularised training loss as a function of :math:`(W, b)` (the objective it logs). One
    forward-backward pass: each weight gradient is a sum over samples (``comm.reduce("stationarity_W<l>")``), each
    :math:`a_l` gradient is row-local and only its squared norm is summed. The harness compares it with its value at
    the start (weights that stop moving while it has not fallen end ``"stalled"``: :func:`optlab.harness.run`)."""

    def fn(state: IPDLAMState, prob: IPDLAMProblem, comm: Comm):
        sums = _sums(prob, comm)
        X, y = prob.data.X, prob.data.y
        L = cfg.n_layers
        if cfg.batch_size:
            def local(Wb, A):
                del A
                return sums.loss(cfg.loss, mlp.apply({"W": Wb[0], "b": Wb[1]}, X, cfg.activation), y)
            A = ()
        else:   # Φ_ρ's data terms on this worker's rows, not reduced (the penalties enter through their prox)
            def local(Wb, A):
                return objective(cfg, Net(Wb[0], Wb[1], A), X, y, state.rho, (prox_mod.zero(),) * L,
                                 sums._replace(comm=serial_comm))
            A = state.aux.A
        (gW, gb), gA = jax.grad(local, argnums=(0, 1))((state.W, state.b), A)
        sq = 0.0
        for i in range(L):
            reg = prob.regs[i]
            g_w = sums.total(f"stationarity_W{i}", gW[i])
            prox = None if isinstance(reg, prox_mod.Zero) else reg.prox
            sq = sq + jnp.square(row_risk.mapping_norm(state.W[i], g_w, prox, 1 / state.c_W[i]))
            g_b = sums.total(f"stationarity_b{i}", gb[i])
            sq = sq + jnp.vdot(g_b, g_b)
        for i, g_a in enumerate(gA):      # row-local blocks: each worker's rows, their squared norms summed
            sq = sq + sums.total(f"stationarity_A{i}", jnp.vdot(g_a, g_a))
        return jnp.sqrt(sq)

    return fn


@functools.lru_cache(maxsize=None)
def algorithm(cfg: Config, with_test: bool = False, with_train: bool = True) -> Algorithm:
    """iPDLAM (DLAM: β = 0 in the problem) as an :class:`optlab.algorithm.Algorithm` (cached per configuration)."""
    return Algorithm(name="ipdlam", step=make_step(cfg), metrics=_metrics(cfg, with_test, with_train), params=_params,
                     stop_metric="rel_change", fresh=_fresh_names(cfg.n_layers), predict=mlp.predictor(cfg.activation),
                     stationarity=_stationarity(cfg))


# --------------------------------------------------------------------------------------------------- init
def init(cfg: Config, prob: IPDLAMProblem, params: dict, rho0: float, seed: int) -> IPDLAMState:
    """Initial state: the given weights, a_l from a forward pass (a feasible point, zero penalty), B^{-1} = B^0,
    and step constants from Frobenius-norm upper bounds of the block Lipschitz constants."""
    X = prob.data.X if not cfg.batch_size else prob.data.X[: cfg.batch_size]
    dtype = X.dtype
    n = X.shape[0]
    L = cfg.n_layers
    A = mlp.hidden(params, X, cfg.activation)
    lip = mlp.ACTIVATION_LIPSCHITZ[cfg.activation]
    smooth = mlp.loss_smoothness(cfg.loss)
    c_W, c_A = [], []
    for i in range(L):
        inp = X if i == 0 else A[i - 1]
        gram = (jnp.vdot(inp, inp) + n) / n
        c_W.append((smooth if i == L - 1 else rho0 * lip**2) * gram)
        if i < L - 1:
            Wn = jnp.vdot(params["W"][i + 1], params["W"][i + 1])
            c_A.append(rho0 / n + (smooth / n if i + 1 == L - 1 else rho0 * lip**2 / n) * Wn)
    A = () if cfg.batch_size else tuple(A)
    W, b = tuple(params["W"]), tuple(params["b"])
    return IPDLAMState(W=W, b=b, W_prev=W, b_prev=b, aux=Rows(A=A, A_prev=A), c_W=jnp.asarray(jnp.stack(c_W), dtype),
                       c_A=jnp.asarray(jnp.stack(c_A) if c_A else jnp.zeros((0,)), dtype),
                       rho=jnp.asarray(rho0, dtype), k=jnp.zeros((), jnp.int32),
                       key=jax.random.PRNGKey(seed))  # raw uint32 key: plain array leaf


# ---------------------------------------------------------------------------------------------- public API
def _regularizers(regularizers, L: int) -> tuple:
    """One :mod:`optlab.prox` penalty per weight matrix (``prox.zero()`` for None) from None, one penalty, or a list."""
    one = regularizers is None or (hasattr(regularizers, "prox") and hasattr(regularizers, "value"))
    regs = [prox_mod.zero() if r is None else r for r in ([regularizers] * L if one else regularizers)]
    if len(regs) != L:
        raise ValueError(f"regularizers must be one penalty or a list of {L} (one per weight matrix), got {len(regs)}")
    for j, r in enumerate(regs):
        if not (hasattr(r, "prox") and hasattr(r, "value")):
            raise TypeError(f"regularizers[{j}] must be an optlab.prox penalty (or None), got {type(r).__name__}")
    return tuple(regs)


def build(X, y, *, layers, activation="relu", loss="cross_entropy", beta=0.8, beta_schedule="constant", rho0=1e-2,
          rho_growth=1.05, rho_max=10.0, batch_size=None, inner_sweeps=3, seed=0, regularizers=None, params0=None,
          X_test=None, y_test=None, c_shrink=0.5, c_grow=2.0, decrease=0.5, max_backtracks=30, weighted=False):
    """Validate the inputs and return ``(cfg, problem, state)`` (what :func:`ipdlam` runs; tests step it by hand).

    ``weighted=True`` gives the samples per-row weights (ones) and the global count ``n``, as a parallel executor
    needs (it pads the rows with zero-weight rows); the serial problem has none and keeps the plain means."""
    mlp.activation(activation)
    validate.choice("loss", loss, mlp.LOSSES)
    validate.choice("beta_schedule", beta_schedule, _SCHEDULES)
    validate.in_interval("beta", beta, 0.0, 1.0, high_open=True, hint="beta=0 is DLAM")
    validate.positive("rho0", rho0, example="1e-2")
    validate.in_interval("rho_growth", rho_growth, 1.0, hint="rho_growth (κ) >= 1; 1 = fixed ρ")
    validate.in_interval("rho_max", rho_max, float(rho0), hint=f"rho_max >= rho0 = {rho0}", finite=False)
    validate.in_interval("c_shrink", c_shrink, 0.0, 1.0, low_open=True)
    validate.in_interval("c_grow", c_grow, 1.0, low_open=True, hint="the constant grows by c_grow per trial")
    validate.in_interval("decrease", decrease, 0.0, 1.0, low_open=True, high_open=True)
    max_backtracks = validate.count("max_backtracks", max_backtracks, minimum=1)
    seed = validate.seed("seed", seed)
    X, y, layers, X_test, y_test = mlp.check_data(X, y, layers, X_test, y_test, solver="ipdlam")
    n, dtype, L = X.shape[0], X.dtype, len(layers) - 1
    if batch_size is not None:
        batch_size = validate.count("batch_size", batch_size, minimum=1, maximum=n)
        inner_sweeps = validate.count("inner_sweeps", inner_sweeps, minimum=1)
    regs = _regularizers(regularizers, L)

    cfg = Config(n_layers=L, activation=activation, loss=loss, beta_schedule=beta_schedule, batch_size=batch_size or 0,
                 n_batches=(n // batch_size) if batch_size else 1, inner_sweeps=int(inner_sweeps))
    as_dt = functools.partial(jnp.asarray, dtype=dtype)
    data = Rows(X=X, y=y, weight=jnp.ones(n, dtype) if weighted else None)
    prob = IPDLAMProblem(data=data, n=as_dt(n) if weighted else None, X_test=X_test, y_test=y_test, regs=regs,
                         beta=as_dt(beta), rho_growth=as_dt(rho_growth), rho_max=as_dt(rho_max),
                         c_shrink=as_dt(c_shrink), c_grow=as_dt(c_grow), decrease=as_dt(decrease),
                         c_min=as_dt(1e3 * np.finfo(np.dtype(dtype)).tiny),
                         max_backtracks=jnp.asarray(int(max_backtracks), jnp.int32))
    state = init(cfg, prob, mlp.start_params(params0, layers, activation, seed, dtype), float(rho0), int(seed))
    return cfg, prob, state


def ipdlam(X, y, *, layers, activation="relu", loss="cross_entropy", iters=300, beta=0.8,
           beta_schedule="constant", rho0=1e-2, rho_growth=1.05, rho_max=10.0, batch_size=None, inner_sweeps=3,
           seed=0, regularizers=None, params0=None, X_test=None, y_test=None, c_shrink=0.5, c_grow=2.0,
           decrease=0.5, max_backtracks=30, train_metrics=True, maxiter=None, tol=0.0, label="iPDLAM", parallel=None,
           **run):
    r"""Train an MLP by iPDLAM (Qiao, Sun, Pan & Li, "Inertial proximal deep learning alternating minimization for
    efficient neural network training", ICASSP 2021; no public code, the formulation below is ours).

    **Problem** (penalty form; rows are samples, :math:`a_0 = X\in\mathbb R^{n\times d}`, :math:`\sigma` = ReLU,
    tanh or sigmoid, the last layer linear):

    .. math::
        \min_{W, b, a}\ \Phi_\rho = \frac1n\sum_{i=1}^n \ell\bigl((a_{L-1}W_L + b_L)_i, y_i\bigr)
          + \sum_{l=1}^{L} r_l(W_l)
          + \frac{\rho}{2n}\sum_{l=1}^{L-1}\bigl\|a_l - \sigma(a_{l-1}W_l + \mathbf 1 b_l^\top)\bigr\|_F^2 .

    The penalty is scaled by :math:`1/n` like the loss, so ρ does not grow with the sample size.

    **Updates.** Blocks :math:`B = (W_1,b_1), a_1, (W_2,b_2), \dots, a_{L-1}, (W_L,b_L)`, once each per iteration
    in this order (Gauss–Seidel: every block sees the newest values of the others):

    .. math::
        \hat B = B^k + \beta_k (B^k - B^{k-1}),\qquad
        B^{k+1} = \operatorname{prox}_{r_B/c_B}\Bigl(\hat B - \tfrac1{c_B}\nabla_B\Phi_{\rho_k}(\dots,\hat B,\dots)
        \Bigr),\qquad \rho_{k+1} = \min(\rho_{\max}, \kappa\rho_k)

    (the prox acts on :math:`W_l` only). :math:`c_B` by a capped backtracking search: start at ``c_shrink`` × the
    block's previous constant, multiply by ``c_grow`` until

    .. math:: \Phi_\rho(B^{k+1}) \le \Phi_\rho(\hat B) - \tfrac{\delta c_B}{2}\|B^{k+1} - \hat B\|^2
              \qquad (\delta = \text{``decrease''}),

    at most ``max_backtracks`` times; if no trial passes, the block stays at :math:`\hat B` and keeps its previous
    constant. So every block update
    satisfies the inequality, and with β = 0 (:func:`dlam`) no block update increases :math:`\Phi_\rho`. The first
    constants are Frobenius-norm bounds of the block Lipschitz constants. Inertia: ``beta_schedule="constant"``:
    :math:`\beta_k = \beta`; ``"increasing"``: :math:`\beta_k = \min(\beta, k/(k+3))`. ``rho_growth=1``: fixed ρ.

    **Mini-batch mode** (``batch_size=b``, serial only): one iteration is one epoch over a seeded permutation (the
    ``n mod b`` remainder is skipped that epoch); per batch the :math:`a_l` are created by a forward pass,
    ``inner_sweeps`` sweeps run on the batch's :math:`\Phi_\rho` (with :math:`n = b`), then the :math:`a_l` are
    dropped; only the weights (and their previous values) are kept. The logged ``objective`` is then Φ_ρ at the
    forward pass, i.e. the regularised training loss.

    **Data-parallel** (``parallel=``, full batch): the samples :math:`X_w, y_w` and their :math:`a_l` are split
    over the workers; each weight block's gradient is the sum of the workers' gradients (``comm.reduce``), every
    objective value of a search is a sum over workers, and each worker updates the :math:`a_l` rows it holds (the
    :math:`a_l` blocks are row-separable; their common constant comes from the summed test). ``Sync(n)`` gives the
    serial iterates to rounding. ``SimulatedAsync(n, max_delay)``: every block's line search evaluates
    :math:`\Phi_\rho` over all rows (a barrier reduce), so each round waits for every worker and is synchronous:
    the run is the ``Sync`` run and the simulated clock waits for the slowest worker (the asynchronous executors run
    a step with a barrier as a synchronous round; see :mod:`optlab.algorithm`).

    Args:
        X, y: training data ``(n, d)`` (its float dtype is the working dtype; integers become float32) and
            integer labels in ``0..C-1``.
        layers: widths ``[d, h_1, ..., h_{L-1}, C]``; ``layers[0]`` must be ``X.shape[1]`` and ``layers[-1]`` the
            number of classes.
        activation: ``"relu"``, ``"tanh"`` or ``"sigmoid"`` (hidden layers; the output layer is linear).
        loss: ``"cross_entropy"`` (softmax) or ``"squared"`` (on one-hot targets).
        iters: iterations (= block sweeps; epochs in mini-batch mode); ``maxiter`` is an alias.
        beta, beta_schedule: inertia β ∈ [0, 1) and its schedule (``"constant"`` or ``"increasing"``).
        rho0, rho_growth, rho_max: penalty warm-up ρ_{k+1} = min(ρ_max, κρ_k); ρ0 > 0, κ = ``rho_growth`` ≥ 1
            (1 = fixed ρ), ρ_max ≥ ρ0.
        batch_size, inner_sweeps: mini-batch mode (None: full batch) and sweeps per batch.
        seed: initial weights (:func:`optlab.solvers.mlp.init_params`) and batch permutations.
        regularizers: one :mod:`optlab.prox` penalty for all weight matrices, or a list of L (None = none).
        params0: initial ``{"W": (...), "b": (...)}`` instead of the seeded initialisation.
        X_test, y_test: adds the metrics ``test_loss`` and ``test_acc``.
        c_shrink, c_grow, decrease, max_backtracks: the backtracking search (above).
        train_metrics: log ``objective`` (Φ_ρ), ``train_loss``, ``train_acc`` (forward passes on X).
        tol: stop when the relative change of the weights ``rel_change`` ≤ tol (default 0: only at an exact fixed
            point; a sweep in which a search hit its cap logs ``rel_change = inf`` and never stops the run).
        **run: the harness options ``metrics``, ``callback``, ``log_every``, ``max_time``, ``progress``,
            ``checkpoint``, ``resume``, ``jit`` (a :class:`optlab.harness.JitRun`): see :func:`optlab.harness.solve`.
        parallel: an executor of :mod:`optlab.parallel` (``Sync(n)``, ``SimulatedAsync(n, max_delay)``), full
            batch only; adds ``sim_time`` (simulated clock) and ``arrived``.

    Returns:
        :class:`optlab.Result` with ``params = {"W": (...), "b": (...)}`` and ``predict(X)`` = class scores; the
        trace logs the metrics above and ``rho`` (used in the last sweep), ``beta``, ``rejected`` (blocks whose
        search hit the cap and stayed at B̂), ``rel_change``.

    Example:
        >>> import numpy as np, optlab as ol
        >>> rng = np.random.default_rng(0); X = rng.normal(size=(200, 5)); y = (X[:, 0] > 0).astype(int)
        >>> res = ol.ipdlam(X, y, layers=[5, 16, 2], iters=100, beta=0.5, progress=False)
        >>> res.predict(X).shape, res.trace.last("train_acc") > 0.9
        ((200, 2), True)
    """
    validate.executor(parallel)
    iters = validate.count("maxiter" if maxiter is not None else "iters", iters if maxiter is None else maxiter)
    tol = validate.tolerance("tol", tol)
    seed = validate.seed("seed", seed)
    if parallel is not None and batch_size is not None:
        raise ValueError("ipdlam(parallel=...) runs the full-batch sweep (samples split over workers); "
                         "batch_size is not available with parallel=: pass batch_size=None")
    cfg, prob, state = build(X, y, layers=layers, activation=activation, loss=loss, beta=beta,
                             beta_schedule=beta_schedule, rho0=rho0, rho_growth=rho_growth, rho_max=rho_max,
                             batch_size=batch_size, inner_sweeps=inner_sweeps, seed=seed, regularizers=regularizers,
                             params0=params0, X_test=X_test, y_test=y_test, c_shrink=c_shrink, c_grow=c_grow,
                             decrease=decrease, max_backtracks=max_backtracks, weighted=parallel is not None)
    # one algorithm for both names (β is data, not configuration): DLAM reuses iPDLAM's compiled loop
    alg = algorithm(cfg, X_test is not None, bool(train_metrics))
    meta = {"solver": "ipdlam" if float(beta) > 0 else "dlam", "label": label, "layers": [int(h) for h in layers],
            "activation": activation, "loss": loss, "beta": float(beta), "beta_schedule": beta_schedule,
            "rho0": float(rho0), "rho_growth": float(rho_growth), "rho_max": float(rho_max), "batch_size": batch_size,
            "inner_sweeps": int(inner_sweeps) if batch_size else None, "seed": int(seed),
            "dtype": str(prob.data.X.dtype), "n": int(prob.data.X.shape[0])}
    return harness.solve(alg, state, prob, executor=parallel, maxiter=iters, tol=tol, meta=meta, **run)


def dlam(X, y, **kwargs):
    r"""Proximal DLAM: :func:`ipdlam` with ``beta=0`` (no inertia), the ablation of Qiao et al., ICASSP 2021.

    Each block takes one proximal-linearised step from its current value,
    :math:`B^{k+1} = \operatorname{prox}_{r_B/c_B}(B^k - \nabla_B\Phi_{\rho_k}/c_B)`, with the same backtracked
    constants, so at fixed ρ no block update increases :math:`\Phi_\rho`. Same arguments as :func:`ipdlam`
    (``beta`` is ignored), ``parallel=`` included.

    Example:
        >>> import numpy as np, optlab as ol
        >>> rng = np.random.default_rng(0); X = rng.normal(size=(200, 5)); y = (X[:, 0] > 0).astype(int)
        >>> res = ol.dlam(X, y, layers=[5, 16, 2], iters=100, progress=False)
        >>> res.trace.meta["solver"], res.trace.last("train_acc") > 0.9
        ('dlam', True)
    """
    kwargs.setdefault("label", "DLAM")
    return ipdlam(X, y, **{**kwargs, "beta": 0.0})
