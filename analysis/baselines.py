"""The baselines table of a sweep (issue 11; Wei et al., ICML 2025, its baselines table): every method against
OpenCLIP (`clip`) on the same configurations, per steering reference, at matched target compute and at matched
samples seen, each cell with a seed-paired 95% bootstrap interval; written as markdown, CSV and a figure.

Why ratios to CLIP, paired by seed: at CPU scale the seed-to-seed spread of one method is as large as the gaps
between methods, but two methods run with the same seed share initialisation and data order, so the per-seed
ratio E_method / E_clip cancels most of it. The unit of the bootstrap is one such pair (`compare`'s
`log_ratio_interval`); a cell is the geometric mean of its pairs' ratios over every model and budget.

Why two views: a selecting method (JEST) forwards every loaded example to score it and trains on a fifth, so
equal samples seen and equal compute are different runs. A run is paired with the CLIP run of the same model,
seed and data that saw as many samples (`samples_total`, in the run's own convention: loaded examples for JEST
by default), and with the one whose target compute is nearest within `tolerance`. For every other method the
two coincide (same compute per sample), so their rows are the same in both views.

Command line: python -m analysis.figures baselines SWEEP_DIR [--out DIR] [--y COL] [--tolerance 0.05] ...
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from analysis.compare import log_ratio_interval
from analysis.data import InputError, require_columns
from analysis.plots import ratio_plot, save_figure
from analysis.records import (
    STUDY_BY,
    STUDY_Y,
    label,
    load_records,
    nonfinite_runs,
    reference_table,
    split_reference_runs,
)
from analysis.report import markdown_table
from analysis.study import DRAWS
from scaling.methods import METHODS, PAPER_NAMES
from scaling.spec import UNHASHED

BASELINE = "clip"
VIEWS = {"compute": "matched target compute", "samples": "matched samples seen"}
NO_REFERENCE = "no reference"
ALL = "all"
PAIR_KEY = ("model", "seed")  # with every data.* column: what a method's run and its CLIP run share
CELL_COLUMNS = [
    *("view", "reference", "method", "paper_name", "budget", "model"),
    *("n_pairs", "error", "clip_error", "ratio", "ratio_lo", "ratio_hi"),
]


@dataclass(frozen=True)
class BaselineOptions:
    """What the table compares and how: the error column `y`, the `compute` column matched (target only by
    default, as the issue asks), the relative `tolerance` within which two runs' compute count as matched,
    and the bootstrap's `draws`, `seed` and interval level `ci`."""

    y: str = STUDY_Y
    compute: str = "compute_target"
    tolerance: float = 0.05
    draws: int = DRAWS
    seed: int = 0
    ci: float = 0.95

    def __post_init__(self) -> None:
        if not 0 <= self.tolerance < 0.5:
            raise InputError(f"--tolerance must lie in [0, 0.5), got {self.tolerance}")
        if self.draws < 1:
            raise InputError(f"bootstrap draws (--bootstrap) must be at least 1, got {self.draws}")
        if not 0 < self.ci < 1:
            raise InputError(f"interval level (--ci) must lie between 0 and 1, got {self.ci}")


@dataclass(frozen=True)
class Baselines:
    """Everything `baselines_table` measured: the seed-paired runs of both views (`pairs`), the cells over
    every configuration and by budget (`cells`), the references' own errors, and what was left out."""

    pairs: pd.DataFrame
    cells: pd.DataFrame
    references: dict[str, float]
    options: BaselineOptions
    notes: list[str] = field(default_factory=list)

    def markdown(self) -> str:
        return baselines_markdown(self)


def final_runs(records: pd.DataFrame, options: BaselineOptions) -> tuple[pd.DataFrame, list[str]]:
    """The final evaluation of each finished grid run (in-sweep reference runs set aside, diverged runs
    dropped), with `reference` naming its steering reference; and notes on what was dropped."""
    loader = {f"data.{name}" for name in UNHASHED["data"]}  # how data is read, not which data
    data = [c for c in records.columns if str(c).startswith("data.") and c not in loader]
    require_columns(records, [STUDY_BY, "final", "samples_total", options.y, options.compute, *PAIR_KEY])
    grid, _ = split_reference_runs(records)
    dropped = nonfinite_runs(grid)
    runs = grid[grid["final"].astype(bool) & ~grid["run_id"].astype(str).isin(dropped)].copy()
    runs["reference"] = runs["reference.name"].fillna(NO_REFERENCE) if "reference.name" in runs else NO_REFERENCE
    runs["key"] = runs[[*PAIR_KEY, *data]].map(str).agg("|".join, axis=1)
    notes = [f"dropped run `{run}`: {why} (diverged)" for run, why in sorted(dropped.items())]
    return runs.reset_index(drop=True), notes


