"""The ``optlab`` command.

    optlab list                              solvers, experiments and benchmarks
    optlab reproduce NAME|all [--quick] [--out DIR] [--seed N] [--data auto|real|standin] [--[no-]progress]
    optlab bench NAME [ARGS...]
    optlab data list                         every data set: size, source, available locally?
    optlab data path NAME                    where its file is (missing: an error, exit 2)
    optlab data fetch NAME                   download what is missing (checksums and content verified)
    optlab data verify NAME|all              check local files against the registry's content digests
    optlab data describe NAME                source, files, split and notes
    optlab --version

Errors print one line, ``optlab: error: <what> fix: <how>``, and exit with status 2 (bad input, missing
data, a failed check) or 1 (an unexpected error inside a run); ``--debug`` (anywhere on the line) also
prints the traceback. Ctrl-C exits with status 130.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import os
import re
import sys
import time
import traceback
from pathlib import Path

__all__ = ["main", "build_parser"]

#: Exceptions that mean "the input or the environment is wrong" (exit status 2); anything else is 1.
USER_ERRORS = (ValueError, TypeError, LookupError, OSError, ImportError)


class CLIError(Exception):
    """An error the command reports as ``what`` plus ``fix`` (exit status 2)."""

    def __init__(self, what: str, fix: str):
        super().__init__(f"{what}\n  fix: {fix}")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``optlab: error: <message> fix: see `<prog> --help`.`` (exit 2)."""

    def error(self, message: str):  # noqa: D401 - argparse API
        if _DEBUG:
            self.print_usage(sys.stderr)
        self.exit(2, f"{_one_line(message, f'see `{self.prog} --help`')}\n")


_DEBUG = False


# ---------------------------------------------------------------------------------------------- messages
def _one_line(message: str, fix: str) -> str:
    """``optlab: error: <first line> fix: <fix>`` on one line; a ``fix:`` line in ``message`` wins."""
    lines = [ln.strip() for ln in str(message).splitlines() if ln.strip()]
    head = lines[0] if lines else "unknown error"
    found = next((ln for ln in lines[1:] if ln.lower().startswith("fix:")), None)
    fix_text = found[4:].strip() if found else fix
    head = head if head.endswith((".", "?", "!", ")")) else head + "."
    return f"optlab: error: {head} fix: {fix_text}"


def _default_fix(err: BaseException, args) -> str:
    if isinstance(err, ModuleNotFoundError) and err.name:
        return f"install the missing package (pip install {err.name.split('.')[0]})."
    command = getattr(args, "command", None)
    if command == "data":
        return "run `optlab data list` for the data sets and where they are."
    if command in ("reproduce", "bench"):
        return "run `optlab list` for the experiments and benchmarks."
    return "run `optlab --help`."


# ------------------------------------------------------------------------------------------- experiments
def _experiments_package():
    """The experiments package, ``optlab.experiments`` (inside optlab: an unrelated ``experiments`` folder in the
    working directory can never shadow it)."""
    return importlib.import_module("optlab.experiments")


def _benchmarks() -> list[str]:
    root = Path(_experiments_package().__file__).parent
    return sorted(p.stem[len("bench_"):] for p in root.glob("bench_*.py"))


def public_solvers() -> list[tuple[str, str, str]]:
    """``(name, description, reference)`` of every solver ``optlab`` exports (``optlab.__all__``).

    The description and reference come from the solver registry when the solver has an entry there,
    otherwise from the first line of the solver's docstring.
    """
    import optlab

    from .solvers.registry import SOLVERS

    out = []
    for name in optlab.__all__:
        obj = getattr(optlab, name, None)
        if not inspect.isfunction(obj) or not obj.__module__.startswith("optlab.solvers"):
            continue
        case = SOLVERS.get(name)
        if case is not None:
            out.append((name, case.description, case.reference))
            continue
        first = (inspect.getdoc(obj) or "").split("\n\n")[0].replace("\n", " ")
        first = re.sub(r":\w+:`([^`]*)`", r"\1", first).replace("``", "")
        first = first.split(": ", 1)[0] if len(first) > 90 else first
        out.append((name, first[:90].rstrip(" .:"), ""))
    return out


