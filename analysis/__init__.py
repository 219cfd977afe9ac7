"""Scaling-law analysis for CLIP vs DRRho-CLIP studies: laws, point selection, robust fits, bootstrap
intervals, method comparisons, plots and figure sets, over any pandas DataFrame given column names.

Every step takes one `Study` (a tidy table whose y is an error, its column roles, and one `FitOptions`):
`study` → `select` (which runs) → `estimate` (OLS / Huber-LSE multi-start on arrays) / `fit` (a study's
laws) → `bootstrap` (configuration resampling) → `compare` (Δexponent, k(E*), paired ratio, hold-out
checks) → `plots` / `figure_sets` → `report`; `data_efficiency` reads the data axis (n*(m)). `records` turns
a sweep's records into a study, `sweep_study` runs it, `baselines` draws the paper's baselines table from a
sweep, `paper` reproduces the paper. Command lines:
`python -m analysis.fit|compare|data_efficiency|plot_csv|figures|compare_studies`
(see analysis/README.md).

Names below are imported on first use, so `import analysis` stays cheap (no matplotlib until a plot is asked
for).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "data": ("InputError", "Y_TRANSFORMS", "prepare", "read_table"),
    "study": ("DRAWS", "FitOptions", "Study"),
    "laws": (
        "LAWS",
        "ChinchillaLaw",
        "FittedLaw",
        "Law",
        "PowerLaw",
        "RobustLaw",
        "SaturatingLaw",
        "get_law",
    ),
    "select": ("Selection", "get_rule", "select_many"),
    "optimize": ("BatchResult", "lbfgs_batch"),
    "estimate": ("HUBER_DELTA", "Fit", "FitReport", "fit_arrays", "fit_many", "huber_objective", "ols_loglog"),
    "fit": ("fit_groups", "fit_law"),
    "bootstrap": (
        "Bootstrap",
        "BootstrapFit",
        "Units",
        "bootstrap_laws",
        "configurations",
        "law_rows",
        "percentile_interval",
    ),
    "compare": (
        "Comparison",
        "Holdout",
        "compare_methods",
        "default_targets",
        "exponent_difference",
        "extrapolation_check",
        "holdout_accuracy",
        "holdout_check",
        "leave_one_group_out",
        "multiplier",
        "paired_ratio",
        "parameter_difference",
    ),
    "data_efficiency": ("NStar", "References", "n_star", "reach"),
    "plots": (
        "bootstrap_plot",
        "isodata_plot",
        "isoflop_plot",
        "isoflop_points",
        "learning_curves_plot",
        "multiplier_plot",
        "n_star_plot",
        "residual_plot",
        "save_figure",
        "scaling_plot",
        "ratio_plot",
        "table_heatmap",
    ),
    "figure_sets": ("standard_figures", "study_figures", "write_figures"),
    "paper": ("paper_figures", "paper_study", "selection_sensitivity"),
    "records": ("data_axis_table", "load_records", "nonfinite_runs", "prepare_study", "reference_table"),
    "report": ("markdown_table", "study_markdown", "study_verdict"),
    "sweep_study": ("sweep_study",),
    "baselines": ("BaselineOptions", "Baselines", "baselines_table", "write_baselines"),
    "compare_studies": ("compare_studies",),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'analysis' has no attribute {name!r}")
    value = getattr(import_module(f"analysis.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
