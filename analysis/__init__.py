"""Scaling-law analysis for CLIP vs DRRho-CLIP studies: laws, point selection, robust fits, bootstrap
intervals, method comparisons, plots and figure sets, over any pandas DataFrame given column names.

Steps, one module each: `laws` (forms) → `select` (which runs) → `fit` (OLS / Huber-LSE multi-start) →
`bootstrap` (configuration resampling) → `compare` (Δexponent, k(E*), paired ratio, hold-out checks) →
`plots` / `figures`. Command lines: `python -m analysis.fit|compare|plot|figures` (see analysis/README.md).

Names below are imported on first use, so `import analysis` stays cheap (no matplotlib until a plot is asked
for).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "data": ("InputError", "Y_TRANSFORMS", "prepare", "read_table"),
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
    "fit": (
        "HUBER_DELTA",
        "Fit",
        "FitReport",
        "fit_arrays",
        "fit_groups",
        "fit_law",
        "fit_many",
        "huber_objective",
        "ols_loglog",
    ),
    "bootstrap": (
        "DRAWS",
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
    ),
    "plots": (
        "bootstrap_plot",
        "isoflop_plot",
        "isoflop_points",
        "learning_curves_plot",
        "multiplier_plot",
        "residual_plot",
        "save_figure",
        "scaling_plot",
        "table_heatmap",
    ),
    "figures": (
        "load_records",
        "paper_figures",
        "prepare_study",
        "reference_table",
        "selection_sensitivity",
        "standard_figures",
        "study_figures",
        "study_verdict",
        "sweep_study",
    ),
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
