"""Command line for one figure from any CSV (the figures themselves live in `analysis.plots`).

python -m analysis.plot_csv data.csv --x COL --y COL [--by COL] [--marker COL] --out PATH
    [--kind scaling|residuals|multiplier|bootstrap|isoflop|learning] [--law ...] [--frontier ...]
    [--bootstrap N] [--holdout K] [--size COL] [--model COL] [--samples COL] [--targets E1,E2]

PATH gets .png and .pdf. `--holdout K` (scaling) fits without the K largest-compute configurations and draws
them hollow; `multiplier` and `bootstrap` need --by with two methods.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from matplotlib.figure import Figure

from analysis import cli, plots
from analysis.bootstrap import bootstrap_laws
from analysis.compare import compare_methods, extrapolation_check, parse_targets
from analysis.data import InputError
from analysis.study import Study

KINDS = ("scaling", "residuals", "multiplier", "bootstrap", "isoflop", "learning")


def _need(args: argparse.Namespace, *names: str) -> None:
    for name in names:
        if getattr(args, name) is None:
            raise InputError(f"--kind {args.kind} needs --{name}")


def _fits_figure(study: Study, kind: str, holdout: int) -> Figure:
    """scaling or residuals: bootstrap fits per --by level, optionally without the largest-compute runs."""
    held = None
    if holdout > 0:
        result = extrapolation_check(study, holdout)
        fits, held = result.bootstrap.fits, study.data.index.isin(result.points.index)
    else:
        fits = bootstrap_laws(study).fits
    data, x, y, by = study.data, study.x, study.y, study.by
    if kind == "residuals":
        return plots.residual_plot(data, x, y, fits=fits, by=by, held_out=held)
    return plots.scaling_plot(data, x, y, fits=fits, by=by, marker=study.marker, held_out=held)


def _comparison_figure(study: Study, kind: str, targets: list[float] | None) -> Figure:
    comparison = compare_methods(study, targets=targets, holdout=0)
    if kind == "multiplier":
        return plots.multiplier_plot(comparison.curve, comparison.multiplier)
    return plots.bootstrap_plot(
        comparison.bootstrap,
        comparison.baseline,
        comparison.treatment,
        comparison.multiplier["target"].to_numpy(),
    )


def _figure(study: Study, args: argparse.Namespace) -> Figure:
    if args.kind in ("scaling", "residuals"):
        return _fits_figure(study, args.kind, args.holdout)
    if args.kind in ("multiplier", "bootstrap"):
        _need(args, "by")
        return _comparison_figure(study, args.kind, parse_targets(args.targets))
    if args.kind == "isoflop":
        _need(args, "size")
        points = plots.isoflop_points(study.data, study.x, study.y, size=args.size, model=args.model, by=args.by)
        return plots.isoflop_plot(points, size_label=args.size)
    _need(args, "samples", "model")
    return plots.learning_curves_plot(study.data, args.samples, study.y, model=args.model, by=args.by)


def _main(argv: Sequence[str] | None) -> int:
    parser = cli.Parser(prog="python -m analysis.plot_csv", description="Draw one figure from a CSV.")
    cli.add_data_arguments(parser)
    cli.add_fit_arguments(parser, default_draws=1000)
    parser.add_argument("--out", required=True, help="output path; .png and .pdf are written")
    parser.add_argument("--kind", choices=KINDS, default="scaling")
    parser.add_argument("--by", help="method column (colour)")
    parser.add_argument("--marker", help="column for marker shapes (e.g. architecture)")
    parser.add_argument("--holdout", type=int, default=0, help="largest-compute configurations held out")
    parser.add_argument("--size", help="model-size column (isoflop)")
    parser.add_argument("--model", help="model column (isoflop, learning)")
    parser.add_argument("--samples", help="samples-seen column (learning)")
    parser.add_argument("--targets", help="target errors, e.g. 0.35,0.30 (multiplier, bootstrap)")
    args = parser.parse_args(argv)
    roles = {"by": args.by, "marker": args.marker, "size": args.size, "model": args.model, "samples": args.samples}
    options = cli.fit_options(args)
    table, x = cli.read_data(args, options)
    study = Study.of(table, x, args.y, options=options, **roles)
    for path in plots.save_figure(_figure(study, args), args.out):
        print(path)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m analysis.plot_csv`; bad input gives one line on stderr and status 2."""
    return cli.run(_main, "python -m analysis.plot_csv", argv)


if __name__ == "__main__":
    sys.exit(main())
