"""Notebooks: each `.ipynb` is in sync with its jupytext `.py` source, is committed executed (outputs, at least one
figure, no errors, a modest size), and executes again in quick mode (the slow test; CI runs it).

Re-execute and commit after editing a source (from the repository root, with the `notebooks` extra):
`jupytext --to ipynb --execute notebooks/NAME.py` (quick mode: OPTLAB_QUICK defaults to 1 inside the notebooks)."""
import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "notebooks").glob("*.py"))


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_ipynb_matches_source(source):
    jupytext = pytest.importorskip("jupytext")
    pair = source.with_suffix(".ipynb")
    assert pair.exists(), f"{pair.name} missing: run `jupytext --to ipynb {source.relative_to(ROOT)}`"
    code = lambda nb: [c.source.strip() for c in nb.cells]  # noqa: E731
    assert code(jupytext.read(pair)) == code(jupytext.read(source)), (
        f"{pair.name} differs from {source.name}: run `jupytext --sync {source.relative_to(ROOT)}`")


MAX_KB = 400   # embedded PNGs at 72 dpi: the executed notebooks are 70-200 kB


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_committed_notebook_is_executed_with_a_figure(source):
    pair = source.with_suffix(".ipynb")
    nb = json.loads(pair.read_text(encoding="utf-8"))
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    outputs = [o for c in code for o in c.get("outputs", [])]
    assert all(c.get("execution_count") for c in code), f"{pair.name}: not executed (run the command in this module's docstring)"
    assert not [o for o in outputs if o["output_type"] == "error"], f"{pair.name} was committed with an error output"
    assert any("image/png" in o.get("data", {}) for o in outputs), f"{pair.name} has no figure output"
    assert pair.stat().st_size < MAX_KB * 1000, f"{pair.name} is {pair.stat().st_size / 1e3:.0f} kB (> {MAX_KB} kB)"


@pytest.mark.slow
@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_executes_in_quick_mode(source, monkeypatch):
    jupytext = pytest.importorskip("jupytext")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("OPTLAB_QUICK", "1")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = jupytext.read(source)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(ROOT)}})
    client.execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
