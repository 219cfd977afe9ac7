"""Figure sets: `study_figures` (the standard set for any tidy table of runs), `figures paper`, which
regenerates the DRRho-CLIP paper's scaling figure and baselines table from the committed data, and
`figures study`, the same set plus a markdown summary for a sweep's records (`sweep_study`).

Command lines: python -m analysis.figures paper [--out results/paper/figures] [--bootstrap N] [--seed S]
               python -m analysis.figures study SWEEP_DIR [--out DIR] [--x compute] [--y COL] [--by method] ...
"""

from __future__ import annotations

import re
import sys
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from analysis import cli
from analysis.bootstrap import DRAWS, bootstrap_laws
from analysis.compare import (
    Comparison,
    compare_methods,
    extrapolation_check,
    leave_one_group_out,
    multiplier,
    parse_targets,
)
from analysis.data import InputError, prepare, read_table, require_columns, require_values, transform_y
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
from analysis.select import get_rule

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
    path.write_text(cli.to_json(obj) + "\n")


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
    curves: pd.DataFrame | None = None,
    run: str | None = None,
    point_size: str | None = None,
) -> dict[str, Figure]:
    """The standard figure set of a comparison, by name: scaling (+ extrapolation when it was checked),
    residuals, multiplier, bootstrap; isoflop when `size` is given (models told apart by `model`);
    learning_curves when `samples` and `model` are given. `data` holds y as an error already.

    `curves` (every evaluation, y an error) draws the learning curves from checkpoints, one line per `run`,
    instead of from `data`; `point_size` scales the run markers of the scaling plots by that column (notes
    §4.1: marker = architecture, size = samples seen)."""
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
    if point_size:
        for name in ("scaling", "extrapolation"):
            if name in figures:
                size_run_markers(figures[name], data, x, y, point_size)
    if size:
        points = isoflop_points(data, x, y, size=size, model=model, by=by)
        figures["isoflop"] = isoflop_plot(points, size_label=size)
    if samples and model:
        lines = data if curves is None else curves
        figures["learning_curves"] = learning_curves_plot(lines, samples, y, model=model, by=by, run=run)
    return figures


# Marker area that `analysis.plots.scaling_plot` gives every run (fitted-point rings are larger): the runs'
# scatter collections are recognised by it when they are re-sized by another column.
RUN_MARKER_AREA = 36.0
SIZE_RANGE = (10.0, 64.0)


def size_run_markers(
    fig: Figure, data: pd.DataFrame, x: str, y: str, column: str, areas: tuple[float, float] = SIZE_RANGE
) -> None:
    """Re-size the run markers of a scaling plot: area linear in log(column), matched to runs by (x, y), and
    add a small legend of the sizes. `scaling_plot` has no size argument; this keeps it unchanged."""
    ax = fig.axes[0]
    values = np.log(data[column].to_numpy(float))
    lo, hi = float(values.min()), float(values.max())
    scale = (values - lo) / (hi - lo) if hi > lo else np.full_like(values, 0.5)
    area = areas[0] + scale * (areas[1] - areas[0])
    lookup = dict(zip(zip(data[x].astype(float), data[y].astype(float), strict=True), area, strict=True))
    for coll in ax.collections:
        sizes = coll.get_sizes()
        if len(sizes) == 1 and sizes[0] == RUN_MARKER_AREA:
            offsets = np.asarray(coll.get_offsets(), dtype=float)
            coll.set_sizes([lookup.get((px, py), RUN_MARKER_AREA) for px, py in offsets])
    shown = np.unique(np.exp(np.quantile(values, [0.0, 0.5, 1.0])))
    handles = [
        Line2D(
            [],
            [],
            marker="o",
            ls="",
            color="grey",
            label=f"{v:.3g}",
            ms=float(np.sqrt(areas[0] + (np.log(v) - lo) / max(hi - lo, 1e-12) * (areas[1] - areas[0]))),
        )
        for v in shown
    ]
    legend = ax.get_legend()
    ax.legend(handles=handles, title=column, fontsize=7, title_fontsize=7, loc="lower left")
    if legend is not None:
        ax.add_artist(legend)


