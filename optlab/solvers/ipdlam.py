r"""iPDLAM: inertial proximal deep-learning alternating minimisation (and DLAM, its β = 0 ablation).

Paper: J. Qiao, T. Sun, H. Pan, D. Li, "Inertial proximal deep learning alternating minimization for efficient
neural network training", ICASSP 2021. No public code; the formulation below is SPEC §3 **[ours]**.

Problem (penalty form of training an :math:`L`-layer MLP; rows are samples, :math:`a_0 = X\in\mathbb R^{n\times d}`,
:math:`\sigma` = ReLU, tanh or sigmoid, the last layer linear):

.. math::
    \min_{W, b, a}\ \Phi_\rho = \frac1n\sum_{i=1}^n \ell\bigl((a_{L-1}W_L + b_L)_i, y_i\bigr)
      + \sum_{l=1}^{L} r_l(W_l)
      + \frac{\rho}{2n}\sum_{l=1}^{L-1}\bigl\|a_l - \sigma(a_{l-1}W_l + \mathbf 1 b_l^\top)\bigr\|_F^2 .

The penalty is scaled by :math:`1/n` like the loss, so ρ does not have to grow with the sample size. The blocks are
:math:`B = (W_1,b_1), a_1, (W_2,b_2), a_2, \dots, a_{L-1}, (W_L,b_L)`, updated once each per iteration in this order
(Gauss–Seidel: every block sees the newest values of the others). For each block

.. math::
    \hat B = B^k + \beta_k (B^k - B^{k-1}),\qquad
    B^{k+1} = \operatorname{prox}_{r_B/c_B}\Bigl(\hat B - \tfrac1{c_B}\nabla_B\Phi_{\rho_k}(\dots,\hat B,\dots)\Bigr),

(the prox acts on :math:`W_l` only; biases and the :math:`a_l` have no regulariser) and after the sweep
:math:`\rho_{k+1} = \min(\rho_{\max}, \kappa\rho_k)` (the warm-up; ``rho_growth`` = κ).

**Step constants [ours].** :math:`c_B` comes from a capped backtracking search: start at
``c_shrink`` × the block's previous constant, multiply by ``c_grow`` until the sufficient-decrease test

.. math:: \Phi_\rho(B^{k+1}) \le \Phi_\rho(\hat B) - \tfrac{\delta c_B}{2}\|B^{k+1} - \hat B\|^2 \qquad (\delta = \text{``decrease''})

holds, at most ``max_backtracks`` times. The test is on the exact objective (only the terms that involve
:math:`B` are evaluated; the others cancel). When :math:`\nabla_B\Phi` is :math:`L_B`-Lipschitz and :math:`r_B`
is convex, every :math:`c_B \ge L_B/(1-\delta)` passes (descent lemma plus the prox inequality), so the search ends;
with ReLU the gradient is only piecewise Lipschitz, and in float32 rounding can fail the test for ever, hence the
cap: if no trial passes, the block stays at :math:`\hat B` (which satisfies the inequality trivially). So *every*
block update satisfies the inequality, and with β = 0 no block update increases :math:`\Phi_\rho` (tested in
``tests/test_ipdlam.py``). The first constants are Frobenius-norm upper bounds of the block Lipschitz constants.

**Cost [ours].** For a weight block without regulariser the trial point's pre-activation is affine in
:math:`1/c_B` (:math:`\hat Z - D/c_B`, :math:`D = a_{l-1}\nabla_{W}\Phi + \mathbf 1\nabla_b\Phi^\top`), so the
search costs one extra product with :math:`a_{l-1}` however many trials it takes; the following :math:`a_l` block
reuses the accepted pre-activation. A full-batch sweep of a one-hidden-layer network then costs three products
with X (a gradient step costs two). With a regulariser the trials go through the prox and are computed directly.

**Inertia.** ``beta_schedule="constant"``: :math:`\beta_k = \beta`; ``"increasing"``:
:math:`\beta_k = \min(\beta, k/(k+3))` (no momentum at the start, when the warm-up changes Φ fastest).
β = 0 is proximal DLAM (:func:`dlam`), ``rho_growth=1`` the fixed-ρ ablation.

**Mini-batch mode** (``batch_size=b``): one harness step is one epoch over a fresh seeded permutation (the
remainder ``n mod b`` samples are skipped that epoch). For each batch the auxiliary variables
:math:`a_l` are *created* by a forward pass of the batch, ``inner_sweeps`` block sweeps are run on the batch's
:math:`\Phi_\rho` (the :math:`1/n` scaling uses :math:`n = b`), and then the :math:`a_l` are discarded. Only the
weights (and their previous values, for the inertia, which carries over from batch to batch) live in the state, so
the memory is :math:`O(b\sum_l h_l)` for the auxiliary variables instead of :math:`O(n\sum_l h_l)`, so the 60k
MNIST set never needs all its :math:`a_l` at once (only the 10k set was available to test this). (The train metrics are forward passes of the whole set;
pass ``train_metrics=False`` to skip them.) In this mode the logged ``objective`` is :math:`\Phi_\rho` at the
feasible point :math:`a_l = \sigma(\dots)`, i.e. the regularised training loss.

Example:
    >>> import numpy as np, optlab as ol
    >>> rng = np.random.default_rng(0); X = rng.normal(size=(200, 5)); y = (X[:, 0] > 0).astype(int)
    >>> res = ol.ipdlam(X, y, layers=[5, 16, 2], iters=100, beta=0.5, progress=False)
    >>> res.predict(X).shape, res.trace.last("train_acc") > 0.9
    ((200, 2), True)
"""
from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from .. import harness, operators
from .. import prox as prox_mod
from . import mlp

