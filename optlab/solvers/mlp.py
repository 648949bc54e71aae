r"""The fully connected network shared by the neural trainers (iPDLAM, DLAM, the optax baselines).

Row convention: a batch is a matrix :math:`a_0 = X \in \mathbb R^{n\times d}`; layer :math:`l = 1..L` maps
:math:`a_{l-1} \mapsto \sigma(a_{l-1}W_l + \mathbf 1 b_l^\top)` with :math:`W_l \in \mathbb R^{h_{l-1}\times h_l}`,
and the last layer is linear (its output are the class scores). ``params`` is the pytree
``{"W": (W_1, …, W_L), "b": (b_1, …, b_L)}``.

Losses on the scores :math:`z \in \mathbb R^{n\times C}` and integer labels :math:`y \in \{0..C-1\}^n`:
``"cross_entropy"`` (softmax cross-entropy, :data:`optlab.losses.softmax_cross_entropy`) and ``"squared"``
(:math:`\tfrac12\|z_i - e_{y_i}\|^2`, :data:`optlab.losses.least_squares` on one-hot targets), both averaged over
the batch.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from .. import losses, operators, pytree, validate

__all__ = ["ACTIVATIONS", "ACTIVATION_LIPSCHITZ", "LOSSES", "activation", "init_params", "start_params", "apply",
           "predictor", "mean_loss", "row_loss", "loss_smoothness", "rel_change", "fit_metrics", "check_labels",
           "check_data"]

ACTIVATIONS = {"relu": jax.nn.relu, "tanh": jnp.tanh, "sigmoid": jax.nn.sigmoid}
#: Lipschitz constants of the activations (used only for initial step-constant guesses).
ACTIVATION_LIPSCHITZ = {"relu": 1.0, "tanh": 1.0, "sigmoid": 0.25}
LOSSES = ("cross_entropy", "squared")


def activation(name: str):
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]


def init_params(layers, activation_name: str, seed: int, dtype) -> dict:
    """He (ReLU) or Glorot-style (tanh, sigmoid) normal weights, zero biases; NumPy RNG so that every trainer
    given the same ``seed`` starts from the same network."""
    rng = np.random.default_rng(seed)
    Ws, bs = [], []
    for fan_in, fan_out in zip(layers[:-1], layers[1:]):
        scale = np.sqrt((2.0 if activation_name == "relu" else 1.0) / fan_in)
        Ws.append(jnp.asarray(rng.normal(scale=scale, size=(fan_in, fan_out)), dtype))
        bs.append(jnp.zeros((fan_out,), dtype))
    return {"W": tuple(Ws), "b": tuple(bs)}


def start_params(params0, layers, activation_name: str, seed: int, dtype) -> dict:
    """The initial weights of a trainer: ``params0`` checked (:func:`check_params`), or :func:`init_params`."""
    if params0 is None:
        return init_params(layers, activation_name, seed, dtype)
    return check_params("params0", params0, layers, dtype)


def hidden(params, X, activation_name: str):
    """The hidden activations ``(a_1, …, a_{L-1})`` of a forward pass."""
    sigma = ACTIVATIONS[activation_name]
    out, a = [], X
    for W, b in zip(params["W"][:-1], params["b"][:-1]):
        a = sigma(a @ W + b)
        out.append(a)
    return tuple(out)


def apply(params, X, activation_name: str = "relu"):
    """Class scores ``a_{L-1} W_L + b_L`` of a forward pass (shape ``(n, C)``)."""
    hs = hidden(params, X, activation_name)
    a = hs[-1] if hs else X
    return a @ params["W"][-1] + params["b"][-1]


@functools.lru_cache(maxsize=None)
def predictor(activation_name: str):
    """``predict(params, X)``: :func:`apply` with ``X`` cast to the weights' dtype (a trainer's ``Result.predict``;
    one function object per activation, so that it keys compilation once)."""
    def predict(params, X):
        return apply(params, jnp.asarray(X, params["W"][0].dtype), activation_name)
    return predict


def row_loss(loss_name: str, z, y):
    """Per-sample loss ``loss_name`` on scores ``z`` (n, C) and integer labels ``y`` (shape (n,))."""
    if loss_name == "cross_entropy":
        return losses.softmax_cross_entropy.value(z, y)
    if loss_name == "squared":
        target = jax.nn.one_hot(y, z.shape[-1], dtype=z.dtype)
        return jnp.sum(losses.least_squares.value(z, target), axis=-1)
    raise ValueError(f"loss must be one of {LOSSES}, got {loss_name!r}")


def mean_loss(loss_name: str, z, y):
    """Batch mean of the loss ``loss_name`` on scores ``z`` and integer labels ``y``."""
    return jnp.mean(row_loss(loss_name, z, y))


def loss_smoothness(loss_name: str) -> float:
    """Lipschitz constant of the per-sample loss gradient in the scores."""
    return {"cross_entropy": losses.softmax_cross_entropy.smoothness, "squared": 1.0}[loss_name]


def rel_change(new, old):
    """‖new − old‖ / ‖new‖ over all leaves of two weight pytrees (the trainers' tolerance-test quantity)."""
    diff = jax.tree.map(lambda a, b: a - b, new, old)
    return jnp.sqrt(pytree.vdot(diff, diff) / jnp.maximum(pytree.vdot(new, new), jnp.finfo(pytree.dtype(new)).tiny))


def accuracy(z, y):
    return jnp.mean((jnp.argmax(z, axis=-1) == y).astype(z.dtype))


def fit_metrics(scores, loss_name: str, with_test: bool, test_loss: bool = True) -> tuple:
    """``(name, fn(state, problem, comm))`` of a trainer whose problem holds ``data = Rows(X, y, weight)``, ``n``,
    ``X_test``, ``y_test`` and whose class scores are ``scores(state, X)``: ``train_loss`` and ``train_acc`` of a
    forward pass on the training rows (with row weights, i.e. under a parallel executor that pads rows with weight 0:
    the weighted sums over this worker's rows, ``comm.reduce``-d, over the ``n`` real rows), and with a test set
    ``test_loss`` (unless ``test_loss=False``) and ``test_acc``."""
    def train_mean(name, values, prob, comm):
        w = prob.data.weight
        return jnp.mean(values) if w is None else comm.reduce(name, jnp.sum(w * values)) / prob.n

    def train_loss(state, prob, comm):
        z = scores(state, prob.data.X)
        return train_mean("train_loss", row_loss(loss_name, z, prob.data.y), prob, comm)

    def train_acc(state, prob, comm):
        z = scores(state, prob.data.X)
        return train_mean("train_acc", (jnp.argmax(z, axis=-1) == prob.data.y).astype(z.dtype), prob, comm)

    def test_loss_fn(state, prob, comm):
        return mean_loss(loss_name, scores(state, prob.X_test), prob.y_test)

    def test_acc(state, prob, comm):
        return accuracy(scores(state, prob.X_test), prob.y_test)

    test = ((("test_loss", test_loss_fn),) if test_loss else ()) + (("test_acc", test_acc),)
    return (("train_loss", train_loss), ("train_acc", train_acc)) + (test if with_test else ())


def check_params(name: str, params, layers, dtype) -> dict:
    """Initial weights ``{"W": (W_1, ..., W_L), "b": (b_1, ..., b_L)}`` for ``layers``: finite floating arrays of
    shapes ``(layers[j], layers[j+1])`` and ``(layers[j+1],)``, cast to ``dtype``."""
    if not (isinstance(params, dict) and set(params) == {"W", "b"}):
        raise TypeError(f'{name} must be a dict {{"W": (W_1, ..., W_L), "b": (b_1, ..., b_L)}} (e.g. a previous '
                        f"Result's params), got {type(params).__name__}")
    L = len(layers) - 1
    template = {"W": tuple(np.zeros((layers[j], layers[j + 1])) for j in range(L)),
                "b": tuple(np.zeros((layers[j + 1],)) for j in range(L))}
    params = {"W": tuple(params["W"]), "b": tuple(params["b"])}
    return validate.float_tree(name, params, like=template, dtype=dtype)


def check_labels(name: str, y, n: int, n_classes: int, *, require_all: bool = True) -> np.ndarray:
    """Integer labels in ``0..n_classes-1`` of length ``n`` (NumPy int32)."""
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"{name} must be a vector of {n} integer class labels, got shape {y.shape}")
    if not (np.issubdtype(y.dtype, np.integer) or np.all(np.mod(y, 1) == 0)):
        raise ValueError(f"{name} must hold integer class labels 0..C-1, got non-integer values")
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"{name} has labels outside 0..C-1 = 0..{n_classes - 1} (C = layers[-1] = {n_classes}): "
                         f"found min {y.min()}, max {y.max()}; relabel the classes 0..C-1 or fix layers[-1]")
    if require_all and y.size and y.max() + 1 != n_classes:
        raise ValueError(f"layers[-1] = {n_classes} output units but {name} has {int(y.max()) + 1} classes "
                         f"(labels 0..{int(y.max())}); set layers[-1] = {int(y.max()) + 1}")
    return y.astype(np.int32)


