r"""Gradient-based training baselines (SGD, momentum, Adam, RMSProp, … from optax) in the optlab harness.

One harness step is one **epoch**: a single full-batch gradient step (``batch_size=None``) or a pass over a fresh
seeded permutation of the samples in mini-batches of ``batch_size`` (the ``n mod batch_size`` left-over samples
are skipped that epoch), inside one compiled ``lax.scan``. The minimised objective is the mean loss of
``model_apply(params, X)`` against ``y`` (plus an optional smooth ``penalty(params)``):

.. math:: \min_\theta\ \frac1n\sum_i \ell(f_\theta(x_i), y_i) + p(\theta),\qquad
          \theta \leftarrow \theta + \operatorname{update}_{\text{optax}}(\nabla_\theta, \text{state}).

:func:`train` is model-agnostic (any ``model_apply(params, X_batch)``, any params pytree, ``X`` of any shape with
samples on the first axis, e.g. sequences ``(n, T, d)``), so the other neural solvers (ADMMiRNN) reuse it;
:func:`train_mlp` is the MLP of :mod:`optlab.solvers.mlp` on top of it (same initialisation as
:func:`optlab.ipdlam` for the same ``seed``).

Compilation is keyed on the *objects* ``model_apply``, ``loss`` and the optimizer: pass module-level functions
(or cached ones) and an optimizer name (``"adam"``, ``"sgd"``, …, built once per ``(name, learning_rate,
optimizer_kwargs)`` and cached) so that a second run with new data of the same shape does not recompile. A
``optax.GradientTransformation`` object is accepted too (a new object compiles anew).

Example:
    >>> import numpy as np
    >>> from optlab.solvers.baselines.optax_train import train_mlp
    >>> rng = np.random.default_rng(0); X = rng.normal(size=(200, 5)); y = (X[:, 0] > 0).astype(int)
    >>> res = train_mlp(X, y, layers=[5, 16, 2], optimizer="adam", learning_rate=1e-2, epochs=100, progress=False)
    >>> res.trace.last("train_acc") > 0.9
    True
"""
from __future__ import annotations

import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ... import harness, validate
from ...algorithm import Algorithm
from .. import mlp

__all__ = ["train", "train_mlp", "OptaxState", "OptaxProblem", "make_step", "optimizer"]


class OptaxState(NamedTuple):
    params: Any
    opt_state: Any
    key: jax.Array      # raw uint32 PRNG key (batch permutations)
    k: jax.Array


class OptaxProblem(NamedTuple):
    X: Any
    y: Any
    X_test: Any
    y_test: Any


@functools.lru_cache(maxsize=None)
def _optimizer_cached(name: str, learning_rate: float, kwargs: tuple):
    import optax  # noqa: PLC0415

    if not hasattr(optax, name):
        raise ValueError(f"optimizer {name!r} is not an optax optimizer (e.g. 'sgd', 'adam', 'rmsprop', 'adamw')")
    return getattr(optax, name)(learning_rate, **dict(kwargs))


def optimizer(name_or_tx, learning_rate: float | None = None, **kwargs):
    """An optax ``GradientTransformation``: a cached ``optax.<name>(learning_rate, **kwargs)`` for a name, or the
    given transformation unchanged."""
    if isinstance(name_or_tx, str):
        if learning_rate is None or not float(learning_rate) > 0:
            raise ValueError(f"learning_rate must be > 0 for optimizer {name_or_tx!r}, got {learning_rate}")
        return _optimizer_cached(name_or_tx, float(learning_rate), tuple(sorted(kwargs.items())))
    if not (hasattr(name_or_tx, "init") and hasattr(name_or_tx, "update")):
        raise TypeError(f"optimizer must be an optax optimizer name or GradientTransformation, got {name_or_tx!r}")
    return name_or_tx


