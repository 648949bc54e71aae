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
import pytest  # noqa: E402

from optlab import harness  # noqa: E402

jax.config.update("jax_enable_x64", True)


def pytest_report_header(config):
    return f"jax {jax.__version__}, devices {jax.devices()}, OPTLAB_DATA={os.environ.get('OPTLAB_DATA', '(unset)')}"


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop JAX's compiled programs after each test module.

    XLA:CPU maps every compiled program into memory with about nine memory maps of its own, and JAX keeps each
    program as long as its jitted function lives. The suite compiles many thousands of programs in one process;
    without this, the process reaches the kernel's limit on memory maps (``vm.max_map_count``, 65,530 by default)
    about two thirds of the way through and dies in the next compilation (seen as a segmentation fault or abort
    inside XLA). Clearing after each module keeps the count at what one module needs; a later module that needs a
    program again compiles it again.
    """
    yield
    _PEAK_MAPS[0] = max(_PEAK_MAPS[0], _memory_maps())
    harness.release_compiled_programs()


_PEAK_MAPS = [0]


def _memory_maps() -> int:
    try:
        with open("/proc/self/maps") as fh:
            return sum(1 for _ in fh)
    except OSError:   # not Linux
        return 0


def pytest_terminal_summary(terminalreporter):
    if _PEAK_MAPS[0]:
        terminalreporter.write_line(f"memory maps of the test process: at most {_PEAK_MAPS[0]:,} at the end of a "
                                    "module (the kernel's limit is vm.max_map_count, 65,530 by default)")
