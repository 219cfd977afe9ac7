"""Figure sets: `study_figures` (the standard set for any tidy table of runs) and `figures paper`, which
regenerates the DRRho-CLIP paper's scaling figure and baselines table from the committed data.

Command line: python -m analysis.figures paper [--out results/paper/figures] [--bootstrap N] [--seed S]
(a `study <sweep_dir>` subcommand can sit beside `paper`: it only has to load the sweep's records into a
DataFrame and call `study_figures`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from analysis import cli
from analysis.bootstrap import DRAWS, bootstrap_laws
from analysis.compare import Comparison, compare_methods
from analysis.data import prepare, read_table
from analysis.laws import FittedLaw, get_law
from analysis.plots import (
    bootstrap_plot,
    isoflop_plot,
    isoflop_points,
    learning_curves_plot,
    multiplier_plot,
    residual_plot,
    save_figure,
    scaling_plot,
    table_heatmap,
)

ROOT = Path(__file__).resolve().parents[1]
PAPER_DATA = ROOT / "results" / "paper" / "data"
PAPER_OUT = ROOT / "results" / "paper" / "figures"
# Printed on Wei et al.'s scaling figure (ICML 2025, arXiv 2505.06699): E = a·C^b, C in GFLOPs × samples.
PRINTED_LAWS = {
    "OpenCLIP": FittedLaw(get_law("power"), {"a": 5.77, "b": -0.116}),
    "DRRho-CLIP": FittedLaw(get_law("power"), {"a": 7.15, "b": -0.127}),
}
PAPER_TARGETS = (0.35, 0.30, 0.25, 0.20)
PAPER_X_MAX = 5.3e11  # the printed lines run to about this compute
RULES = ("running-min", "all", "bins:5", "pareto-bin")


def markdown_table(frame: pd.DataFrame, floatfmt: str = ".4g") -> str:
    """A GitHub markdown table (no extra dependency)."""

    def cell(v: Any) -> str:
        return format(v, floatfmt) if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(cli.clean(obj), indent=2) + "\n")


def standard_figures(
    data: pd.DataFrame,
    comparison: Comparison,
    *,
    x: str,
    y: str,
    by: str,
    marker: str | None = None,
    size: str | None = None,
    model: str | None = None,
    samples: str | None = None,
    reference_laws: Mapping[Hashable, FittedLaw] | None = None,
    x_max: float | None = None,
) -> dict[str, Figure]:
    """The standard figure set of a comparison, by name: scaling (+ extrapolation when it was checked),
    residuals, multiplier, bootstrap; isoflop when `size` is given (models told apart by `model`);
    learning_curves when `samples` and `model` are given. `data` holds y as an error already."""
    bs, held_out = comparison.bootstrap, comparison.extrapolation
    held = None if held_out is None else data.index.isin(held_out.points.index)
    figures = {
        "scaling": scaling_plot(
            data, x, y, fits=bs.fits, by=by, marker=marker, reference_laws=reference_laws, x_max=x_max
        ),
        "residuals": residual_plot(data, x, y, fits=bs.fits, by=by, held_out=held),
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
            by=by,
            marker=marker,
            held_out=held,
            title="fitted without the largest-compute configurations (hollow)",
        )
    if size:
        points = isoflop_points(data, x, y, size=size, model=model, by=by)
        figures["isoflop"] = isoflop_plot(points, size_label=size)
    if samples and model:
        figures["learning_curves"] = learning_curves_plot(data, samples, y, model=model, by=by)
    return figures


def study_figures(
    df: pd.DataFrame,
    *,
    x: str,
    y: str,
    by: str,
    out: str | Path,
    marker: str | None = None,
    size: str | None = None,
    model: str | None = None,
    samples: str | None = None,
    y_transform: str = "none",
    reference_laws: Mapping[Hashable, FittedLaw] | None = None,
    x_max: float | None = None,
    prefix: str = "",
    extra: Mapping[str, Any] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Compare the methods in a tidy table of runs (one row per run or checkpoint), write the standard
    figure set (PNG + PDF) and `<prefix>summary.json` into `out`, and return the summary: laws with
    intervals, exponent difference, k(E*) with intervals, paired ratio, data efficiency (with `samples`),
    extrapolation check, leave-one-group-out, and the written files.

    `extra` entries are added to the summary (e.g. provenance); `options` go to `compare_methods`
    (pair_on, baseline, treatment, law, n, d, frontier, draws, seed, targets, holdout, group, seeds,
    seed_col, ci).
    """
    data = prepare(df, x, y, keep=[by, marker, size, model, samples], y_transform=y_transform)
    comparison = compare_methods(data, x, y, by, samples=samples, **options)
    figures = standard_figures(
        data,
        comparison,
        x=x,
        y=y,
        by=by,
        marker=marker,
        size=size,
        model=model,
        samples=samples,
        reference_laws=reference_laws,
        x_max=x_max,
    )
    out = Path(out)
    written = {
        name: [str(p.relative_to(out)) for p in save_figure(fig, out / f"{prefix}{name}")]
        for name, fig in figures.items()
    }
    summary = {**comparison.summary(), "figures": written, **(extra or {})}
    _write_json(out / f"{prefix}summary.json", summary)
    return summary


