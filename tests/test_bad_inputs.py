"""Bad and edge inputs across every public solver and the checkpoint loader (issue 15, "Must show" 2 and 4).

Every case ends either in a named error — a ``TypeError``/``ValueError`` whose message names the argument — or in
a run with an honest status (``"diverged"`` where the objective explodes, a ``ConvergenceWarning`` where the
budget runs out) and finite params. A SIGALRM guard fails any case that takes longer than ``TIMEOUT_S``.
"""
from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _time_limit import time_limit
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

import optlab as ol
from optlab import harness, validate
from optlab.sklearn import NonconvexSVC
from optlab.solvers.baselines.bcd import bcd
from optlab.solvers.baselines.optax_train import train_mlp
from optlab.solvers.baselines.scad_lqa import scad_lqa

TIMEOUT_S = 60
P = {"progress": False}


@pytest.fixture(autouse=True)
def _case_time_limit(request):
    with time_limit(TIMEOUT_S, request.node.name):
        yield


# ------------------------------------------------------------------------------------------------ data
_rng = np.random.default_rng(15)
A = _rng.normal(size=(20, 6))
B = A @ np.array([1.0, -1, 0, 0, 0.5, 0]) + 0.1 * _rng.normal(size=20)
LS = ol.losses.least_squares_objective(A, B)
L1 = ol.prox.l1(0.01)
X0 = np.zeros(6)

XC = _rng.normal(size=(40, 5))
YC = np.sign(XC[:, 0] + 0.1)
FD = ol.operators.first_difference(5)

XM = _rng.normal(size=(30, 4))
YM = (XM[:, 0] > 0).astype(int)

XS = _rng.normal(size=(8, 3, 2))
YS = (XS[:, -1, 0] > 0).astype(int)


def _nan(shape, at=0):
    x = np.zeros(shape)
    x.flat[at] = np.nan
    return x


def _with_nan(X):
    X = np.array(X, float)
    X.flat[3] = np.nan
    return X


def _params(layers, nan=False, shape_off=False):
    Ws = [np.full((a, b), 0.1) for a, b in zip(layers[:-1], layers[1:])]
    bs = [np.zeros(b) for b in layers[1:]]
    if nan:
        Ws[0][0, 0] = np.nan
    if shape_off:
        Ws[0] = np.zeros((layers[0] + 1, layers[1]))
    return {"W": tuple(Ws), "b": tuple(bs)}


# -------------------------------------------------------------------------------------- the cases
# (id, thunk, expected): expected is (ExceptionType, regex on the message) or ("status", allowed statuses)
def E(exc, match):
    return (exc, match)


def S(*statuses):
    return ("status", statuses)


V = (TypeError, ValueError)

def fista_(**kw):
    return lambda: ol.fista(LS, L1, kw.pop("x0", X0), maxiter=kw.pop("maxiter", 5), **kw, **P)


def ista_(**kw):
    return lambda: ol.ista(LS, L1, kw.pop("x0", X0), maxiter=kw.pop("maxiter", 5), **kw, **P)


def gist_(**kw):
    return lambda: ol.gist(LS, L1, kw.pop("x0", X0), maxiter=kw.pop("maxiter", 5), **kw, **P)


def pig_(**kw):
    return lambda: ol.pig(LS, L1, kw.pop("x0", X0), maxiter=kw.pop("maxiter", 5), **kw, **P)


def pig_blocks_(**kw):
    return lambda: ol.pig_blocks(LS, [L1, L1], kw.pop("x0s", [np.zeros(3), np.zeros(3)]),
                                 maxiter=kw.pop("maxiter", 5), **kw, **P)


def pig_jacobi_(**kw):
    return lambda: ol.pig_jacobi(LS, [L1, L1], kw.pop("x0s", [np.zeros(3), np.zeros(3)]),
                                 maxiter=kw.pop("maxiter", 5), **kw, **P)


def svm_(**kw):
    X, y = kw.pop("X", XC), kw.pop("y", YC)
    return lambda: ol.svm_admm(X, y, L1, maxiter=kw.pop("maxiter", 5), **kw, **P)


def svmc_(**kw):
    X, y = kw.pop("X", XC), kw.pop("y", YC)
    return lambda: ol.svm_consensus_admm(X, y, L1, n_blocks=kw.pop("n_blocks", 2), maxiter=kw.pop("maxiter", 5),
                                         **kw, **P)


def stoch_(fn, **kw):
    X, y = kw.pop("X", XC), kw.pop("y", YC)
    return lambda: fn(X, y, FD, 1e-2, **{"epochs": 2, **kw}, **P)


