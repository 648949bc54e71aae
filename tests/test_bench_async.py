"""``optlab bench async``: the problems build and the synchronous executor reaches their targets (no Ray here; the
real asynchronous runs are the benchmark itself)."""
import numpy as np
import pytest

from optlab.experiments import bench_async
from optlab.parallel import Sync


def test_admm_irnn_problem_sync_reaches_target_like_serial():
    pb = bench_async.admm_irnn_problem(quick=True)
    assert pb.key == "admm_irnn" and pb.metric == "train_loss" and pb.f_star > 0
    par = pb.run(Sync(2), pb.maxiter)
    t, it = bench_async._time_to(par.trace, pb.f_star, pb.target, pb.metric)
    assert 100 <= it <= 300 and np.isfinite(t)          # the target is sized for ~100–300 updates
    # independent of the bench's plumbing: Sync(2) is the serial iteration up to the order of the sums
    serial = pb.run(None, pb.maxiter)
    np.testing.assert_allclose(par.trace["train_loss"], serial.trace["train_loss"], rtol=1e-9)
    gap = (np.asarray(serial.trace["train_loss"]) - pb.f_star) / pb.f_star
    assert gap.min() >= 0 and serial.trace.iters[np.flatnonzero(gap <= pb.target)[0]] == it


def test_problems_flag_names_the_choices():
    with pytest.raises(SystemExit):
        bench_async.main(["--problems", "nope"])
    assert set(bench_async.PROBLEMS) == {"lasso", "svm", "admm_irnn"}
    assert "admm_irnn" in bench_async.__doc__


def test_admm_irnn_size_option():
    # the named sizes are the solver registry's; NxT is parsed
    assert bench_async.admm_irnn_size("small") == (400, 2) and bench_async.admm_irnn_size("medium") == (4000, 8)
    assert bench_async.admm_irnn_size("8000x8") == (8000, 8) and bench_async.admm_irnn_size(" 12 × 3 ") == (12, 3)
    for bad in ("huge", "8000", "0x8", "8000x0", "x8"):
        with pytest.raises(ValueError):
            bench_async.admm_irnn_size(bad)
        with pytest.raises(SystemExit):
            bench_async.main(["--problems", "admm_irnn", "--admm-irnn-size", bad])
    with pytest.raises(SystemExit):
        bench_async.main(["--problems", "admm_irnn", "--admm-irnn-target", "0"])
    assert "--admm-irnn-size" in bench_async.__doc__


def test_admm_irnn_problem_custom_size_and_target():
    pb = bench_async.admm_irnn_problem(quick=True, size="40x2", target=0.5)
    assert pb.target == 0.5 and "40×2×2" in pb.title and pb.units(4) == 40
    assert bench_async.admm_irnn_problem(quick=True, size="40x2").target == 0.65
