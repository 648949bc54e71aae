"""One progress bar per experiment: how many of its runs are done and which run is being done.

The command line opens the bar around each experiment (:func:`experiment_bar`); the experiment announces each run
with :func:`step` (and, when it knows it, the number of runs with :func:`expect`). Outside a bar (an experiment
called from Python) both do nothing. While a bar is shown, what the experiment prints goes through ``tqdm.write``
so that it does not tear the bar.
"""
from __future__ import annotations

import contextlib
import contextvars
import sys
from collections.abc import Iterator

__all__ = ["experiment_bar", "step", "expect"]

_STATE: contextvars.ContextVar = contextvars.ContextVar("optlab_experiment_bar", default=None)


class RunCounter:
    """The bar of one experiment and its counts: ``done`` runs finished, ``total`` expected (None: unknown)."""

    def __init__(self, bar):
        self.bar, self.done, self.total, self.pending = bar, 0, None, False

    def _finish_pending(self) -> None:
        if self.pending:
            self.done += 1
            self.bar.update(1)
            self.pending = False


class _ThroughTqdm:
    """A stdout replacement that writes through ``tqdm.write`` (the bar is cleared and redrawn around it)."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> int:
        from tqdm import tqdm

        if text.strip():
            tqdm.write(text.rstrip("\n"), file=self.stream)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def isatty(self) -> bool:
        return False


@contextlib.contextmanager
def experiment_bar(name: str, *, enabled: bool | None = None) -> Iterator[RunCounter]:
    """A tqdm bar named ``name`` on stderr for the experiment run inside (``enabled=None``: only on a terminal).
    Yields its :class:`RunCounter` (``done``/``total`` are counted whether or not the bar is shown)."""
    from tqdm import tqdm

    show = sys.stderr.isatty() if enabled is None else bool(enabled)
    bar = tqdm(desc=name, unit="run", disable=not show, file=sys.stderr, dynamic_ncols=True, leave=True,
               mininterval=0.5)
    counter = RunCounter(bar)
    token = _STATE.set(counter)
    redirect = contextlib.redirect_stdout(_ThroughTqdm(sys.stdout)) if show else contextlib.nullcontext()
    try:
        with redirect:
            yield counter
        counter._finish_pending()
        bar.set_postfix_str("done")
    finally:
        bar.close()
        _STATE.reset(token)


def expect(total: int) -> None:
    """The experiment will do ``total`` runs (the bar shows n/total and an estimate of the time left)."""
    counter = _STATE.get()
    if counter is not None:
        counter.total = counter.bar.total = int(total)
        counter.bar.refresh()


def step(label: str) -> None:
    """The run ``label`` starts now (the previous one, if any, is done)."""
    counter = _STATE.get()
    if counter is None:
        return
    counter._finish_pending()
    counter.pending = True
    counter.bar.set_postfix_str(label, refresh=True)
