"""Choosing the next runs: which configurations shrink the interval of the asked-for quantity most per FLOP.

A candidate is a configuration not yet run (an unrun cell of the configuration axes, or a numeric axis
extended one step beyond its largest value). Its worth is estimated by simulation, not by a formula: draw
its outcome from the current bootstrap fits (one paired draw per outcome, so both methods' laws move
together) plus the measured seed noise, add it to the study, bootstrap again and read the target's interval
width. The expected width over `outcomes` simulated outcomes, against today's width, per FLOP of the
candidate's runs (one seed per method) is its score. A set within a budget is chosen greedily: the best
score, then the rest re-scored with that candidate added at the current law's prediction.

Targets are quantities `analysis.compare` reports: `delta-b` (exponent difference), `k@E` (compute multiplier
at error E, width in log), `paired-ratio` (width of the log ratio), `exponent:LEVEL` (one method's exponent).

Command line: python -m analysis.design <records dir or CSV> --target delta-b --budget FLOPS [--candidates
grid.yaml] [--out next.yaml]; a CSV takes --x, --y, --by and --pair-on (the configuration columns).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from analysis.bootstrap import Bootstrap, bootstrap_laws, configurations, percentile_interval
from analysis.compare import exponent_difference, multiplier, paired_ratio
from analysis.data import InputError
from analysis.study import FitOptions, Study

if TYPE_CHECKING:
    from scaling.grid import Expansion

OUTCOMES = 16  # simulated outcomes per candidate
DRAWS = 200  # bootstrap draws per refit while scoring (the interval is re-read from these)


@dataclass(frozen=True)
class Target:
    """A quantity of the comparison and how to read its interval width from a bootstrap."""

    name: str
    width: Callable[[Bootstrap], float]


def get_target(name: str, levels: Sequence[Hashable]) -> Target:
    """`delta-b`, `k@E`, `paired-ratio` or `exponent:LEVEL` on the study's (baseline, treatment) levels."""
    base, treat = [*levels, None][:2]

    def delta_b(bs: Bootstrap) -> float:
        e = exponent_difference(bs, base, treat)
        return e["hi"] - e["lo"]

    def ratio(bs: Bootstrap) -> float:
        r = paired_ratio(bs, base, treat)
        return r["hi"] - r["lo"]

    if name == "delta-b" and treat is not None:
        return Target(name, delta_b)
    if name == "paired-ratio" and treat is not None:
        return Target(name, ratio)
    if name.startswith("k@") and treat is not None:
        try:
            error = float(name[2:])
        except ValueError:
            raise InputError(f"--target {name!r}: k@E needs an error value, e.g. k@0.7") from None

        def k_width(bs: Bootstrap) -> float:
            row = multiplier(bs, base, treat, [error]).iloc[0]
            return float(np.log(row["hi"] / row["lo"]))

        return Target(name, k_width)
    if name.startswith("exponent:") or name == "exponent":
        wanted = name.partition(":")[2]
        level = next((v for v in levels if str(v) == wanted), levels[0] if not wanted else None)
        if level is None and wanted:
            raise InputError(f"--target {name!r}: no level {wanted!r} (have {', '.join(map(str, levels))})")

        def exp_width(bs: Bootstrap) -> float:
            lo, hi = percentile_interval(bs.fits[level].exponent(), bs.fits[level].ci)
            return float(hi - lo)

        return Target(name, exp_width)
    need = " (two levels of --by)" if treat is None else ""
    raise InputError(f"unknown --target {name!r}{need}: choose delta-b, k@E, paired-ratio, exponent:LEVEL")


def seed_noise(study: Study) -> float:
    """Pooled standard deviation of log error between seeds of a configuration (the noise a new run adds);
    without repeated seeds, the residual scatter of the full fits."""
    units = configurations(study)  # every row of a configuration is one of its seeds
    logs = np.log(units.y_seeds)
    counts = units.counts
    mean = np.nansum(logs, -1, keepdims=True) / np.maximum(counts, 1)[..., None]
    dev = np.nansum((logs - mean) ** 2, -1)
    dof = np.clip(counts - 1, 0, None).sum()
    if dof > 0:
        return float(np.sqrt(dev.sum() / dof))
    bs = bootstrap_laws(study.with_options(draws=1))
    return float(np.std(np.concatenate([f.fit.residuals for f in bs.fits.values()])))


def config_columns(study: Study) -> list[str]:
    """The configuration key: `options.config`, required here (the axes candidates are made from)."""
    if not study.options.config:
        raise InputError("the design needs the configuration columns (--pair-on COL ...)")
    return list(study.options.config)


