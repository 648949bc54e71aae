"""The ``optlab`` command: ``list``, ``reproduce NAME|all [--quick] [--out DIR]``, ``bench NAME``, ``data ...``."""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path

__all__ = ["main"]


def _cmd_list(args) -> int:
    from .experiments import registry

    from .solvers.registry import SOLVERS

    print("Solvers:")
    for case in SOLVERS.values():
        print(f"  {case.name:<16} {case.description}  [{case.reference}]")
    print("\nExperiments (optlab reproduce NAME [--quick]):")
    for exp in registry().values():
        print(f"  {exp.name:<16} {exp.description}")
    print("\nBenchmarks (optlab bench NAME):")
    for name in _benchmarks():
        print(f"  {name}")
    return 0


def _benchmarks() -> list[str]:
    from . import experiments

    root = Path(experiments.__file__).parent
    return sorted(p.stem[len("bench_"):] for p in root.glob("bench_*.py"))


def _cmd_reproduce(args) -> int:
    from .experiments import get, registry

    names = list(registry()) if args.name == "all" else [args.name]
    experiments = [get(n) for n in names]  # fail early on a typo
    out_root = Path(args.out) if args.out else Path("results/quick" if args.quick else "paper_figs")
    failures = []
    for exp in experiments:
        out = out_root
        out.mkdir(parents=True, exist_ok=True)
        print(f"== {exp.name} ({'quick' if args.quick else 'full'}) -> {out}", flush=True)
        t0 = time.perf_counter()
        try:
            summary = exp.run(out=out, quick=args.quick, seed=args.seed)
        except Exception as err:  # keep going with the other experiments, report at the end
            if len(experiments) == 1:
                raise
            failures.append((exp.name, err))
            print(f"!! {exp.name} failed: {type(err).__name__}: {err}", file=sys.stderr)
            continue
        print(f"   done in {time.perf_counter() - t0:.1f} s; wrote:")
        for path in summary.get("files", []):
            print(f"   {path}")
    if failures:
        print(f"{len(failures)} experiment(s) failed: {', '.join(n for n, _ in failures)}", file=sys.stderr)
        return 1
    return 0


def _cmd_bench(args) -> int:
    if args.name not in _benchmarks():
        print(f"unknown benchmark {args.name!r}; known: {', '.join(_benchmarks())}", file=sys.stderr)
        return 2
    module = importlib.import_module(f"optlab.experiments.bench_{args.name}")
    return int(module.main(args.rest) or 0)


def _cmd_data(args) -> int:
    from . import data

    if args.action == "list":
        for name in data.list_datasets():
            print(name)
        return 0
    if not args.name:
        print(f"optlab data {args.action} needs a data set name (see `optlab data list`)", file=sys.stderr)
        return 2
    if args.action == "path":
        try:
            print(data.path(args.name))
        except ValueError as err:  # bundled or generated sets have no file
            print(err, file=sys.stderr)
            return 2
    elif args.action == "fetch":
        data.fetch(args.name)
        print(data.path(args.name))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="optlab", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list solvers, experiments and benchmarks").set_defaults(fn=_cmd_list)
    rep = sub.add_parser("reproduce", help="run a paper experiment (or 'all')")
    rep.add_argument("name")
    rep.add_argument("--quick", action="store_true", help="small sizes for a smoke run (CI)")
    rep.add_argument("--out", default=None, help="output folder (default: paper_figs, or results/quick with --quick)")
    rep.add_argument("--seed", type=int, default=0)
    rep.set_defaults(fn=_cmd_reproduce)
    bench = sub.add_parser("bench", help="run a benchmark (prints a table, writes CSV)")
    bench.add_argument("name")
    bench.add_argument("rest", nargs=argparse.REMAINDER)
    bench.set_defaults(fn=_cmd_bench)
    dat = sub.add_parser("data", help="data sets: list | path NAME | fetch NAME")
    dat.add_argument("action", choices=["list", "path", "fetch"])
    dat.add_argument("name", nargs="?")
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
    _simulate_cpu_devices()
    args = build_parser().parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
