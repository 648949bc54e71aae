"""Global-consensus SVM ADMM (``ol.svm_consensus_admm`` and its shortcut ``ol.svm_admm(parallel=...)``): what the
registry-driven contract (tests/parallel/test_parallel_contract.py: Sync(4) = serial 4 blocks, SimulatedAsync(4, 0) =
Sync bit for bit, SimulatedAsync(4, 3) reaches the HiGHS optimum) does not check: the iterates equal a plain NumPy
loop over the blocks (serial, and Sync(4) through the shortcut; Cholesky and Woodbury blocks), several blocks per
worker, bounded staleness is ahead of Sync in simulated time under a straggler and is seeded, a nonconvex penalty
under staleness, bad input."""
import jax
import numpy as np
import pytest
import scipy.sparse as sp

import optlab as ol
from optlab.parallel import Async, Sync
from optlab.references import svm_l1_hinge_lp

pytestmark = pytest.mark.skipif(len(jax.devices()) < 4, reason="needs 4 (simulated) devices")
LAM = 0.01


def data(n=203, d=20, seed=0):       # n = 203: not divisible by 4, the last shard is padded
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.5, 3.0, size=d)
    X = (X - X.mean(0)) / X.std(0)
    y = np.where(X[:, :4] @ np.array([1.0, -1.0, 0.5, 2.0]) + 0.5 * rng.normal(size=n) > 0, 1.0, -1.0)
    return X, y