def batch_(fn, **kw):
    X, y = kw.pop("X", XC), kw.pop("y", YC)
    return lambda: fn(X, y, FD, 1e-2, **{"maxiter": 3, **kw}, **P)


def ipdlam_(fn=None, **kw):
    fn = fn or ol.ipdlam
    X, y = kw.pop("X", XM), kw.pop("y", YM)
    return lambda: fn(X, y, **{"layers": [4, 3, 2], "iters": 2, **kw}, **P)


def irnn_(**kw):
    X, y = kw.pop("X", XS), kw.pop("y", YS)
    return lambda: ol.admm_irnn(X, y, **{"hidden": 3, "iters": 2, **kw}, **P)


def svc_(**kw):
    return lambda: NonconvexSVC(**{"penalty": "l1", "lam": 0.01, **kw}).fit(XC, YC)


CASES = [
    # ---- ista / fista (proxgrad)
    ("fista-nan-x0", fista_(x0=_nan(6)), E(ValueError, "x0")),
    ("fista-int-x0", fista_(x0=np.zeros(6, int)), E(TypeError, "x0")),
    ("fista-neg-tol", fista_(tol=-1.0), E(ValueError, "tol")),
    ("fista-nan-tol", fista_(tol=float("nan")), E(ValueError, "tol")),
    ("fista-step-neg", fista_(step=-1.0), E(ValueError, "step")),
    ("fista-step-zero", fista_(step=0.0), E(ValueError, "step")),
    ("fista-maxiter-float", fista_(maxiter=10.7), E(TypeError, "maxiter")),
    ("fista-maxiter-neg", fista_(maxiter=-1), E(ValueError, "maxiter")),
    ("fista-log-every-0", fista_(log_every=0), E(ValueError, "log_every")),
    ("fista-parallel-str", fista_(parallel="sync"), E(TypeError, "parallel")),
    ("ista-nan-x0", ista_(x0=_nan(6)), E(ValueError, "x0")),
    ("ista-neg-tol", ista_(tol=-1e-3), E(ValueError, "tol")),
    ("ista-parallel-str", ista_(parallel="sync"), E(TypeError, "parallel")),
    ("ista-jit-checkpoint", ista_(jit=True, checkpoint="unused.npz"), E(ValueError, "checkpoint")),
    pytest.param("fista-x0-wrong-length", fista_(x0=np.zeros(7)), E(V, "x0")),
    pytest.param("fista-x0-2d", fista_(x0=np.zeros((6, 1))), E(V, "x0")),
    pytest.param("ista-x0-wrong-length", ista_(x0=np.zeros(5)), E(V, "x0")),
    # ---- gist
    ("gist-nan-x0", gist_(x0=_nan(6)), E(ValueError, "x0")),
    ("gist-int-x0", gist_(x0=np.ones(6, int)), E(TypeError, "x0")),
    ("gist-neg-tol", gist_(tol=-1.0), E(ValueError, "tol")),
    ("gist-M-0", gist_(M=0), E(ValueError, "M")),
    ("gist-parallel-str", gist_(parallel="sync"), E(TypeError, "parallel")),
    ("gist-maxiter-float", gist_(maxiter=10.7), E(TypeError, "maxiter")),
    pytest.param("gist-sigma-neg", gist_(sigma=-1.0), E(ValueError, "sigma")),
    pytest.param("gist-eta-below-1", gist_(eta=0.5), E(ValueError, "eta")),
    pytest.param("gist-Lmin-above-Lmax", gist_(L_min=10.0, L_max=1.0), E(ValueError, "L_min")),
    pytest.param("gist-x0-wrong-length", gist_(x0=np.zeros(7)), E(V, "x0")),
    # ---- pig / pig_blocks / pig_jacobi
    ("pig-nan-x0", pig_(x0=_nan(6)), E(ValueError, "x0")),
    ("pig-int-x0", pig_(x0=np.zeros(6, int)), E(TypeError, "x0")),
    ("pig-x0-wrong-length", pig_(x0=np.zeros(7)), E(V, "x0")),
    ("pig-neg-tol", pig_(tol=-1.0), E(ValueError, "tol")),
    ("pig-beta-above-1", pig_(beta=1.5), E(ValueError, "beta")),
    ("pig-parallel-str", pig_(parallel="sync"), E(TypeError, "parallel")),
    ("pig-maxiter-float", pig_(maxiter=10.7), E(TypeError, "maxiter")),
    pytest.param("pig-x0-2d", pig_(x0=np.zeros((6, 1))), E(V, "x0")),
    ("pig_blocks-nan-x0s", pig_blocks_(x0s=[_nan(3), np.zeros(3)]), E(ValueError, "x0")),
    ("pig_blocks-order", pig_blocks_(order="greedy"), E(ValueError, "order")),
    ("pig_blocks-neg-tol", pig_blocks_(tol=-1.0), E(ValueError, "tol")),
    ("pig_blocks-parallel-str", pig_blocks_(parallel="sync"), E(TypeError, "parallel")),
    ("pig_jacobi-nan-x0s", pig_jacobi_(x0s=[np.zeros(3), _nan(3)]), E(ValueError, "x0")),
    ("pig_jacobi-neg-tol", pig_jacobi_(tol=-1.0), E(ValueError, "tol")),
    ("pig_jacobi-parallel-str", pig_jacobi_(parallel="sync"), E(TypeError, "parallel")),
    # ---- svm_admm
    ("svm-nan-warm-start", svm_(warm_start={"w": _nan(5), "b": 0.0}), E(ValueError, "warm_start")),
    ("svm-nan-warm-start-b", svm_(warm_start={"w": np.zeros(5), "b": np.nan}), E(ValueError, "warm_start")),
    ("svm-warm-start-shape", svm_(warm_start={"w": np.zeros(4)}), E(ValueError, "warm_start")),
    ("svm-warm-start-type", svm_(warm_start=[0.0] * 5), E(TypeError, "warm_start")),
    ("svm-cg-iters-0", svm_(linsolve="cg", cg_iters=0), E(ValueError, "cg_iters")),
    ("svm-cg-iters-float", svm_(linsolve="cg", cg_iters=2.5), E(TypeError, "cg_iters")),
    ("svm-maxiter-float", svm_(maxiter=10.7), E(TypeError, "maxiter")),
    ("svm-maxiter-0", svm_(maxiter=0), E(ValueError, "maxiter")),
    ("svm-neg-tol", svm_(tol=-1.0), E(ValueError, "tol")),
    ("svm-nan-tol", svm_(tol=float("nan")), E(ValueError, "tol")),
    ("svm-alpha", svm_(alpha=2.5), E(ValueError, "alpha")),
    ("svm-rho-growth", svm_(rho_growth=0.5), E(ValueError, "rho_growth")),
    ("svm-adapt-mu", svm_(adapt_mu=1.0), E(ValueError, "adapt_mu")),
    ("svm-adapt-every-0", svm_(adapt_every=0), E(ValueError, "adapt_every")),
    ("svm-tau-max", svm_(tau_max=0.5), E(ValueError, "tau_max")),
    ("svm-max-dense-0", svm_(max_dense=0), E(ValueError, "max_dense")),
    ("svm-rho1-neg", svm_(rho1=-1.0), E(ValueError, "rho1")),
    ("svm-parallel-str", svm_(parallel="sync"), E(TypeError, "parallel")),
    ("svm-nan-X", svm_(X=_with_nan(XC)), E(ValueError, "X")),
    ("svm-empty-X", svm_(X=XC[:0], y=YC[:0]), E(ValueError, "X")),
    ("svm-1d-X", svm_(X=XC[:, 0]), E(ValueError, "X")),
    ("svm-three-classes", svm_(y=np.arange(40) % 3), E(ValueError, "y")),
    # ---- svm_consensus_admm
    ("svmc-cg-iters-0", svmc_(linsolve="cg", cg_iters=0), E(ValueError, "cg_iters")),
    ("svmc-n-blocks-0", svmc_(n_blocks=0), E(ValueError, "n_blocks")),
    ("svmc-n-blocks-float", svmc_(n_blocks=2.5), E(TypeError, "n_blocks")),
    ("svmc-n-blocks-gt-n", svmc_(n_blocks=41), E(ValueError, "n_blocks")),
    ("svmc-parallel-str", svmc_(parallel="sync"), E(TypeError, "parallel")),
    ("svmc-csr-X", svmc_(X=sp.csr_matrix(XC)), E(TypeError, "X")),
    ("svmc-nan-tol", svmc_(tol=float("nan")), E(ValueError, "tol")),
    ("svmc-maxiter-float", svmc_(maxiter=10.7), E(TypeError, "maxiter")),
    # ---- spdhg / lpdhg / spdpeg / egadm
    ("spdhg-scale-1e4-diverges", stoch_(ol.spdhg, scale=1e4, epochs=20), S("diverged")),
    ("spdhg-seed-float", stoch_(ol.spdhg, seed=1.9), E(TypeError, "seed")),
    ("spdhg-seed-neg", stoch_(ol.spdhg, seed=-1), E(ValueError, "seed")),
    ("spdhg-seed-2**32", stoch_(ol.spdhg, seed=2**32), E(ValueError, "seed")),
    ("spdhg-seed-bool", stoch_(ol.spdhg, seed=True), E(TypeError, "seed")),
    ("spdhg-nan-x0", stoch_(ol.spdhg, x0=_nan(5)), E(ValueError, "x0")),
    ("spdhg-x0-wrong-length", stoch_(ol.spdhg, x0=np.zeros(4)), E(ValueError, "x0")),
    ("spdhg-x0-2d", stoch_(ol.spdhg, x0=np.zeros((5, 1))), E(ValueError, "x0")),
    ("spdhg-epochs-float", stoch_(ol.spdhg, epochs=2.5), E(ValueError, "epochs")),
    ("spdhg-epochs-0", stoch_(ol.spdhg, epochs=0), E(ValueError, "epochs")),
    ("spdhg-batch-0", stoch_(ol.spdhg, batch_size=0), E(ValueError, "batch_size")),
    ("spdhg-segments-0", stoch_(ol.spdhg, segments=0), E(ValueError, "segments")),
    ("spdhg-gamma-nan", stoch_(ol.spdhg, gamma=float("nan")), E(ValueError, "gamma")),
    ("spdhg-neg-tol", stoch_(ol.spdhg, tol=-1.0), E(ValueError, "tol")),
    ("spdhg-scale-neg", stoch_(ol.spdhg, scale=-1.0), E(ValueError, "scale")),
    ("spdhg-variant", stoch_(ol.spdhg, variant="fast"), E(ValueError, "variant")),
    ("spdhg-parallel-str", stoch_(ol.spdhg, parallel="sync"), E(TypeError, "parallel")),
    ("spdhg-nan-X", stoch_(ol.spdhg, X=_with_nan(XC)), E(ValueError, "X")),
    ("spdhg-empty-X", stoch_(ol.spdhg, X=XC[:0], y=YC[:0]), E(ValueError, "X|n_blocks")),
    ("lpdhg-nan-x0", batch_(ol.lpdhg, x0=_nan(5)), E(ValueError, "x0")),
    ("lpdhg-x0-wrong-length", batch_(ol.lpdhg, x0=np.zeros(6)), E(ValueError, "x0")),
    ("lpdhg-maxiter-float", batch_(ol.lpdhg, maxiter=10.7), E(TypeError, "maxiter")),
    ("lpdhg-nan-tol", batch_(ol.lpdhg, tol=float("nan")), E(ValueError, "tol")),
    ("lpdhg-parallel-str", batch_(ol.lpdhg, parallel="sync"), E(TypeError, "parallel")),
    ("lpdhg-scale-auto", batch_(ol.lpdhg, scale="auto"), E(ValueError, "scale")),
    ("spdpeg-scale-1e4-unchecked-diverges", stoch_(ol.spdpeg, scale=1e4, epochs=20, step_check="off"),
     S("diverged")),
    ("spdpeg-scale-1e4-refused", stoch_(ol.spdpeg, scale=1e4, step_check="raise"), E(ValueError, "smaller scale")),
    ("spdpeg-step_check", stoch_(ol.spdpeg, step_check="maybe"), E(ValueError, "step_check")),
    ("spdpeg-step_decay-neg", stoch_(ol.spdpeg, step_decay=-1.0), E(ValueError, "step_decay")),
    ("spdhg-burn_in-str", stoch_(ol.spdhg, burn_in="half"), E(ValueError, "burn_in")),
    ("spdpeg-seed-neg", stoch_(ol.spdpeg, seed=-1), E(ValueError, "seed")),
    ("spdpeg-seed-float", stoch_(ol.spdpeg, seed=1.9), E(TypeError, "seed")),
    ("spdpeg-nan-x0", stoch_(ol.spdpeg, x0=_nan(5)), E(ValueError, "x0")),
    ("spdpeg-extragradient", stoch_(ol.spdpeg, extragradient="twice"), E(ValueError, "extragradient")),
    ("spdpeg-neg-tol", stoch_(ol.spdpeg, tol=-1.0), E(ValueError, "tol")),
    ("spdpeg-parallel-str", stoch_(ol.spdpeg, parallel="sync"), E(TypeError, "parallel")),
    ("egadm-x0-2d", batch_(ol.egadm, x0=np.zeros((5, 1))), E(ValueError, "x0")),
    ("egadm-nan-tol", batch_(ol.egadm, tol=float("nan")), E(ValueError, "tol")),
    ("egadm-parallel-str", batch_(ol.egadm, parallel="sync"), E(TypeError, "parallel")),
    ("egadm-scale-auto", batch_(ol.egadm, scale="auto"), E(ValueError, "scale")),
    # ---- the six stochastic ADMM baselines
    *[case for fn in (ol.stoc_admm, ol.opg_admm, ol.rda_admm, ol.sag_admm, ol.ada_sadmm, ol.sgadm) for case in (
        (f"{fn.__name__}-seed-float", stoch_(fn, seed=1.9), E(TypeError, "seed")),
        (f"{fn.__name__}-seed-2**32", stoch_(fn, seed=2**32), E(ValueError, "seed")),
        (f"{fn.__name__}-scale-neg", stoch_(fn, scale=-1.0), E(ValueError, "scale")),
        (f"{fn.__name__}-beta-0", stoch_(fn, beta=0.0), E(ValueError, "beta")),
        (f"{fn.__name__}-parallel-str", stoch_(fn, parallel="sync"), E(TypeError, "parallel")),
    )],
    ("sag_admm-scale-1e4-diverges", stoch_(ol.sag_admm, scale=1e4, epochs=20), S("diverged")),
    ("opg_admm-nan-tol", stoch_(ol.opg_admm, tol=float("nan")), E(ValueError, "tol")),
    ("spdhg-pilot-epochs-float", stoch_(ol.spdhg, scale="auto", pilot_epochs=0.5), E(TypeError, "pilot_epochs")),
    ("spdpeg-pilot-samples-0", stoch_(ol.spdpeg, scale="auto", pilot_samples=0), E(ValueError, "pilot_samples")),
    ("spdhg-seed-jax-key", stoch_(ol.spdhg, seed=jax.random.key(3)), S("maxiter")),
    ("spdhg-async-max-delay-float", lambda: ol.parallel.SimulatedAsync(2, max_delay=1.5), E(ValueError, "max_delay")),
    # ---- ipdlam / dlam
    ("ipdlam-nan-params0", ipdlam_(params0=_params([4, 3, 2], nan=True)), E(ValueError, "params0")),
    ("ipdlam-params0-shape", ipdlam_(params0=_params([4, 3, 2], shape_off=True)), E(ValueError, "params0")),
    ("ipdlam-params0-type", ipdlam_(params0=[np.zeros((4, 3))]), E(TypeError, "params0")),
    ("ipdlam-float-layers", ipdlam_(layers=[4, 3.5, 2]), E(TypeError, "layers")),
    ("ipdlam-zero-width", ipdlam_(layers=[4, 0, 2]), E(ValueError, "layers")),
    ("ipdlam-seed-float", ipdlam_(seed=1.9), E(TypeError, "seed")),
    ("ipdlam-seed-neg", ipdlam_(seed=-1), E(ValueError, "seed")),
    ("ipdlam-seed-2**32", ipdlam_(seed=2**32), E(ValueError, "seed")),
    ("ipdlam-csr-X", ipdlam_(X=sp.csr_matrix(XM)), E(TypeError, "X")),
    ("ipdlam-empty-X", ipdlam_(X=XM[:0], y=YM[:0]), E(ValueError, "X")),
    ("ipdlam-nan-X", ipdlam_(X=_with_nan(XM)), E(ValueError, "X")),
    ("ipdlam-1d-X", ipdlam_(X=XM[:, 0]), E(ValueError, "X")),
    ("ipdlam-iters-float", ipdlam_(iters=10.7), E(TypeError, "iters")),
    ("ipdlam-maxiter-float", ipdlam_(maxiter=3.5), E(TypeError, "maxiter")),
    ("ipdlam-parallel-str", ipdlam_(parallel="sync"), E(TypeError, "parallel")),
    ("ipdlam-beta-1", ipdlam_(beta=1.0), E(ValueError, "beta")),
    ("ipdlam-rho0-0", ipdlam_(rho0=0.0), E(ValueError, "rho0")),
    ("ipdlam-neg-tol", ipdlam_(tol=-1.0), E(ValueError, "tol")),
    ("ipdlam-batch-0", ipdlam_(batch_size=0), E(ValueError, "batch_size")),
    ("ipdlam-max-backtracks-0", ipdlam_(max_backtracks=0), E(ValueError, "max_backtracks")),
    ("ipdlam-seed-jax-key", ipdlam_(seed=jax.random.key(3)), S("maxiter")),
    ("dlam-seed-neg", ipdlam_(ol.dlam, seed=-1), E(ValueError, "seed")),
    ("dlam-csr-X", ipdlam_(ol.dlam, X=sp.csr_matrix(XM)), E(TypeError, "X")),
    ("dlam-float-layers", ipdlam_(ol.dlam, layers=[4, 2.5, 2]), E(TypeError, "layers")),
    # ---- baselines: bcd, optax MLP, SCAD-LQA
    ("bcd-seed-float", lambda: bcd(XM, YM, layers=[4, 3, 2], iters=2, seed=1.9, **P), E(TypeError, "seed")),
    ("bcd-csr-X", lambda: bcd(sp.csr_matrix(XM), YM, layers=[4, 3, 2], iters=2, **P), E(TypeError, "X")),
    ("bcd-nan-params0", lambda: bcd(XM, YM, layers=[4, 3, 2], iters=2, params0=_params([4, 3, 2], nan=True), **P),
     E(ValueError, "params0")),
    ("bcd-iters-float", lambda: bcd(XM, YM, layers=[4, 3, 2], iters=2.5, **P), E(TypeError, "iters")),
    ("mlp-seed-neg", lambda: train_mlp(XM, YM, layers=[4, 3, 2], epochs=2, seed=-1, **P), E(ValueError, "seed")),
    ("mlp-float-layers", lambda: train_mlp(XM, YM, layers=[4, 3.2, 2], epochs=2, **P), E(TypeError, "layers")),
    ("mlp-epochs-float", lambda: train_mlp(XM, YM, layers=[4, 3, 2], epochs=2.5, **P), E(TypeError, "epochs")),
    ("mlp-nan-params0", lambda: train_mlp(XM, YM, layers=[4, 3, 2], epochs=2, params0=_params([4, 3, 2], nan=True),
                                          **P), E(ValueError, "params0")),
    ("lqa-nan-x0", lambda: scad_lqa(XC, YC, 0.05, x0={"w": _nan(5), "b": 0.0}, maxiter=3, **P), E(ValueError, "x0")),
    ("lqa-maxiter-float", lambda: scad_lqa(XC, YC, 0.05, x0={"w": np.zeros(5)}, maxiter=3.5, **P),
     E(TypeError, "maxiter")),
    ("lqa-neg-tol", lambda: scad_lqa(XC, YC, 0.05, x0={"w": np.zeros(5)}, tol=-1.0, **P), E(ValueError, "tol")),
    # ---- admm_irnn (only what its current validation rejects)
    ("irnn-2d-X", irnn_(X=XS[:, 0, :]), E(ValueError, "X_seq")),
    ("irnn-task", irnn_(task="regress"), E(ValueError, "task")),
    ("irnn-rho-neg", irnn_(rho=-1.0), E(ValueError, "rho")),
    ("irnn-sweep", irnn_(sweep="random"), E(ValueError, "sweep")),
    ("irnn-label-range", irnn_(y=YS + 5, n_classes=2), E(ValueError, "y")),
    # ---- NonconvexSVC
    ("svc-max-iter-float", svc_(max_iter=10.7), E(TypeError, "max_iter")),
    ("svc-neg-tol", svc_(tol=-1.0), E(ValueError, "tol")),
    ("svc-penalty", svc_(penalty="l0"), E(ValueError, "penalty")),
    ("svc-init", svc_(init="random"), E(ValueError, "init")),
]


