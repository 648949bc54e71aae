"""Shared by the registry-driven parallel tests: the data-parallel registry cases, built once per module."""
import numpy as np
import pytest

from optlab.solvers.registry import data_parallel


@pytest.fixture(scope="module")
def built():
    """``built(name)``: the registry case ``name`` (seed 0, float64, size "small"), built once per module."""
    cases, cache = data_parallel(), {}

    def get(name):
        if name not in cache:
            cache[name] = cases[name].make(seed=0, dtype=np.float64, size="small")
        return cache[name]

    return get
