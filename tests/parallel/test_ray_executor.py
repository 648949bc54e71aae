"""RayAsync's tests (tests/parallel/ray_suite.py) in a pytest process of their own.

A Ray driver leaves threads and native state in its process after ``ray.shutdown()``; with the rest of the suite in
the same process (thousands of XLA compilations, forked children) the whole run once died with a segmentation fault
long after the Ray tests had passed. The Ray tests therefore run in a child pytest process; this test passes when
every one of them passes, and shows the child's report when one does not. Run them directly with
``python -m pytest tests/parallel/ray_suite.py``.
"""
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytest.importorskip("ray")

SUITE = Path(__file__).with_name("ray_suite.py")


def test_ray_suite_in_its_own_process(tmp_path):
    report = tmp_path / "ray_suite.xml"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-ra", "-p", "no:cacheprovider", f"--junitxml={report}", str(SUITE)],
        cwd=SUITE.parents[2], env=dict(os.environ), capture_output=True, text=True, timeout=1500)
    output = proc.stdout[-20000:] + proc.stderr[-5000:]
    assert proc.returncode == 0, f"the Ray suite failed (exit {proc.returncode}):\n{output}"
    cases = ET.parse(report).getroot().iter("testcase")
    ran = [c for c in cases if c.find("skipped") is None]
    assert ran, f"the Ray suite ran no test:\n{output}"
    print(output.strip().splitlines()[-1])