def check_data(X, y, layers, X_test=None, y_test=None, *, solver: str):
    """The data of an MLP trainer, checked: ``X`` a finite dense 2-d matrix (its float dtype is the working dtype;
    integers become float32), ``layers`` against its columns, ``y`` labels of all ``layers[-1]`` classes; a test
    set (both ``X_test`` and ``y_test``, or neither) in ``X``'s dtype with as many features. Returns
    ``(X, y, layers, X_test, y_test)`` as JAX arrays (labels int32)."""
    X = jnp.asarray(validate.dense_matrix("X", X, solver=solver))
    if not jnp.issubdtype(X.dtype, jnp.floating):
        X = X.astype(jnp.float32)
    operators.check_finite("X", X)      # again after the cast: float64 data beyond float32's range
    layers = tuple(validate.widths("layers", layers, first=X.shape[1]))   # integers >= 1 (4.5 is an error)
    y = jnp.asarray(check_labels("y", y, X.shape[0], layers[-1]))
    if (X_test is None) != (y_test is None):
        raise ValueError("give both X_test and y_test, or neither")
    if X_test is not None:
        X_test = jnp.asarray(validate.dense_matrix("X_test", X_test, solver=solver), X.dtype)
        operators.check_finite("X_test", X_test)
        if X_test.shape[1] != X.shape[1]:
            raise ValueError(f"X_test has {X_test.shape[1]} features, X has {X.shape[1]}")
        y_test = jnp.asarray(check_labels("y_test", y_test, X_test.shape[0], layers[-1], require_all=False))
    return X, y, layers, X_test, y_test
