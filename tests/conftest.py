"""Shared test setup.

float64 is switched on for the whole suite: references (scikit-learn, CVXPY, brute force) are float64
and several tests compare to 1e-8. Tests that check float32 behaviour create float32 arrays explicitly.
"""
import os

# Four simulated CPU devices for the parallel tests (tests/parallel); must be set before JAX starts.
# A device count already in XLA_FLAGS (e.g. from the caller) is kept.
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=4").strip()

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)


def pytest_report_header(config):
    return f"jax {jax.__version__}, devices {jax.devices()}, OPTLAB_DATA={os.environ.get('OPTLAB_DATA', '(unset)')}"
