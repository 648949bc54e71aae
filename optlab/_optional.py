"""Optional dependencies: import one, or fail with a message that names the extra which installs it.

The core install (``pip install optlab``) needs only JAX, optax, NumPy, SciPy, scikit-learn, matplotlib and tqdm.
CVXPY (reference optima for the stochastic experiments) and pandas (``Trace.to_frame``) come with
``pip install "optlab[repro]"``; see ``[project.optional-dependencies]`` in ``pyproject.toml``.
"""
from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["require"]


def require(module: str, *, extra: str, purpose: str) -> ModuleType:
    """Import ``module``; if it is not installed, raise :class:`ModuleNotFoundError` naming ``extra``.

    ``purpose`` says what needs it (e.g. ``"the CVXPY reference optimum"``). A missing *dependency of* the
    module (an import error inside it) is re-raised unchanged, so a broken install is not mistaken for a
    missing one.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as err:
        top = module.partition(".")[0]
        if err.name != top:
            raise
        raise ModuleNotFoundError(
            f"{purpose} needs the optional package {top!r}, which is not installed; install it with "
            f"`pip install \"optlab[{extra}]\"` (or `pip install {top}`)", name=top) from err