def _loss_fn(loss):
    if callable(loss):
        return loss
    if loss in mlp.LOSSES:
        return _named_loss(loss)
    raise ValueError(f"loss must be one of {mlp.LOSSES} or a callable mean_loss(scores, y), got {loss!r}")


@functools.lru_cache(maxsize=None)
def _named_loss(name):
    def loss(z, y):
        return mlp.mean_loss(name, z, y)
    return loss


@functools.lru_cache(maxsize=None)
def make_step(model_apply: Callable, loss: Callable, tx, penalty: Callable | None, batch_size: int, n_batches: int):
    """The epoch ``step(state, problem, comm) -> (state, info)`` (cached on its static arguments; one process)."""
    import optax  # noqa: PLC0415

    def objective(params, Xb, yb):
        value = loss(model_apply(params, Xb), yb)
        return value + penalty(params) if penalty is not None else value

    def update(params, opt_state, Xb, yb):
        value, grads = jax.value_and_grad(objective)(params, Xb, yb)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    def step(state: OptaxState, prob: OptaxProblem, comm=None):
        if not batch_size:
            params, opt_state, value = update(state.params, state.opt_state, prob.X, prob.y)
            key = state.key
        else:
            key, sub = jax.random.split(state.key)
            n = jax.tree.leaves(prob.X)[0].shape[0]
            idx = jax.random.permutation(sub, n)[: n_batches * batch_size].reshape(n_batches, batch_size)

            def body(carry, rows):
                params, opt_state = carry
                Xb = jax.tree.map(lambda a: a[rows], prob.X)
                params, opt_state, value = update(params, opt_state, Xb, prob.y[rows])
                return (params, opt_state), value

            (params, opt_state), values = jax.lax.scan(body, (state.params, state.opt_state), idx)
            value = jnp.mean(values)
        new = OptaxState(params=params, opt_state=opt_state, key=key, k=state.k + 1)
        return new, {"batch_loss": value}

    return step


@functools.lru_cache(maxsize=None)
def _metrics(model_apply, loss, penalty, with_test: bool, accuracy: bool, with_train: bool):
    def train_loss(state, prob, comm=None):
        return loss(model_apply(state.params, prob.X), prob.y)

    def objective(state, prob, comm=None):
        value = train_loss(state, prob)
        return value + penalty(state.params) if penalty is not None else value

    def train_acc(state, prob, comm=None):
        return mlp.accuracy(model_apply(state.params, prob.X), prob.y)

    def test_loss(state, prob, comm=None):
        return loss(model_apply(state.params, prob.X_test), prob.y_test)

    def test_acc(state, prob, comm=None):
        return mlp.accuracy(model_apply(state.params, prob.X_test), prob.y_test)

    out = ((("objective", objective), ("train_loss", train_loss)) + ((("train_acc", train_acc),) if accuracy else ())
           if with_train else ())
    return out + ((("test_loss", test_loss),) + ((("test_acc", test_acc),) if accuracy else ()) if with_test else ())


def _params(state):
    return state.params