def compare_and_draw(
    df: pd.DataFrame,
    *,
    x: str,
    y: str,
    by: str,
    marker: str | None = None,
    size: str | None = None,
    model: str | None = None,
    samples: str | None = None,
    y_transform: str = "none",
    reference_laws: Mapping[Hashable, FittedLaw] | None = None,
    x_max: float | None = None,
    curves: pd.DataFrame | None = None,
    run: str | None = None,
    point_size: str | None = None,
    **options: Any,
) -> tuple[Comparison, dict[str, Figure]]:
    """`compare_methods` on a tidy table and its standard figure set, without writing anything (notebooks
    display the figures; `study_figures` and `sweep_study` write them). Arguments as `study_figures`."""
    data = prepare(df, x, y, keep=[by, marker, size, model, samples, point_size], y_transform=y_transform)
    comparison = compare_methods(data, x, y, by, samples=samples, **options)
    if curves is not None:
        curves = _error_rows(curves, samples or x, y, y_transform, keep=[by, model, run])
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
        curves=curves,
        run=run,
        point_size=point_size,
    )
    return comparison, figures


def _error_rows(df: pd.DataFrame, x: str, y: str, y_transform: str, keep: Sequence[str | None]) -> pd.DataFrame:
    """Rows for a log–log learning curve: y transformed, rows whose x or y is not positive dropped (an early
    checkpoint at zero error must not stop the study, unlike a bad fitted point). `y_transform` is checked
    by `prepare` first."""
    require_columns(df, [x, y, *keep])
    out = transform_y(df, y, y_transform)
    positive = (pd.to_numeric(out[x], errors="coerce") > 0) & (out[y] > 0)
    return out[positive]


def write_figures(figures: Mapping[str, Figure], out: str | Path, prefix: str = "") -> dict[str, list[str]]:
    """Save each figure as PNG + PDF under `out`; the file names relative to `out`, by figure."""
    out = Path(out)
    return {
        name: [str(p.relative_to(out)) for p in save_figure(fig, out / f"{prefix}{name}")]
        for name, fig in figures.items()
    }


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
    curves: pd.DataFrame | None = None,
    run: str | None = None,
    point_size: str | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Compare the methods in a tidy table of runs (one row per run or checkpoint), write the standard
    figure set (PNG + PDF) and `<prefix>summary.json` into `out`, and return the summary: laws with
    intervals, exponent difference, k(E*) with intervals, paired ratio, data efficiency (with `samples`),
    extrapolation check, leave-one-group-out, and the written files.

    `extra` entries are added to the summary (e.g. provenance); `curves`, `run` and `point_size` go to
    `standard_figures`; `options` go to `compare_methods` (pair_on, baseline, treatment, law, n, d, frontier,
    draws, seed, targets, holdout, group, seeds, seed_col, ci).
    """
    comparison, figures = compare_and_draw(
        df,
        x=x,
        y=y,
        by=by,
        marker=marker,
        size=size,
        model=model,
        samples=samples,
        y_transform=y_transform,
        reference_laws=reference_laws,
        x_max=x_max,
        curves=curves,
        run=run,
        point_size=point_size,
        **options,
    )
    out = Path(out)
    summary = {**comparison.summary(), "figures": write_figures(figures, out, prefix), **(extra or {})}
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


# -- sweep studies: the records written by scaling.run ------------------------------------------------------

STUDY_X = "compute"
STUDY_Y = "zeroshot_error.colour_shape"
STUDY_BY = "method"
DEFAULT_LEVELS = ("clip", "drrho")  # baseline, treatment when the `by` column holds them
COMPUTE_CONVENTIONS = {
    "compute_target": "target-model training FLOPs only",
    "compute": "target training + reference forward FLOPs",
}
COMPUTE_NOTE = (
    "`compute` adds the reference's forward passes (its embedding cache once per pool, or one per sample "
    "seen online); the reference's own training is counted in neither"
)
REFERENCE_RUN = re.compile(r"^run:(?P<id>\w+)")
CONFIG_AXES = ("model", "samples_total", "batch_size")
CONFIG_PREFIXES = ("data.", "optim.")
ISOFLOP_SIZES = ("model.params_nonembedding", "model.params_total")
STUDY_LAWS = ("power", "saturating", "saturating-shifted")  # laws of compute alone (Chinchilla needs N and D)


def load_records(path: str | Path) -> pd.DataFrame:
    """Finished runs under a sweep, runs or run directory: one row per run × evaluation.

    `scaling.records` is imported here, not at the top: it needs no torch, and `import analysis` stays
    usable on tables that never came from a sweep."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{str(path)!r} does not exist (give a sweep directory or a directory of records)")
    from scaling.records import load

    frame = load(path, status="done")
    if frame.empty:
        raise InputError(f"no finished records (record.json with status 'done') under {str(path)!r}")
    return frame


def reference_run_ids(records: pd.DataFrame) -> set[str]:
    """Run ids of in-sweep references: a steered run names its reference 'run:<run_id> (<arch>)'."""
    if "reference.name" not in records:
        return set()
    names = records["reference.name"].dropna().astype(str).unique()
    return {m["id"] for name in names if (m := REFERENCE_RUN.match(name))}


