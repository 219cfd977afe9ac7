"""Fitting the law of a `Study` (a table): one fit over all its rows, or one per level of its `by` column.

The fitting itself (OLS, the robust Huber-LSE recipe, `FitReport`) is `analysis.estimate`, on plain arrays.

Command line: python -m analysis.fit data.csv --x COL --y COL [--law ...] [--frontier ...] [--group COL]
[--bootstrap N] [--json]; with `--law chinchilla --n COL --d COL`, --x may be left out (C = 6·N·D) and every
point is fitted unless --frontier says otherwise.
"""

from __future__ import annotations

import sys
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from analysis import cli
from analysis.bootstrap import bootstrap_laws, law_rows
from analysis.compare import extrapolation_check, holdout_accuracy
from analysis.data import InputError
from analysis.estimate import Fit, fit_arrays
from analysis.report import checklist_markdown, extrapolation_sentence, fitting_checklist
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
        frontier=options.rule,
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
    parser.add_argument(
        "--holdout", type=int, default=1, help="largest-compute configurations held out per group to check (0: skip)"
    )
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
    checklist = fit_checklist(study, rows, draws, args.holdout, derived_x=args.x is None)
    if args.json:
        cli.print_json({"fits": rows, "checklist": checklist})
    else:
        cli.print_law_rows(rows, key)
        print(checklist_markdown(checklist))
    return 0


HOLDOUT_DRAWS = 200  # bootstrap draws of the leave-largest-out check's prediction interval when none are asked


def leave_largest_out(study: Study, holdout: int) -> str:
    """The leave-largest-out extrapolation check in one sentence (or why it was not run)."""
    if holdout <= 0:
        return "not run (--holdout 0)"
    checked = study.with_options(draws=max(study.options.draws, HOLDOUT_DRAWS))
    try:
        points = extrapolation_check(checked, holdout).points
    except InputError as exc:
        return f"not run: {exc}"
    accuracy = holdout_accuracy(points).assign(level=lambda t: t["level"].astype(object).fillna("all"))
    check = {"accuracy": accuracy.to_dict(orient="records"), "points": points.to_dict(orient="records")}
    return extrapolation_sentence(check)


def fit_checklist(study: Study, rows: list, draws: int, holdout: int, *, derived_x: bool) -> dict[str, str]:
    """The (Mis)Fitting checklist of a fit from a CSV: what the table cannot tell is said to be unknown."""
    options = study.options
    n, d = (options.n, options.d) if options.inputs else (None, None)
    facts = {
        "n": f"column `{n}` (what it counts is the table's: say with or without embeddings)"
        if n
        else "not an input of the law (a law of compute)",
        "d": f"column `{d}`" if d else "not an input of the law (a law of compute)",
        "c": "C = 6·N·D (`6ND`, not in the CSV)" if derived_x else f"column `{study.x}`",
        "schedule": "not recorded in a CSV: state it with the numbers",
        "checkpoints": "every row of the CSV is a candidate point (the table decides which checkpoints are rows)",
    }
    uncertainty = (
        f"{draws} bootstrap draws over configurations (every column but y and the seed), per group "
        f"independently, selection and fit redone in every draw; {options.ci:.0%} percentile intervals"
        if draws > 0
        else "none (--bootstrap 0: no intervals)"
    )
    return fitting_checklist(rows, facts, uncertainty, leave_largest_out(study, holdout))


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m analysis.fit`; bad input gives one line on stderr and status 2."""
    return cli.run(_main, "python -m analysis.fit", argv)


if __name__ == "__main__":
    sys.exit(main())
