"""Print pip constraints that pin every core dependency of pyproject.toml to its declared minimum.

    python .ci/min_pins.py > constraints.txt      # "jax>=0.6.1" -> "jax==0.6.1", ...

The CI "min-versions" step installs optlab with these constraints and runs a fast test subset, so the minimums in
pyproject.toml are tested, not guessed. A dependency without a ">=" floor is left out (pip picks the newest).
"""
import re
import sys
import tomllib
from pathlib import Path


def pins(pyproject: Path) -> list[str]:
    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    out = []
    for dep in deps:
        m = re.fullmatch(r"\s*([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*>=\s*([0-9][0-9A-Za-z.]*)\s*", dep)
        if m:
            out.append(f"{m.group(1)}=={m.group(3)}")
    return out


if __name__ == "__main__":
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1]
    print("\n".join(pins(root / "pyproject.toml")))
