"""Comparing two methods' scaling laws (e.g. CLIP vs DRRho-CLIP), each quantity with a bootstrap interval.

What a "scales better" claim needs (notes §3.3): the exponent difference with its interval; the compute
multiplier k(E*) = C_baseline(E*) / C_treatment(E*) as a curve, because it is constant only when the
exponents are equal, with extrapolated targets marked; the same ratio in samples seen (data efficiency); the
per-configuration paired error ratio, which needs no fitted form; and held-out checks (largest-compute
configurations, and leave-one-architecture-out) that the laws predict what they were not fitted to. For
Chinchilla's L(N, D) it adds the paired differences of its model and data exponents (alpha, beta).

Every function takes the `Study` (table, column roles, `FitOptions`), so the hold-out checks fit exactly as the
main comparison does.

Command line: python -m analysis.compare data.csv --x COL --y COL --by COL [--pair-on COL ...]
[--frontier ...] [--bootstrap N] [--targets E1,E2] [--json]
"""

from __future__ import annotations

import sys
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analysis import cli
from analysis.bootstrap import Bootstrap, BootstrapFit, bootstrap_laws, law_rows, percentile_interval
from analysis.data import InputError, require_values
from analysis.select import get_rule
from analysis.study import DRAWS, Study


def paired_difference(baseline: float, treatment: float, draws: np.ndarray, ci: float) -> dict[str, float]:
    """treatment − baseline of a quantity, with the percentile interval of its paired draws."""
    draws = draws[np.isfinite(draws)]
    lo, hi = percentile_interval(draws, ci) if draws.size else (np.nan, np.nan)
    return {
        "baseline": float(baseline),
        "treatment": float(treatment),
        "delta": float(treatment - baseline),
        "lo": float(lo),
        "hi": float(hi),
        "p_negative": float(np.mean(draws < 0)) if draws.size else np.nan,
    }


def exponent_difference(bs: Bootstrap, baseline: Hashable, treatment: Hashable) -> dict[str, float]:
    """Δ = exponent(treatment) − exponent(baseline); negative means the treatment improves faster."""
    a, b = bs.fits[baseline], bs.fits[treatment]
    law = a.fit.law.law
    full = (float(law.exponent(fit.fit.params)) for fit in (a, b))
    return paired_difference(*full, b.exponent() - a.exponent(), a.ci)


def parameter_difference(bs: Bootstrap, baseline: Hashable, treatment: Hashable, name: str) -> dict[str, float]:
    """Δ = treatment − baseline of one law parameter, e.g. Chinchilla's data exponent beta (positive: the
    treatment's error falls faster with data). Paired draws give the difference draw by draw."""
    a, b = bs.fits[baseline], bs.fits[treatment]
    draws = b.draws[name].to_numpy(float) - a.draws[name].to_numpy(float)
    return paired_difference(a.fit.params[name], b.fit.params[name], draws, a.ci)


def inside_fitted_range(fit: BootstrapFit, c: np.ndarray) -> np.ndarray:
    """Whether compute values lie within the x range of the points the law was fitted to."""
    xs = fit.fit.selection.x
    return (c >= xs.min() * (1 - 1e-9)) & (c <= xs.max() * (1 + 1e-9))


def multiplier(bs: Bootstrap, baseline: Hashable, treatment: Hashable, targets: Sequence[float]) -> pd.DataFrame:
    """k(E*) = C_baseline(E*) / C_treatment(E*) with its interval; `extrapolated` if either C lies outside
    the compute range its law was fitted on. Paired draws give the ratio draw by draw."""
    a, b = bs.fits[baseline], bs.fits[treatment]
    targets = np.asarray(targets, dtype=float)
    c_a, c_b = a.fit.law.inverse(targets), b.fit.law.inverse(targets)
    with np.errstate(invalid="ignore", divide="ignore"):
        draws = a.inverse(targets) / b.inverse(targets)
    lo, hi = percentile_interval(draws, a.ci)
    return pd.DataFrame(
        {
            "target": targets,
            "x_baseline": c_a,
            "x_treatment": c_b,
            "k": c_a / c_b,
            "lo": lo,
            "hi": hi,
            "p_above_1": np.nanmean(np.where(np.isfinite(draws), draws > 1, np.nan), axis=0),
            "extrapolated": ~(inside_fitted_range(a, c_a) & inside_fitted_range(b, c_b)),
        }
    )


