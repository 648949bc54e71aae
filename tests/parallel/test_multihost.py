"""Two processes joined by jax.distributed (2 CPU devices each) give the same result as one process
with 4 devices, for the synchronous and the asynchronous executor."""
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

WORKER = Path(__file__).with_name("multihost_worker.py")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_equal_one_process(tmp_path):
    one = tmp_path / "one.npy"
    subprocess.run([sys.executable, str(WORKER), "0", "1", "0", str(one)], check=True, timeout=300,
                   capture_output=True)
    port = str(free_port())
    outs = [tmp_path / f"two_{i}.npy" for i in range(2)]
    procs = [subprocess.Popen([sys.executable, str(WORKER), str(i), "2", port, str(outs[i])],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in range(2)]
    logs = []
    for p in procs:
        try:
            logs.append(p.communicate(timeout=300)[0])
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            raise
    assert all(p.returncode == 0 for p in procs), "\n".join(logs)
    ref = np.load(one)
    for out in outs:
        np.testing.assert_allclose(np.load(out), ref, rtol=1e-12, atol=1e-14)
