"""Child process of tests/test_checkpoint_faults.py: ``python checkpoint_child.py CHECKPOINT MAXITER``.

Gradient descent on a separable quadratic with a large state (2 x 1,000,000 float64), writing a checkpoint at every
log point (every 5 iterations), so that most of its time is spent writing checkpoints: a kill at a random moment
usually lands in the middle of a write.
"""
import sys

import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from optlab import harness  # noqa: E402

D = 1_000_000


def problem():
    rng = np.random.default_rng(0)
    return {"q": jnp.asarray(rng.uniform(0.5, 2.0, D)), "b": jnp.asarray(rng.normal(size=D))}


def step(state, p):
    x, v = state
    grad = p["q"] * x - p["b"]
    v_new = 0.5 * v - 0.4 * grad            # heavy ball: the state has two large leaves
    x_new = x + v_new
    return (x_new, v_new), {"rel_change": jnp.linalg.norm(v_new) / jnp.linalg.norm(x_new)}


def objective(state, p):
    x = state[0]
    return 0.5 * jnp.sum(p["q"] * x * x) - jnp.sum(p["b"] * x)


def start():
    return (jnp.zeros(D), jnp.zeros(D))


if __name__ == "__main__":
    # The step as the test imports it (module ``checkpoint_child``, not ``__main__``): the checkpoint's fingerprint
    # names the step function, and the test resumes with its own import of it.
    import checkpoint_child as module
    path, maxiter = sys.argv[1], int(sys.argv[2])
    harness.run(module.step, module.start(), module.problem(), maxiter=maxiter, log_every=5,
                metrics={"objective": module.objective}, checkpoint=path, progress=False)
