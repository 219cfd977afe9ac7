"""Command line for the figure sets: `paper` regenerates the DRRho-CLIP paper's scaling figure and
baselines table from the committed data (`analysis.paper`); `study` compares two methods of a sweep's records
(`analysis.sweep_study`): figures, summary.json and summary.md; `baselines` draws the paper's baselines table
from a sweep's records (`analysis.baselines`): every method against OpenCLIP, markdown, CSV and a figure.

python -m analysis.figures paper [--out results/paper/figures] [--bootstrap N] [--seed S]
python -m analysis.figures study SWEEP_DIR [--out DIR] [--x compute] [--y COL] [--by method] ...
python -m analysis.figures baselines SWEEP_DIR [--out DIR] [--y COL] [--tolerance 0.05] [--bootstrap N] ...
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from analysis import cli
from analysis.baselines import BaselineOptions, baselines_table, write_baselines
from analysis.compare import parse_targets
from analysis.paper import PAPER_DATA, PAPER_OUT, paper_figures
from analysis.records import STUDY_BY, STUDY_LAWS, STUDY_X, STUDY_Y
from analysis.study import DRAWS
from analysis.sweep_study import sweep_study


def _add_study_parser(commands: Any) -> None:
    study = commands.add_parser("study", help="compare two methods of a sweep's records (figures + summary)")
    study.add_argument("path", help="sweep directory (or any directory holding runs/<id>/record.json)")
    study.add_argument("--out", help="output directory (default: <path>/figures)")
    study.add_argument("--x", default=STUDY_X, help="compute column: compute (target + reference) or compute_target")
    study.add_argument("--y", default=STUDY_Y, help="error column of the records")
    study.add_argument("--by", default=STUDY_BY, help="method column")
    study.add_argument("--baseline", help="baseline value of --by (default: clip)")
    study.add_argument("--treatment", help="treatment value of --by (default: drrho)")
    study.add_argument("--targets", help="target errors for k(E*), e.g. 0.5,0.4 (default: 3 inside the data)")
    study.add_argument("--pair-on", nargs="+", metavar="COL", help="configuration columns (default: inferred)")
    evals = study.add_mutually_exclusive_group()
    evals.add_argument(
        "--final-only",
        dest="final_only",
        action="store_true",
        default=True,
        help="fit the final evaluation of each run (default)",
    )
    evals.add_argument(
        "--all-evals",
        dest="final_only",
        action="store_false",
        help="fit every evaluation (mid-run checkpoints of cosine runs are off-frontier)",
    )
    cli.add_fit_arguments(study, default_draws=DRAWS, laws=STUDY_LAWS)


def _add_baselines_parser(commands: Any) -> None:
    parser = commands.add_parser("baselines", help="the paper's baselines table: every method against OpenCLIP")
    parser.add_argument("path", help="sweep directory (or any directory holding runs/<id>/record.json)")
    parser.add_argument("--out", help="output directory (default: <path>/figures)")
    defaults = BaselineOptions  # the dataclass's field defaults
    parser.add_argument("--y", default=defaults.y, help="error column of the records")
    parser.add_argument(
        "--compute", default=defaults.compute, help="compute column matched: compute_target (default) or compute"
    )
    parser.add_argument(
        "--tolerance",
        type=float,
        default=defaults.tolerance,
        help="relative compute difference still counted as matched (default 0.05)",
    )
    cli.add_fit_arguments(parser, default_draws=DRAWS, draws_only=True)
    parser.add_argument("--ci", type=float, default=defaults.ci, help="interval level")


def _out_dir(args: Any) -> tuple[Path, Path]:
    """The records path and the output directory: `--out`, else `figures/` beside the records."""
    path = Path(args.path)
    return path, Path(args.out) if args.out else (path if path.is_dir() else path.parent) / "figures"


def _baselines_command(args: Any) -> int:
    path, out = _out_dir(args)
    options = BaselineOptions(
        y=args.y, compute=args.compute, tolerance=args.tolerance, draws=args.bootstrap, seed=args.seed, ci=args.ci
    )
    result = baselines_table(path, options)
    written = write_baselines(result, out)
    print(result.markdown())
    print(f"wrote {', '.join(str(p) for p in written)}")
    return 0


def _study_command(args: Any) -> int:
    path, out = _out_dir(args)
    result = sweep_study(
        path,
        x=args.x,
        y=args.y,
        by=args.by,
        out=out,
        baseline=args.baseline,
        treatment=args.treatment,
        final_only=args.final_only,
        targets=parse_targets(args.targets),
        options=cli.fit_options(args),
    )
    print(result.markdown)
    print(f"wrote {out}")
    return 0


def _paper_command(args: Any) -> int:
    summary = paper_figures(args.out, data_dir=args.data, options=cli.fit_options(args))
    for law in summary["laws"]:
        b = law["params"]["b"]
        print(f"{law['level']}: {law['formula']}  b 95% CI [{b['ci'][0]:.4f}, {b['ci'][1]:.4f}]")
    print(f"wrote {args.out}")
    return 0


def _main(argv: Sequence[str] | None) -> int:
    parser = cli.Parser(prog="python -m analysis.figures", description="Regenerate figure sets.")
    commands = parser.add_subparsers(dest="command", required=True)
    paper = commands.add_parser("paper", help="the DRRho-CLIP paper's scaling figure and baselines table")
    paper.add_argument("--out", default=str(PAPER_OUT), help="output directory")
    paper.add_argument("--data", default=str(PAPER_DATA), help="directory with the paper CSVs")
    cli.add_fit_arguments(paper, default_draws=DRAWS, draws_only=True)
    _add_study_parser(commands)
    _add_baselines_parser(commands)
    args = parser.parse_args(argv)
    commands = {"study": _study_command, "baselines": _baselines_command, "paper": _paper_command}
    return commands[args.command](args)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m analysis.figures`; bad input gives one line on stderr and status 2."""
    return cli.run(_main, "python -m analysis.figures", argv)


if __name__ == "__main__":
    sys.exit(main())