def interpolation_range(bs: Bootstrap, baseline: Hashable, treatment: Hashable) -> tuple[float, float]:
    """Errors (low, high) that both fitted laws reach inside their own fitted compute range."""
    spans = []
    for level in (baseline, treatment):
        fit = bs.fits[level].fit
        spans.append(fit.law.predict_x(np.array([fit.selection.x.max(), fit.selection.x.min()])))
    return float(max(s[0] for s in spans)), float(min(s[1] for s in spans))


def default_targets(bs: Bootstrap, baseline: Hashable, treatment: Hashable) -> np.ndarray:
    """Three targets at 25/50/75% (log scale) of the common interpolation range."""
    lo, hi = interpolation_range(bs, baseline, treatment)
    if not lo < hi:
        lo, hi = sorted((lo, hi))
    return np.exp(np.log(hi) + np.array([0.25, 0.5, 0.75]) * (np.log(lo) - np.log(hi)))


def target_grid(
    bs: Bootstrap, baseline: Hashable, treatment: Hashable, targets: Sequence[float] = (), num: int = 60
) -> np.ndarray:
    """Targets for the k(E*) curve: the fitted frontier errors of both methods, 15% beyond at the low end,
    widened to include the requested targets."""
    ys = np.concatenate([bs.fits[level].fit.selection.y for level in (baseline, treatment)])
    return np.geomspace(max(ys.max(), *targets), min(0.85 * ys.min(), *targets), num)


def log_ratio_interval(ratios: np.ndarray, draws: int, ci: float, seed: int = 0) -> dict[str, float]:
    """Mean of paired log error ratios (one per paired unit) with a percentile bootstrap interval over the
    units, as `n`, `mean_log_ratio`, `sd`, `lo`, `hi` and their exponentials `ratio`, `ratio_lo`, `ratio_hi`.

    The one paired bootstrap of error ratios: `paired_ratio` (units: configurations) and the baselines table
    (units: seed-paired runs) both call it."""
    rng = np.random.default_rng(seed)
    means = ratios[rng.integers(0, ratios.size, (draws, ratios.size))].mean(-1)
    lo, hi = percentile_interval(means, ci)
    mean = float(ratios.mean())
    return {
        "n": int(ratios.size),
        "mean_log_ratio": mean,
        "sd": float(ratios.std(ddof=1)) if ratios.size > 1 else float("nan"),
        "lo": float(lo),
        "hi": float(hi),
        "ratio": float(np.exp(mean)),
        "ratio_lo": float(np.exp(lo)),
        "ratio_hi": float(np.exp(hi)),
    }


def paired_ratio(bs: Bootstrap, baseline: Hashable, treatment: Hashable, seed: int = 0) -> dict[str, float]:
    """Mean log(E_treatment / E_baseline) over configurations both methods ran, with a bootstrap interval
    over those configurations; free of any fitted form."""
    units = bs.units
    ia, ib = units.levels.index(baseline), units.levels.index(treatment)
    ratios = np.log(units.y[ib] / units.y[ia])
    ratios = ratios[np.isfinite(ratios)]
    if ratios.size == 0:
        raise InputError("no configuration was run by both methods; check --pair-on")
    return log_ratio_interval(ratios, bs.draws, bs.fits[baseline].ci, seed)


@dataclass(frozen=True)
class Holdout:
    """Predictions for held-out rows (indexed like the input table) and the bootstrap fitted without them."""

    points: pd.DataFrame
    bootstrap: Bootstrap