def _matched(runs: pd.DataFrame, clip: pd.DataFrame, view: str, tolerance: float) -> pd.DataFrame:
    """Each run beside the CLIP run it is matched with in `view`: same key (model, seed, data) and the same
    samples seen, or the nearest target compute within `tolerance` (log distance)."""
    both = runs.merge(clip, on="key", suffixes=("", "_clip"))
    if view == "samples":
        return both[both["samples_total"] == both["samples_total_clip"]]
    distance = np.abs(np.log(both["x"] / both["x_clip"]))
    both = both.assign(distance=distance)[distance <= np.log1p(tolerance)]
    return both.sort_values("distance", kind="stable").drop_duplicates("run_id").drop(columns="distance")


def pair_runs(runs: pd.DataFrame, options: BaselineOptions) -> pd.DataFrame:
    """One row per (view, run, its CLIP run): method, reference, model, budget (the CLIP run's samples seen),
    seed, both errors and log(E / E_clip). CLIP is paired with itself (ratio 1), so its row shows its error."""
    runs = runs.assign(x=runs[options.compute].astype(float), error=runs[options.y].astype(float))
    clip = runs.loc[runs[STUDY_BY] == BASELINE, ["key", "run_id", "samples_total", "x", "error"]]
    if clip.empty:
        raise InputError(f"no finished {BASELINE} (OpenCLIP) run to compare against: the table is relative to it")
    parts = []
    for view in VIEWS:
        both = _matched(runs, clip, view, options.tolerance)
        parts.append(
            pd.DataFrame(
                {
                    "view": view,
                    "method": both[STUDY_BY],
                    "reference": both["reference"],
                    "model": both["model"],
                    "budget": both["samples_total_clip"].astype(int),
                    "seed": both["seed"],
                    "run_id": both["run_id"],
                    "clip_run_id": both["run_id_clip"],
                    "error": both["error"],
                    "clip_error": both["error_clip"],
                    "log_ratio": np.log(both["error"] / both["error_clip"]),
                }
            )
        )
    pairs = pd.concat(parts, ignore_index=True)
    _require_one_run_per_pair(pairs)
    rank = {m: i for i, m in enumerate(method_order(pairs["method"]))}  # the paper's order, kept by groupby
    return pairs.sort_values("method", key=lambda s: s.map(rank), kind="stable").reset_index(drop=True)


def _require_one_run_per_pair(pairs: pd.DataFrame) -> None:
    """Two runs of one method matched with the same CLIP run (e.g. two learning rates) would be averaged as if
    they were seeds: an error naming them, not a silently blended cell."""
    twice = pairs[pairs.duplicated(["view", "method", "reference", "clip_run_id"], keep=False)]
    if not twice.empty:
        row = twice.iloc[0]
        runs = ", ".join(sorted(twice.loc[twice["clip_run_id"] == row["clip_run_id"], "run_id"].astype(str)))
        raise InputError(
            f"method {row['method']!r} has several runs ({runs}) matched with CLIP run {row['clip_run_id']} "
            f"({VIEWS[row['view']]}); keep one variant per method in the records directory"
        )


def _cell(pairs: pd.DataFrame, options: BaselineOptions) -> dict[str, Any]:
    """Geometric-mean errors and the paired ratio of a group of seed-paired runs, with its interval (none
    from a single pair)."""
    ratios = pairs["log_ratio"].to_numpy(float)
    ratio = log_ratio_interval(ratios, options.draws, options.ci, options.seed)
    if ratios.size < 2:
        ratio |= {"ratio_lo": np.nan, "ratio_hi": np.nan}
    return {
        "n_pairs": int(ratios.size),
        "error": float(np.exp(np.log(pairs["error"]).mean())),
        "clip_error": float(np.exp(np.log(pairs["clip_error"]).mean())),
        **{k: ratio[k] for k in ("ratio", "ratio_lo", "ratio_hi")},
    }


def cells(pairs: pd.DataFrame, options: BaselineOptions) -> pd.DataFrame:
    """The table's cells, per view, reference and method: over every model and budget (`budget` and `model`
    'all'), by budget, and by budget and model; methods in the paper's order with its names."""
    rows = []
    for keys, budget, model in (((), ALL, ALL), (("budget",), None, ALL), (("budget", "model"), None, None)):
        for values, group in pairs.groupby(["view", "reference", "method", *keys], sort=False):
            row = dict(zip(["view", "reference", "method", *keys], values, strict=True))
            rows.append({"budget": budget, "model": model, **row, **_cell(group, options)})
    table = pd.DataFrame(rows).assign(paper_name=lambda t: t["method"].map(lambda m: PAPER_NAMES.get(m, m)))
    return table[CELL_COLUMNS]