__all__ = ["ipdlam", "dlam", "Net", "Rows", "IPDLAMState", "IPDLAMProblem", "Config", "make_step", "init", "objective",
           "sweep", "build"]

_SCHEDULES = ("constant", "increasing")


class Net(NamedTuple):
    W: tuple            # (W_1, ..., W_L), W_l of shape (h_{l-1}, h_l)
    b: tuple            # (b_1, ..., b_L)
    A: tuple            # (a_1, ..., a_{L-1}), each (n, h_l); () in mini-batch mode


class IPDLAMState(NamedTuple):
    net: Net            # B^k
    prev: Net           # B^{k-1} (inertia)
    c_W: jax.Array      # (L,) backtracked constants of the weight blocks
    c_A: jax.Array      # (L-1,) constants of the a_l blocks
    rho: jax.Array      # ρ_k, the penalty the next sweep uses
    k: jax.Array        # iteration counter (int32)
    key: jax.Array      # PRNG key (mini-batch permutations)


class IPDLAMProblem(NamedTuple):
    X: jax.Array
    y: jax.Array
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


# ------------------------------------------------------------------------------------------------ objective
class Rows:
    """How the sweep sums over samples. This one: plain sums over the rows it is given (the serial solver).
    :mod:`.ipdlam_parallel` passes a per-worker version (masked rows, global ``n``, sums over workers)."""

    def loss(self, loss_name, z, target):   # (1/n) Σ_i ℓ(z_i, y_i)
        return mlp.mean_loss(loss_name, z, target)

    def sq(self, rho, r):                  # (ρ/2n) ‖r‖²
        return rho / (2 * r.shape[0]) * jnp.vdot(r, r)

    def value(self, v):                    # a sum over samples (objective value at a trial point)
        return v

    def grad(self, i, g):                  # the gradient of weight block i (a sum over samples)
        return g

    def keep(self, new, old):              # the new value of a per-sample block (a_l)
        return new

    def trial(self, i, v, step, v_hat):    # Φ's data terms at a trial point of weight block i (B̂ + step), from
        return v                           # this worker's value v there (async: absent workers by a model)


SERIAL = Rows()


