"""Fitting the law of a `Study` (a table): one fit over all its rows, or one per level of its `by` column.

The fitting itself (OLS, the robust Huber-LSE recipe, `FitReport`) is `analysis.estimate`, on plain arrays.

Command line: python -m analysis.fit data.csv --x COL --y COL [--law ...] [--frontier ...] [--group COL]
[--bootstrap N] [--json]
"""

from __future__ import annotations

import sys
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from analysis import cli
from analysis.bootstrap import bootstrap_laws, law_rows
from analysis.estimate import Fit, fit_arrays
from analysis.study import Study


def fit_law(study: Study, **engine: Any) -> Fit:
    """Fit the study's law to all its rows: y (error) against x (compute); Chinchilla also takes N and D.

    `engine` passes to `analysis.estimate.fit_arrays` (starts, reduction, delta).
    """
    options, data = study.options, study.data
    inputs = tuple(data[c].to_numpy(float) for c in options.inputs) or None
    return fit_arrays(
        options.law_spec,
        data[study.x].to_numpy(float),
        data[study.y].to_numpy(float),
        inputs=inputs,
        frontier=options.frontier,
        columns=study.columns(),
        **engine,
    )


def fit_groups(study: Study, **engine: Any) -> Mapping[Hashable, Fit]:
    """One fit per level of the study's `by` column, in order of first appearance."""
    return {level: fit_law(study.but(data=study.data[study.level_rows(level)]), **engine) for level in study.levels}


def _main(argv: Sequence[str] | None) -> int:
    parser = cli.Parser(prog="python -m analysis.fit", description="Fit a scaling law to columns of a CSV.")
    cli.add_data_arguments(parser)
    cli.add_fit_arguments(parser, default_draws=0)
    parser.add_argument("--group", help="fit separately per value of this column")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    draws = args.bootstrap
    # groups are fitted independently: each resamples its own configurations
    options = cli.fit_options(args, draws=max(draws, 1), paired=False)
    table, x = cli.read_data(args, options)
    study = Study.of(table, x, args.y, by=args.group, options=options)
    if draws > 0:
        fits = bootstrap_laws(study).fits
    elif args.group:
        fits = fit_groups(study)
    else:
        fits = {None: fit_law(replace(study, by=None))}
    key = "group" if args.group else None
    rows = law_rows(fits, key)
    if args.json:
        cli.print_json({"fits": rows})
    else:
        cli.print_law_rows(rows, key)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m analysis.fit`; bad input gives one line on stderr and status 2."""
    return cli.run(_main, "python -m analysis.fit", argv)


if __name__ == "__main__":
    sys.exit(main())