def method_order(methods: Sequence[str]) -> list[str]:
    """The methods present, in the paper's table order (METHODS), any other key after them."""
    present = set(methods)
    return [m for m in METHODS if m in present] + sorted(present - set(METHODS))


def budgets_of(table: pd.DataFrame) -> list[int]:
    """The budgets (OpenCLIP's samples seen) of the cells or pairs, smallest first."""
    return sorted(b for b in pd.unique(table["budget"]) if b != ALL)


def references_of(pairs: pd.DataFrame) -> list[str]:
    """The table's columns: the steering references, or a single 'no reference' when nothing was steered."""
    steered = [r for r in pd.unique(pairs["reference"]) if r != NO_REFERENCE]
    return steered or [NO_REFERENCE]


def unmatched_notes(runs: pd.DataFrame, pairs: pd.DataFrame, options: BaselineOptions) -> list[str]:
    """Runs that no view could pair with a CLIP run (a budget CLIP never ran), and methods absent from a view
    (e.g. none within the compute tolerance), named so that no '—' in the table goes unexplained."""
    lost = runs[~runs["run_id"].isin(pairs["run_id"])]
    notes = [
        f"run `{r.run_id}` ({r.method}, {r.model}, {r.samples_total} samples, seed {r.seed}) matches no CLIP run "
        "in samples seen or compute: left out"
        for r in lost.itertuples()
    ]
    for view, title in VIEWS.items():
        missing = set(runs[STUDY_BY]) - set(pairs.loc[pairs["view"] == view, "method"])
        notes += [
            f"{PAPER_NAMES.get(m, m)} has runs but none pairs with a CLIP run at {title}"
            + (f" (`{options.compute}` within {options.tolerance:.0%})" if view == "compute" else "")
            for m in method_order(missing)
        ]
    return notes


def baselines_table(path: str | Path, options: BaselineOptions | None = None) -> Baselines:
    """The baselines table of the records under `path` (a sweep or any directory of run records)."""
    options = options or BaselineOptions()
    runs, notes = final_runs(load_records(path), options)
    pairs = pair_runs(runs, options)
    references = reference_table(path)
    own = {}
    if not references.empty and options.y in references:
        own = dict(zip(references["name"], references[options.y].astype(float), strict=True))
    return Baselines(pairs, cells(pairs, options), own, options, notes + unmatched_notes(runs, pairs, options))


# -- report -------------------------------------------------------------------------------------------------


def _cell_text(row: Mapping[str, Any] | None) -> str:
    """'error (×ratio [lo, hi], n=pairs)'; CLIP's own cell says it is the baseline; a missing method '—'. The
    count shows when cells pool different configurations (a method not run at every budget)."""
    if row is None:
        return "—"
    n = f"n={row['n_pairs']}"
    if row["method"] == BASELINE:
        return f"{row['error']:.4f} (baseline, {n})"
    interval = "" if not np.isfinite(row["ratio_lo"]) else f" [{row['ratio_lo']:.3f}, {row['ratio_hi']:.3f}]"
    return f"{row['error']:.4f} (×{row['ratio']:.3f}{interval}, {n})"


def per_reference(table: pd.DataFrame, references: Sequence[str]) -> pd.DataFrame:
    """Rows of methods without a reference repeated under every reference, as the paper prints them."""
    parts = [table[table["reference"].isin([r, NO_REFERENCE])].assign(reference=r) for r in references]
    return pd.concat(parts, ignore_index=True)


def layout(table: pd.DataFrame, columns: Sequence[Any], column_of: str, first: list[str] | None = None) -> pd.DataFrame:
    """The paper's layout of cells: rows = every method of the paper's table in its order, by its names ('—' for
    one not run), columns = the values `columns` of `column_of`; `first` is a row put on top (label, cells)."""
    cell = {(r["method"], r[column_of]): r for _, r in table.iterrows()}
    rows = [first] if first else []
    for method in method_order([*METHODS, *table["method"]]):
        rows.append([PAPER_NAMES.get(method, method), *(_cell_text(cell.get((method, c))) for c in columns)])
    return pd.DataFrame(rows, columns=["method", *map(str, columns)])