def _ids(case):
    return case.values[0] if hasattr(case, "values") else case[0]


@pytest.mark.parametrize("name, thunk, expected", CASES, ids=[_ids(c) for c in CASES])
def test_bad_input(name, thunk, expected):
    kind, what = expected
    if kind == "status":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = thunk()
        assert res.status in what, f"{name}: status {res.status!r}, expected one of {what}"
        for leaf in jax.tree.leaves(res.params):
            assert np.all(np.isfinite(np.asarray(leaf))), f"{name}: non-finite params"
        return
    with pytest.raises(kind, match=what):
        thunk()


def test_case_count():
    assert len(CASES) >= 100


# ------------------------------------------------------------------------------------ honest statuses
def test_nonconvex_svc_warns_at_max_iter():
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        est = NonconvexSVC(penalty="mcp", lam=0.01, max_iter=2, tol=1e-12).fit(XC, YC)
    assert est.result_.status == "maxiter" and np.all(np.isfinite(est.coef_))


# ----------------------------------------------------------------------------------- checkpoint loader
def _edit(path, **changes):
    with np.load(path, allow_pickle=False) as f:
        data = {k: f[k] for k in f.files}
    data.update(changes)
    for k in [k for k, v in changes.items() if v is None]:
        data.pop(k)
    with open(path, "wb") as fh:
        np.savez(fh, **data)


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "svm.npz"
    ol.svm_admm(XC, YC, L1, maxiter=6, log_every=3, tol=0, checkpoint=path, **P)
    return path.read_bytes()


