#!/usr/bin/env bash
# The prepared GPU session in one command: device facts, the solver check (every registered solver, float32 and
# float64, against CPU float64 references; the fast solvers first, the per-sample SPDHG/SPDPEG loops last) at a
# medium size, the admm-irnn experiment at its default size, then the four benchmarks at their quick sizes
# (BENCH=0 skips them). Each step has its own time limit, so one slow step cannot eat a short device
# lease; everything is logged to OUTDIR/gpu_run.log and the CSVs land in OUTDIR.
#
#   OPTLAB_DATA=<data folder> bash experiments/gpu_run.sh OUTDIR        (from the repository root)
#
# Environment: PYTHON (default python3), SIZE (default medium), SOLVERS (comma-separated order), BENCH (default 1),
# XDG_CACHE_HOME (cached CVXPY references).
set -u
OUT=${1:?usage: bash experiments/gpu_run.sh OUTDIR}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg
PY=${PYTHON:-python3}
SIZE=${SIZE:-medium}
step() {
  local limit=$1; shift
  echo "=== [$(date -u +%T)] $* (limit ${limit} s)"
  timeout "$limit" "$@"
  echo "=== exit $? after $SECONDS s in all"
}
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi"
  $PY -c "import jax; print('jax', jax.__version__, jax.devices())"
  step 200 $PY -m optlab.experiments.gpu_check --size "$SIZE" --repeats 3 --budget-s 170 --out "$OUT" \
    --solvers "${SOLVERS:-ista,fista,fista_bt,pig,pig_blocks,gist,svm_admm,ipdlam,admm_irnn,spdpeg,spdhg}"
  step 240 $PY -m optlab.cli reproduce admm-irnn --out "$OUT/admm_irnn"
  [ "${BENCH:-1}" = 0 ] && exit 0
  step 120 $PY -m optlab.experiments.bench_pig --quick --out "$OUT"
  step 90 $PY -m optlab.experiments.bench_svm --quick --out "$OUT"
  step 70 $PY -m optlab.experiments.bench_spdhg --quick --out "$OUT"
  step 70 $PY -m optlab.experiments.bench_ipdlam --quick --out "$OUT"
} 2>&1 | tee "$OUT/gpu_run.log"
