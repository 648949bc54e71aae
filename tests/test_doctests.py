"""The runnable examples in optlab's docstrings (``>>>``) run and print what they say (doctest, in CI)."""
import doctest
import importlib
import pkgutil

import pytest

import optlab

MODULES = sorted(info.name for info in pkgutil.walk_packages(optlab.__path__, "optlab."))


def _has_examples(name: str) -> bool:
    module = importlib.import_module(name)
    return bool(doctest.DocTestFinder(exclude_empty=True).find(module))


WITH_EXAMPLES = [name for name in MODULES if _has_examples(name)]


def test_the_public_solvers_have_examples():
    assert {"optlab.solvers.baselines.proxgrad", "optlab.solvers.pig", "optlab.solvers.pig_jacobi",
            "optlab.solvers.baselines.gist"} <= set(WITH_EXAMPLES)


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} doctest examples failed in {name}"
