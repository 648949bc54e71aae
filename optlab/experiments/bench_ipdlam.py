"""Benchmark: seconds per iPDLAM iteration vs an optax Adam epoch on the same MLP (CPU here; GPU when present).

``optlab bench ipdlam [--quick] [--out DIR] [--repeats R] [--hidden H ...] [--n N]``.

Data: MNIST 8,000 training images from ``optlab.data.load("mnist")`` (seeded split; float32), or, without
``$OPTLAB_DATA``, a seeded Gaussian stand-in of the same shape (the table says which). Network 784-h-10, ReLU,
softmax cross-entropy, the same initial weights for every method.

Timed, each as one compiled call of the method's harness ``step`` (``jax.jit``; compile time excluded by a
warm-up call; median of ``--repeats`` calls, ``block_until_ready``, the methods timed round-robin so that they
share the background load):

* iPDLAM full batch: one sweep over the blocks W_1, a_1, W_2 with backtracked constants (the number of trials
  per block varies, so the time does too); DLAM (β = 0) costs the same;
* iPDLAM mini-batch (b = 128, 3 sweeps per batch): one epoch;
* optax Adam, mini-batch 128: one epoch (62 updates); optax Adam, full batch: one step.

A full-batch iPDLAM iteration and a full-batch Adam step touch the same data once each; a mini-batch epoch
makes ``n/b`` updates. Both ratios are printed. Writes ``bench_ipdlam.csv``.
"""
from __future__ import annotations

import argparse
import csv
import os
import platform
import time
from pathlib import Path

import numpy as np


def _interleaved(calls, repeats):
    """Median and min seconds of each ``fn(state) -> state`` in ``calls`` (label -> (fn, state)), timed round-robin
    (one call of each method per round) so that all methods see the same background load; one untimed warm-up
    call each (compilation)."""
    import jax

    states = {k: jax.block_until_ready(fn(s)) for k, (fn, s) in calls.items()}
    times = {k: [] for k in calls}
    for _ in range(repeats):
        for k, (fn, _) in calls.items():
            t0 = time.perf_counter()
            states[k] = jax.block_until_ready(fn(states[k]))
            times[k].append(time.perf_counter() - t0)
    return {k: (float(np.median(v)), float(np.min(v))) for k, v in times.items()}


def _data(n):
    import optlab as ol

    try:
        ds = ol.data.load("mnist")
        return np.asarray(ds.X[:n]), np.asarray(ds.y[:n]), "MNIST t10k (8k train split)"
    except Exception:  # noqa: BLE001 - no data: synthetic stand-in of the same shape
        rng = np.random.default_rng(0)
        X = rng.uniform(size=(n, 784)).astype(np.float32)
        y = np.argmax(X @ rng.normal(size=(784, 10)), axis=1)
        y[:10] = np.arange(10)
        return X, y, "synthetic uniform 784-d (no $OPTLAB_DATA)"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="optlab bench ipdlam", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="hidden 128 only, 3 repeats")
    parser.add_argument("--out", default=".", help="folder for bench_ipdlam.csv")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--hidden", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--n", type=int, default=8000)
    args = parser.parse_args(argv)
    if args.quick:
        args.hidden, args.repeats = [128], 3

    import jax

    from optlab.solvers import ipdlam as ip
    from optlab.solvers import mlp
    from optlab.solvers.baselines import optax_train as ot

    X, y, source = _data(args.n)
    rows = []
    for h in args.hidden:
        layers = [784, h, 10]
        params0 = mlp.init_params(layers, "relu", 0, np.float32)
        calls = {}
        for label, bs in (("iPDLAM full batch (1 sweep)", None), ("iPDLAM mini-batch 128 (1 epoch)", 128)):
            cfg, prob, state = ip.build(X, y, layers=layers, beta=0.8, batch_size=bs, params0=params0)
            step = jax.jit(ip.make_step(cfg))
            # warm the constants first (the first sweeps backtrack more): 5 untimed steps
            for _ in range(5):
                state, _ = step(state, prob)
            calls[label] = (lambda s, step=step, prob=prob: step(s, prob)[0], state)
        for label, bs in (("optax Adam mini-batch 128 (1 epoch)", 128), ("optax Adam full batch (1 step)", None)):
            tx = ot.optimizer("adam", 1e-3)
            loss = ot._loss_fn("cross_entropy")
            n = X.shape[0]
            step = jax.jit(ot.make_step(mlp.predictor("relu"), loss, tx, None, bs or 0, n // bs if bs else 1))
            prob = ot.OptaxProblem(jax.numpy.asarray(X), jax.numpy.asarray(y), None, None)
            state = ot.OptaxState(params0, tx.init(params0), jax.random.PRNGKey(0), jax.numpy.zeros((), "int32"))
            calls[label] = (lambda s, step=step, prob=prob: step(s, prob)[0], state)
        timings = _interleaved(calls, args.repeats)
        ref_fb = timings["optax Adam full batch (1 step)"][0]
        ref_mb = timings["optax Adam mini-batch 128 (1 epoch)"][0]
        for label, (med, best) in timings.items():
            rows.append({"hidden": h, "method": label, "median_s": f"{med:.4g}", "min_s": f"{best:.4g}",
                         "ratio_to_adam_full_step": f"{med / ref_fb:.2f}",
                         "ratio_to_adam_mb_epoch": f"{med / ref_mb:.2f}"})

    device = str(jax.devices()[0])
    header = (f"data: {source}, n = {X.shape[0]}; device {device} ({platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}); medians of {args.repeats}, compile excluded")
    keys = list(rows[0])
    print(header)
    from optlab.trace import format_table

    print(format_table(rows))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "bench_ipdlam.csv", "w", newline="") as fh:
        fh.write(f"# {header}\n")
        writer = csv.DictWriter(fh, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {out / 'bench_ipdlam.csv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
