"""Plots render from fitted objects and write PNG + PDF; isoFLOP interpolation is exact in log space."""

import numpy as np
import pandas as pd
import pytest

from analysis import plots
from analysis.compare import compare_methods
from analysis.data import prepare
from analysis.paper import PRINTED_LAWS

from .common import PAPER_COLUMNS, paper_study


@pytest.fixture(scope="module")
def comparison(paper):
    return compare_methods(paper_study(paper, by="method", draws=300), holdout=1, targets=[0.35, 0.30])


@pytest.fixture(scope="module")
def errors(paper):
    return prepare(paper, **PAPER_COLUMNS)


def test_scaling_plot_legend_and_files(tmp_path, errors, comparison):
    held = errors.index.isin(comparison.extrapolation.points.index)
    fig = plots.scaling_plot(
        errors,
        "compute_gflops",
        "imagenet_top1",
        fits=comparison.bootstrap.fits,
        by="method",
        marker="arch",
        held_out=held,
        reference_laws=PRINTED_LAWS,
        x_max=5.3e11,
    )
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert any(t.startswith("OpenCLIP: E = 5.773·C^-0.1157, b ∈ [") for t in labels)
    assert "DRRho-CLIP (printed): E = 7.15·C^-0.127" in labels
    assert {"held out", "fitted points", "ViT-L-14"} <= set(labels)
    png, pdf = plots.save_figure(fig, tmp_path / "scaling.svg")
    assert png.suffix == ".png" and pdf.suffix == ".pdf"
    assert png.stat().st_size > 10_000 and pdf.read_bytes().startswith(b"%PDF")
    plots.save_figure(fig, tmp_path / "again")
    assert (tmp_path / "again.pdf").read_bytes() == pdf.read_bytes()  # deterministic output


def test_other_figures_render(tmp_path, errors, comparison):
    bs = comparison.bootstrap
    figures = {
        "residuals": plots.residual_plot(errors, "compute_gflops", "imagenet_top1", fits=bs.fits, by="method"),
        "multiplier": plots.multiplier_plot(comparison.curve, comparison.multiplier),
        "bootstrap": plots.bootstrap_plot(bs, "OpenCLIP", "DRRho-CLIP", [0.35, 0.30]),
        "learning": plots.learning_curves_plot(errors, "samples_seen", "imagenet_top1", model="arch", by="method"),
        "isoflop": plots.isoflop_plot(
            plots.isoflop_points(
                errors, "compute_gflops", "imagenet_top1", size="gflops_per_sample", model="arch", by="method"
            )
        ),
        "table": plots.table_heatmap({"t": pd.DataFrame([[1.0, 2.0]], index=["r"], columns=["a", "b"])}),
    }
    assert len(figures["residuals"].axes) == 2 and len(figures["bootstrap"].axes) == 3
    for name, fig in figures.items():
        for path in plots.save_figure(fig, tmp_path / name):
            assert path.stat().st_size > 1000


def test_isoflop_points_interpolate_in_log_space():
    df = pd.DataFrame(
        {
            "model": ["s", "s", "s", "l", "l"],
            "size": [1.0, 1.0, 1.0, 10.0, 10.0],
            "c": [1.0, 4.0, 16.0, 8.0, 64.0],
            "e": [1.0, 0.25, 0.2, 0.5, 0.1],
        }
    )
    points = plots.isoflop_points(df, "c", "e", size="size", model="model", budgets=[2.0, 8.0, 100.0])
    got = {(r.model, r.budget): r.error for r in points.itertuples()}
    assert got[("s", 2.0)] == pytest.approx(0.5)  # halfway between 1 and 0.25 in log-log
    assert got[("s", 8.0)] == pytest.approx(np.sqrt(0.25 * 0.2))
    assert got[("l", 8.0)] == pytest.approx(0.5)
    assert ("l", 2.0) not in got and ("s", 100.0) not in got  # no extrapolation beyond a model's runs


def test_isodata_plot_has_a_panel_per_pool_and_a_line_of_seed_means_per_method():
    df = pd.DataFrame(
        {
            "method": ["a"] * 8 + ["b"] * 8,
            "pool": [1e3, 1e4] * 8,
            "params": np.repeat([1e5, 1e6, 1e5, 1e6], 4),
            "seed": np.tile([0, 0, 1, 1], 4),
            "err": np.linspace(0.5, 0.2, 16),
        }
    )
    fig = plots.isodata_plot(df, "params", "err", pool="pool", by="method", labels={"pool": "unique pool"})
    assert [ax.get_title() for ax in fig.axes] == ["unique pool = 1000", "unique pool = 10000"]
    (first, _) = fig.axes[0].get_lines()[:2]
    rows = df[(df["pool"] == 1e3) & (df["method"] == "a")]
    assert list(first.get_ydata()) == pytest.approx(list(rows.groupby("params")["err"].mean()))
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["a", "b"]
