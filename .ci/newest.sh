#!/usr/bin/env bash
# CI step: the newest releases of every dependency. pip on Python 3.11 (the main job) stops at JAX 0.10.x; the
# newer JAX releases (0.11 on the GPU image, 0.12 in December 2026) need Python >= 3.12, which is what a user with a
# current Python gets from `pip install optlab`. This step finds the newest CPython >= 3.12 on the machine
# (python3.X on PATH, else under pyenv), installs the built wheel there with the newest versions of its dependencies,
# and runs a subset that covers what changes between JAX releases: every registry solver through the harness (host
# and jit mode), warm-up/compile accounting, PRNG keys under vmap, pytrees, checkpoints, the parallel contract
# (shard_map, meshes) and the docstring examples (about 1 min of tests). Without such a Python it says so and skips.
# Needs a built wheel (from .ci/wheel_smoke.sh) in WORKDIR/dist.
#   bash .ci/newest.sh WORKDIR      (from the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:?usage: bash .ci/newest.sh WORKDIR (holding dist/optlab-*.whl)}
t0=$SECONDS
PY=""
for v in 3.14 3.13 3.12; do
  # (a pyenv shim answers `command -v` for versions it does not activate, so the interpreter must also run)
  if "python$v" -c "import venv" > /dev/null 2>&1; then PY=$(command -v "python$v"); break; fi
  if command -v pyenv > /dev/null; then
    cand=$(ls -d "$(pyenv root)/versions/$v".* 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -n "$cand" ] && "$cand/bin/python" -c "import venv" > /dev/null 2>&1; then PY="$cand/bin/python"; break; fi
  fi
done
if [ -z "$PY" ]; then
  echo "[skip] newest releases: no CPython >= 3.12 on this machine (python3.12+ on PATH or under pyenv)"
  exit 0
fi
WHEEL=$(ls "$WORK"/dist/optlab-*.whl)
rm -rf "$WORK/venv-new" && "$PY" -m venv "$WORK/venv-new"
"$WORK/venv-new/bin/python" -m pip install --quiet --upgrade pip
"$WORK/venv-new/bin/python" -m pip install --quiet --upgrade "$WHEEL[repro]" "pytest>=7" "hypothesis>=6"
"$WORK/venv-new/bin/python" -c "import sys, jax, numpy, scipy, optax, sklearn; print('newest releases: python',
sys.version.split()[0], '| jax', jax.__version__, '| numpy', numpy.__version__, '| scipy', scipy.__version__,
'| optax', optax.__version__, '| scikit-learn', sklearn.__version__)"
echo "newest-releases venv ready after $((SECONDS - t0)) s"
export OPTLAB_DATA=${OPTLAB_DATA:-../shared/data} MPLBACKEND=Agg
OPTLAB_DATA=$(cd "$(dirname "$OPTLAB_DATA")" 2>/dev/null && pwd)/$(basename "$OPTLAB_DATA") || true
ROOT=$PWD
(
  cd "$WORK"
  unset PYTHONPATH
  "$WORK/venv-new/bin/python" -c "import optlab; assert not optlab.__file__.startswith('$ROOT'), optlab.__file__"
  "$WORK/venv-new/bin/python" -m pytest -q -p no:cacheprovider -m "not slow" --rootdir "$ROOT" -c "$ROOT/pyproject.toml" \
    "$ROOT/tests/test_contract.py" "$ROOT/tests/test_harness.py" "$ROOT/tests/test_harness_warmup.py" \
    "$ROOT/tests/test_keys.py" "$ROOT/tests/test_pytrees.py" "$ROOT/tests/test_checkpoint_faults.py" \
    "$ROOT/tests/parallel/test_parallel_contract.py" "$ROOT/tests/test_doctests.py"
)
echo "newest-releases subset passed in $((SECONDS - t0)) s"
