"""Records → study: the one place that knows the columns of a sweep's records (`scaling.records.load`).

It sets aside in-sweep reference runs, drops runs with non-finite metrics (saying so), picks the two
methods, keeps the final evaluation per run, infers the configuration key, names the columns in words for
the figures, and reads the references' own metrics.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.data import InputError, require_columns, require_values

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
CONFIG_AXES = ("model", "samples_total", "batch_size")
CONFIG_PREFIXES = ("data.", "optim.")
ISOFLOP_SIZES = ("model.params_nonembedding", "model.params_total")
STUDY_LAWS = ("power", "saturating", "saturating-shifted")  # laws of compute alone (Chinchilla needs N and D)
METRIC_PREFIXES = ("zeroshot_error.", "retrieval_r1.")  # with val_loss: what a diverged run gets wrong
# Axis labels in words, with units, for the columns a study plots.
LABELS = {
    "compute_target": "target training compute (FLOPs)",
    "compute": "target training + reference forward compute (FLOPs)",
    "samples_seen": "samples seen",
    "model.params_nonembedding": "non-embedding parameters",
    "model.params_total": "parameters",
    "data.pool_size": "unique pool (image-text pairs)",
    "reference.data.pool_size": "reference's unique pool (image-text pairs)",
    "val_loss": "validation loss",
}


def label(column: str) -> str:
    """A record column in words: `zeroshot_error.<task>` is 'zero-shot error (<task> task)'."""
    head, _, task = column.partition(".")
    if head == "zeroshot_error":
        return f"zero-shot error ({task} task)"
    return LABELS.get(column, column)


def nonfinite_runs(records: pd.DataFrame) -> dict[str, str]:
    """Runs with a NaN or infinite metric (val_loss, zeroshot_error.*, retrieval_r1.*) in any evaluation, by
    run id, with the first offending column and step: a diverged run is no point of any law."""
    metrics = [c for c in records.columns if c == "val_loss" or str(c).startswith(METRIC_PREFIXES)]
    values = records[metrics].apply(pd.to_numeric, errors="coerce").to_numpy(float)
    bad = ~np.isfinite(values)
    found: dict[str, str] = {}
    for row in np.flatnonzero(bad.any(axis=1)):
        run = str(records["run_id"].iloc[row])
        if run not in found:
            column = metrics[int(np.argmax(bad[row]))]
            step = records["step"].iloc[row] if "step" in records else "?"
            found[run] = f"{column} = {values[row, int(np.argmax(bad[row]))]} at step {step}"
    return found


def load_records(path: str | Path) -> pd.DataFrame:
    """Finished runs under a sweep, runs or run directory: one row per run × evaluation.

    `scaling.records` is imported here, not at the top: it needs no torch, and `import analysis` stays
    usable on tables that never came from a sweep."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{str(path)!r} does not exist (give a sweep directory or a directory of records)")
    from scaling.records import load

    frame = load(path, status="done")
    if "wsd.role" in frame:  # a WSD trunk never cooled down: its branches are the points of the law
        frame = frame[frame["wsd.role"] != "trunk"].reset_index(drop=True)
    if frame.empty:
        raise InputError(f"no finished records (record.json with status 'done') under {str(path)!r}")
    return frame