def _term(cfg: Config, i: int, inp, W, b, target, rho, rows: Rows = SERIAL):
    """Layer ``i``'s (0-based) term of Φ_ρ: the loss for the last layer, the scaled penalty otherwise."""
    return _term_z(cfg, i, inp @ W + b, target, rho, rows)


def objective(cfg: Config, net: Net, X, y, rho, regs):
    """Φ_ρ(W, b, a) on the batch ``X, y`` (exact, all terms)."""
    total = 0.0
    for i in range(cfg.n_layers):
        inp = X if i == 0 else net.A[i - 1]
        target = y if i == cfg.n_layers - 1 else net.A[i]
        total = total + _term(cfg, i, inp, net.W[i], net.b[i], target, rho) + regs[i].value(net.W[i])
    return total


# ------------------------------------------------------------------------------------------- block update
def _sqnorm(tree):
    return sum(jnp.vdot(x, x) for x in jax.tree.leaves(tree))


def _block(cfg: Config, prob: IPDLAMProblem, f, reg_value, prox_fn, B, B_prev, c_prev, beta, rows: Rows = SERIAL,
           layer=None):
    """One inertial proximal-linearised block step with a capped backtracking search for its constant.

    Returns ``(B_new, B_hat, c, accepted)``; ``B_new = B_hat`` when no trial passed the test. ``layer``: the weight
    block's layer (its gradient is a sum over samples, ``rows.grad``); None for a per-sample block.
    """
    B_hat = jax.tree.map(lambda x, xp: x + beta * (x - xp), B, B_prev)
    f_hat, g = jax.value_and_grad(f)(B_hat)
    f_hat = rows.value(f_hat)
    if layer is not None:
        g = rows.grad(layer, g)
    phi_hat = f_hat + reg_value(B_hat)
    dtype = f_hat.dtype

    def trial(c):
        B_new = prox_fn(jax.tree.map(lambda x, gx: x - gx / c, B_hat, g), 1 / c)
        d2 = _sqnorm(jax.tree.map(lambda a, b: a - b, B_new, B_hat))
        if layer is None:   # a per-sample block: its squared step is a sum over samples too
            d2 = rows.value(d2)
        if layer is None:
            phi_new = rows.value(f(B_new)) + reg_value(B_new)
        else:
            step = jax.tree.map(lambda a, b: a - b, B_new, B_hat)
            phi_new = rows.trial(layer, f(B_new), step, f_hat) + reg_value(B_new)
        return B_new, phi_new <= phi_hat - prob.decrease * c / 2 * d2

    def cond(carry):
        j, _, _, ok = carry
        return (~ok) & (j < prob.max_backtracks)

    def body(carry):
        j, c, _, _ = carry
        c = c * prob.c_grow
        B_new, ok = trial(c)
        return j + 1, c, B_new, ok

    # first trial at c0 = c_shrink·c_prev, then up to max_backtracks growths (one traced trial: smaller programs)
    c0 = jnp.maximum(c_prev * prob.c_shrink, prob.c_min).astype(dtype)
    _, c, B_new, ok = jax.lax.while_loop(cond, body, (jnp.int32(-1), c0 / prob.c_grow, B_hat, jnp.array(False)))
    B_new = jax.tree.map(lambda a, b: jnp.where(ok, a, b), B_new, B_hat)
    return B_new, B_hat, c, ok


def _term_z(cfg: Config, i: int, Z, target, rho, rows: Rows = SERIAL):
    """:func:`_term` as a function of the pre-activation ``Z = inp @ W + b``."""
    if i == cfg.n_layers - 1:
        return rows.loss(cfg.loss, Z, target)
    return rows.sq(rho, target - mlp.ACTIVATIONS[cfg.activation](Z))


