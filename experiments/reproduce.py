"""Run one paper experiment (or all of them) from a checkout: the same code as ``optlab reproduce``.

The experiment code lives in the installed package (``optlab.experiments``, one module per paper); this folder
holds what a reader opens: one README per paper (``README_<paper>.md``), this script and the GPU session script.

    python experiments/reproduce.py --list
    python experiments/reproduce.py svm-admm --quick --out results/quick
    python experiments/reproduce.py all --quick

Each experiment writes long-format CSV traces and PNG figures into ``--out`` (full runs: ``paper_figs/``).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", nargs="?", help="experiment name (see --list), or 'all'")
    parser.add_argument("--list", action="store_true", help="list the experiments and exit")
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--out", default=None, help="output folder (default: paper_figs, or results/quick with --quick)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from optlab import experiments

    if args.list or not args.name:
        for exp in experiments.registry().values():
            print(f"{exp.name:<12} {exp.description}  ({exp.module})")
        return 0 if args.list else 2
    names = list(experiments.registry()) if args.name == "all" else [args.name]
    chosen = [experiments.get(n) for n in names]  # a typo fails here, with the close match
    out = Path(args.out or ("results/quick" if args.quick else "paper_figs"))
    out.mkdir(parents=True, exist_ok=True)
    for exp in chosen:
        t0 = time.perf_counter()
        summary = exp.run(out=out, quick=args.quick, seed=args.seed)
        print(f"{exp.name}: done in {time.perf_counter() - t0:.1f} s; wrote {len(summary.get('files', []))} file(s)"
              f" in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