def reference_run_ids(records: pd.DataFrame) -> set[str]:
    """Run ids of in-sweep references: the `reference.run_id` of steered runs (None for a checkpoint file or
    pretrained weights)."""
    if "reference.run_id" not in records:
        return set()
    return set(records["reference.run_id"].dropna().astype(str))


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
    dropped: dict[str, str] = field(default_factory=dict)  # run id: why (a non-finite metric)

    def notes(self) -> list[str]:
        """What the study left out and why, for the summary's notes."""
        if not self.dropped:
            return []
        runs = "; ".join(f"`{run}` ({why})" for run, why in sorted(self.dropped.items()))
        return [f"dropped {len(self.dropped)} run(s) with a non-finite metric (diverged): {runs}"]

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
    """Split `scaling.records.load` output for a comparison: reference runs aside, runs with a non-finite
    metric dropped (listed in `dropped` and the notes), the two methods kept, the final evaluation per run
    unless `final_only=False` (mid-run checkpoints of cosine runs are off the compute frontier, pitfall P7),
    and the configuration key (`config_columns` unless `pair_on`)."""
    require_columns(records, [by, "run_id", "final", *(pair_on or [])])
    grid, references = split_reference_runs(records)
    dropped = nonfinite_runs(grid)
    grid = grid[~grid["run_id"].astype(str).isin(dropped)]
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
    references = references.reset_index(drop=True)
    return StudyData(runs, grid, references, by, baseline, treatment, config, final_only, source, dropped)


REFERENCE_COLUMNS = ("data.pool_size", "samples_seen", "model.params_nonembedding")
EARLY_STOPPED = ".best"  # suffix of a run's lowest evaluation of an error (`data_axis_table`)


def data_axis_table(records: pd.DataFrame) -> pd.DataFrame:
    """The final evaluation of each finished grid run with what the data axis needs: its unique pool
    `data.pool_size`, `samples_seen`, `model.params_nonembedding`, and for a run steered by an in-sweep
    reference that reference's training pool, samples, size and own metrics as `reference.<column>` (read from
    the reference run's final evaluation: the same evaluation set as the targets'). A reference from a
    checkpoint file or pretrained weights has no run in the sweep: its columns stay empty. In-sweep reference
    runs are set aside (`split_reference_runs`) and runs with a non-finite metric dropped, as for a study.

    Each error (`val_loss`, `zeroshot_error.*`) also comes as `<column>.best`, the run's lowest evaluation: its
    early-stopped error, to check a conclusion against runs that overfit their pool. A reference has none: the
    weights that steer are its final ones, so its own error is its final evaluation."""
    require_columns(records, ["run_id", "final", *REFERENCE_COLUMNS[:2]])
    grid, _ = split_reference_runs(records)
    grid = grid[~grid["run_id"].astype(str).isin(nonfinite_runs(grid))]
    finals = records[records["final"].astype(bool)].drop_duplicates("run_id").set_index("run_id")
    metrics = [c for c in finals.columns if c == "val_loss" or str(c).startswith(METRIC_PREFIXES)]
    errors = [c for c in metrics if c == "val_loss" or str(c).startswith("zeroshot_error.")]
    best = grid.groupby("run_id")[errors].min().add_suffix(EARLY_STOPPED)
    runs = grid[grid["final"].astype(bool)].join(best, on="run_id").reset_index(drop=True)
    own = finals[[c for c in (*REFERENCE_COLUMNS, *metrics) if c in finals]].add_prefix("reference.")
    if "reference.run_id" not in runs:
        return runs.reindex(columns=[*runs.columns, *own.columns])
    return runs.join(own, on="reference.run_id")


def reference_table(path: str | Path) -> pd.DataFrame:
    """The steering references of a sweep with their own held-out metrics (same evaluation set as the
    targets), as the steered runs' records carry them: one row per reference, with the runs it steered.
    The tidy table keeps only the reference's name and run id, so this reads the records themselves (a
    corrupt record is skipped: `load_records` has said so)."""
    from scaling.records import CorruptRecord, find_records, flatten, read_record

    rows: dict[str, dict[str, Any]] = {}
    for file in find_records(Path(path)):
        try:
            record = read_record(file)
        except CorruptRecord:
            continue
        if record is None or record.reference is None or not record.done:
            continue
        ref = record.reference
        if ref.name not in rows:
            row = {k: getattr(ref, k) for k in ("name", "arch", "mode", "params_total", "flops_fwd_per_sample")}
            flatten("", ref.metrics, row)
            rows[ref.name] = {**row, "steered_runs": 0}
        rows[ref.name]["steered_runs"] += 1
    return pd.DataFrame(list(rows.values()))
