"""Shared test setup.

float64 is switched on for the whole suite: references (scikit-learn, CVXPY, brute force) are float64
and several tests compare to 1e-8. Tests that check float32 behaviour create float32 arrays explicitly.
"""
import os

import jax

jax.config.update("jax_enable_x64", True)


def pytest_report_header(config):
    return f"jax {jax.__version__}, devices {jax.devices()}, OPTLAB_DATA={os.environ.get('OPTLAB_DATA', '(unset)')}"