def _cmd_list(args) -> int:
    print("Solvers (optlab.NAME):")
    for name, description, reference in public_solvers():
        print(f"  {name:<12} {description}" + (f"  [{reference}]" if reference else ""))
    pkg = _experiments_package()
    print("\nExperiments (optlab reproduce NAME [--quick]):")
    for exp in pkg.registry().values():
        print(f"  {exp.name:<16} {exp.description}")
    print("\nBenchmarks (optlab bench NAME):")
    for name in _benchmarks():
        print(f"  {name}")
    return 0


_DATA_POLICY = {"auto": "auto", "real": "never", "standin": "always"}


def _standin_note(name: str, error) -> str:
    """The one console note of a run that uses stand-in data (printed at the first stand-in)."""
    if error is None:
        return ("note: running on generated stand-in data (--data standin), not the real data sets; every table, "
                "figure and CSV of these experiments says 'stand-in'.")
    return (f"note: data set {name!r} is not available here (not under $OPTLAB_DATA or in the cache, and no "
            "download succeeded), so this and any other missing set is replaced by generated stand-in data of the "
            "same shape (optlab.data.standin); the tables, figures and CSVs made from it say 'stand-in'. For the "
            "real data: `optlab data fetch NAME`, or put the files under a folder and set OPTLAB_DATA.")




def _cmd_reproduce(args) -> int:
    from optlab.data.standin import on_standin

    from .experiments._datasets import standin_policy
    from .experiments._progress import experiment_bar

    pkg = _experiments_package()
    names = list(pkg.registry()) if args.name == "all" else [args.name]
    experiments = [pkg.get(n) for n in names]  # fail early on a typo
    out_root = Path(args.out) if args.out else Path("results/quick" if args.quick else "paper_figs")
    data = args.data or ("auto" if args.quick else "real")
    failures, timings = [], []
    used: list[str] = []      # the stand-ins of the experiment being run
    said: list[str] = []      # the stand-ins announced on the console (the note is printed once, at the first)

    def note(name, error):
        if not said:
            print(_standin_note(name, error), flush=True)
        said.append(name)
        if name not in used:
            used.append(name)

    remove = on_standin(note)
    t_all = time.perf_counter()
    try:
        for exp in experiments:
            out = out_root
            out.mkdir(parents=True, exist_ok=True)
            print(f"== {exp.name} ({'quick' if args.quick else 'full'}) -> {out}", flush=True)
            used.clear()
            t0 = time.perf_counter()
            runs = None
            try:
                with standin_policy(_DATA_POLICY[data]), experiment_bar(exp.name, enabled=args.progress) as runs:
                    summary = exp.run(out=out, quick=args.quick, seed=args.seed)
            except Exception as err:  # keep going with the other experiments, report at the end
                if len(experiments) == 1:
                    raise
                failures.append((exp.name, err))
                timings.append((exp.name, time.perf_counter() - t0, runs.done if runs else 0, "failed"))
                print(_one_line(f"{exp.name} failed: {type(err).__name__}: {err}", _default_fix(err, args)),
                      file=sys.stderr)
                if _DEBUG:
                    traceback.print_exception(err, file=sys.stderr)
                continue
            finally:
                from . import harness

                harness.release_compiled_programs()
            elapsed = time.perf_counter() - t0
            on = f"stand-in: {', '.join(used)}" if used else "real"
            timings.append((exp.name, elapsed, runs.done, on))
            print(f"   {exp.name} done in {elapsed:.1f} s ({runs.done} runs; data: {on}); wrote:")
            for path in summary.get("files", []):
                print(f"   {path}")
    finally:
        remove()
    if len(experiments) > 1:
        from .trace import format_table

        rows = [{"experiment": n, "time_s": f"{t:.1f}", "runs": r, "data": d} for n, t, r, d in timings]
        rows.append({"experiment": "total", "time_s": f"{time.perf_counter() - t_all:.1f}", "runs": "", "data": ""})
        print(f"\n== {len(timings)} experiments ({'quick' if args.quick else 'full'}) in "
              f"{time.perf_counter() - t_all:.1f} s\n" + format_table(rows))
    else:
        print(f"total time {time.perf_counter() - t_all:.1f} s")
    if failures:
        print(f"{len(failures)} experiment(s) failed: {', '.join(n for n, _ in failures)}", file=sys.stderr)
        return 1
    return 0