def holdout_accuracy(points: pd.DataFrame) -> pd.DataFrame:
    """Mean relative error (ARE) and share inside the prediction interval, per level (and group)."""
    keys = ["level", "group"] if "group" in points else ["level"]
    grouped = points.groupby(keys, sort=False, dropna=False)  # an ungrouped fit's level is None
    return grouped.agg(are=("rel_error", "mean"), inside=("inside", "mean"), n=("x", "size")).reset_index()


def _frontier_rows(study: Study) -> pd.Index:
    """Index labels of the rows the selection rule keeps."""
    frame = study.data
    rule = get_rule(study.options.rule)
    chosen = rule.select(frame[study.x].to_numpy(float), frame[study.y].to_numpy(float))
    return frame.index[chosen.index]


def _predictions(
    fit: BootstrapFit, inputs: list[np.ndarray], observed: pd.Series, rng: np.random.Generator, ci: float
) -> pd.DataFrame:
    """Point prediction, relative error and bootstrap prediction interval for observed rows."""
    predicted = fit.fit.law.predict(*inputs)
    noise = rng.choice(fit.fit.residuals, size=(len(fit.draws), 1))
    lo, hi = percentile_interval(fit.predict(*inputs) * np.exp(noise), ci)
    obs = observed.to_numpy(float)
    return pd.DataFrame(
        {
            "observed": obs,
            "predicted": predicted,
            "rel_error": np.abs(predicted - obs) / obs,
            "lo": lo,
            "hi": hi,
            "inside": (obs >= lo) & (obs <= hi),
        },
        index=observed.index,
    )


def holdout_check(study: Study, held_out: np.ndarray) -> Holdout:
    """Fit without the `held_out` rows (the study's options, seeds and configuration key included), predict them.

    The prediction interval adds to each draw's curve a log residual resampled from the training fit, so it
    covers scatter around the law as well as uncertainty of the law. `on_frontier` says whether the row
    is selected by the rule on the full data (the law describes the frontier, not every run).
    """
    data, x, y, options = study.data, study.x, study.y, study.options
    held_out = np.asarray(held_out, dtype=bool)
    if held_out.all() or not held_out.any():
        raise InputError("the hold-out must leave some rows for fitting and hold some out")
    bs = bootstrap_laws(study.but(data=data[~held_out]))
    rng = np.random.default_rng(options.seed + 1)
    rows = []
    for level, fit in bs.fits.items():
        in_level = study.level_rows(level)
        test = data[held_out & in_level]
        if not test.empty:
            on_front = _frontier_rows(study.but(data=data[in_level]))
            inputs = [test[c].to_numpy(float) for c in (options.inputs or [x])]
            rows.append(
                _predictions(fit, inputs, test[y], rng, options.ci).assign(
                    level=level, x=test[x], on_frontier=test.index.isin(on_front)
                )
            )
    points = pd.concat(rows)
    return Holdout(points[["level", "x", *points.columns.drop(["level", "x"])]], bs)


def extrapolation_check(study: Study, holdout: int = 2) -> Holdout:
    """Hold out the configurations at the `holdout` largest compute values (per level) and predict them."""
    column = study.data.groupby(study.by)[study.x] if study.by else study.data[study.x]
    rank = column.rank(method="dense", ascending=False)
    return holdout_check(study, (rank <= holdout).to_numpy())


def leave_one_group_out(study: Study) -> pd.DataFrame:
    """For each value of the study's `group` column (e.g. architecture), fit on the others and predict it."""
    if study.group is None:
        raise InputError("leave-one-group-out needs a group column (--group)")
    groups = study.data[study.group]
    parts = [holdout_check(study, (groups == g).to_numpy()).points.assign(group=g) for g in pd.unique(groups)]
    return pd.concat(parts)