def numpy_consensus(X, y, lam, W, iters):
    """Consensus ADMM (Boyd et al. 2011 §7.1, scaled form) written out serially, shard by shard, in float64:
    the textbook order (local (w_j, c_j), then (z, c̄) and the slacks, then all duals), every block solved with
    np.linalg.solve on the full local KKT matrix. Returns the objective at (z, c̄) after every iteration."""
    n, d = X.shape
    per = -(-n // W)
    shards = [(X[j * per:(j + 1) * per], y[j * per:(j + 1) * per]) for j in range(W)]
    rho2 = 1.0 / n
    rho1 = 0.3 * np.sum(X * X) / d * rho2
    rho = rho1 / rho2
    kappa = 1 / (n * rho2)
    z, cz = np.zeros(d), 0.0
    loc = [dict(w=np.zeros(d), c=0.0, e=np.zeros(len(b)), u1=np.zeros(d), uc=0.0, u2=np.zeros(len(b)))
           for _, b in shards]
    objs = []
    for _ in range(iters):
        for (Xj, bj), s in zip(shards, loc):
            H = bj[:, None] * Xj
            K = np.block([[H.T @ H + rho * np.eye(d), (H.T @ bj)[:, None]],
                          [(bj @ H)[None, :], np.array([[len(bj) + rho]])]])
            t = 1 - s["e"] - s["u2"]
            sol = np.linalg.solve(K, np.concatenate([rho * (z - s["u1"]) + H.T @ t, [rho * (cz - s["uc"]) + bj @ t]]))
            s["w"], s["c"] = sol[:d], sol[d]
            s["m"] = H @ s["w"] + s["c"] * bj
        v = np.mean([s["w"] + s["u1"] for s in loc], axis=0)
        thr = lam / (W * rho1)
        z = np.sign(v) * np.maximum(np.abs(v) - thr, 0)
        cz = np.mean([s["c"] + s["uc"] for s in loc])
        for s in loc:
            vv = 1 - s["m"] - s["u2"]
            s["e"] = np.where(vv > kappa, vv - kappa, np.where(vv < 0, vv, 0.0))
            s["u2"] = s["u2"] + s["m"] + s["e"] - 1
            s["u1"] = s["u1"] + s["w"] - z
            s["uc"] = s["uc"] + s["c"] - cz
        objs.append(np.mean(np.maximum(1 - y * (X @ z + cz), 0)) + lam * np.abs(z).sum())
    return np.array(objs), z, cz


@pytest.mark.parametrize("n,d", [(203, 20), (41, 30)])     # Cholesky blocks (d <= 51) and Woodbury (d > 11 rows)
def test_iterates_equal_a_numpy_loop_over_the_blocks(n, d):
    X, y = data(n, d)
    objs, z, cz = numpy_consensus(X, y, LAM, 4, 40)
    kw = dict(maxiter=40, tol=0, log_every=10, progress=False)
    serial = ol.svm_consensus_admm(X, y, ol.prox.l1(LAM), n_blocks=4, **kw)
    sync = ol.svm_admm(X, y, ol.prox.l1(LAM), parallel=Sync(4), **kw)       # the shortcut: one block per worker
    for res in (serial, sync):
        assert res.trace.meta["linsolve"] == ("cholesky" if d <= -(-n // 4) else "woodbury")
        assert res.trace.meta["n_blocks"] == 4
        np.testing.assert_allclose(np.asarray(res.params["w"]), z, rtol=1e-6, atol=1e-9)
        assert float(res.params["b"]) == pytest.approx(cz, rel=1e-6, abs=1e-9)
        np.testing.assert_allclose(res.trace["objective"][1:], objs[9::10], rtol=1e-6)
    # uniform speeds: a round costs one worker's share of the blocks, 1/4 of a data pass
    assert sync.trace.last("sim_time") == pytest.approx(40 / 4)


def test_several_blocks_per_worker():
    X, y = data()
    objs, z, _ = numpy_consensus(X, y, LAM, 8, 30)
    res = ol.svm_consensus_admm(X, y, ol.prox.l1(LAM), n_blocks=8, maxiter=30, tol=0, log_every=10,
                                progress=False, parallel=Sync(4))
    np.testing.assert_allclose(np.asarray(res.params["w"]), z, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(res.trace["objective"][1:], objs[9::10], rtol=1e-6)


def test_async_bounded_delay_reaches_the_optimum_ahead_in_simulated_time():
    X, y = data()
    f_star, _, _ = svm_l1_hinge_lp(X, y, LAM)
    kw = dict(maxiter=1500, tol=0, log_every=500, progress=False)
    asyn = ol.svm_admm(X, y, ol.prox.l1(LAM), parallel=Async(4, max_delay=3, speeds="straggler"), **kw)
    assert abs(asyn.trace.last("objective") - f_star) <= 1e-3 * f_star
    assert int(np.max(np.asarray(asyn.state.age))) <= 3
    assert np.min(asyn.trace["arrived"][1:]) >= 1
    sync = ol.svm_admm(X, y, ol.prox.l1(LAM), parallel=Sync(4, speeds="straggler"), **kw)
    # the straggler (speed 4) paces every Sync round; Async waits for it only every 4th round
    assert asyn.trace.last("sim_time") < 0.5 * sync.trace.last("sim_time")
    again = ol.svm_admm(X, y, ol.prox.l1(LAM), parallel=Async(4, max_delay=3, speeds="straggler"), **kw)
    np.testing.assert_array_equal(np.asarray(again.params["w"]), np.asarray(asyn.params["w"]))  # seeded model


def test_bad_input():
    X, y = data(101, 10)
    pen = ol.prox.l1(LAM)
    with pytest.raises(TypeError, match="dense X"):
        ol.svm_admm(sp.csr_matrix(X), y, pen, parallel=Sync(2))
    with pytest.raises(TypeError, match="dense X"):
        ol.svm_consensus_admm(sp.csr_matrix(X), y, pen, n_blocks=2)
    with pytest.raises(ValueError, match="warm_start"):
        ol.svm_admm(X, y, pen, warm_start={"w": np.zeros(10)}, parallel=Sync(2))
    with pytest.raises(ValueError, match="rho_growth"):
        ol.svm_admm(X, y, pen, rho_growth=1.01, parallel=Sync(2))
    with pytest.raises(ValueError, match="n_blocks=3 must be a multiple of the number of workers"):
        ol.svm_consensus_admm(X, y, pen, n_blocks=3, parallel=Sync(2))
    with pytest.raises(ValueError, match="n_blocks must be a positive integer"):
        ol.svm_consensus_admm(X, y, pen, n_blocks=0)
    with pytest.raises(ValueError, match="alpha"):
        ol.svm_admm(X, y, pen, alpha=1.5, parallel=Sync(2))
    with pytest.raises(ValueError, match="adaptive_rho"):
        ol.svm_admm(X, y, pen, adaptive_rho=True, parallel=Sync(2))
    with pytest.raises(ValueError, match="Anderson acceleration is not available"):
        ol.svm_admm(X, y, pen, anderson=3, parallel=Sync(2))
    with pytest.raises(ValueError, match="n_blocks=4 is larger than the number of samples"):
        ol.svm_admm(X[:3], np.array([1.0, -1.0, 1.0]), pen, parallel=Sync(4))
    with pytest.raises(TypeError, match="parallel must be"):
        ol.svm_admm(X, y, pen, parallel=4)
    with pytest.raises(ValueError, match="xla_force_host_platform_device_count"):
        ol.svm_admm(X, y, pen, parallel=Sync(64))


def test_nonconvex_scad_async_reaches_the_sync_test_accuracy():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(600, 20))
    y = np.where(X[:, :4] @ np.array([1.0, -1.0, 0.5, 2.0]) + rng.normal(size=600) > 0, 1.0, -1.0)
    y[rng.random(600) < 0.1] *= -1                 # not separable: the SCAD problem has a minimiser
    pen = ol.prox.scad(lam=0.05, a=3.7)
    kw = dict(maxiter=300, tol=0, log_every=300, progress=False)
    sync = ol.svm_admm(X[:400], y[:400], pen, parallel=Sync(4), **kw)
    asyn = ol.svm_admm(X[:400], y[:400], pen, parallel=Async(4, max_delay=3, speeds="straggler"), **kw)
    accuracy = lambda r: float(np.mean(np.asarray(r.predict(X[400:])) == y[400:]))  # noqa: E731
    assert abs(accuracy(asyn) - accuracy(sync)) <= 0.01
    assert accuracy(sync) > 0.75        # the serial solver (2,205 iterations to tol 1e-5) scores 0.79 here
