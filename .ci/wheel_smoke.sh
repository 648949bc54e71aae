#!/usr/bin/env bash
# CI step: build the wheel, install it (core dependencies only) in a clean venv in a temporary folder that holds an
# unrelated `experiments/` package, and run `optlab list` and one quick experiment from there.
#   bash .ci/wheel_smoke.sh [WORKDIR]      (from the repository root; WORKDIR defaults to a new temp folder)
# Leaves the wheel in WORKDIR/dist for the min-versions step.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-$(mktemp -d)}
mkdir -p "$WORK"
PY=${PYTHON:-python3}
t0=$SECONDS
# build/ is setuptools' staging folder: stale files there (a module since deleted) would end up in the wheel.
rm -rf "$WORK/dist" build && "$PY" -m pip wheel --quiet --no-deps --wheel-dir "$WORK/dist" .
WHEEL=$(ls "$WORK"/dist/optlab-*.whl)
echo "built $WHEEL in $((SECONDS - t0)) s"
# The wheel holds the package only: optlab (with optlab/experiments and py.typed) and its license, no top-level
# `experiments`, no tests.
"$PY" - "$WHEEL" <<'PYEOF'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
assert tops == {"optlab"}, f"the wheel installs more than optlab: {sorted(tops)}"
for must in ("optlab/py.typed", "optlab/experiments/__init__.py", "optlab/experiments/lasso_demo.py"):
    assert must in names, f"{must} is missing from the wheel"
assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), "LICENSE is missing from the wheel"
print(f"wheel contents ok: {len(names)} files, top level {sorted(tops)}")
PYEOF
rm -rf "$WORK/venv-wheel" && "$PY" -m venv "$WORK/venv-wheel"
"$WORK/venv-wheel/bin/python" -m pip install --quiet --upgrade pip
"$WORK/venv-wheel/bin/python" -m pip install --quiet "$WHEEL"
echo "installed in a clean venv after $((SECONDS - t0)) s"
# A folder with an unrelated `experiments` package (importing it fails loudly) as the working directory.
SMOKE="$WORK/smoke"
rm -rf "$SMOKE" && mkdir -p "$SMOKE/experiments"
echo "raise ImportError('an unrelated experiments package was imported')" > "$SMOKE/experiments/__init__.py"
(
  cd "$SMOKE"
  unset PYTHONPATH
  export MPLBACKEND=Agg OPTLAB_COMPILATION_CACHE="$WORK/jax-cache"
  "$WORK/venv-wheel/bin/optlab" list
  "$WORK/venv-wheel/bin/optlab" reproduce lasso-demo --quick --out "$SMOKE/out"
  test -s "$SMOKE/out/lasso-demo.png" && test -s "$SMOKE/out/lasso-demo_summary.csv"
)
echo "wheel smoke test passed in $((SECONDS - t0)) s"