def _is_numeric(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and bool((values > 0).all())


def _levels(study: Study) -> dict[str, list | None]:
    """Per configuration column: None for a positive numeric axis (log-linear in x), else its sorted values."""
    data = study.data
    return {c: None if _is_numeric(data[c]) else sorted(pd.unique(data[c])) for c in config_columns(study)}


def _features(frame: pd.DataFrame, levels: dict[str, list | None]) -> np.ndarray:
    """Design matrix of log x: an intercept, log of each numeric axis, one-hot of each categorical one."""
    parts = [np.ones((len(frame), 1))]
    for col, values in levels.items():
        if values is None:
            parts.append(np.log(frame[col].to_numpy(float))[:, None])
        else:
            unknown = set(frame[col]) - set(values)
            if unknown:
                raise InputError(f"cannot predict the compute of {col}={sorted(map(str, unknown))[0]!r} (not run yet)")
            parts.append((frame[col].to_numpy()[:, None] == np.array(values)[None, 1:]).astype(float))
    return np.hstack(parts)


def with_costs(study: Study, cells: pd.DataFrame) -> pd.DataFrame:
    """`x:<level>` for each cell, predicted by a least-squares model of log x on the axes (exact when compute
    is a product, e.g. FLOPs per sample × samples), and `cost`, their sum (one run per level)."""
    levels, cells = _levels(study), cells.reset_index(drop=True)
    features = _features(cells, levels)
    for level in study.levels:
        rows = study.data[study.level_rows(level)]
        coef, *_ = np.linalg.lstsq(_features(rows, levels), np.log(rows[study.x].to_numpy(float)), rcond=None)
        cells[f"x:{level}"] = np.exp(features @ coef)
    cells["cost"] = cells[[f"x:{v}" for v in study.levels]].sum(axis=1)
    return cells


def _unrun(study: Study, cells: pd.DataFrame) -> pd.DataFrame:
    columns = config_columns(study)
    run = pd.MultiIndex.from_frame(study.data[columns].drop_duplicates())
    return cells[~pd.MultiIndex.from_frame(cells[columns]).isin(run)].drop_duplicates(columns).reset_index(drop=True)


def candidate_table(study: Study) -> pd.DataFrame:
    """Unrun cells of the configuration axes, each numeric axis extended one step (its last ratio) beyond
    its largest value (a categorical one, such as a model name, is not: give --candidates), with costs."""
    axes = {}
    for col, values in _levels(study).items():
        values = sorted(pd.unique(study.data[col])) if values is None else values
        if _is_numeric(study.data[col]) and len(values) >= 2:
            step = float(values[-1]) ** 2 / float(values[-2])
            values = [*values, round(step) if pd.api.types.is_integer_dtype(study.data[col]) else step]
        axes[col] = values
    cells = _unrun(study, pd.MultiIndex.from_product(axes.values(), names=list(axes)).to_frame(index=False))
    if cells.empty:
        raise InputError("every cell of the configuration axes has been run; give --candidates")
    return with_costs(study, cells)


def _with_runs(study: Study, runs: pd.DataFrame, outcomes: np.ndarray) -> Study:
    """The study with one new run per candidate row and level, y = `outcomes` (rows × levels)."""
    columns = config_columns(study)
    new = []
    for j, level in enumerate(study.levels):
        part = runs[columns].assign(**{study.x: runs[f"x:{level}"].to_numpy(), study.y: outcomes[:, j]})
        new.append(part.assign(**({study.by: level} if study.by else {})))
    return study.but(data=pd.concat([study.data, *new], ignore_index=True))


def _simulate(
    bs: Bootstrap, study: Study, run: pd.Series, noise: float, n: int, rng: np.random.Generator
) -> np.ndarray:
    """n outcomes (n × levels) of one candidate: a paired bootstrap draw's prediction times seed noise."""
    pick = rng.integers(0, bs.draws, n)
    out = np.empty((n, len(study.levels)))
    for j, level in enumerate(study.levels):
        fit = bs.fits[level]
        curve = fit.predict_x(np.array([run[f"x:{level}"]]))[:, 0]
        curve = np.where(np.isfinite(curve), curve, fit.fit.law.predict_x(np.array([run[f"x:{level}"]]))[0])
        out[:, j] = curve[pick] * np.exp(rng.normal(0.0, noise, n))
    return np.clip(out, 1e-12, None)


def _why(study: Study, table: pd.DataFrame) -> list[str]:
    """Where each candidate lies: the numeric axes it extends, and its compute against the largest run's."""
    top = study.data[study.x].max()
    largest = table[[f"x:{v}" for v in study.levels]].max(axis=1)
    numeric = [c for c, values in _levels(study).items() if values is None]
    words = []
    for i, row in table.iterrows():
        beyond = [f"{c} beyond {study.data[c].max():.4g}" for c in numeric if row[c] > study.data[c].max()]
        ratio = largest[i] / top
        words.append(", ".join([*beyond, f"compute {ratio:.2g}x the largest run's"]))
    return words


def score_candidates(
    study: Study,
    target: Target,
    candidates: pd.DataFrame,
    *,
    outcomes: int = OUTCOMES,
    draws: int = DRAWS,
    noise: float | None = None,
) -> pd.DataFrame:
    """Expected interval width of `target` after each candidate, its reduction, and reduction per FLOP."""
    scoring = study.with_options(draws=draws)
    bs = bootstrap_laws(scoring)
    now = target.width(bs)
    noise = seed_noise(study) if noise is None else noise
    rng = np.random.default_rng(study.options.seed)
    widths = []
    for _, run in candidates.iterrows():
        sims = _simulate(bs, scoring, run, noise, outcomes, rng)
        values = [target.width(bootstrap_laws(_with_runs(scoring, run.to_frame().T, y[None]))) for y in sims]
        widths.append(float(np.nanmean(values)))
    table = candidates.assign(width_now=now, width_after=widths)
    table["reduction"] = table["width_now"] - table["width_after"]
    table["per_flop"] = table["reduction"] / table["cost"]
    table["why"] = _why(study, table)
    return table.sort_values("per_flop", ascending=False, kind="stable").reset_index(drop=True)


def choose(study: Study, target: Target, candidates: pd.DataFrame, budget: float, **scoring: int) -> pd.DataFrame:
    """Greedy set within `budget`: the best-scoring affordable candidate with a positive expected reduction,
    then the others re-scored with it added at the current law's prediction; rows in the order chosen."""
    chosen, spent = [], 0.0
    left = candidates[candidates["cost"] <= budget].reset_index(drop=True)
    while not left.empty:
        table = score_candidates(study, target, left, **scoring)
        table = table[(table["cost"] <= budget - spent) & (table["reduction"] > 0)]
        if table.empty:
            break
        best = table.iloc[0]
        chosen.append(best.to_frame().T.assign(step=len(chosen) + 1))
        spent += float(best["cost"])
        fits = bootstrap_laws(study.with_options(draws=1)).fits
        y = np.array([[fits[v].fit.law.predict_x(np.array([best[f"x:{v}"]]))[0] for v in study.levels]])
        study = _with_runs(study, best.to_frame().T, y)
        key = config_columns(study)
        left = left[~pd.MultiIndex.from_frame(left[key]).isin(pd.MultiIndex.from_frame(best.to_frame().T[key]))]
        left = left.reset_index(drop=True)
    return pd.concat(chosen, ignore_index=True) if chosen else candidates.head(0)


def grid_candidates(study: Study, grid: str | Path) -> pd.DataFrame:
    """The cells of a sweep grid (its run specs, named as `scaling.records` names their columns) that the
    study has not run; x per level from the plan's FLOPs per run when x is `compute_target`, else predicted
    from the axes (`with_costs`). Every cell run: an InputError."""
    from scaling.grid import load_grid

    cells = unrun_grid_cells(study, load_grid(grid))
    if cells.empty:
        raise InputError(f"--candidates {str(grid)!r}: every cell has been run")
    return cells


def unrun_grid_cells(study: Study, expansion: Expansion) -> pd.DataFrame:
    """`grid_candidates` of a loaded grid (overrides applied), empty when every cell has run."""
    from scaling.plan import build_tasks, task_flops
    from scaling.records import spec_columns

    columns = config_columns(study)
    tasks = [t for t in build_tasks(expansion) if t.role == "run"]
    rows = pd.DataFrame([spec_columns(t.spec.model_dump()) | {"_flops": task_flops(t)} for t in tasks])
    missing = [c for c in [*columns, *([study.by] if study.by else [])] if c not in rows]
    if missing:
        raise InputError(f"grid {str(expansion.path)!r}: its runs have no column {missing[0]!r}")
    cells = _unrun(study, rows)[columns]
    if cells.empty:
        return cells
    if study.x != "compute_target":
        return with_costs(study, cells)
    for level in study.levels:
        mine = rows[rows[study.by] == level] if study.by else rows
        flops = mine.groupby(columns, sort=False)["_flops"].mean()
        cells[f"x:{level}"] = flops.reindex(pd.MultiIndex.from_frame(cells)).to_numpy()
    cells["cost"] = cells[[f"x:{v}" for v in study.levels]].sum(axis=1)
    return cells


def next_sweep(grid: Mapping[str, Any], chosen: pd.DataFrame, columns: list[str], by: str | None) -> dict:
    """The grid (its YAML mapping) with its configuration axes replaced by the chosen cells (one seed, every
    method): a sweep of the next runs that writes to the same `out`, so the records join the study. Its
    analysis block is dropped: the new cells alone are no study (analyse the records dir after)."""
    raw = dict(grid)
    keys = {c: "samples_seen" if c == "samples_total" else c for c in columns}  # records' name → the grid's
    drop = {*keys.values(), "seed"}
    raw["axes"] = {k: v for k, v in (raw.get("axes") or {}).items() if k not in drop}
    raw.pop("zip", None)
    raw.pop("analysis", None)
    raw["zip"] = [{keys[c]: [_plain(v) for v in chosen[c]] for c in columns} | {"seed": [0] * len(chosen)}]
    raw["name"] = f"{raw.get('name', 'sweep')}-next"
    return raw


def _plain(value: object) -> object:
    """numpy scalars as Python values, for YAML."""
    return value.item() if hasattr(value, "item") else value


def add_source_arguments(parser: argparse.ArgumentParser, *, default_draws: int) -> None:
    """What `study_from` reads: the source, its columns (a CSV), the grid, simulated outcomes, fit options."""
    from analysis import cli
    from analysis.data import Y_TRANSFORMS
    from analysis.records import STUDY_LAWS

    parser.add_argument("source", help="a sweep's records directory, or a CSV")
    parser.add_argument("--grid", help="the sweep to extend in next.yaml (records: sweep.json's grid)")
    parser.add_argument("--x", help="compute column (records: compute_target)")
    parser.add_argument("--y", help="error column (records: the colour_shape zero-shot error)")
    parser.add_argument("--by", help="method column (records: method)")
    parser.add_argument("--pair-on", nargs="+", metavar="COL", help="configuration columns (the candidates' axes)")
    parser.add_argument("--y-transform", default="none", choices=list(Y_TRANSFORMS))
    parser.add_argument("--outcomes", type=int, default=OUTCOMES, help=f"simulated outcomes per candidate ({OUTCOMES})")
    cli.add_fit_arguments(parser, default_draws=default_draws, laws=STUDY_LAWS)


def records_study(
    path: str | Path,
    *,
    x: str | None = None,
    y: str | None = None,
    by: str | None = None,
    pair_on: Sequence[str] | None = None,
    options: FitOptions | None = None,
) -> Study:
    """A sweep's records as the design's study: final evaluations, references set aside, the sweep's
    configuration key (or `pair_on`) as `options.config`; x `compute_target` and the colour_shape zero-shot
    error unless given."""
    from analysis.records import STUDY_BY, STUDY_Y, load_records, prepare_study

    data = prepare_study(load_records(path), by=by or STUDY_BY, pair_on=pair_on, source=str(path))
    options = FitOptions.of(options, config=tuple(data.config))
    return Study.of(data.runs, x or "compute_target", y or STUDY_Y, by=data.by, options=options)


def study_from(args: argparse.Namespace) -> tuple[Study, str | None]:
    """The study a design starts from: a records directory (the sweep's configuration key, its grid from
    sweep.json) or a CSV with --x, --y, --by and --pair-on."""
    from analysis import cli
    from analysis.data import read_table

    path = Path(args.source)
    options = cli.fit_options(args)
    if path.is_dir():
        study = records_study(path, x=args.x, y=args.y, by=args.by, pair_on=args.pair_on, options=options)
        grid = args.grid
        sweep = path / "sweep.json"
        if grid is None and sweep.exists():
            import json

            grid = json.loads(sweep.read_text()).get("grid")
        return study, grid
    if args.x is None or args.y is None:
        raise InputError("a CSV needs --x and --y")
    study = Study.of(read_table(path), args.x, args.y, by=args.by, options=options)
    return study, args.grid


@dataclass(frozen=True)
class NextRuns:
    """The chosen set (rows in the order chosen, with why) and the document written as next.yaml."""

    target: Target
    chosen: pd.DataFrame
    document: dict
    columns: list[str]
    noise: float

    def write(self, path: str | Path) -> None:
        import yaml

        Path(path).write_text(yaml.safe_dump(self.document, sort_keys=False))

    def lines(self, budget: float, outcomes: int, draws: int) -> list[str]:
        """The why-table: each chosen run, its cost, the interval width before and after, and why."""
        shown = self.chosen[["step", *self.columns, "cost", "width_now", "width_after", "reduction", "per_flop", "why"]]
        return [
            f"target {self.target.name}: {outcomes} simulated outcomes x {draws} bootstrap draws per candidate; "
            f"seed noise {self.noise:.3g} (log error)",
            shown.to_string(index=False, float_format=lambda v: f"{v:.4g}"),
            f"spent {self.chosen['cost'].sum():.3g} of {budget:.3g} FLOPs",
        ]


def next_runs(
    study: Study,
    target: str,
    budget: float,
    candidates: pd.DataFrame,
    *,
    grid: Mapping[str, Any] | None = None,
    outcomes: int = OUTCOMES,
    draws: int = DRAWS,
) -> NextRuns:
    """Choose the runs within `budget` FLOPs that shrink `target`'s interval most, as a sweep of `grid` (a
    grid file's mapping: its configuration axes replaced by the chosen cells) or, without one, a list of
    configurations."""
    if budget <= 0 or outcomes < 1:
        raise InputError("--budget must be positive and --outcomes at least 1")
    wanted = get_target(target, study.levels)
    chosen = choose(study, wanted, candidates, budget, outcomes=outcomes, draws=draws)
    if chosen.empty:
        raise InputError(f"no candidate fits the budget {budget:.3g} FLOPs with an expected gain")
    columns = config_columns(study)
    if grid is not None:
        document = next_sweep(grid, chosen, columns, study.by)
    else:
        document = {"configurations": [{c: _plain(r[c]) for c in columns} for _, r in chosen.iterrows()]}
    return NextRuns(wanted, chosen, document, columns, seed_noise(study))


def sweep_next(
    grid: str | Path, overrides: Sequence[str], budget: float, *, target: str = "delta-b", out: str | Path | None = None
) -> Path:
    """`python -m scaling.sweep grid.yaml [key=value ...] --next BUDGET`: the design on the sweep's records
    (the grid's `out`) with the grid's analysis block (x, y, method column, fit options); candidates are the
    grid's unrun cells, or when every cell has run its axes extended one step. Writes `<out>/next.yaml` (or
    `out`), a grid of the chosen runs writing to the same records, and prints the why-table."""
    from scaling.grid import load_grid
    from scaling.spec import apply_override
    from scaling.yamlfile import read_grid_file

    expansion = load_grid(grid, overrides)
    analysis, records = expansion.grid.analysis, Path(expansion.grid.out)
    given = {} if analysis is None else {"x": analysis.x, "y": analysis.y, "by": analysis.by}
    study = records_study(records, **given, options=None if analysis is None else analysis.fit_options())
    candidates = unrun_grid_cells(study, expansion)
    if candidates.empty:
        print(f"every cell of {grid} has run: the candidates are its axes extended one step")
        candidates = candidate_table(study)
    raw, _ = read_grid_file(Path(grid))
    for item in overrides:  # next.yaml keeps what the command line changed (out=... above all)
        apply_override(raw, item)
    chosen = next_runs(study, target, budget, candidates, grid=raw)
    path = Path(out) if out else records / "next.yaml"
    chosen.write(path)
    print("\n".join(chosen.lines(budget, OUTCOMES, DRAWS)))
    print(f"wrote {path}: run it with python -m scaling.sweep {path}")
    return path


def _main(argv: Sequence[str] | None) -> int:
    import yaml

    from analysis import cli

    parser = cli.Parser(prog="python -m analysis.design", description="Choose the next runs of a scaling study.")
    add_source_arguments(parser, default_draws=DRAWS)
    parser.add_argument("--target", required=True, help="delta-b, k@E (e.g. k@0.7), paired-ratio, exponent:LEVEL")
    parser.add_argument("--budget", type=float, required=True, help="FLOPs to spend on the next runs")
    parser.add_argument("--candidates", help="a grid YAML whose unrun cells are the candidates")
    parser.add_argument("--out", default="next.yaml", help="where to write the next sweep (next.yaml)")
    args = parser.parse_args(argv)
    study, grid = study_from(args)
    candidates = grid_candidates(study, args.candidates) if args.candidates else candidate_table(study)
    raw = yaml.safe_load(Path(grid).read_text()) if grid is not None and Path(grid).exists() else None
    chosen = next_runs(
        study, args.target, args.budget, candidates, grid=raw, outcomes=args.outcomes, draws=args.bootstrap
    )
    chosen.write(args.out)
    lines = chosen.lines(args.budget, args.outcomes, args.bootstrap)
    print("\n".join(lines[:-1]))
    print(f"{lines[-1]}; wrote {args.out}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m analysis.design`; bad input gives one line on stderr and status 2."""
    from analysis import cli

    return cli.run(_main, "python -m analysis.design", argv)


if __name__ == "__main__":
    sys.exit(main())