def _w_block_linear(prob: IPDLAMProblem, phi_z, inp, W, b, W_prev, b_prev, c_prev, beta, rows: Rows = SERIAL,
                    layer: int = 0):
    """:func:`_block` for a weight block without regulariser, with every trial done in the space of
    pre-activations: the trial point is (Ŵ − G_W/c, b̂ − g_b/c), so its pre-activation is Ẑ − D/c with
    D = inp·G_W + 1g_bᵀ, and the search costs one product with ``inp`` however many trials it takes (three in all,
    like a forward–backward pass plus one). Returns ``(B_new, B_hat, c, accepted, Z_new)``."""
    W_hat, b_hat = W + beta * (W - W_prev), b + beta * (b - b_prev)
    Z_hat = inp @ W_hat + b_hat
    f_hat, gZ = jax.value_and_grad(phi_z)(Z_hat)
    f_hat = rows.value(f_hat)
    gW, gb = rows.grad(layer, (inp.T @ gZ, jnp.sum(gZ, axis=0)))
    D = inp @ gW + gb
    g2 = jnp.vdot(gW, gW) + jnp.vdot(gb, gb)
    dtype = f_hat.dtype

    def cond(carry):
        j, _, _, ok = carry
        return (~ok) & (j < prob.max_backtracks)

    def body(carry):
        j, c, _, _ = carry
        c = c * prob.c_grow
        Z = Z_hat - D / c
        phi = rows.trial(layer, phi_z(Z), (-gW / c, -gb / c), f_hat)
        return j + 1, c, Z, phi <= f_hat - prob.decrease / (2 * c) * g2

    c0 = jnp.maximum(c_prev * prob.c_shrink, prob.c_min).astype(dtype)
    _, c, Z, ok = jax.lax.while_loop(cond, body, (jnp.int32(-1), c0 / prob.c_grow, Z_hat, jnp.array(False)))
    W_new = jnp.where(ok, W_hat - gW / c, W_hat)
    b_new = jnp.where(ok, b_hat - gb / c, b_hat)
    return (W_new, b_new), (W_hat, b_hat), c, ok, jnp.where(ok, Z, Z_hat)


def sweep(cfg: Config, prob: IPDLAMProblem, net: Net, prev: Net, c_W, c_A, rho, beta, X, y, record: bool = False,
          rows: Rows = SERIAL):
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
                prob, lambda Z, i=i, target=target: _term_z(cfg, i, Z, target, rho, rows), inp, W[i], b[i],
                prev.W[i], prev.b[i], c_W[i], beta, rows, i)
        else:
            def f_w(Wb, i=i, inp=inp, target=target):
                return _term(cfg, i, inp, Wb[0], Wb[1], target, rho, rows)

            (W_i, b_i), hat, c, ok = _block(
                cfg, prob, f_w, lambda Wb, reg=reg: reg.value(Wb[0]),
                lambda Wb, t, reg=reg: (reg.prox(Wb[0], t), Wb[1]), (W[i], b[i]), (prev.W[i], prev.b[i]), c_W[i],
                beta, rows, i)
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
            return rows.sq(rho, a - s_i) + _term(cfg, i + 1, a, W[i + 1], b[i + 1], nxt_target, rho, rows)

        a_i, hat, c, ok = _block(cfg, prob, f_a, lambda a: 0.0, lambda a, t: a, A[i], prev.A[i], c_A[i], beta, rows)
        a_i = rows.keep(a_i, A[i])
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


def _rel_change(new: Net, old: Net):
    num = _sqnorm(jax.tree.map(lambda a, b: a - b, (new.W, new.b), (old.W, old.b)))
    den = jnp.maximum(_sqnorm((new.W, new.b)), jnp.finfo(new.W[0].dtype).tiny)
    return jnp.sqrt(num / den)


