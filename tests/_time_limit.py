"""A per-test time limit for the bad-input suites: a hang fails the test instead of blocking the suite."""
import contextlib
import signal


class CaseTimeout(BaseException):
    """Raised by the alarm; a BaseException, so no ``except Exception`` in the code under test can swallow it."""


@contextlib.contextmanager
def time_limit(seconds: float, what: str):
    """Raise :class:`CaseTimeout` in the main thread after ``seconds`` (SIGALRM; nothing on platforms without it)."""
    if not hasattr(signal, "SIGALRM"):  # pragma: no cover - Windows
        yield
        return

    def on_alarm(signum, frame):
        raise CaseTimeout(f"{what} ran longer than {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