@dataclass(frozen=True)
class Comparison:
    """Everything `compare_methods` measured; `summary()` is the JSON/CLI view."""

    baseline: Hashable
    treatment: Hashable
    bootstrap: Bootstrap
    exponent: dict[str, float]
    multiplier: pd.DataFrame
    curve: pd.DataFrame
    paired_ratio: dict[str, float]
    data_efficiency: pd.DataFrame | None = None
    extrapolation: Holdout | None = None
    leave_one_out: pd.DataFrame | None = None
    input_exponents: dict[str, dict[str, float]] = field(default_factory=dict)  # Chinchilla: alpha, beta

    def summary(self) -> dict[str, Any]:
        def records(frame: pd.DataFrame | None) -> list[dict[str, Any]] | None:
            return None if frame is None else frame.to_dict(orient="records")

        def holdout_summary(points: pd.DataFrame | None) -> dict[str, Any] | None:
            if points is None:
                return None
            return {"accuracy": records(holdout_accuracy(points)), "points": records(points)}

        return {
            "baseline": self.baseline,
            "treatment": self.treatment,
            "paired": self.bootstrap.paired,
            "draws": self.bootstrap.draws,
            "laws": law_rows(self.bootstrap.fits, "level"),
            "exponent": self.exponent,
            **({"input_exponents": self.input_exponents} if self.input_exponents else {}),  # Chinchilla only
            "multiplier": records(self.multiplier),
            "paired_ratio": self.paired_ratio,
            "data_efficiency": records(self.data_efficiency),
            "extrapolation": holdout_summary(None if self.extrapolation is None else self.extrapolation.points),
            "leave_one_out": holdout_summary(self.leave_one_out),
        }


def choose_pair(study: Study, baseline: Hashable | None, treatment: Hashable | None) -> tuple[Hashable, Hashable]:
    """Baseline and treatment levels: as given, else the first level and the only other one."""
    levels = study.levels
    require_values(study.by, levels, (baseline, treatment))
    baseline = levels[0] if baseline is None else baseline
    others = [v for v in levels if v != baseline]
    if treatment is None and len(others) != 1:
        raise InputError(f"column {study.by!r} has {len(levels)} values; name --baseline and --treatment")
    return baseline, others[0] if treatment is None else treatment


def compare_methods(
    study: Study,
    *,
    baseline: Hashable | None = None,
    treatment: Hashable | None = None,
    targets: Sequence[float] | None = None,
    holdout: int = 2,
) -> Comparison:
    """Compare the scaling of `treatment` against `baseline` (levels of the study's `by` column).

    The study's `samples` column adds the data-efficiency ratio (law of error vs samples seen, same rule);
    `holdout` > 0 adds the extrapolation check; its `group` column adds leave-one-group-out. Targets are
    errors (y after the transform).
    """
    if study.by is None:
        raise InputError("a comparison needs a method column (--by)")
    baseline, treatment = choose_pair(study, baseline, treatment)
    study = study.keep_levels([baseline, treatment])
    bs = bootstrap_laws(study)
    targets = default_targets(bs, baseline, treatment) if targets is None else np.asarray(targets, float)
    efficiency = None
    if study.samples is not None:
        law = "power" if study.options.law == "chinchilla" else study.options.law
        by_samples = bootstrap_laws(study.but(x=study.samples).with_options(law=law))
        efficiency = multiplier(by_samples, baseline, treatment, targets)
    return Comparison(
        baseline=baseline,
        treatment=treatment,
        bootstrap=bs,
        exponent=exponent_difference(bs, baseline, treatment),
        multiplier=multiplier(bs, baseline, treatment, targets),
        curve=multiplier(bs, baseline, treatment, target_grid(bs, baseline, treatment, targets)),
        paired_ratio=paired_ratio(bs, baseline, treatment, study.options.seed),
        data_efficiency=efficiency,
        extrapolation=extrapolation_check(study, holdout) if holdout > 0 else None,
        leave_one_out=leave_one_group_out(study) if study.group else None,
        input_exponents={
            name: parameter_difference(bs, baseline, treatment, name) for name in study.options.law_spec.input_exponents
        },
    )


def parse_targets(text: str | None) -> list[float] | None:
    """`--targets 0.35,0.30` as floats (None when not given)."""
    if text is None:
        return None
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InputError(f"--targets must be comma-separated error values, got {text!r}") from None
    if not values or min(values) <= 0:
        raise InputError(f"--targets must be positive error values, got {text!r}")
    return values