def split_reference_runs(records: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(grid runs, reference runs). An in-sweep reference is trained (usually on other data) to steer the
    targets, so it is no point of the baseline's law, unless a steered run shares its model, samples, seed
    and data (the sweep trains a grid run equal to a reference only once)."""
    ids = reference_run_ids(records)
    if not ids:
        return records, records.head(0)
    keys = [c for c in ("model", "samples_total", "seed") if c in records]
    keys += [c for c in records.columns if str(c).startswith("data.")]
    signature = records[keys].map(str).agg("|".join, axis=1)
    steered = records["steered"].astype(bool) if "steered" in records else pd.Series(False, records.index)
    is_reference = records["run_id"].isin(ids) & ~signature.isin(set(signature[steered]))
    return records[~is_reference], records[is_reference]


def choose_levels(
    df: pd.DataFrame, by: str, baseline: Hashable | None = None, treatment: Hashable | None = None
) -> tuple[Hashable, Hashable]:
    """Baseline and treatment values of `by`: as given, else clip and drrho when present, else the only
    two values; a single value is an error (nothing to compare)."""
    require_columns(df, [by])
    levels = list(pd.unique(df[by].dropna()))
    if len(levels) < 2:
        shown = ", ".join(map(str, levels)) or "none"
        raise InputError(f"column {by!r} has a single value among the finished runs ({shown}); need two")
    require_values(by, levels, (baseline, treatment))
    if baseline is None:
        usual = DEFAULT_LEVELS[0]
        baseline = usual if usual in levels and usual != treatment else next(v for v in levels if v != treatment)
    if treatment is None:
        others = [v for v in levels if v != baseline]
        usual = DEFAULT_LEVELS[1]
        if usual in others:
            treatment = usual
        elif len(others) == 1:
            treatment = others[0]
        else:
            raise InputError(f"column {by!r} has {len(levels)} values; name --baseline and --treatment")
    return baseline, treatment


def config_columns(runs: pd.DataFrame, by: str, levels: Sequence[Hashable], *, evals: bool = False) -> list[str]:
    """Columns that tell configurations apart (the pairing key; seeds of a key are averaged): spec axes
    (model, samples_total, batch_size, data.*, optim.*) that vary within a method and whose values the
    methods share. A method's own settings (loss.*, an lr set only for drrho) are no key; with every
    evaluation kept, the checkpoint's samples_seen is one."""
    candidates = [*CONFIG_AXES, *sorted(c for c in runs.columns if str(c).startswith(CONFIG_PREFIXES))]
    candidates += ["samples_seen"] if evals else []
    keep = []
    for col in candidates:
        if col in runs:
            sets = [set(runs.loc[runs[by] == level, col].map(str)) for level in levels]
            if any(len(s) > 1 for s in sets) and set.intersection(*sets):
                keep.append(col)
    return keep


@dataclass(frozen=True)
class StudyData:
    """A sweep's records split for a study: `runs`, the rows the laws are fitted to (the final evaluation of
    each run by default); `curves`, every evaluation of those runs (learning curves); `references`, the
    in-sweep reference runs set aside; `config`, the configuration key."""

    runs: pd.DataFrame
    curves: pd.DataFrame
    references: pd.DataFrame
    by: str
    baseline: Hashable
    treatment: Hashable
    config: list[str]
    final_only: bool
    source: str

    def configurations(self) -> dict[str, int]:
        """Distinct configurations per method."""
        counts = self.runs.drop_duplicates([self.by, *self.config]).groupby(self.by).size()
        return {str(k): int(v) for k, v in counts.items()}

    def describe(self) -> dict[str, Any]:
        """Provenance for the summary: what was read, kept and set aside."""
        runs = self.curves.groupby(self.by)["run_id"].nunique()
        seeds = self.runs.groupby([self.by, *self.config], dropna=False).size()
        return {
            "source": self.source,
            "by": self.by,
            "runs": {str(k): int(v) for k, v in runs.items()},
            "rows_fitted": len(self.runs),
            "evaluations": len(self.curves),
            "final_only": self.final_only,
            "config": self.config,
            "configurations": self.configurations(),
            "configurations_with_seeds": int((seeds > 1).sum()),
            "excluded_reference_runs": sorted(self.references["run_id"].unique().tolist()),
        }


def prepare_study(
    records: pd.DataFrame,
    *,
    by: str = STUDY_BY,
    baseline: Hashable | None = None,
    treatment: Hashable | None = None,
    final_only: bool = True,
    pair_on: Sequence[str] | None = None,
    source: str = "",
) -> StudyData:
    """Split `scaling.records.load` output for a comparison: reference runs aside, the two methods kept,
    the final evaluation per run unless `final_only=False` (mid-run checkpoints of cosine runs are off the
    compute frontier, pitfall P7), and the configuration key (`config_columns` unless `pair_on`)."""
    require_columns(records, [by, "run_id", "final", *(pair_on or [])])
    grid, references = split_reference_runs(records)
    baseline, treatment = choose_levels(grid, by, baseline, treatment)
    order = {baseline: 0, treatment: 1}  # baseline first: its colour and table rows come first
    grid = grid[grid[by].isin(order)].sort_values(by, key=lambda s: s.map(order), kind="stable")
    grid = grid.reset_index(drop=True)
    runs = grid[grid["final"].astype(bool)].reset_index(drop=True) if final_only else grid
    config = list(pair_on) if pair_on else config_columns(runs, by, [baseline, treatment], evals=not final_only)
    if not config:
        raise InputError(
            "the finished runs differ in no spec axis (model, samples_total, data.*, optim.*): each method "
            "has a single configuration, and a law needs at least two"
        )
    return StudyData(runs, grid, references.reset_index(drop=True), by, baseline, treatment, config, final_only, source)


def _flatten(prefix: str, value: Any, row: dict[str, Any]) -> None:
    if isinstance(value, dict):
        for key, sub in value.items():
            _flatten(f"{prefix}.{key}" if prefix else key, sub, row)
    else:
        row[prefix] = value


def reference_table(path: str | Path) -> pd.DataFrame:
    """The steering references of a sweep with their own held-out metrics (same evaluation set as the
    targets), as the steered runs' records carry them: one row per reference, with the runs it steered.
    The tidy table keeps only `reference.name`, so this reads the records themselves."""
    from scaling.records import find_records, read_record

    rows: dict[str, dict[str, Any]] = {}
    for file in find_records(Path(path)):
        record = read_record(file) or {}
        ref = record.get("reference")
        if not ref or record.get("status") != "done":
            continue
        if ref.get("name") not in rows:
            row = {k: ref.get(k) for k in ("name", "arch", "mode", "params_total", "flops_fwd_per_sample")}
            _flatten("", ref.get("metrics") or {}, row)
            rows[ref.get("name")] = {**row, "steered_runs": 0}
        rows[ref.get("name")]["steered_runs"] += 1
    return pd.DataFrame(list(rows.values()))


def _holdout_size(configurations: int) -> int:
    """Largest-compute configurations held out for the extrapolation check: 2 when at least 4 remain to
    fit, 1 with 4–5 configurations, none below (a law on 2 points predicts nothing)."""
    return 2 if configurations >= 6 else 1 if configurations >= 4 else 0


@dataclass(frozen=True)
class SweepStudy:
    """Everything `sweep_study` produced; `figures` are matplotlib Figures (notebooks display them)."""

    data: StudyData
    comparison: Comparison
    figures: dict[str, Figure]
    summary: dict[str, Any]
    markdown: str


def _checked(step: str, notes: list[str], fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Run an optional check; a check the data cannot support becomes a note, not a failed study."""
    try:
        return fn(*args, **kwargs)
    except InputError as exc:
        notes.append(f"{step} skipped: {exc}")
        return None


def _compare(
    frame: pd.DataFrame, data: StudyData, x: str, y: str, targets: Sequence[float] | None, common: dict[str, Any]
) -> Comparison:
    """`compare_methods` of the study's two methods on its configuration key, without the optional checks
    (`_optional_checks` adds those the sweep supports)."""
    options = {k: v for k, v in common.items() if k not in ("by", "config")}
    return compare_methods(
        frame,
        x,
        y,
        data.by,
        pair_on=data.config,
        baseline=data.baseline,
        treatment=data.treatment,
        targets=targets,
        holdout=0,
        **options,
    )


def _optional_checks(
    comparison: Comparison, frame: pd.DataFrame, data: StudyData, x: str, y: str, common: dict[str, Any]
) -> tuple[Comparison, list[str]]:
    """Data efficiency, extrapolation check and leave-one-model-out, each only where the sweep supports it
    (enough configurations, ≥3 models), so a small sweep still gets its laws and multiplier."""
    notes: list[str] = []
    targets = comparison.multiplier["target"].to_numpy()
    efficiency_bs = _checked("data efficiency", notes, bootstrap_laws, frame, "samples_seen", y, **common)
    efficiency = None
    if efficiency_bs is not None:
        efficiency = multiplier(efficiency_bs, data.baseline, data.treatment, targets)
    holdout = _holdout_size(min(data.configurations().values()))
    extrapolation = None
    if holdout:
        extrapolation = _checked(
            "extrapolation check", notes, extrapolation_check, frame, x, y, holdout=holdout, **common
        )
    else:
        notes.append("extrapolation check skipped: fewer than 4 configurations per method")
    leave_out = None
    if "model" in frame and frame["model"].nunique() >= 3:
        leave_out = _checked("leave-one-model-out", notes, leave_one_group_out, frame, x, y, group="model", **common)
    else:
        notes.append("leave-one-model-out skipped: fewer than 3 models")
    checked = replace(comparison, data_efficiency=efficiency, extrapolation=extrapolation, leave_one_out=leave_out)
    return checked, notes


def _other_convention(
    frame: pd.DataFrame, data: StudyData, x: str, y: str, comparison: Comparison, common: dict[str, Any]
) -> dict[str, Any] | None:
    """The same comparison on the other compute convention (target only vs target + reference), at the same
    targets: a steered method's advantage shrinks once the reference's cost is counted (pitfall P1)."""
    if x not in COMPUTE_CONVENTIONS:
        return None
    other = next(c for c in COMPUTE_CONVENTIONS if c != x)
    if other not in frame:
        return None
    alt = _compare(frame, data, other, y, comparison.multiplier["target"].to_numpy(), common).summary()
    return {"x": other, "label": COMPUTE_CONVENTIONS[other], **{k: alt[k] for k in ("laws", "exponent", "multiplier")}}


def sweep_study(
    source: str | Path | pd.DataFrame,
    *,
    x: str = STUDY_X,
    y: str = STUDY_Y,
    by: str = STUDY_BY,
    out: str | Path | None = None,
    baseline: Hashable | None = None,
    treatment: Hashable | None = None,
    final_only: bool = True,
    pair_on: Sequence[str] | None = None,
    draws: int = DRAWS,
    seed: int = 0,
    targets: Sequence[float] | None = None,
    frontier: str = "running-min",
    law: str = "power",
    ci: float = 0.95,
    records_dir: str | Path | None = None,
) -> SweepStudy:
    """Compare two methods of a sweep (a directory of records, or `scaling.records.load` output): laws with
    paired bootstrap intervals, Δexponent, k(E*) at 3 targets inside the data (or `targets`) under both
    compute conventions, paired error ratio, data efficiency, extrapolation and leave-one-model-out checks.

    Figures: marker = model, marker area = samples seen, isoFLOP over non-embedding parameters, learning
    curves from every evaluation. With `out`, writes the figures, summary.json and summary.md there.
    `records_dir` names where a DataFrame `source` came from, so the references' own metrics are read there."""
    records = source if isinstance(source, pd.DataFrame) else load_records(source)
    root = records_dir if isinstance(source, pd.DataFrame) else source
    label = "DataFrame" if root is None else str(root)
    data = prepare_study(
        records, by=by, baseline=baseline, treatment=treatment, final_only=final_only, pair_on=pair_on, source=label
    )
    size = next((c for c in ISOFLOP_SIZES if c in data.runs), None)
    frame = prepare(data.runs, x, y, keep=[by, "model", "samples_seen", "run_id", size, *data.config])
    common = {"by": by, "law": law, "frontier": frontier, "draws": draws, "seed": seed, "config": data.config, "ci": ci}
    comparison = _compare(frame, data, x, y, targets, common)
    comparison, notes = _optional_checks(comparison, frame, data, x, y, common)
    figures = standard_figures(
        frame,
        comparison,
        x=x,
        y=y,
        by=by,
        marker="model",
        size=size,
        model="model",
        samples="samples_seen",
        curves=_error_rows(data.curves, "samples_seen", y, "none", keep=[by, "model", "run_id"]),
        run="run_id",
        point_size="samples_seen",
    )
    summary = {
        **comparison.summary(),
        "study": {**data.describe(), "x": x, "y": y, "x_label": COMPUTE_CONVENTIONS.get(x, x), "notes": notes},
        "compute_conventions": {
            "primary": {"x": x, "label": COMPUTE_CONVENTIONS.get(x, x)},
            "alternative": _checked(
                "other compute convention", notes, _other_convention, frame, data, x, y, comparison, common
            ),
            "note": COMPUTE_NOTE,
        },
        "references": [] if root is None else _reference_summary(root, data, y),
        "figures": {},
    }
    if out is not None:
        summary["figures"] = write_figures(figures, out)
    summary["verdict"] = study_verdict(summary)
    markdown = study_markdown(summary)
    if out is not None:
        _write_json(Path(out) / "summary.json", summary)
        (Path(out) / "summary.md").write_text(markdown)
    return SweepStudy(data, comparison, figures, cli.clean(summary), markdown)


def _reference_summary(source: str | Path, data: StudyData, y: str) -> list[dict[str, Any]]:
    """Each reference's own y (from the steered records) beside the best final y of each method."""
    table = reference_table(source)
    best = data.runs.groupby(data.by)[y].min()
    return [
        {
            "name": row.get("name"),
            "arch": row.get("arch"),
            "mode": row.get("mode"),
            "steered_runs": row.get("steered_runs"),
            "y": row.get(y),
            "best": {str(k): float(v) for k, v in best.items()},
        }
        for row in table.to_dict(orient="records")
    ]


# -- the study's markdown summary and verdict, from the summary dict alone (so notebooks can re-render it) --


def _num(v: float | None, fmt: str = ".4g") -> str:
    return "n/a" if v is None or (isinstance(v, float) and not np.isfinite(v)) else format(v, fmt)


def _ci(value: float | None, lo: float | None, hi: float | None, fmt: str = ".4g") -> str:
    return f"{_num(value, fmt)} ({_num(lo, fmt)} – {_num(hi, fmt)})"


def _laws_table(laws: Sequence[dict[str, Any]]) -> str:
    """Method, points used, each parameter with its interval, formula."""
    names = list(laws[0]["params"])
    rows = []
    for law in laws:
        report = law["report"]
        cells = [_ci(p["value"], *(p["ci"] or [None, None])) for p in law["params"].values()]
        rows.append([law["level"], f"{report['points_used']}/{report['points_total']}", *cells, law["formula"]])
    return markdown_table(pd.DataFrame(rows, columns=["method", "points", *[f"{n} (95% CI)" for n in names], "law"]))


def _multiplier_rows(summary: Mapping[str, Any]) -> pd.DataFrame:
    """k(E*) per target (highest error first) under each compute convention, interpolation or
    extrapolation marked."""
    rows = [
        (
            -r["target"],
            {
                "E*": _num(r["target"]),
                "x": f"`{conv['x']}` ({conv['label']})",
                "k (95% CI)": _ci(r["k"], r["lo"], r["hi"], ".3g"),
                "P(k > 1)": _num(r["p_above_1"], ".2f"),
                "": "extrapolation" if r["extrapolated"] else "interpolation",
            },
        )
        for conv, table in _conventions(summary)
        for r in table
    ]
    return pd.DataFrame([row for _, row in sorted(rows, key=lambda item: item[0])])


def _holdout_rows(check: Mapping[str, Any] | None, *, by_group: bool) -> str:
    """Held-out accuracy per method (and per held-out model): rows, mean relative error, share inside."""
    if not check:
        return "not run (see *Rule used*)\n"
    rows = [
        {
            **({"model": r["group"]} if by_group else {}),
            "method": r["level"],
            "held-out rows": r["n"],
            "mean relative error": f"{100 * r['are']:.1f}%",
            "inside 95% PI": f"{100 * r['inside']:.0f}%",
        }
        for r in check["accuracy"]
    ]
    return markdown_table(pd.DataFrame(rows))


def _rule_lines(summary: dict[str, Any]) -> list[str]:
    study, law = summary["study"], summary["laws"][0]
    report = law["report"]
    seeds = study["configurations_with_seeds"]
    lines = [
        f"point selection `{report['selection']}` per method; law `{law['law']}` fitted by {report['optimizer']}"
        f" ({report['loss']})",
        f"{summary['draws']} {'paired ' if summary['paired'] else ''}bootstrap draws over configurations "
        f"({', '.join(f'`{c}`' for c in study['config'])}), selection and fit redone in every draw; "
        "95% percentile intervals",
        "the final evaluation of each run (mid-run checkpoints of cosine runs lie off the compute frontier, P7)"
        if study["final_only"]
        else "every evaluation of each run (`--all-evals`: checkpoints are points; cosine checkpoints sit off "
        "the frontier, P7)",
        f"seeds averaged per configuration ({seeds} configuration(s) with more than one seed)",
        f"x = `{study['x']}` ({study['x_label']}); {summary['compute_conventions']['note']}",
    ]
    if study["excluded_reference_runs"]:
        lines.append(
            "set aside as in-sweep references (not grid points): "
            + ", ".join(f"`{r}`" for r in study["excluded_reference_runs"])
        )
    return lines + list(study["notes"])


def _headline(row: Mapping[str, Any], baseline: str, treatment: str, x_label: str) -> str:
    """One sentence on k(E*) at one target: resolved above 1, below 1, or not resolved."""
    where = " (extrapolated)" if row["extrapolated"] else ""
    k, target = _ci(row["k"], row["lo"], row["hi"], ".3g"), f"{row['target']:.3g}"
    if row["lo"] > 1:
        text = f"{treatment} reaches error {target} with k = {k}× less compute than {baseline}"
    elif row["hi"] < 1:
        text = f"{treatment} needs more compute than {baseline} to reach error {target}: k = {k}"
    else:
        text = f"At error {target} the compute multiplier k = {k} is not resolved (its interval includes 1)"
    return f"{text}{where} [{x_label}]."


def _conventions(summary: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], Sequence[Mapping[str, Any]]]]:
    """(convention, multiplier rows) for the primary x and, when there is one, the other compute convention."""
    conventions = summary["compute_conventions"]
    pairs = [(conventions["primary"], summary["multiplier"])]
    if conventions.get("alternative"):
        pairs.append((conventions["alternative"], conventions["alternative"]["multiplier"]))
    return pairs