@functools.lru_cache(maxsize=None)
def make_step(cfg: Config):
    """The pure ``step(state, problem) -> (state, info)`` for a static configuration (cached, so hashable).

    Full batch: one sweep over all blocks, then the ρ update. Mini-batch: one epoch (see the module docstring).
    """

    def full_step(state: IPDLAMState, prob: IPDLAMProblem):
        beta = _beta_k(cfg, prob.beta, state.k)
        net, c_W, c_A, rejected, _ = sweep(cfg, prob, state.net, state.prev, state.c_W, state.c_A, state.rho,
                                           beta, prob.X, prob.y)
        new = IPDLAMState(net=net, prev=state.net, c_W=c_W, c_A=c_A,
                          rho=jnp.minimum(prob.rho_max, prob.rho_growth * state.rho), k=state.k + 1, key=state.key)
        info = {"rho": state.rho, "beta": beta, "rejected": rejected, "rel_change": _rel_change(net, state.net)}
        return new, info

    def batch_step(state: IPDLAMState, prob: IPDLAMProblem):
        beta = _beta_k(cfg, prob.beta, state.k)
        key, sub = jax.random.split(state.key)
        n_used = cfg.n_batches * cfg.batch_size
        idx = jax.random.permutation(sub, prob.X.shape[0])[:n_used].reshape(cfg.n_batches, cfg.batch_size)

        def one_batch(carry, rows):
            W, b, W_prev, b_prev, c_W, c_A, rejected = carry
            Xb, yb = prob.X[rows], prob.y[rows]
            A = mlp.hidden({"W": W, "b": b}, Xb, cfg.activation)   # fresh a_l for this batch only
            def inner(_, c):
                net, prev, c_W, c_A, rejected = c
                new, c_W, c_A, rej, _ = sweep(cfg, prob, net, prev, c_W, c_A, state.rho, beta, Xb, yb)
                return new, net, c_W, c_A, rejected + rej

            net, prev, c_W, c_A, rejected = jax.lax.fori_loop(
                0, cfg.inner_sweeps, inner, (Net(W, b, A), Net(W_prev, b_prev, A), c_W, c_A, rejected))
            return (net.W, net.b, prev.W, prev.b, c_W, c_A, rejected), None

        carry0 = (state.net.W, state.net.b, state.prev.W, state.prev.b, state.c_W, state.c_A, jnp.int32(0))
        (W, b, W_prev, b_prev, c_W, c_A, rejected), _ = jax.lax.scan(one_batch, carry0, idx)
        net = Net(W, b, ())
        new = IPDLAMState(net=net, prev=Net(W_prev, b_prev, ()), c_W=c_W, c_A=c_A,
                          rho=jnp.minimum(prob.rho_max, prob.rho_growth * state.rho), k=state.k + 1, key=key)
        info = {"rho": state.rho, "beta": beta, "rejected": rejected, "rel_change": _rel_change(net, state.net)}
        return new, info

    step = batch_step if cfg.batch_size else full_step
    step.__name__ = f"ipdlam_{'batch' if cfg.batch_size else 'full'}_step"
    return step


# ------------------------------------------------------------------------------------------------ metrics
def _params(state):
    return {"W": state.net.W, "b": state.net.b}


@functools.lru_cache(maxsize=None)
def _metrics(cfg: Config, with_test: bool, with_train: bool):
    def obj(state, prob):
        net = state.net
        if cfg.batch_size:
            net = Net(net.W, net.b, mlp.hidden(_params(state), prob.X, cfg.activation))
        return objective(cfg, net, prob.X, prob.y, state.rho, prob.regs)

    def train_loss(state, prob):
        return mlp.mean_loss(cfg.loss, mlp.apply(_params(state), prob.X, cfg.activation), prob.y)

    def train_acc(state, prob):
        return mlp.accuracy(mlp.apply(_params(state), prob.X, cfg.activation), prob.y)

    def test_acc(state, prob):
        return mlp.accuracy(mlp.apply(_params(state), prob.X_test, cfg.activation), prob.y_test)

    def test_loss(state, prob):
        return mlp.mean_loss(cfg.loss, mlp.apply(_params(state), prob.X_test, cfg.activation), prob.y_test)

    out = {}
    if with_train:
        out.update(objective=obj, train_loss=train_loss, train_acc=train_acc)
    if with_test:
        out.update(test_loss=test_loss, test_acc=test_acc)
    return out


@functools.lru_cache(maxsize=None)
def _predict_fn(activation: str):
    def predict(params, X):
        return mlp.apply(params, jnp.asarray(X, params["W"][0].dtype), activation)
    return predict


