"""A sweep's study: two methods of a sweep's records compared, with the checks the sweep supports, under
both compute conventions; figures, summary.json and summary.md.

The records are turned into a `Study` by `analysis.records` (the one place that knows their columns); this
module runs the comparison on it and assembles the summary that `analysis.report` renders.

Command line: python -m analysis.figures study SWEEP_DIR [--out DIR] [--x compute] [--y COL] [--by method] ...
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from analysis import cli
from analysis.bootstrap import bootstrap_laws
from analysis.compare import Comparison, compare_methods, extrapolation_check, leave_one_group_out, multiplier
from analysis.data import InputError
from analysis.figure_sets import error_rows, standard_figures, write_figures
from analysis.records import (
    COMPUTE_CONVENTIONS,
    COMPUTE_NOTE,
    ISOFLOP_SIZES,
    STUDY_BY,
    STUDY_X,
    STUDY_Y,
    StudyData,
    label,
    load_records,
    prepare_study,
    reference_table,
)
from analysis.report import (
    bootstrap_words,
    extrapolation_sentence,
    fitting_checklist,
    study_markdown,
    study_verdict,
    write_json,
)
from analysis.study import FitOptions, Study


@dataclass(frozen=True)
class SweepStudy:
    """Everything `sweep_study` produced; `figures` are matplotlib Figures (notebooks display them)."""

    data: StudyData
    comparison: Comparison
    figures: dict[str, Figure]
    summary: dict[str, Any]
    markdown: str


def _holdout_size(configurations: int) -> int:
    """Largest-compute configurations held out for the extrapolation check: 2 when at least 4 remain to
    fit, 1 with 4–5 configurations, none below (a law on 2 points predicts nothing)."""
    return 2 if configurations >= 6 else 1 if configurations >= 4 else 0


def _checked(step: str, notes: list[str], fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run an optional check; a check the data cannot support becomes a note, not a failed study."""
    try:
        return fn(*args, **kwargs)
    except InputError as exc:
        notes.append(f"{step} skipped: {exc}")
        return None


def _compare(study: Study, data: StudyData, targets: Sequence[float] | None) -> Comparison:
    """`compare_methods` of the study's two methods, without the optional checks (`_optional_checks` adds
    those the sweep supports)."""
    core = study.but(samples=None, group=None)
    return compare_methods(core, baseline=data.baseline, treatment=data.treatment, targets=targets, holdout=0)


def _optional_checks(comparison: Comparison, study: Study, data: StudyData) -> tuple[Comparison, list[str]]:
    """Data efficiency, extrapolation check and leave-one-model-out, each only where the sweep supports it
    (enough configurations, ≥3 models), so a small sweep still gets its laws and multiplier."""
    notes: list[str] = []
    targets = comparison.multiplier["target"].to_numpy()
    by_samples = _checked("data efficiency", notes, lambda: bootstrap_laws(study.but(x=study.samples)))
    efficiency = None if by_samples is None else multiplier(by_samples, data.baseline, data.treatment, targets)
    holdout = _holdout_size(min(data.configurations().values()))
    extrapolation = None
    if holdout:
        extrapolation = _checked("extrapolation check", notes, extrapolation_check, study, holdout)
    else:
        notes.append("extrapolation check skipped: fewer than 4 configurations per method")
    leave_out = None
    if study.model and study.data[study.model].nunique() >= 3:
        leave_out = _checked("leave-one-model-out", notes, leave_one_group_out, study.but(group=study.model))
    else:
        notes.append("leave-one-model-out skipped: fewer than 3 models")
    checked = replace(comparison, data_efficiency=efficiency, extrapolation=extrapolation, leave_one_out=leave_out)
    return checked, notes


def _other_convention(study: Study, data: StudyData, comparison: Comparison) -> dict[str, Any] | None:
    """The same comparison on the other compute convention (target only vs target + reference), at the same
    targets: a steered method's advantage shrinks once the reference's cost is counted (pitfall P1)."""
    if study.x not in COMPUTE_CONVENTIONS:
        return None
    other = next(c for c in COMPUTE_CONVENTIONS if c != study.x)
    if other not in study.data:
        return None
    alt = _compare(study.but(x=other), data, comparison.multiplier["target"].to_numpy()).summary()
    return {"x": other, "label": COMPUTE_CONVENTIONS[other], **{k: alt[k] for k in ("laws", "exponent", "multiplier")}}


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