@pytest.mark.parametrize("damage, match", [
    ("truncated", "not a readable"),
    ("text", "not a readable"),
    ("nan-state", "not finite"),
    ("no-n_iter", "lacks"),
    ("n_iter-mismatch", "inconsistent"),
    ("beyond-maxiter", "beyond maxiter"),
    ("other-problem", "another problem or solver"),
    ("wrong-shape", "shape|another problem"),
])
def test_checkpoint_loader_rejects(tmp_path, good_checkpoint, damage, match):
    path = tmp_path / "c.npz"
    path.write_bytes(good_checkpoint)
    X, maxiter = XC, 20
    if damage == "truncated":
        path.write_bytes(good_checkpoint[: len(good_checkpoint) // 3])
    elif damage == "text":
        path.write_text("n_iter=3\n")
    elif damage == "nan-state":
        with np.load(path) as f:
            w = np.array(f["state_0"])
        w.flat[0] = np.nan
        _edit(path, state_0=w)
    elif damage == "no-n_iter":
        _edit(path, n_iter=None)
    elif damage == "n_iter-mismatch":
        _edit(path, n_iter=np.array(4, np.int64))
    elif damage == "beyond-maxiter":
        maxiter = 3
    elif damage == "other-problem":
        X = XC * 2.0
    elif damage == "wrong-shape":
        X = np.hstack([XC, XC[:, :1]])
    with pytest.raises(harness.CheckpointError, match=match):
        ol.svm_admm(X, YC, L1, maxiter=maxiter, log_every=3, tol=0, resume=path, **P)


def test_checkpoint_status_is_recomputed(tmp_path, good_checkpoint):
    path = tmp_path / "c.npz"
    path.write_bytes(good_checkpoint)
    _edit(path, status=np.array("converged"))
    res = ol.svm_admm(XC, YC, L1, maxiter=9, log_every=3, tol=0, resume=path, **P)
    assert res.status == "maxiter" and res.n_iter == 9


# -------------------------------------------------------------------------------- validate.py helpers
@pytest.mark.parametrize("value, ok", [(0, True), (2**32 - 1, True), (np.uint32(7), True), (1.9, False),
                                       (1.0, False), (-1, False), (2**32, False), (True, False), ("3", False)])
def test_seed_range(value, ok):
    if ok:
        assert validate.seed("seed", value) == int(value)
    else:
        with pytest.raises((TypeError, ValueError), match="seed"):
            validate.seed("seed", value)


def test_seed_from_key_is_deterministic_and_distinct():
    k1, k2 = jax.random.key(1), jax.random.key(2)
    s1 = validate.seed("seed", k1)
    assert s1 == validate.seed("seed", k1) == validate.seed("seed", jax.random.PRNGKey(1))
    assert s1 != validate.seed("seed", k2) and 0 <= s1 < 2**32


@pytest.mark.parametrize("value, expect", [(3, 3), (3.0, 3), (np.int64(4), 4), (1e4, 10000)])
def test_count_accepts_integers(value, expect):
    assert validate.count("n", value) == expect


@pytest.mark.parametrize("value", [10.7, float("nan"), float("inf"), True, "3", None, 1 + 0j])
def test_count_refuses_non_integers(value):
    with pytest.raises(TypeError, match="n must be an integer"):
        validate.count("n", value)


def test_in_interval_infinity_only_when_allowed():
    assert validate.in_interval("rho_max", np.inf, 1.0, finite=False) == np.inf
    for kw in ({}, {"finite": False}):
        with pytest.raises(ValueError, match="rho_max"):
            validate.in_interval("rho_max", np.nan, 1.0, **kw)
    with pytest.raises(ValueError, match="rho_max"):
        validate.in_interval("rho_max", np.inf, 1.0)
    with pytest.raises(ValueError, match="rho_max"):
        validate.in_interval("rho_max", 0.5, 1.0, finite=False)


def test_gist_search_ranges():
    assert validate.gist_search(1e-5, 2.0, 1e-30, np.inf) == (1e-5, 2.0, 1e-30, np.inf)
    for kw, name in (({"sigma": -1.0}, "sigma"), ({"sigma": np.nan}, "sigma"), ({"eta": 1.0}, "eta"),
                     ({"eta": 0.5}, "eta"), ({"L_min": 0.0}, "L_min"), ({"L_min": 10.0, "L_max": 1.0}, "L_min")):
        args = {"sigma": 1e-5, "eta": 2.0, "L_min": 1e-30, "L_max": 1e30, **kw}
        with pytest.raises(ValueError, match=name):
            validate.gist_search(**args)


def test_float_tree_checks_structure_shapes_and_values():
    like = {"a": np.zeros(3), "b": (np.zeros((2, 2)),)}
    out = validate.float_tree("p", {"a": np.array([1.0, 2, 3]), "b": (np.eye(2),)}, like=like)
    assert isinstance(out["a"], jax.Array) and out["a"].dtype == jnp.result_type(float)
    with pytest.raises(ValueError, match=r"p\['a'\].*shape"):
        validate.float_tree("p", {"a": np.zeros(4), "b": (np.eye(2),)}, like=like)
    with pytest.raises(ValueError, match="structure"):
        validate.float_tree("p", {"a": np.zeros(3)}, like=like)
    with pytest.raises(ValueError, match=r"p\['b'\]\[0\]"):
        validate.float_tree("p", {"a": np.zeros(3), "b": (np.full((2, 2), np.inf),)}, like=like)
    with pytest.raises(TypeError, match="floating"):
        validate.float_tree("p", {"a": np.zeros(3, int), "b": (np.eye(2),)}, like=like)


# ======================== admm_irnn through optlab.validate (issue 15; lines branch) ========================
IRNN_VALIDATE_CASES = [
    ("irnn-hidden-float", irnn_(hidden=2.5), E(TypeError, "hidden")),
    ("irnn-hidden-0", irnn_(hidden=0), E(ValueError, "hidden")),
    ("irnn-iters-float", irnn_(iters=2.7), E(TypeError, "iters")),
    ("irnn-iters-neg", irnn_(iters=-1), E(ValueError, "iters")),
    ("irnn-maxiter-float", irnn_(maxiter=3.5), E(TypeError, "maxiter")),
    ("irnn-o-steps-float", irnn_(o_steps=1.5), E(TypeError, "o_steps")),
    ("irnn-a-steps-neg", irnn_(a_steps=-1), E(ValueError, "a_steps")),
    ("irnn-a-halvings-bool", irnn_(a_halvings=True), E(TypeError, "a_halvings")),
    ("irnn-reproject-float", irnn_(reproject_every=1.5), E(TypeError, "reproject_every")),
    ("irnn-n-classes-1", irnn_(n_classes=1), E(ValueError, "n_classes")),
    ("irnn-seed-float", irnn_(seed=1.9), E(TypeError, "seed")),
    ("irnn-seed-neg", irnn_(seed=-1), E(ValueError, "seed")),
    ("irnn-seed-2**32", irnn_(seed=2**32), E(ValueError, "seed")),
    ("irnn-seed-key", irnn_(seed=jax.random.key(2)), S("maxiter")),
    ("irnn-neg-tol", irnn_(tol=-1.0), E(ValueError, "tol")),
    ("irnn-ls-prox-nan", irnn_(ls_prox=float("nan")), E(ValueError, "ls_prox")),
    ("irnn-nan-warm-start", irnn_(warm_start={k: np.full(v.shape, np.nan) for k, v in
                                              ol.solvers.admm_irnn.init_params(2, 3, 2).items()}),
     E(ValueError, "warm_start")),
    ("irnn-parallel-str", irnn_(parallel="sync"), E(TypeError, "parallel")),
    ("bptt-seed-neg", lambda: ol.solvers.admm_irnn.bptt(XS, YS, hidden=3, epochs=2, seed=-1, **P),
     E(ValueError, "seed")),
    ("bptt-hidden-float", lambda: ol.solvers.admm_irnn.bptt(XS, YS, hidden=2.5, epochs=2, **P),
     E(TypeError, "hidden")),
]


@pytest.mark.parametrize("name, thunk, expected", IRNN_VALIDATE_CASES, ids=[c[0] for c in IRNN_VALIDATE_CASES])
def test_admm_irnn_counts_and_seeds_through_validate(name, thunk, expected):
    test_bad_input(name, thunk, expected)
# ======================== end of the admm_irnn validation block ========================