def _cmd_bench(args) -> int:
    known = _benchmarks()
    if args.name not in known:
        import difflib

        close = difflib.get_close_matches(args.name, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise CLIError(f"unknown benchmark {args.name!r}.{hint}", f"use one of: {', '.join(known)}.")
    module = importlib.import_module(f"{_experiments_package().__name__}.bench_{args.name}")
    return int(module.main(args.rest) or 0)


# -------------------------------------------------------------------------------------------------- data
def _size_text(info) -> str:
    return info.size_text or "-"


def _local_text(name: str) -> str:
    from . import data

    info = data.get_info(name)
    if info.kind == "sklearn":
        return "bundled"
    if info.kind == "synthetic":
        return "generated"
    files = data.local_files(name)
    required = [files[s.rel] for s in info.files]
    optional = [files[s.rel] for s in info.optional]
    if not all(required):
        n = sum(p is not None for p in required)
        return "no" if n == 0 else f"partly ({n} of {len(required)} files)"
    missing = sum(p is None for p in optional)
    if info.kind == "idx" and missing:
        return "yes (t10k only)"
    if optional and missing:
        names = [s.basename for s, p in zip(info.optional, optional, strict=True) if p is None]
        return f"yes (optional {', '.join(names)} missing)" if len(names) == 1 else \
            f"yes ({missing} of {len(optional)} optional files missing)"
    return "yes"


def _data_list() -> int:
    from . import data

    rows = [(n, _size_text(data.get_info(n)), _local_text(n), data.get_info(n).short_source)
            for n in data.list_datasets()]
    header = ("NAME", "SIZE (rows x features)", "LOCAL", "SOURCE")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    for r in [header, *rows]:
        print(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:<{widths[2]}}  {r[3]}")
    roots = data.data_roots()
    print(f"\nlooked under $OPTLAB_DATA ({', '.join(map(str, roots)) if roots else 'not set'}) and the cache "
          f"{data.cache_dir()}; `optlab data fetch NAME` downloads a set, `optlab data describe NAME` says more.")
    return 0


def _data_path(name: str) -> int:
    from . import data

    info = data.get_info(name)
    if not info.files:
        raise CLIError(f"{info.name!r} has no data file ({info.source})",
                       f"load it directly: optlab.data.load({info.name!r}).")
    files = data.local_files(info.name)
    for spec in info.files:
        if files[spec.rel] is None:
            roots = ", ".join(map(str, data.data_roots())) or "not set"
            raise CLIError(f"data set {info.name!r} is missing: its file {spec.rel!r} is neither under $OPTLAB_DATA "
                           f"({roots}) nor in the cache {data.cache_dir()}",
                           f"run `optlab data fetch {info.name}`, or put the file at <dir>/{spec.rel} and set "
                           "OPTLAB_DATA=<dir>.")
    print(data.path(info.name))
    return 0


def _data_verify(name: str) -> int:
    from . import data

    names = data.list_datasets(include_parts=True) if name == "all" else [data.get_info(name).name]
    failed = 0
    for n in names:
        info = data.get_info(n)
        if not info.files or info.part_of:
            continue
        if name == "all" and not all(data.local_files(n)[s.rel] for s in info.files):
            print(f"{n:<16} not local (skipped)")
            continue
        try:
            digests = data.verify(n)
        except (data.ContentMismatchError, data.InvalidDataError) as err:
            if name != "all":
                raise
            failed += 1
            print(_one_line(str(err), f"optlab data fetch {n}"), file=sys.stderr)
            continue
        pinned = {s.rel for s in (*info.files, *info.optional) if s.content_sha256}
        for rel, digest in digests.items():
            state = "ok (matches the registry)" if rel in pinned else "parsed ok (no pinned digest)"
            print(f"{n:<16} {rel:<40} {state}  content sha256 {digest[:16]}...")
    return 2 if failed else 0


def _cmd_data(args) -> int:
    from . import data

    if args.action == "list":
        if args.name:
            raise CLIError(f"`optlab data list` takes no name (got {args.name!r})",
                           f"use `optlab data describe {args.name}` for one data set.")
        return _data_list()
    if not args.name:
        raise CLIError(f"`optlab data {args.action}` needs a data set name",
                       "run `optlab data list` for the names.")
    if args.action == "path":
        return _data_path(args.name)
    if args.action == "verify":
        return _data_verify(args.name)
    if args.action == "describe":
        print(data.describe(args.name))
        return 0
    paths = data.fetch(args.name)  # "fetch"
    for p in paths:
        print(p)
    if not paths:
        print(f"{data.get_info(args.name).name}: nothing to fetch ({data.get_info(args.name).source})")
    return 0


# ------------------------------------------------------------------------------------------------ parser
def _version() -> str:
    from . import __version__

    return f"optlab {__version__}"


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="print the traceback of an error")
    parser = _Parser(prog="optlab", description="optlab: optimisation solvers, paper experiments and data sets.",
                     epilog="Errors: one line with the fix, exit status 2 (1: an unexpected error in a run).")
    parser.add_argument("--version", action="version", version=_version())
    parser.add_argument("--debug", action="store_true", help="print the traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    lst = sub.add_parser("list", parents=[common], help="list solvers, experiments and benchmarks",
                         description="List the public solvers, the experiments and the benchmarks.")
    lst.set_defaults(fn=_cmd_list)
    rep = sub.add_parser("reproduce", parents=[common], help="run a paper experiment (or 'all')")
    rep.add_argument("name", help="an experiment from `optlab list`, or 'all'")
    rep.add_argument("--quick", action="store_true", help="small sizes for a smoke run (CI)")
    rep.add_argument("--out", default=None, help="output folder (default: paper_figs, or results/quick with --quick)")
    rep.add_argument("--seed", type=int, default=0)
    rep.add_argument("--data", choices=sorted(_DATA_POLICY), default=None,
                     help="auto: real data where found, generated stand-in data of the same shape where not (the "
                          "default with --quick); real: real data only, a missing set is an error (the default "
                          "otherwise); standin: stand-in data only")
    rep.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                     help="one progress bar per experiment (default: when stderr is a terminal)")
    rep.set_defaults(fn=_cmd_reproduce)
    bench = sub.add_parser("bench", parents=[common], help="run a benchmark (prints a table, writes CSV)")
    bench.add_argument("name")
    bench.add_argument("rest", nargs=argparse.REMAINDER)
    bench.set_defaults(fn=_cmd_bench)
    dat = sub.add_parser("data", parents=[common], help="data sets: list | path | fetch | verify | describe",
                         description="Data sets: list them, find, download, verify or describe one.")
    dat.add_argument("action", choices=["list", "path", "fetch", "verify", "describe"])
    dat.add_argument("name", nargs="?", help="a data set from `optlab data list` ('all' for verify)")
    dat.set_defaults(fn=_cmd_data)
    return parser


def _simulate_cpu_devices(count: int = 8) -> None:
    """Let the parallel experiments use ``count`` simulated CPU devices, unless XLA_FLAGS sets a count.

    Only takes effect if JAX's backends are not initialised yet (the flag is read once, at start-up); it
    does not change accelerators and costs single-device CPU code nothing measurable.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()


def main(argv=None) -> int:
    """Run the command line ``argv`` (default ``sys.argv[1:]``); the exit status (never raises)."""
    global _DEBUG
    argv = list(sys.argv[1:] if argv is None else argv)
    _DEBUG = "--debug" in argv  # before parsing: argparse errors print the usage too
    _simulate_cpu_devices()
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, argparse errors (already printed)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    _DEBUG = bool(getattr(args, "debug", False))
    try:
        return int(args.fn(args) or 0)
    except KeyboardInterrupt:
        print("optlab: interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if _DEBUG:
            traceback.print_exception(err, file=sys.stderr)
        if isinstance(err, (CLIError, *USER_ERRORS)):
            print(_one_line(str(err) or type(err).__name__, _default_fix(err, args)), file=sys.stderr)
            return 2
        print(_one_line(f"unexpected {type(err).__name__}: {err}",
                        "this is a bug: rerun with --debug and report the traceback."), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