def print_report(summary: dict[str, Any]) -> None:
    fmt = {"float_format": lambda v: f"{v:.4g}", "index": False}
    print(
        f"baseline {summary['baseline']!r} vs treatment {summary['treatment']!r}; "
        f"{'paired' if summary['paired'] else 'unpaired'} bootstrap, {summary['draws']} draws\n"
    )
    cli.print_law_rows(summary["laws"], "level")
    e = summary["exponent"]
    print(
        f"\nexponent difference (treatment - baseline): {e['delta']:.4g} [{e['lo']:.4g}, {e['hi']:.4g}], "
        f"P(<0) = {e['p_negative']:.3f}"
    )
    for name, d in summary.get("input_exponents", {}).items():
        print(
            f"{name} difference (treatment - baseline): {d['delta']:.4g} [{d['lo']:.4g}, {d['hi']:.4g}] "
            f"({d['baseline']:.4g} -> {d['treatment']:.4g}), P(<0) = {d['p_negative']:.3f}"
        )
    print("\ncompute multiplier k(E*) = C_baseline / C_treatment:")
    print(pd.DataFrame(summary["multiplier"]).to_string(**fmt))
    if summary["data_efficiency"]:
        print("\ndata efficiency (samples ratio at E*):")
        print(pd.DataFrame(summary["data_efficiency"]).to_string(**fmt))
    r = summary["paired_ratio"]
    print(
        f"\npaired error ratio treatment/baseline over {r['n']} configurations: {r['ratio']:.4g} "
        f"[{r['ratio_lo']:.4g}, {r['ratio_hi']:.4g}] "
        f"(mean log ratio {r['mean_log_ratio']:.4g}, sd {r['sd']:.3g})"
    )
    for key, title in (("extrapolation", "extrapolation check"), ("leave_one_out", "leave one group out")):
        if summary[key]:
            print(f"\n{title} (relative error, inside prediction interval):")
            print(pd.DataFrame(summary[key]["points"]).to_string(**fmt))


def _main(argv: Sequence[str] | None) -> int:
    parser = cli.Parser(
        prog="python -m analysis.compare", description="Compare the scaling laws of two methods in one CSV."
    )
    cli.add_data_arguments(parser)
    cli.add_fit_arguments(parser, default_draws=DRAWS)
    parser.add_argument("--by", required=True, help="method column")
    parser.add_argument("--pair-on", nargs="+", metavar="COL", help="configuration columns shared by both methods")
    parser.add_argument("--baseline", help="baseline method (default: first in the file)")
    parser.add_argument("--treatment", help="treatment method (default: the other one)")
    parser.add_argument("--targets", help="target errors for k(E*), e.g. 0.35,0.30 (after --y-transform)")
    parser.add_argument("--samples", help="samples-seen column: adds the data-efficiency ratio")
    parser.add_argument("--holdout", type=int, default=2, help="largest-compute configurations held out (0: skip)")
    parser.add_argument("--group", help="architecture column: adds leave-one-group-out")
    parser.add_argument("--seeds", choices=["average", "resample"], default="average")
    parser.add_argument("--seed-col", default="seed", help="seed column (if the table has one)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    args = parser.parse_args(argv)
    options = cli.fit_options(args)
    table, x = cli.read_data(args, options)
    study = Study.of(table, x, args.y, by=args.by, samples=args.samples, group=args.group, options=options)
    comparison = compare_methods(
        study,
        baseline=args.baseline,
        treatment=args.treatment,
        targets=parse_targets(args.targets),
        holdout=args.holdout,
    )
    summary = comparison.summary()
    if args.json:
        cli.print_json(summary)
    else:
        print_report(summary)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m analysis.compare`; bad input gives one line on stderr and status 2."""
    return cli.run(_main, "python -m analysis.compare", argv)


if __name__ == "__main__":
    sys.exit(main())
