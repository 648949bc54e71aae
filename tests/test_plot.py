"""optlab.plot: one style map across panels and figures, legends outside when long, the floor, PNG + PDF."""
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from optlab import plot  # noqa: E402
from optlab.trace import Trace  # noqa: E402


def _trace(values, iters=None):
    values = np.asarray(values, float)
    iters = np.arange(values.size) if iters is None else np.asarray(iters)
    return Trace(iters=iters, times=iters * 1e-3, metrics={"objective": values, "rel_gap": values})


def _lines(ax):
    return {ln.get_label(): ln for ln in ax.get_lines()}


def test_a_method_keeps_its_style_across_panels_in_any_order():
    fig, (a, b) = plot.grid(2)
    runs = {"STOC-ADMM": _trace([1, 0.5]), "SPDHG-GC": _trace([1, 0.3]), "OPG-ADMM": _trace([1, 0.2])}
    plot.convergence(runs, ax=a)
    plot.convergence(dict(reversed(list(runs.items()))), ax=b)
    la, lb = _lines(a), _lines(b)
    for name in runs:
        assert la[name].get_color() == lb[name].get_color()
        assert la[name].get_marker() == lb[name].get_marker()
    colours = {la[n].get_color() for n in runs}
    assert len(colours) == 3
    matplotlib.pyplot.close(fig)


def test_variants_keep_the_method_colour_and_differ_in_line_style():
    base, variant = plot.style("FISTA"), plot.style("FISTA (backtracking)")
    assert base["color"] == variant["color"]
    assert base["linestyle"] != variant["linestyle"] or base["marker"] != variant["marker"]
    assert plot.style("fista")["color"] == base["color"]            # registry names are aliases
    assert plot.style("ADMMiRNN (paper: dual ascent)")["color"] != plot.style("ADMM")["color"]


def test_long_legends_go_outside_and_short_ones_stay_inside():
    fig, (a, b) = plot.grid(2)
    plot.convergence({f"run {i}": _trace([1, 0.5 / (i + 1)]) for i in range(6)}, ax=a)
    plot.convergence({f"run {i}": _trace([1, 0.5 / (i + 1)]) for i in range(3)}, ax=b)
    fig.canvas.draw()
    legend_a, legend_b = a.get_legend().get_window_extent(), b.get_legend().get_window_extent()
    assert legend_a.x0 >= a.get_window_extent().x1          # outside, to the right
    assert b.get_window_extent().contains(legend_b.x0 + 1, legend_b.y0 + 1)
    matplotlib.pyplot.close(fig)


def test_log_x_when_run_lengths_differ_tenfold_and_curves_stop_at_the_floor():
    fig, (a, b) = plot.grid(2)
    long = _trace(np.r_[np.geomspace(1, 1e-8, 500), np.full(1500, 1e-17)])
    plot.convergence({"long": long, "short": _trace(np.geomspace(1, 1e-3, 20))}, "rel_gap", ax=a)
    assert a.get_xscale() == "log"
    line = _lines(a)["long"]
    assert line.get_xdata().max() < 510           # stops at the first point at the floor, not at 1999
    plot.convergence({"x": _trace([1, 0.5, 0.1]), "y": _trace([1, 0.4, 0.2])}, ax=b)
    assert b.get_xscale() == "linear"
    matplotlib.pyplot.close(fig)


def test_floor_applies_to_a_reference():
    fig, ax = plot.grid(1)
    f_star = 2.0
    values = np.r_[f_star + np.geomspace(1, 1e-10, 30), np.full(500, f_star)]
    plot.convergence({"run": _trace(values)}, reference=f_star, ax=ax[0])
    assert _lines(ax[0])["run"].get_xdata().max() <= 31
    matplotlib.pyplot.close(fig)


def test_save_writes_png_at_150_dpi_and_a_pdf(tmp_path):
    fig, ax = plot.grid(1)
    plot.convergence({"SPDHG": _trace([1, 0.1, 0.01])}, ax=ax[0])
    plot.save(fig, tmp_path / "f.png")
    png, pdf = tmp_path / "f.png", tmp_path / "f.pdf"
    assert png.read_bytes()[:4] == b"\x89PNG" and pdf.read_bytes()[:4] == b"%PDF"
    from PIL import Image

    dpi = Image.open(png).info.get("dpi")
    assert dpi is not None and round(dpi[0]) == 150


def test_unknown_metric_names_the_columns():
    with pytest.raises(KeyError, match="has no metric 'loss'"):
        plot.convergence({"a": _trace([1, 2])}, "loss")


def test_names_of_one_method_with_different_suffixes_get_different_colours():
    """"ADMM-l1", "ADMM-scad", ... (one solver, several penalties) must be told apart in one panel; each keeps ADMM's
    marker, and an annotated variant keeps its name's colour."""
    names = ["ADMM-l1", "ADMM-scad", "ADMM-mcp", "ADMM-lsp", "ADMM-capped_l1"]
    styles = [plot.style(n) for n in names]
    assert len({s["color"] for s in styles}) == len(names)
    assert {s["marker"] for s in styles} == {plot.style("ADMM")["marker"]}
    assert plot.style("ADMM-scad (l1 start)")["color"] == plot.style("ADMM-scad")["color"]
    assert plot.style("ADMM-scad (l1 start)")["linestyle"] != plot.style("ADMM-scad")["linestyle"]
    known = {plot.style(m)["color"] for m in ("SPDHG", "SPDPEG", "STOC-ADMM", "LPDHG", "EGADM", "SGADM")}
    assert plot.style("SPDHG-GC")["color"] not in known