def _reference_row(result: Baselines, references: Sequence[str]) -> list[str] | None:
    """'Reference model' and each reference's own error, as the paper's first row, when the records carry it."""
    own = result.references
    return ["Reference model", *(f"{own[r]:.4f}" if r in own else "n/a" for r in references)] if own else None


def _budget_tables(table: pd.DataFrame, references: Sequence[str]) -> str:
    """One view's cells as methods × budgets (over models and seeds), one table per reference."""
    rows = table[(table["model"] == ALL) & (table["budget"] != ALL)]
    budgets = budgets_of(rows)
    out = []
    for reference in references:
        frame = layout(rows[rows["reference"] == reference], budgets, "budget")
        frame.columns = ["method", *(f"{b:,} samples" for b in budgets)]
        out.append(("" if len(references) == 1 else f"Reference {reference}:\n\n") + markdown_table(frame))
    return "\n".join(out)


def baselines_markdown(result: Baselines) -> str:
    """The table in the paper's layout for each view, by budget below it, and how every number was made."""
    opts, table, pairs = result.options, result.cells, result.pairs
    references = references_of(pairs)
    lines = [
        f"# Baselines: {label(opts.y)}, relative to OpenCLIP",
        "",
        f"Each cell: the method's error (geometric mean over its runs) and ×its error ratio to OpenCLIP with a "
        f"{opts.ci:.0%} bootstrap interval ({opts.draws} draws, seed {opts.seed}; none from one pair), n = the "
        "seed-paired runs behind it; each run is paired with the "
        "OpenCLIP run of the same model, seed and data, the bootstrap resamples those pairs. Ratio < 1: lower "
        "error than OpenCLIP. Columns: the steering reference; methods without one repeat in every column. "
        f"Models: {', '.join(map(str, sorted(pairs['model'].unique())))}; budgets (OpenCLIP's samples seen): "
        f"{', '.join(f'{b:,}' for b in budgets_of(pairs))}. The first table of each view pools every model and "
        "budget (the most pairs behind one interval); by budget below; by budget and model in baselines.csv.",
        "",
    ]
    for view, title in VIEWS.items():
        rows = per_reference(table[table["view"] == view], references)
        overall = rows[(rows["budget"] == ALL) & (rows["model"] == ALL)]
        lines += [f"## {title[0].upper()}{title[1:]}", "", VIEW_WORDS[view].format(tol=opts.tolerance), ""]
        lines += [markdown_table(layout(overall, references, "reference", _reference_row(result, references))), ""]
        lines += [f"By budget ({title}, over models and seeds):", "", _budget_tables(rows, references), ""]
    lines += ["## Notes", "", *(f"- {n}" for n in result.notes or ["every finished run was paired"]), ""]
    return "\n".join(lines)


VIEW_WORDS = {
    "compute": "Paired with the OpenCLIP run whose target training compute (scoring forwards included) is nearest, "
    "within {tol:.0%}.",
    "samples": "Paired with the OpenCLIP run that saw as many samples, as each run's spec counts them (JEST: "
    "loaded examples unless its `selection.samples_seen_counts` is `trained`).",
}


# -- figure -------------------------------------------------------------------------------------------------


def baselines_figure(result: Baselines) -> Figure:
    """Paired error ratio vs OpenCLIP per method (rows, the paper's order) with its interval, one colour per
    budget and black over all budgets, one panel per view, one marker per reference (methods without one
    drawn with every reference, as the table repeats them)."""
    table = result.cells[(result.cells["model"] == ALL) & (result.cells["method"] != BASELINE)]
    references = references_of(result.pairs)
    panels = {title: per_reference(table[table["view"] == view], references) for view, title in VIEWS.items()}
    methods = method_order(table["method"])
    return ratio_plot(
        panels,
        rows={m: PAPER_NAMES.get(m, m) for m in methods},
        colour="budget",
        colour_labels={**{b: f"{b:,} samples" for b in budgets_of(table)}, ALL: "all budgets"},
        marker="reference",
        overall=ALL,
        xlabel=f"error / OpenCLIP's error (seed-paired {result.options.ci:.0%} interval)",
        title=f"{label(result.options.y)} relative to OpenCLIP (< 1: better)",
    )


def write_baselines(result: Baselines, out: str | Path) -> list[Path]:
    """`baselines.md`, `baselines.csv` (every cell: over all configurations, by budget, by budget and model)
    and the figure (PNG + PDF) into `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "baselines.md").write_text(result.markdown())
    result.cells.to_csv(out / "baselines.csv", index=False)
    return [out / "baselines.md", out / "baselines.csv", *save_figure(baselines_figure(result), out / "baselines")]