def train(model_apply: Callable, params0, X, y, optimizer_="adam", *, learning_rate=1e-3, optimizer_kwargs=None,
          loss="cross_entropy", penalty=None, epochs=100, batch_size=None, seed=0, X_test=None, y_test=None,
          accuracy=True, train_metrics=True, tol=0.0, label=None, meta=None, **run):
    """Train ``params0`` of ``model_apply`` with an optax optimizer, one harness step per epoch.

    Args:
        model_apply: ``model_apply(params, X_batch) -> scores`` (module-level or cached: it keys compilation).
        params0: initial parameter pytree (its float dtype is kept).
        X, y: samples on the first axis (``X`` may be any array or pytree of arrays), targets.
        optimizer_: an optax name (``"sgd"``, ``"adam"``, ``"rmsprop"`` …) with ``learning_rate`` and
            ``optimizer_kwargs``, or an ``optax.GradientTransformation``.
        loss: ``"cross_entropy"`` / ``"squared"`` (integer class labels) or ``mean_loss(scores, y) -> scalar``.
        penalty: optional smooth ``penalty(params) -> scalar`` added to the objective.
        epochs, batch_size, seed: epochs (= harness iterations), mini-batch size (None: full batch), permutations.
        X_test, y_test: adds ``test_loss`` (and ``test_acc`` when ``accuracy``).
        accuracy: log accuracies (argmax of the scores vs integer labels).
        tol, **run: the harness options (``log_every``, ``metrics``, ``checkpoint``, ``jit`` ...) of
            :func:`optlab.harness.solve`.

    Returns:
        :class:`optlab.Result` with ``params`` and ``predict(X) = model_apply(params, X)``; the trace logs
        ``objective`` (train loss + penalty), ``train_loss``, ``train_acc``, ``test_*``, ``batch_loss`` (mean
        mini-batch loss during the epoch).
    """
    tx = optimizer(optimizer_, learning_rate, **(optimizer_kwargs or {}))
    loss_fn = _loss_fn(loss)
    n = jax.tree.leaves(X)[0].shape[0]
    if np.shape(y)[0] != n:
        raise ValueError(f"X has {n} samples but y has {np.shape(y)[0]}")
    if batch_size is not None:
        batch_size = validate.count("batch_size", batch_size, minimum=1, maximum=n)
    epochs = validate.count("epochs", epochs)
    seed = validate.seed("seed", seed)
    tol = validate.tolerance("tol", tol)
    bs = int(batch_size or 0)
    step = make_step(model_apply, loss_fn, tx, penalty, bs, n // bs if bs else 1)
    prob = OptaxProblem(X=jax.tree.map(jnp.asarray, X), y=jnp.asarray(y),
                        X_test=None if X_test is None else jax.tree.map(jnp.asarray, X_test),
                        y_test=None if y_test is None else jnp.asarray(y_test))
    params0 = validate.float_tree("params0", params0)
    state = OptaxState(params=params0, opt_state=tx.init(params0), key=jax.random.PRNGKey(int(seed)),
                       k=jnp.zeros((), jnp.int32))
    name = optimizer_ if isinstance(optimizer_, str) else "optax"
    alg = Algorithm(name=f"optax_{name}", step=step, params=_params, stop_metric=None,
                    metrics=_metrics(model_apply, loss_fn, penalty, X_test is not None, bool(accuracy),
                                     bool(train_metrics)), predict=_apply_predict(model_apply))
    full_meta = {"label": label or name, "learning_rate": learning_rate, "batch_size": batch_size, "seed": int(seed),
                 "n": n, **(meta or {})}
    return harness.solve(alg, state, prob, maxiter=int(epochs), tol=tol, meta=full_meta, **run)


@functools.lru_cache(maxsize=None)
def _apply_predict(model_apply):
    def predict(params, X):
        return model_apply(params, jnp.asarray(X, jax.tree.leaves(params)[0].dtype))
    return predict


def train_mlp(X, y, *, layers, activation="relu", optimizer="adam", learning_rate=1e-3, params0=None, seed=0,
              X_test=None, y_test=None, epochs=100, **kwargs):
    """:func:`train` on the MLP of :mod:`optlab.solvers.mlp` (same seeded initialisation as :func:`optlab.ipdlam`,
    same input checks on ``layers`` and labels)."""
    mlp.activation(activation)
    X, y, layers, X_test, y_test = mlp.check_data(X, y, layers, X_test, y_test, solver="train_mlp")
    seed = validate.seed("seed", seed)
    params0 = mlp.start_params(params0, layers, activation, seed, X.dtype)
    kwargs.setdefault("label", optimizer if isinstance(optimizer, str) else None)
    return train(mlp.predictor(activation), params0, X, y, optimizer, learning_rate=learning_rate, seed=seed,
                 X_test=X_test, y_test=y_test, epochs=epochs,
                 meta={"layers": list(layers), "activation": activation}, **kwargs)
