"""The standard figure set of a comparison, for any `Study`: scaling (+ extrapolation), residuals, k(E*),
bootstrap distributions, isoFLOP and learning curves; and writing them (PNG + PDF) with a summary.json.

Figures draw results, they do not fit: everything comes from the `Study` and its `Comparison`.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from analysis.compare import Comparison
from analysis.data import require_columns, transform_y
from analysis.laws import FittedLaw
from analysis.plots import (
    bootstrap_plot,
    isoflop_plot,
    isoflop_points,
    learning_curves_plot,
    multiplier_plot,
    residual_plot,
    save_figure,
    scaling_plot,
)
from analysis.report import write_json
from analysis.study import Study


def models_by_size(study: Study) -> list[Hashable] | None:
    """The study's models, smallest first (legends list models by size), when it names both columns."""
    if not (study.model and study.size):
        return None
    return list(study.data.groupby(study.model)[study.size].median().sort_values(kind="stable").index)


def standard_figures(
    study: Study,
    comparison: Comparison,
    *,
    reference_laws: Mapping[Hashable, FittedLaw] | None = None,
    x_max: float | None = None,
    curves: pd.DataFrame | None = None,
    run: str | None = None,
) -> dict[str, Figure]:
    """The standard figure set of a comparison, by name: scaling (+ extrapolation when it was checked),
    residuals, multiplier, bootstrap; isoflop when the study has a `size` column (models told apart by
    `model`); learning_curves when it has `samples` and `model`.

    `curves` (every evaluation, y an error) draws the learning curves from checkpoints, one line per `run`,
    instead of from the study's rows; the study's `point_size` scales the run markers of the scaling plots
    (notes §4.1: marker = architecture, size = samples seen)."""
    data, x, y, by, labels = study.data, study.x, study.y, study.by, study.labels
    bs, held_out = comparison.bootstrap, comparison.extrapolation
    held = None if held_out is None else data.index.isin(held_out.points.index)
    order = models_by_size(study)
    marker_order = order if study.marker == study.model else None
    runs = {"by": by, "marker": study.marker, "marker_order": marker_order, "point_size": study.point_size}
    figures = {
        "scaling": scaling_plot(
            data, x, y, fits=bs.fits, **runs, reference_laws=reference_laws, x_max=x_max, labels=labels
        ),
        "residuals": residual_plot(data, x, y, fits=bs.fits, by=by, held_out=held, labels=labels),
        "multiplier": multiplier_plot(comparison.curve, comparison.multiplier),
        "bootstrap": bootstrap_plot(
            bs, comparison.baseline, comparison.treatment, comparison.multiplier["target"].to_numpy()
        ),
    }
    if held_out is not None:
        figures["extrapolation"] = scaling_plot(
            data,
            x,
            y,
            fits=held_out.bootstrap.fits,
            **runs,
            held_out=held,
            title="fitted without the largest-compute configurations (hollow)",
            labels=labels,
        )
    if study.size:
        points = isoflop_points(data, x, y, size=study.size, model=study.model, by=by)
        figures["isoflop"] = isoflop_plot(
            points, size_label=labels.get(study.size, study.size), compute_label=labels.get(x, x)
        )
    if study.samples and study.model:
        lines = data if curves is None else curves
        figures["learning_curves"] = learning_curves_plot(
            lines, study.samples, y, model=study.model, by=by, run=run, model_order=order, labels=labels
        )
    return figures


def error_rows(study: Study, curves: pd.DataFrame, run: str) -> pd.DataFrame:
    """Rows of `curves` (every evaluation) for a log–log learning curve of the study: y mapped to an error by
    the study's transform, rows whose samples or y is not positive dropped (an early checkpoint at zero error
    must not stop the study, unlike a bad fitted point)."""
    samples, y = study.samples or study.x, study.y
    require_columns(curves, [samples, y, study.by, study.model, run])
    out = transform_y(curves, y, study.options.y_transform)
    positive = (pd.to_numeric(out[samples], errors="coerce") > 0) & (out[y] > 0)
    return out[positive]


def write_figures(figures: Mapping[str, Figure], out: str | Path, prefix: str = "") -> dict[str, list[str]]:
    """Save each figure as PNG + PDF under `out`; the file names relative to `out`, by figure."""
    out = Path(out)
    return {
        name: [str(p.relative_to(out)) for p in save_figure(fig, out / f"{prefix}{name}")]
        for name, fig in figures.items()
    }


def study_figures(
    study: Study,
    comparison: Comparison,
    out: str | Path,
    *,
    prefix: str = "",
    extra: Mapping[str, Any] | None = None,
    reference_laws: Mapping[Hashable, FittedLaw] | None = None,
    x_max: float | None = None,
) -> dict[str, Any]:
    """Write the standard figure set of a comparison (PNG + PDF) and `<prefix>summary.json` into `out`, and
    return the summary: laws with intervals, exponent difference, k(E*) with intervals, paired ratio, data
    efficiency, extrapolation check, leave-one-group-out, the written files, and `extra` (e.g. provenance)."""
    figures = standard_figures(study, comparison, reference_laws=reference_laws, x_max=x_max)
    out = Path(out)
    summary = {**comparison.summary(), "figures": write_figures(figures, out, prefix), **(extra or {})}
    write_json(out / f"{prefix}summary.json", summary)
    return summary
