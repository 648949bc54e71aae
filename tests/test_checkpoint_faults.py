"""Fault injection: a checkpointing run killed (SIGKILL, by its PID) at random moments — most of them during a
checkpoint write — always leaves a readable checkpoint, and resuming from it reproduces the uninterrupted run bit for
bit. Checkpoints are written to a temporary file, synced and renamed (optlab.harness.save_checkpoint)."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from optlab import harness

sys.path.insert(0, str(Path(__file__).parent))
import checkpoint_child as child  # noqa: E402

KILLS = 20
MAXITER = 400


@pytest.mark.slow
def test_killed_checkpointing_run_always_leaves_a_resumable_checkpoint(tmp_path):
    problem, metrics = child.problem(), {"objective": child.objective}
    full = harness.run(child.step, child.start(), problem, maxiter=MAXITER, log_every=5, metrics=metrics,
                       progress=False)
    rng = np.random.default_rng(0)
    during_write = 0
    for kill in range(KILLS):
        ckpt = tmp_path / f"run{kill}.npz"
        proc = subprocess.Popen([sys.executable, str(Path(child.__file__)), str(ckpt), str(10**6)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 120
            while not ckpt.exists():                      # the first checkpoint is written after compilation
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.monotonic() < deadline, "the child wrote no checkpoint in 120 s"
                time.sleep(0.01)
            if kill % 2:   # at a random moment
                time.sleep(rng.uniform(0.0, 0.6))
            else:          # at a random moment of a write: as soon as a temporary file appears, plus 0-20 ms
                while not any(p.name.endswith(".tmp") for p in tmp_path.iterdir()):
                    assert time.monotonic() < deadline and proc.poll() is None
                    time.sleep(0.0005)
                time.sleep(rng.uniform(0.0, 0.02))
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait(timeout=30)
        # a temporary file left behind proves the kill landed in the middle of a write
        during_write += any(p.name.endswith(".tmp") for p in tmp_path.iterdir())
        # a readable, validated checkpoint is there ...
        state, trace, n_iter = harness.load_checkpoint(ckpt, child.start(),
                                                       fingerprint=harness.fingerprint(child.step, problem))
        assert n_iter > 0 and n_iter % 5 == 0 and int(trace.iters[-1]) == n_iter
        # ... and resuming from it gives the uninterrupted run's iterates bit for bit
        if n_iter <= MAXITER:
            resumed = harness.run(child.step, child.start(), problem, maxiter=MAXITER, log_every=5, metrics=metrics,
                                  resume=ckpt, progress=False)
            assert resumed.n_iter == MAXITER
            for a, b in zip(jax.tree.leaves(resumed.state), jax.tree.leaves(full.state)):
                np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        for leftover in tmp_path.glob("*.tmp"):
            leftover.unlink()
    # the kills really hit writes (a temporary file was left behind) in a good share of the runs
    print(f"kills during a write: {during_write} of {KILLS}")
    assert during_write >= KILLS // 4, during_write
