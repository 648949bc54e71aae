"""Run a benchmark's measurement in a new Python process (a fresh process: nothing traced, compiled or imported yet)
and read back the JSON line it prints last."""
from __future__ import annotations

import json
import subprocess
import sys


def run_child(module: str, args=(), env=None) -> dict:
    """``python -m MODULE --child ARGS...`` in a new process; returns the JSON object on its last output line."""
    cmd = [sys.executable, "-m", module, "--child", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"benchmark process failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