def selection_sensitivity(
    df: pd.DataFrame,
    *,
    x: str,
    y: str,
    by: str,
    rules: Sequence[str] = RULES,
    draws: int = DRAWS,
    seed: int = 0,
    y_transform: str = "none",
) -> pd.DataFrame:
    """Power-law fit per method under each selection rule, with exponent intervals (pitfall P5)."""
    rows = []
    for rule in rules:
        bs = bootstrap_laws(df, x, y, by=by, frontier=rule, draws=draws, seed=seed, y_transform=y_transform)
        for level, item in bs.fits.items():
            lo, hi = item.interval("b")
            rows.append(
                {
                    "rule": rule,
                    "method": level,
                    "points": item.fit.report.points_used,
                    "a": item.fit.params["a"],
                    "b": item.fit.params["b"],
                    "b_lo": lo,
                    "b_hi": hi,
                }
            )
    return pd.DataFrame(rows)


def baselines_tables(df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Method × reference-model tables of the two metrics, methods in the paper's order."""
    methods = list(pd.unique(df["method"]))
    refs = list(pd.unique(df["reference_model"]))
    return {
        title: df.pivot(index="method", columns="reference_model", values=col).reindex(
            index=methods, columns=refs
        )
        for title, col in (
            ("ImageNet-1K zero-shot top-1 (%)", "imagenet_top1"),
            ("DataComp 38-task average (%)", "datacomp_avg"),
        )
    }


def _paper_baselines(out: Path, data_dir: Path) -> None:
    """The baselines table as a heatmap figure and as markdown."""
    tables = baselines_tables(read_table(data_dir / "drrho_baselines_dfn192m.csv"))
    title = "ViT-B/16 on DFN-192M, 1.28B samples seen, by reference model"
    save_figure(table_heatmap(tables, title=title), out / "baselines")
    text = "".join(f"### {name}\n\n{markdown_table(t.reset_index(), '.2f')}\n" for name, t in tables.items())
    (out / "baselines.md").write_text(text)


def paper_figures(
    out: str | Path = PAPER_OUT, *, data_dir: str | Path = PAPER_DATA, draws: int = DRAWS, seed: int = 0
) -> dict[str, Any]:
    """Regenerate the paper's scaling figure (our laws with bands beside the printed ones), the standard
    figure set on its points, a selection-rule sensitivity table, and the baselines table (figure + md)."""
    out, data_dir = Path(out), Path(data_dir)
    scaling = read_table(data_dir / "drrho_scaling_imagenet.csv")
    columns = {
        "x": "compute_gflops",
        "y": "imagenet_top1",
        "by": "method",
        "y_transform": "error-from-acc-pct",
    }
    sensitivity = selection_sensitivity(scaling, **columns, draws=draws, seed=seed)
    out.mkdir(parents=True, exist_ok=True)
    (out / "imagenet_selection_sensitivity.md").write_text(markdown_table(sensitivity))
    extra = {
        "selection_sensitivity": sensitivity.to_dict(orient="records"),
        "printed_laws": {k: v.params for k, v in PRINTED_LAWS.items()},
    }
    summary = study_figures(
        scaling,
        **columns,
        out=out,
        marker="arch",
        size="gflops_per_sample",
        model="arch",
        samples="samples_seen",
        group="arch",
        pair_on=["arch", "samples_seen"],
        draws=draws,
        seed=seed,
        targets=PAPER_TARGETS,
        reference_laws=PRINTED_LAWS,
        x_max=PAPER_X_MAX,
        prefix="imagenet_",
        extra=extra,
    )
    _paper_baselines(out, data_dir)
    return summary


def _main(argv: Sequence[str] | None) -> int:
    parser = cli.Parser(prog="python -m analysis.figures", description="Regenerate figure sets.")
    commands = parser.add_subparsers(dest="command", required=True)
    paper = commands.add_parser("paper", help="the DRRho-CLIP paper's scaling figure and baselines table")
    paper.add_argument("--out", default=str(PAPER_OUT), help="output directory")
    paper.add_argument("--data", default=str(PAPER_DATA), help="directory with the paper CSVs")
    paper.add_argument("--bootstrap", type=int, default=DRAWS, metavar="N")
    paper.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    summary = paper_figures(args.out, data_dir=args.data, draws=args.bootstrap, seed=args.seed)
    for law in summary["laws"]:
        b = law["params"]["b"]
        print(f"{law['level']}: {law['formula']}  b 95% CI [{b['ci'][0]:.4f}, {b['ci'][1]:.4f}]")
    print(f"wrote {args.out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m analysis.figures`; bad input gives one line on stderr and status 2."""
    return cli.run(_main, "python -m analysis.figures", argv)


if __name__ == "__main__":
    sys.exit(main())