# --------------------------------------------------------------------------------------------------- init
def init(cfg: Config, prob: IPDLAMProblem, params: dict, rho0: float, seed: int) -> IPDLAMState:
    """Initial state: the given weights, a_l from a forward pass (a feasible point, zero penalty), B^{-1} = B^0,
    and step constants from Frobenius-norm upper bounds of the block Lipschitz constants."""
    X = prob.X if not cfg.batch_size else prob.X[: cfg.batch_size]
    dtype = X.dtype
    n = X.shape[0]
    L = cfg.n_layers
    A = mlp.hidden(params, X, cfg.activation)
    lip = mlp.activation_lipschitz(cfg.activation)
    smooth = mlp.loss_smoothness(cfg.loss)
    c_W, c_A = [], []
    for i in range(L):
        inp = X if i == 0 else A[i - 1]
        gram = (jnp.vdot(inp, inp) + n) / n
        c_W.append((smooth if i == L - 1 else rho0 * lip**2) * gram)
        if i < L - 1:
            Wn = jnp.vdot(params["W"][i + 1], params["W"][i + 1])
            c_A.append(rho0 / n + (smooth / n if i + 1 == L - 1 else rho0 * lip**2 / n) * Wn)
    net = Net(tuple(params["W"]), tuple(params["b"]), () if cfg.batch_size else tuple(A))
    return IPDLAMState(net=net, prev=net, c_W=jnp.asarray(jnp.stack(c_W), dtype),
                       c_A=jnp.asarray(jnp.stack(c_A) if c_A else jnp.zeros((0,)), dtype),
                       rho=jnp.asarray(rho0, dtype), k=jnp.zeros((), jnp.int32), key=jax.random.PRNGKey(seed))  # raw uint32 key: plain array leaf


# ---------------------------------------------------------------------------------------------- public API
def _regularizers(regularizers, L: int) -> tuple:
    if regularizers is None:
        return (prox_mod.zero(),) * L
    if hasattr(regularizers, "prox") and hasattr(regularizers, "value"):
        return (regularizers,) * L
    regs = tuple(regularizers)
    if len(regs) != L:
        raise ValueError(f"regularizers must be one penalty or a list of {L} (one per weight matrix), got {len(regs)}")
    out = []
    for j, r in enumerate(regs):
        if r is None:
            r = prox_mod.zero()
        if not (hasattr(r, "prox") and hasattr(r, "value")):
            raise TypeError(f"regularizers[{j}] must be an optlab.prox penalty (or None), got {type(r).__name__}")
        out.append(r)
    return tuple(out)


def _as_float(name, X, dtype=None):
    X = jnp.asarray(X) if dtype is None else jnp.asarray(X, dtype)
    if not jnp.issubdtype(X.dtype, jnp.floating):
        X = X.astype(jnp.float32)
    if X.ndim != 2:
        raise ValueError(f"{name} must be a 2-d array (n_samples, n_features), got shape {X.shape}")
    operators.check_finite(name, X)
    return X


