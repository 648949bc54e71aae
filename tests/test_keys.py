"""PRNG keys in the stochastic solvers: ``key=`` beside ``seed=``; a key is the seed ``jax.random.bits(key)``;
``jax.vmap`` over 100 keys in jit mode equals 100 separate runs (each an independent host-mode call)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import optlab as ol


def problem(n=120, d=6, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = np.sign(X[:, 0] - 0.5 * X[:, 1] + 0.1 * rng.normal(size=n))
    return X, y, ol.operators.first_difference(d)


KW = dict(mu=1e-2, gamma=1e-2, variant="sc_uniform", epochs=2, segments=2, progress=False)


def test_vmap_over_100_keys_equals_100_separate_runs():
    X, y, F = problem()
    keys = jax.random.split(jax.random.key(7), 100)
    batched = jax.vmap(lambda k: ol.spdhg(X, y, F, key=k, jit=True, **KW))(keys)
    xbar = np.asarray(batched.state.core.xbar)
    assert xbar.shape == (100, X.shape[1])
    for i in range(100):
        one = ol.spdhg(X, y, F, key=keys[i], **KW)        # host mode, concrete key: an independent run
        np.testing.assert_allclose(xbar[i], np.asarray(one.params["w"]), rtol=1e-12, atol=1e-14)
    # the keys really give different sampling orders (else the test above could not fail on a mix-up)
    assert np.ptp(xbar[:, 0]) > 1e-6


def test_key_is_the_seed_of_its_bits_and_raw_keys_work():
    X, y, F = problem()
    k = jax.random.key(3)
    s = int(jax.random.bits(k, (), jnp.uint32))
    by_key = ol.spdhg(X, y, F, key=k, **KW)
    by_seed = ol.spdhg(X, y, F, seed=s, **KW)
    np.testing.assert_array_equal(by_key.params["w"], by_seed.params["w"])
    assert by_key.trace.meta["seed"] == s and by_key.trace.meta["key"] is True
    raw = ol.spdhg(X, y, F, key=jax.random.PRNGKey(3), **KW)
    s_raw = int(jax.random.bits(jax.random.PRNGKey(3), (), jnp.uint32))
    np.testing.assert_array_equal(raw.params["w"], ol.spdhg(X, y, F, seed=s_raw, **KW).params["w"])
    # default stays seed 0
    np.testing.assert_array_equal(ol.spdhg(X, y, F, **KW).params["w"], ol.spdhg(X, y, F, seed=0, **KW).params["w"])


def test_bad_seed_and_key_arguments():
    X, y, F = problem()
    with pytest.raises(ValueError, match="either seed= .* or key="):
        ol.spdhg(X, y, F, seed=1, key=jax.random.key(1), **KW)
    # a key passed as seed= stands for the same sampling seed as key= (optlab.validate.seed)
    np.testing.assert_array_equal(ol.spdhg(X, y, F, seed=jax.random.key(1), **KW).params["w"],
                                  ol.spdhg(X, y, F, key=jax.random.key(1), **KW).params["w"])
    with pytest.raises(TypeError, match=r"key must be a JAX PRNG key"):
        ol.spdhg(X, y, F, key=5, **KW)
    with pytest.raises(ValueError, match=r"single PRNG key"):
        ol.spdhg(X, y, F, key=jax.random.split(jax.random.key(0), 3), **KW)
    with pytest.raises(ValueError, match=r"scale='auto'.*concrete"):
        jax.vmap(lambda k: ol.spdhg(X, y, F, key=k, scale="auto", jit=True, **KW))(jax.random.split(jax.random.key(0), 2))


@pytest.mark.parametrize("solver", ["spdpeg", "sag_admm", "opg_admm"])
def test_other_stochastic_solvers_take_keys_and_vmap(solver):
    """spdpeg and the stochastic ADMM baselines share the seeding: key = the seed of its bits; vmap over keys in
    jit mode = separate host runs."""
    X, y, F = problem(n=60)
    fn = getattr(ol, solver)
    kw = dict(mu=1e-2, epochs=2, segments=2, progress=False)
    keys = jax.random.split(jax.random.key(11), 4)
    batched = jax.vmap(lambda k: fn(X, y, F, key=k, jit=True, **kw))(keys)
    w = np.asarray(batched.state.core.xbar)
    for i in range(4):
        one = fn(X, y, F, key=keys[i], **kw)
        np.testing.assert_allclose(w[i], np.asarray(one.params["w"]), rtol=1e-12, atol=1e-14)
        s = int(jax.random.bits(keys[i], (), jnp.uint32))
        np.testing.assert_array_equal(one.params["w"], fn(X, y, F, seed=s, **kw).params["w"])
    with pytest.raises(ValueError, match="either seed= .* or key="):
        fn(X, y, F, seed=0, key=keys[0], **kw)
