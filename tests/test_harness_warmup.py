"""The harness's zero-iteration warm-up call (it compiles the chunk and times that as compile time): made once per
chunk program in a process, not once per run; the results are the same with and without it, and a chunk that has to
be compiled after all is run again, so that its compile time stays out of ``trace.times``."""
import jax
import numpy as np
import pytest

from optlab import harness
from test_harness import gd_step, make_problem, numpy_gd, objective

pytestmark = pytest.mark.skipif(harness._donating_backend(), reason="accelerators always warm up (donated state)")


@pytest.fixture
def chunk_calls(monkeypatch):
    """The ``n_steps`` of every chunk call, through a wrapper of the compiled chunk (a new program key per test)."""
    calls = []
    real = harness._chunk_plain

    def chunk(step, stop_metric, state, info, problem, n_steps, tol):
        calls.append(int(n_steps))
        return real(step, stop_metric, state, info, problem, n_steps, tol)

    monkeypatch.setattr(harness, "_chunk_plain", chunk)
    return calls


def _run(prob, state):
    return harness.run(gd_step, state, prob, maxiter=100, log_every=40, metrics={"objective": objective})


def _same(a, b):
    assert a.status == b.status and a.n_iter == b.n_iter
    for x, y in zip(jax.tree.leaves(a.state), jax.tree.leaves(b.state)):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))       # bit for bit
    np.testing.assert_array_equal(a.trace.iters, b.trace.iters)
    for name in a.trace.metrics:
        np.testing.assert_array_equal(a.trace[name], b.trace[name])


def test_warm_up_once_per_program(chunk_calls):
    prob, state, (Q, b, step) = make_problem(d=12)
    first = _run(prob, state)
    assert chunk_calls == [0, 40, 40, 20]                 # warm-up, then the chunks to 100 iterations
    chunk_calls.clear()
    second = _run(prob, state)
    assert chunk_calls == [40, 40, 20]                    # the same program: no warm-up call
    _same(first, second)
    np.testing.assert_allclose(np.asarray(second.state.x), numpy_gd(Q, b, step, 100), rtol=1e-12)
    assert second.trace.times[0] == 0.0 and np.all(np.diff(second.trace.times) >= 0)
    chunk_calls.clear()
    other, state_other, _ = make_problem(d=13)           # another shape: another program, warmed up
    _run(other, state_other)
    assert chunk_calls == [0, 40, 40, 20]


def test_program_dropped_since_is_run_again_without_its_compile_time(chunk_calls):
    prob, state, _ = make_problem(d=14)
    first = _run(prob, state)
    jax.clear_caches()                                    # the program is gone, the harness still counts it warm
    chunk_calls.clear()
    again = _run(prob, state)
    assert chunk_calls == [40, 40, 40, 20]                # the first chunk compiled, so it ran a second time
    _same(first, again)
    compile_time = again.trace.meta["compile_time"]
    assert compile_time > 0
    assert again.trace.times[1] < compile_time, (again.trace.times, compile_time)


def test_release_compiled_programs_forgets_the_warmed_programs(chunk_calls):
    """After ``release_compiled_programs`` (what the CLI does between experiments) a program is compiled again, so
    the next run warms it up again: its compile time is not counted as solver time, and the results are unchanged."""
    prob, state, _ = make_problem(d=15)
    first = _run(prob, state)
    before = harness._COMPILES[0]
    harness.release_compiled_programs()
    assert not harness._WARM_CHUNKS
    chunk_calls.clear()
    again = _run(prob, state)
    assert chunk_calls == [0, 40, 40, 20]                 # warmed up again
    assert harness._COMPILES[0] > before                  # the program was built (or loaded) again
    _same(first, again)