def build(X, y, *, layers, activation="relu", loss="cross_entropy", beta=0.8, beta_schedule="constant", rho0=1e-2,
          rho_growth=1.05, rho_max=10.0, batch_size=None, inner_sweeps=3, seed=0, regularizers=None, params0=None,
          X_test=None, y_test=None, c_shrink=0.5, c_grow=2.0, decrease=0.5, max_backtracks=30):
    """Validate the inputs and return ``(cfg, problem, state)`` (what :func:`ipdlam` runs; tests step it by hand)."""
    if activation not in mlp.ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(mlp.ACTIVATIONS)}, got {activation!r}")
    if loss not in mlp.LOSSES:
        raise ValueError(f"loss must be one of {mlp.LOSSES}, got {loss!r}")
    if beta_schedule not in _SCHEDULES:
        raise ValueError(f"beta_schedule must be one of {_SCHEDULES}, got {beta_schedule!r}")
    if not 0 <= float(beta) < 1:
        raise ValueError(f"beta must be in [0, 1), got {beta}; beta=0 is DLAM")
    if not float(rho0) > 0:
        raise ValueError(f"rho0 must be > 0, got {rho0}")
    if not float(rho_growth) >= 1:
        raise ValueError(f"rho_growth (κ) must be >= 1 (1 = fixed ρ), got {rho_growth}")
    if not float(rho_max) >= float(rho0):
        raise ValueError(f"rho_max must be >= rho0 = {rho0}, got {rho_max}")
    if not (0 < c_shrink <= 1 and c_grow > 1 and 0 < decrease < 1 and int(max_backtracks) >= 1):
        raise ValueError("backtracking needs 0 < c_shrink <= 1, c_grow > 1, 0 < decrease < 1, max_backtracks >= 1; "
                         f"got {c_shrink}, {c_grow}, {decrease}, {max_backtracks}")
    X = _as_float("X", X)
    n, d = X.shape
    dtype = X.dtype
    layers = mlp.check_layers(layers, d)
    L = len(layers) - 1
    y = jnp.asarray(mlp.check_labels("y", y, n, layers[-1]))
    if (X_test is None) != (y_test is None):
        raise ValueError("give both X_test and y_test, or neither")
    if X_test is not None:
        X_test = _as_float("X_test", X_test, dtype)
        if X_test.shape[1] != d:
            raise ValueError(f"X_test has {X_test.shape[1]} features, X has {d}")
        y_test = jnp.asarray(mlp.check_labels("y_test", y_test, X_test.shape[0], layers[-1], require_all=False))
    if batch_size is not None:
        batch_size = int(batch_size)
        if not 1 <= batch_size <= n:
            raise ValueError(f"batch_size must be in 1..n = 1..{n} (or None for full batch), got {batch_size}")
        if int(inner_sweeps) < 1:
            raise ValueError(f"inner_sweeps must be >= 1, got {inner_sweeps}")
    regs = _regularizers(regularizers, L)

    cfg = Config(n_layers=L, activation=activation, loss=loss, beta_schedule=beta_schedule, batch_size=batch_size or 0,
                 n_batches=(n // batch_size) if batch_size else 1, inner_sweeps=int(inner_sweeps))
    as_dt = functools.partial(jnp.asarray, dtype=dtype)
    prob = IPDLAMProblem(X=X, y=y, X_test=X_test, y_test=y_test, regs=regs, beta=as_dt(beta),
                         rho_growth=as_dt(rho_growth), rho_max=as_dt(rho_max), c_shrink=as_dt(c_shrink),
                         c_grow=as_dt(c_grow), decrease=as_dt(decrease),
                         c_min=as_dt(1e3 * np.finfo(np.dtype(dtype)).tiny),
                         max_backtracks=jnp.asarray(int(max_backtracks), jnp.int32))
    if params0 is None:
        params0 = mlp.init_params(layers, activation, seed, dtype)
    else:
        params0 = {"W": tuple(jnp.asarray(w, dtype) for w in params0["W"]),
                   "b": tuple(jnp.asarray(v, dtype) for v in params0["b"])}
        for j, (w, v) in enumerate(zip(params0["W"], params0["b"])):
            if w.shape != (layers[j], layers[j + 1]) or v.shape != (layers[j + 1],):
                raise ValueError(f"params0 layer {j}: W {w.shape}, b {v.shape}; expected "
                                 f"{(layers[j], layers[j + 1])} and {(layers[j + 1],)}")
    state = init(cfg, prob, params0, float(rho0), int(seed))
    return cfg, prob, state


def ipdlam(X, y, *, layers, activation="relu", loss="cross_entropy", iters=300, beta=0.8,
           beta_schedule="constant", rho0=1e-2, rho_growth=1.05, rho_max=10.0, batch_size=None, inner_sweeps=3,
           seed=0, regularizers=None, params0=None, X_test=None, y_test=None, c_shrink=0.5, c_grow=2.0,
           decrease=0.5, max_backtracks=30, train_metrics=True, maxiter=None, tol=0.0, log_every=None,
           max_time=None, metrics=None, callback=None, progress=None, checkpoint=None, resume=None, jit=False,
           label="iPDLAM", parallel=None):
    r"""Train an MLP by iPDLAM (see the module docstring for the objective, the blocks and the updates).

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
        c_shrink, c_grow, decrease, max_backtracks: the backtracking search (see the module docstring).
        train_metrics: log ``objective`` (Φ_ρ), ``train_loss``, ``train_acc`` (forward passes on X).
        tol: stop when the relative change of the weights ``rel_change`` ≤ tol (default 0: never).
        metrics, callback, log_every, max_time, progress, checkpoint, resume: see :func:`optlab.harness.run`.
        jit: return the :class:`optlab.harness.JitRun` of the fully compiled loop.
        parallel: ``ol.parallel.Sync(n)`` or ``ol.parallel.Async(n, max_delay, ...)``: the samples are split over
            ``n`` workers, weight-block sums by ``psum`` (:mod:`.ipdlam_parallel`; full batch only). Adds
            ``sim_time`` (simulated clock) and ``arrived``.

    Returns:
        :class:`optlab.Result` with ``params = {"W": (...), "b": (...)}`` and ``predict(X)`` = class scores; the
        trace logs the metrics above and ``rho`` (used in the last sweep), ``beta``, ``rejected`` (blocks whose
        search hit the cap and stayed at B̂), ``rel_change``.
    """
    cfg, prob, state = build(X, y, layers=layers, activation=activation, loss=loss, beta=beta,
                             beta_schedule=beta_schedule, rho0=rho0, rho_growth=rho_growth, rho_max=rho_max,
                             batch_size=batch_size, inner_sweeps=inner_sweeps, seed=seed, regularizers=regularizers,
                             params0=params0, X_test=X_test, y_test=y_test, c_shrink=c_shrink, c_grow=c_grow,
                             decrease=decrease, max_backtracks=max_backtracks)
    iters = int(iters if maxiter is None else maxiter)
    layers = [int(h) for h in layers]
    n, dtype = prob.X.shape[0], prob.X.dtype
    if parallel is not None:
        from . import ipdlam_parallel  # imports this module
        step, state, prob, par_metrics = ipdlam_parallel.build(cfg, prob, state, parallel, X_test is not None,
                                                               bool(train_metrics))
        all_metrics = dict(par_metrics)
    else:
        all_metrics = dict(_metrics(cfg, X_test is not None, bool(train_metrics)))
        step = make_step(cfg)
    all_metrics.update(metrics or {})
    if jit:
        return harness.run_jit(step, state, prob, maxiter=iters, log_every=log_every, tol=tol,
                               stop_metric="rel_change", metrics=all_metrics)
    meta = {"solver": "ipdlam" if float(beta) > 0 else "dlam", "label": label, "layers": list(layers),
            "activation": activation, "loss": loss, "beta": float(beta), "beta_schedule": beta_schedule,
            "rho0": float(rho0), "rho_growth": float(rho_growth), "rho_max": float(rho_max),
            "batch_size": batch_size, "inner_sweeps": int(inner_sweeps) if batch_size else None, "seed": int(seed),
            "dtype": str(dtype), "n": n, "parallel": repr(parallel) if parallel is not None else None}
    return harness.run(step, state, prob, maxiter=iters, log_every=log_every, tol=tol, stop_metric="rel_change",
                       max_time=max_time, metrics=all_metrics, params=_params, callback=callback,
                       progress=progress, checkpoint=checkpoint, resume=resume, meta=meta,
                       predict_fn=_predict_fn(activation))


def dlam(X, y, **kwargs):
    """Proximal DLAM: :func:`ipdlam` with ``beta=0`` (no inertia); same arguments otherwise."""
    kwargs.setdefault("label", "DLAM")
    return ipdlam(X, y, **{**kwargs, "beta": 0.0})
