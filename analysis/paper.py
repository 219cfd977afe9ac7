"""The DRRho-CLIP paper reproduction: its scaling figure (our laws with bands beside the printed ones), the
standard figure set on its points, a selection-rule sensitivity table, and its baselines table, from the
committed copy of the paper's numbers in results/paper/data.

Command line: python -m analysis.figures paper [--out results/paper/figures] [--bootstrap N] [--seed S]
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.bootstrap import bootstrap_laws
from analysis.compare import compare_methods
from analysis.data import read_table
from analysis.figure_sets import study_figures
from analysis.laws import FittedLaw, get_law
from analysis.plots import save_figure, table_heatmap
from analysis.report import (
    bootstrap_words,
    checklist_markdown,
    extrapolation_sentence,
    fitting_checklist,
    markdown_table,
)
from analysis.study import FitOptions, Study

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
PAPER_PAIRS = ("arch", "samples_seen")  # a configuration of the paper's grid
RULES = ("running-min", "all", "bins:5", "pareto-bin")
# The paper's columns: x, y (an accuracy in percent, fitted as an error), the method column, and their words.
PAPER_COLUMNS = {"x": "compute_gflops", "y": "imagenet_top1", "by": "method"}
PAPER_LABELS = {
    "compute_gflops": "training compute (GFLOPs per sample × samples)",
    "imagenet_top1": "ImageNet-1K zero-shot top-1 error",
    "gflops_per_sample": "GFLOPs per sample",
    "samples_seen": "samples seen",
}


def paper_study(table: pd.DataFrame, options: FitOptions | None = None) -> Study:
    """The paper's scaling points as a study: error = 1 − top-1/100 against GFLOPs × samples, per method."""
    options = FitOptions.of(options, y_transform="error-from-acc-pct")
    return Study.of(table, **PAPER_COLUMNS, options=options, labels=PAPER_LABELS)


def selection_sensitivity(study: Study, rules: Sequence[str] = RULES) -> pd.DataFrame:
    """Power-law fit per method under each selection rule, with exponent intervals (pitfall P5)."""
    rows = []
    for rule in rules:
        bs = bootstrap_laws(study.with_options(frontier=rule, law="power"))
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
        title: df.pivot(index="method", columns="reference_model", values=col).reindex(index=methods, columns=refs)
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


PAPER_FACTS = {
    "n": "not an input of the law (a law of compute); architectures told apart by GFLOPs per sample "
    "(`gflops_per_sample`, half of open_clip's profile: image + text forward at 224 px); no parameter counts in "
    "the data",
    "d": "samples seen (`samples_seen`, as digitised)",
    "c": "`compute_gflops` = gflops_per_sample × samples_seen, the figure's x axis (GFLOPs); whether the paper's "
    "axis counts the reference model's forward passes is not stated",
    "schedule": "not in the digitised data (Wei et al.'s training recipe; see the paper)",
    "checkpoints": "one digitised point per (arch, samples seen) and method, as the figure shows them",
}


def paper_checklist(summary: dict[str, Any]) -> dict[str, str]:
    """The (Mis)Fitting checklist of the paper's refit: the facts the digitised data cannot tell, stated."""
    uncertainty = bootstrap_words(summary, PAPER_PAIRS)
    extrapolation = extrapolation_sentence(summary["extrapolation"])
    return fitting_checklist(summary["laws"], PAPER_FACTS, uncertainty, extrapolation)


def paper_figures(
    out: str | Path = PAPER_OUT, *, data_dir: str | Path = PAPER_DATA, options: FitOptions | None = None
) -> dict[str, Any]:
    """Regenerate the paper's scaling figure (our laws with bands beside the printed ones), the standard
    figure set on its points, a selection-rule sensitivity table, and the baselines table (figure + md).
    `options` set the draws and seed (the committed figures: 4000 draws, seed 0)."""
    out, data_dir = Path(out), Path(data_dir)
    study = paper_study(read_table(data_dir / "drrho_scaling_imagenet.csv"), options)
    sensitivity = selection_sensitivity(study)
    out.mkdir(parents=True, exist_ok=True)
    (out / "imagenet_selection_sensitivity.md").write_text(markdown_table(sensitivity))
    extra = {
        "selection_sensitivity": sensitivity.to_dict(orient="records"),
        "printed_laws": {k: v.params for k, v in PRINTED_LAWS.items()},
    }
    roles = {"marker": "arch", "size": "gflops_per_sample", "model": "arch", "samples": "samples_seen"}
    study = study.but(group="arch", **roles).with_options(config=PAPER_PAIRS)
    comparison = compare_methods(study, targets=PAPER_TARGETS)
    extra["checklist"] = paper_checklist(comparison.summary())
    (out / "imagenet_checklist.md").write_text(checklist_markdown(extra["checklist"]))
    summary = study_figures(
        study,
        comparison,
        out,
        prefix="imagenet_",
        extra=extra,
        reference_laws=PRINTED_LAWS,
        x_max=PAPER_X_MAX,
    )
    _paper_baselines(out, data_dir)
    return summary
