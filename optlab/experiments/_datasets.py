"""The data sets of one experiment run: real files when found, generated stand-ins when not, and which is which.

An experiment loads its data through :class:`DataSets` and labels its outputs with it: ``label(name)`` is the name
to print in tables, CSV columns and figure titles (``"splice (stand-in)"`` for a stand-in), ``kind(name)`` the value
of the ``data`` column of its CSVs (``"real"`` or ``"stand-in"``), and ``mark(fig)`` adds a figure title saying that
the figure shows stand-in data. Stand-ins: :mod:`optlab.data.standin`.

Whether stand-ins are allowed is the policy of :func:`optlab.data.load_or_standin`: ``"auto"`` (stand-in only where
the data is missing), ``"never"`` or ``"always"``. :func:`standin_policy` sets it for the experiments run inside it
(the command line's ``--data``); without it quick runs use ``"auto"`` and full runs ``"never"`` (a paper figure is
never made from stand-in data unless asked for).
"""
from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

__all__ = ["DataSets", "standin_policy", "REAL", "STANDIN"]

REAL = "real"
STANDIN = "stand-in"
_POLICY: contextvars.ContextVar[str | None] = contextvars.ContextVar("optlab_standin_policy", default=None)


@contextlib.contextmanager
def standin_policy(policy: str) -> Iterator[None]:
    """Run the experiments inside with stand-in policy ``"auto"``, ``"never"`` or ``"always"``."""
    if policy not in ("auto", "never", "always"):
        raise ValueError(f"stand-in policy {policy!r}: use 'auto', 'never' or 'always'")
    token = _POLICY.set(policy)
    try:
        yield
    finally:
        _POLICY.reset(token)


class DataSets:
    """Loads an experiment's data sets (cached per arguments) and remembers which ones are stand-ins."""

    def __init__(self, quick: bool):
        self.policy = _POLICY.get() or ("auto" if quick else "never")
        self._kinds: dict[str, str] = {}
        self._cache: dict = {}

    def load(self, name: str, **kwargs):
        """``optlab.data.load_or_standin(name, **kwargs)`` under this run's policy."""
        from optlab.data import get_info, is_standin, load_or_standin

        key = (get_info(name).name, tuple(sorted(kwargs.items())))
        if key not in self._cache:
            ds = load_or_standin(name, standin=self.policy, **kwargs)
            self._kinds[ds.name] = STANDIN if is_standin(ds) else REAL
            self._cache[key] = ds
        return self._cache[key]

    def _name(self, name: str) -> str:
        from optlab.data import get_info

        try:
            return get_info(name).name
        except ValueError:
            return name

    def kind(self, name: str) -> str:
        """``"stand-in"`` for a data set this run replaced by a stand-in, else ``"real"``."""
        return self._kinds.get(self._name(name), REAL)

    def label(self, name: str, text: str | None = None) -> str:
        """``text`` (default ``name``) followed by ``" (stand-in)"`` when ``name`` is a stand-in here."""
        text = name if text is None else text
        return f"{text} ({STANDIN})" if self.kind(name) == STANDIN else text

    @property
    def standins(self) -> list[str]:
        """The data sets of this run that are stand-ins, in the order they were loaded."""
        return [n for n, k in self._kinds.items() if k == STANDIN]

    def mark(self, fig, names=None) -> None:
        """Give ``fig`` a title naming the stand-in data it shows (``names``: the data sets it shows; default all
        loaded so far); nothing when they are all real."""
        shown = self.standins if names is None else [n for n in map(self._name, names) if self.kind(n) == STANDIN]
        if shown:
            fig.suptitle(f"STAND-IN DATA: {', '.join(shown)} generated with the real shape (not the real data; "
                         "optlab.data.standin)", color="firebrick", fontsize=10)
