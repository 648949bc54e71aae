"""Notebooks: each `.ipynb` is in sync with its jupytext `.py` source, and executes (quick mode)."""
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