def _ratio_sentence(r: Mapping[str, Any], baseline: str, treatment: str) -> str:
    ratio, n = _ci(r["ratio"], r["ratio_lo"], r["ratio_hi"], ".3g"), r["n"]
    if r["ratio_hi"] < 1:
        change = f"{100 * (1 - r['ratio']):.1f}% lower"
    elif r["ratio_lo"] > 1:
        change = f"{100 * (r['ratio'] - 1):.1f}% higher"
    else:
        return f"At matched configurations the error ratio {treatment}/{baseline} = {ratio} is not resolved (n = {n})."
    return f"At matched configurations {treatment}'s error is {change} (ratio {ratio}, n = {n})."


def study_verdict(summary: Mapping[str, Any]) -> list[str]:
    """Plain-language conclusions computed from the summary's numbers (no claim is written by hand): the
    multiplier at the middle interpolated target under each compute convention, the exponent difference,
    the paired ratio, and whether the laws predict the held-out largest-compute runs."""
    b, t = str(summary["baseline"]), str(summary["treatment"])
    lines = []
    for conv, table in _conventions(summary):
        inside = [r for r in table if not r["extrapolated"]] or list(table)
        lines.append(_headline(inside[len(inside) // 2], b, t, f"x = {conv['x']}: {conv['label']}"))
    e, n = summary["exponent"], summary["paired_ratio"]["n"]
    delta, p_neg = _ci(e["delta"], e["lo"], e["hi"]), f"P(Δb < 0) = {e['p_negative']:.2f}"
    if e["hi"] < 0:
        lines.append(f"{t}'s exponent is steeper: Δb = {delta}, {p_neg}.")
    elif e["lo"] > 0:
        lines.append(f"{t}'s exponent is flatter: Δb = {delta}, {p_neg}.")
    else:
        lines.append(f"The exponent difference Δb = {delta} is not resolved with {n} paired configurations.")
    lines.append(_ratio_sentence(summary["paired_ratio"], b, t))
    lines.append(_extrapolation_sentence(summary.get("extrapolation")))
    return lines


def _extrapolation_sentence(check: Mapping[str, Any] | None) -> str:
    if not check:
        return "No extrapolation check: too few configurations to hold the largest out."
    acc = check["accuracy"]
    points = check["points"]
    inside = sum(bool(p["inside"]) for p in points)
    ares = " / ".join(f"{100 * a['are']:.1f}% ({a['level']})" for a in acc)
    state = "hold" if inside == len(points) else "do not hold" if inside == 0 else "partly hold"
    return (
        f"Fitted without the largest-compute configurations, the laws predict them with mean relative error "
        f"{ares}; {inside} of {len(points)} observations inside the 95% prediction interval: the laws {state} "
        "beyond the fitted range."
    )


def study_markdown(summary: Mapping[str, Any]) -> str:
    """The short markdown report of a sweep study (summary.md): laws, Δexponent, k(E*) under both compute
    conventions, paired ratio, data efficiency, checks, references, verdict, and the rule used."""
    study, b, t = summary["study"], summary["baseline"], summary["treatment"]
    e, r = summary["exponent"], summary["paired_ratio"]
    runs = ", ".join(f"{k} {v}" for k, v in study["runs"].items())
    out = [
        f"# Scaling study: {t} vs {b}\n",
        f"Source `{study['source']}`: {runs} finished runs; y = `{study['y']}` (error), x = `{study['x']}` "
        f"({study['x_label']}); {summary['draws']} bootstrap draws.\n",
        "## Verdict\n",
        *[f"- {line}" for line in summary["verdict"]],
        "\n## Laws (E = law of x; 95% bootstrap intervals)\n",
        _laws_table(summary["laws"]),
        "## Exponent difference\n",
        f"b({t}) − b({b}) = {_ci(e['delta'], e['lo'], e['hi'])}, P(< 0) = {e['p_negative']:.3f}\n",
        f"## Compute multiplier k(E*) = C_{b}(E*) / C_{t}(E*)\n",
        markdown_table(_multiplier_rows(summary)),
        "## Paired error ratio\n",
        f"E_{t} / E_{b} over {r['n']} configurations both ran: {_ci(r['ratio'], r['ratio_lo'], r['ratio_hi'])} "
        f"(sd of the log ratio {_num(r['sd'], '.3g')})\n",
    ]
    if summary.get("data_efficiency"):
        rows = [
            {
                "E*": _num(d["target"]),
                "samples ratio (95% CI)": _ci(d["k"], d["lo"], d["hi"], ".3g"),
                "": "extrapolation" if d["extrapolated"] else "interpolation",
            }
            for d in summary["data_efficiency"]
        ]
        out += ["## Data efficiency (samples seen at E*, same rule)\n", markdown_table(pd.DataFrame(rows))]
    out += [
        "## Extrapolation check (largest-compute configurations held out)\n",
        _holdout_rows(summary.get("extrapolation"), by_group=False),
        "## Leave one model out\n",
        _holdout_rows(summary.get("leave_one_out"), by_group=True),
    ]
    if summary.get("references"):
        out.append("## Reference models (their own metrics, same evaluation set)\n")
        for ref in summary["references"]:
            best = ", ".join(f"{k} {_num(v)}" for k, v in ref["best"].items())
            out.append(
                f"- {ref['name']} ({ref['mode']}, steered {ref['steered_runs']} runs): `{study['y']}` = "
                f"{_num(ref['y'])}; best final runs: {best}"
            )
        out.append("")
    out += ["## Rule used\n", *[f"- {line}" for line in _rule_lines(summary)], ""]
    if summary.get("figures"):
        out.append("Figures: " + ", ".join(f"`{files[0]}`" for files in summary["figures"].values()) + "\n")
    return "\n".join(out)


def _add_study_parser(commands: Any) -> None:
    study = commands.add_parser("study", help="compare two methods of a sweep's records (figures + summary)")
    study.add_argument("path", help="sweep directory (or any directory holding runs/<id>/record.json)")
    study.add_argument("--out", help="output directory (default: <path>/figures)")
    study.add_argument("--x", default=STUDY_X, help="compute column: compute (target + reference) or compute_target")
    study.add_argument("--y", default=STUDY_Y, help="error column of the records")
    study.add_argument("--by", default=STUDY_BY, help="method column")
    study.add_argument("--baseline", help="baseline value of --by (default: clip)")
    study.add_argument("--treatment", help="treatment value of --by (default: drrho)")
    study.add_argument("--bootstrap", type=int, default=DRAWS, metavar="N", help=f"paired bootstrap draws ({DRAWS})")
    study.add_argument("--seed", type=int, default=0, help="bootstrap random seed")
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
    study.add_argument("--law", default="power", choices=STUDY_LAWS, help="law of error vs compute")
    study.add_argument("--frontier", default="running-min", type=cli._checked(get_rule), help="point selection")
    study.add_argument("--ci", type=float, default=0.95, help="interval level")


def _study_command(args: Any) -> int:
    path = Path(args.path)
    out = Path(args.out) if args.out else (path if path.is_dir() else path.parent) / "figures"
    result = sweep_study(
        path,
        x=args.x,
        y=args.y,
        by=args.by,
        out=out,
        baseline=args.baseline,
        treatment=args.treatment,
        final_only=args.final_only,
        pair_on=args.pair_on,
        targets=parse_targets(args.targets),
        **cli.fit_options(args),
    )
    print(result.markdown)
    print(f"wrote {out}")
    return 0


def _paper_command(args: Any) -> int:
    summary = paper_figures(args.out, data_dir=args.data, **cli.fit_options(args))
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
    paper.add_argument("--bootstrap", type=int, default=DRAWS, metavar="N")
    paper.add_argument("--seed", type=int, default=0)
    _add_study_parser(commands)
    args = parser.parse_args(argv)
    return _study_command(args) if args.command == "study" else _paper_command(args)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m analysis.figures`; bad input gives one line on stderr and status 2."""
    return cli.run(_main, "python -m analysis.figures", argv)


if __name__ == "__main__":
    sys.exit(main())