def _schedule(runs: pd.DataFrame, by: str) -> str:
    """The learning-rate schedules of the runs per method, from their `optim.*` spec columns."""
    cols = [c for c in ("optim.schedule", "optim.lr", "optim.warmup", "optim.cooldown") if c in runs]
    if not cols:
        return "not in the records"
    words = {}
    for level, part in runs.groupby(by, sort=False):
        combos = part[cols].drop_duplicates().to_dict(orient="records")
        for c in combos:  # a cooldown is a setting of the constant-then-cooldown schedule only
            if c.get("optim.schedule") != "const-cooldown":
                c.pop("optim.cooldown", None)
        words[str(level)] = " / ".join(
            ", ".join(f"{k.removeprefix('optim.')} {v}" for k, v in c.items() if pd.notna(v)) for c in combos
        )
    text = "; ".join(f"{k}: {v}" for k, v in words.items()) if len(set(words.values())) > 1 else words.popitem()[1]
    if "wsd.role" in runs and (runs["wsd.role"] == "branch").any():
        return (
            f"wsd (Hägele et al. 2024): {text}; each budget is a branch forked from one constant-lr trunk per "
            "configuration at step (1 − cooldown)·steps, then cooled down linearly to zero; the warm-up is the "
            "fraction of the largest budget, the same steps for every branch; trunks are not fitted"
        )
    return f"{text} (warm-up and cooldown as fractions of each run's own steps: every budget is its own run)"


def _checklist(summary: dict[str, Any], study: Study, data: StudyData) -> dict[str, str]:
    """The (Mis)Fitting checklist of a sweep study (report.fitting_checklist) with what the records tell."""
    size = study.size
    facts = {
        "n": "not an input of the law (a law of compute); model size on the isoFLOP figure: "
        + (f"`{size}` ({label(size)})" if size else "not in the records"),
        "d": "samples seen by the target model (`samples_seen`; passes over a smaller pool count again)",
        "c": f"`{study.x}`: {COMPUTE_CONVENTIONS.get(study.x, study.x)}; {COMPUTE_NOTE}",
        "schedule": _schedule(data.runs, data.by),
        "checkpoints": "the final evaluation of each run"
        if data.final_only
        else "every evaluation of each run (--all-evals)",
    }
    uncertainty = bootstrap_words(summary, data.config) + ", seeds averaged per configuration"
    return fitting_checklist(summary["laws"], facts, uncertainty, extrapolation_sentence(summary.get("extrapolation")))


def records_study(data: StudyData, x: str, y: str, options: FitOptions) -> Study:
    """The study of a sweep's runs: marker = model (legend by size), marker area = samples seen, isoFLOP over
    non-embedding parameters, the configuration key the records gave, columns named in words."""
    size = next((c for c in ISOFLOP_SIZES if c in data.runs), None)
    roles = {"model": "model", "marker": "model", "samples": "samples_seen", "point_size": "samples_seen"}
    labels = {c: label(c) for c in {x, y, size, *COMPUTE_CONVENTIONS, "samples_seen"} if c}
    options = replace(options, config=tuple(data.config))
    return Study.of(data.runs, x, y, by=data.by, options=options, size=size, labels=labels, **roles)


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
    targets: Sequence[float] | None = None,
    options: FitOptions | None = None,
    records_dir: str | Path | None = None,
) -> SweepStudy:
    """Compare two methods of a sweep (a directory of records, or `scaling.records.load` output): laws with
    paired bootstrap intervals, Δexponent, k(E*) at 3 targets inside the data (or `targets`) under both
    compute conventions, paired error ratio, data efficiency, extrapolation and leave-one-model-out checks.

    `options` are the fit options (`options.config` fixes the configuration key; default: inferred). Runs
    with a non-finite metric are dropped and named in the notes. Figures: marker = model, marker area =
    samples seen, isoFLOP over non-embedding parameters, learning curves from every evaluation. With `out`,
    writes the figures, summary.json and summary.md there. `records_dir` names where a DataFrame `source`
    came from, so the references' own metrics are read there."""
    options = options or FitOptions()
    records = source if isinstance(source, pd.DataFrame) else load_records(source)
    root = records_dir if isinstance(source, pd.DataFrame) else source
    label_ = "DataFrame" if root is None else str(root)
    data = prepare_study(
        records,
        by=by,
        baseline=baseline,
        treatment=treatment,
        final_only=final_only,
        pair_on=options.config,
        source=label_,
    )
    study = records_study(data, x, y, options)
    comparison = _compare(study, data, targets)
    comparison, notes = _optional_checks(comparison, study, data)
    notes = data.notes() + notes
    curves = error_rows(study, data.curves, "run_id")
    figures = standard_figures(study, comparison, curves=curves, run="run_id")
    summary = {
        **comparison.summary(),
        "study": {**data.describe(), "x": x, "y": y, "x_label": COMPUTE_CONVENTIONS.get(x, x), "notes": notes},
        "compute_conventions": {
            "primary": {"x": x, "label": COMPUTE_CONVENTIONS.get(x, x)},
            "alternative": _checked("other compute convention", notes, _other_convention, study, data, comparison),
            "note": COMPUTE_NOTE,
        },
        "references": [] if root is None else _reference_summary(root, data, y),
        "figures": {},
    }
    if out is not None:
        summary["figures"] = write_figures(figures, out)
    summary["verdict"] = study_verdict(summary)
    summary["checklist"] = _checklist(summary, study, data)
    markdown = study_markdown(summary)
    if out is not None:
        write_json(Path(out) / "summary.json", summary)
        (Path(out) / "summary.md").write_text(markdown)
    return SweepStudy(data, comparison, figures, cli.clean(summary), markdown)
