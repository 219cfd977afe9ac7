"""Plumbing shared by the command lines (`python -m analysis.fit|compare|plot|figures`).

Every bad input ends as one line on stderr naming the column or option, and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import numpy as np
import pandas as pd

from analysis.data import Y_TRANSFORMS, InputError, read_table, require_columns, require_positive
from analysis.laws import LAWS, get_law
from analysis.select import get_rule
from analysis.study import FitOptions
from scaling.errors import silence_closed_stdout, stdout_reader_left

COMPUTE_6ND = "6ND"  # Chinchilla's compute axis when no --x is given: C = 6·N·D, as its k(E*) uses


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error message (no usage dump) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _checked(parse: Callable[[str], Any]) -> Callable[[str], str]:
    """argparse type that validates a name with `parse` but keeps the string."""

    def check(value: str) -> str:
        try:
            parse(value)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return value

    check.__name__ = parse.__name__
    return check


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """The CSV and column options every command shares (`--x` may be left out for a law of N and D: see `read_data`)."""
    parser.add_argument("csv", help="input table (any CSV)")
    parser.add_argument("--x", help=f"compute column (log axis); Chinchilla's default is {COMPUTE_6ND} = 6·N·D")
    parser.add_argument("--y", required=True, help="error column (log axis); see --y-transform")
    parser.add_argument(
        "--y-transform",
        default="none",
        choices=list(Y_TRANSFORMS),
        help="map y to an error fraction first: error-from-acc-pct is 1 - y/100 (accuracy in percent)",
    )


def add_fit_arguments(
    parser: argparse.ArgumentParser, *, default_draws: int, laws: Sequence[str] = tuple(LAWS), draws_only: bool = False
) -> None:
    """The `FitOptions` a command takes: law (one of `laws`; --n/--d when Chinchilla is among them), point
    selection, bootstrap draws, seed and interval level (`draws_only`: draws and seed). Defaults are
    FitOptions' own, but for the draws, which depend on the command."""
    defaults = FitOptions  # the dataclass's field defaults
    parser.add_argument(
        "--bootstrap", type=int, default=default_draws, metavar="N", help=f"bootstrap draws ({default_draws})"
    )
    parser.add_argument("--seed", type=int, default=defaults.seed, help="bootstrap random seed")
    if draws_only:
        return
    law = _checked(get_law)
    parser.add_argument("--law", default=defaults.law, type=law, choices=list(laws), help=f"one of {', '.join(laws)}")
    if "chinchilla" in laws:
        parser.add_argument("--n", help="parameter-count column (chinchilla)")
        parser.add_argument("--d", help="data-size column (chinchilla)")
    parser.add_argument(
        "--frontier",
        type=_checked(get_rule),
        help="point selection: all, running-min, bins:K (Cherti), pareto-bin[:K] (Nezhurina); default: "
        "running-min for laws of compute, all for chinchilla",
    )
    parser.add_argument("--ci", type=float, default=defaults.ci, help="interval level")


def fit_options(args: argparse.Namespace, **changes: Any) -> FitOptions:
    """The fit options this command's parser defines (all of `add_fit_arguments`, or some of them), and any
    `changes`, as one validated `FitOptions` (`--bootstrap N` is `draws=N`, `--pair-on` is `config`)."""
    names = {
        "law": "law",
        "n": "n",
        "d": "d",
        "frontier": "frontier",
        "draws": "bootstrap",
        "seed": "seed",
        "ci": "ci",
        "y_transform": "y_transform",
        "config": "pair_on",
        "seeds": "seeds",
        "seed_col": "seed_col",
    }
    given = {key: getattr(args, name) for key, name in names.items() if getattr(args, name, None) is not None}
    return FitOptions.of(given, **changes)


def read_data(args: argparse.Namespace, options: FitOptions) -> tuple[pd.DataFrame, str]:
    """The CSV and its compute column: `--x`, or for a law of (N, D) without one, a column `6ND` = 6·N·D
    (the compute axis Chinchilla's k(E*) and point selection use)."""
    table = read_table(args.csv)
    if args.x is not None:
        return table, args.x
    if not options.inputs:
        raise InputError(f"--x (the compute column) is required for law {options.law!r}")
    require_columns(table, options.inputs)
    require_positive(table, options.inputs)
    n, d = (table[c].astype(float) for c in options.inputs)
    return table.assign(**{COMPUTE_6ND: 6.0 * n * d}), COMPUTE_6ND


def run(main: Callable[[Sequence[str] | None], int], prog: str, argv: Sequence[str] | None) -> int:
    """Call `main` and return its status: an InputError becomes `prog: error: ...` and 2, and argparse's
    exits (errors, --help) become their status, so callers in Python get an int either way. A reader of
    stdout that leaves early (`| head`) ends the command quietly with 141, as `scaling`'s commands do."""
    try:
        status = main(argv)
    except InputError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else 2
    except BrokenPipeError as exc:
        return _reader_left(exc)
    try:
        sys.stdout.flush()  # here, not at exit, where a broken pipe would print "Exception ignored ..."
    except BrokenPipeError as exc:
        return _reader_left(exc)
    return status


def _reader_left(exc: BrokenPipeError) -> int:
    """141 if the broken pipe is stdout's reader that left; any other broken pipe is an error of its own."""
    if not stdout_reader_left():
        raise exc
    return silence_closed_stdout()


def clean(value: Any) -> Any:
    """JSON-safe: NaN/inf become null, numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def to_json(obj: Any) -> str:
    """Full-precision JSON (floats printed with repr), NaN/inf as null: what the commands print and write."""
    return json.dumps(clean(obj), indent=2)


def print_json(obj: Any) -> None:
    """`to_json` on stdout."""
    print(to_json(obj))


def print_law_rows(rows: Sequence[dict[str, Any]], key: str | None = None) -> None:
    """Human-readable view of `analysis.bootstrap.law_rows`: parameters, intervals, report line."""
    for row in rows:
        title = f"[{row[key]}] " if key else ""
        report = row["report"]
        print(f"{title}{row['formula']}")
        table = pd.DataFrame(
            [
                {
                    "param": k,
                    "value": v["value"],
                    "lo": (v["ci"] or [np.nan] * 2)[0],
                    "hi": (v["ci"] or [np.nan] * 2)[1],
                }
                for k, v in row["params"].items()
            ]
        )
        print(table.to_string(index=False, float_format=lambda v: f"{v:.6g}"))
        print(
            f"  points {report['points_used']}/{report['points_total']} ({report['selection']}); "
            f"{report['optimizer']}; loss: {report['loss']}; starts {report['starts']}; "
            f"objective {report['objective']:.6g}; converged {report['converged']}"
        )
        if "bootstrap" in row:
            b = row["bootstrap"]
            print(f"  intervals: {b['ci']:.0%} percentile, {b['valid']}/{b['draws']} bootstrap draws")
        print()
