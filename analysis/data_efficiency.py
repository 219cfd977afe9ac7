"""Data efficiency on the pool axis: the pool a method needs to reach an error, and the paper's n*(m) test.

Wei et al.'s theorem (notes/drrho-clip-spec.md §1): a reference trained by ERM on m samples is matched by
DRRho after n = O(√m) samples, by plain training after O(m). So for each reference (its training pool m and
its own error E_ref, on the targets' evaluation), n*(m) is the smallest unique pool at which a method reaches
E_ref, read off that method's fitted curve of error vs pool at a fixed model (`power` or `saturating`); the
log–log slope of n* against m per method should be ≈ 0.5 for DRRho-CLIP and ≈ 1 for CLIP.

A curve is one method's runs at one model, steered by one reference; a method whose rows name no reference
(CLIP, FastCLIP) has one curve shared by every reference. The curves of a model are bootstrapped together,
pool values drawn jointly (paired, as `compare` pairs configurations), so each draw is one coherent replicate:
its n* of every reference, and the slope through them, come from the same resampled pools. E_ref is taken as
measured (its own noise is not resampled).

With `--chinchilla`, the same table also gets L(N, D) = E + A/N^alpha + B/D^beta per method, N the model size
column and D the unique pool, with the paired-bootstrap difference of each method's exponents from CLIP's
(`analysis.compare`); a steered method's rows are those of its largest-m references (its best, one per seed),
so every configuration (N, D) is one run per method and seed, as for an unsteered one.

Command line: python -m analysis.data_efficiency SWEEP_DIR|CSV [--y COL] [--pool COL] [--by COL] [--model COL]
[--reference COL --reference-pool COL --reference-error COL] [--law power|saturating] [--targets E1,E2]
[--chinchilla] [--interpolated-only] [--bootstrap N] [--out DIR] [--json]; or SWEEP_DIR --lengths (`lengths`)

From a sweep directory it also says whether each run converged on its pool (`convergence`, `convergence.csv`).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis import cli
from analysis.bootstrap import Bootstrap, BootstrapFit, bootstrap_laws, law_rows, percentile_interval
from analysis.compare import (
    Comparison,
    compare_methods,
    inside_fitted_range,
    paired_difference,
    parse_targets,
    print_report,
)
from analysis.data import InputError, read_table, require_columns, require_positive, transform_y
from analysis.estimate import ols_loglog
from analysis.records import EARLY_STOPPED, data_axis_table, label, load_records
from analysis.report import write_json
from analysis.study import DRAWS, Study

POOL_LAWS = ("power", "saturating", "saturating-shifted")  # error vs pool at a fixed model
CURVE = "curve"  # the level column of the curves' bootstrap: method, or "method | reference"


@dataclass(frozen=True)
class References:
    """Columns of a steered row that name its reference (`id`), the reference's training pool (`pool`) and
    its own error (`error`, on the scale of the study's y). Rows with no reference id are unsteered."""

    id: str
    pool: str
    error: str

    def table(self, data: pd.DataFrame) -> pd.DataFrame:
        """One row per reference: id, m, E_ref (references without a pool or an error are left out)."""
        refs = data[[self.id, self.pool, self.error]].dropna().drop_duplicates(self.id)
        refs.columns = ["reference", "m", "reference_error"]
        return refs.sort_values("m").reset_index(drop=True)


def _needed(fit: BootstrapFit, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pool needed for each target error: full-data (T,) and per draw (draws, T); NaN where the curve does not
    improve with the pool or never reaches the target."""
    with np.errstate(invalid="ignore", divide="ignore"):
        full, draws = fit.fit.law.inverse(targets), fit.inverse(targets)
    full_improves = fit.fit.law.law.exponent(fit.fit.params) < 0
    draw_improves = (fit.exponent() < 0)[:, None]
    return np.where(full_improves & (full > 0), full, np.nan), np.where(draw_improves & (draws > 0), draws, np.nan)


def _reach_columns(fit: BootstrapFit, targets: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The `reach` columns of one curve, and its draws (draws, T)."""
    full, draws = _needed(fit, targets)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a target no draw reaches has no interval: NaN
        lo, hi = percentile_interval(draws, fit.ci)
    columns = {
        "target": targets,
        "x": full,
        "lo": lo,
        "hi": hi,
        "reached": np.isfinite(draws).mean(0),
        "extrapolated": ~inside_fitted_range(fit, full),
    }
    return columns, draws


def reach(bs: Bootstrap, targets: Sequence[float]) -> pd.DataFrame:
    """Pool (x) each curve needs to reach each target error, with its bootstrap interval: `reached` is the
    share of draws whose curve improves with x and reaches the target (the interval is over those), and
    `extrapolated` marks a pool outside the range the curve was fitted on."""
    targets = np.asarray(targets, dtype=float)
    parts = [pd.DataFrame({"level": level, **_reach_columns(fit, targets)[0]}) for level, fit in bs.fits.items()]
    return pd.concat(parts, ignore_index=True)


def _curve_labels(data: pd.DataFrame, by: str, refs: References) -> pd.Series:
    steered = data[refs.id].notna()
    named = data[by].astype(str) + " | " + data[refs.id].astype(str)
    return data[by].astype(str).where(~steered, named)


def _slope(log_m: np.ndarray, log_n: np.ndarray) -> np.ndarray:
    """OLS slope of log n* on log m along the last axis (NaN where a value is missing)."""
    return ols_loglog(np.broadcast_to(log_m, log_n.shape), log_n, np.ones_like(log_n))[1]


@dataclass(frozen=True)
class NStar:
    """n*(m) per model, method and reference, and the slope of log n* on log m per model and method."""

    table: pd.DataFrame
    slopes: pd.DataFrame
    slope_differences: pd.DataFrame  # slope minus CLIP's and FastCLIP's (`baseline_pairs`), paired draws
    bootstraps: dict[Hashable, Bootstrap]
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "n_star": self.table.to_dict(orient="records"),
            "slopes": self.slopes.to_dict(orient="records"),
            "slope_differences": self.slope_differences.to_dict(orient="records"),
            "laws": {str(m): law_rows(bs.fits, "curve") for m, bs in self.bootstraps.items()},
            "notes": self.notes,
        }


def _model_n_star(
    study: Study, refs: References, references: pd.DataFrame, interpolated: bool
) -> tuple[Bootstrap, list, dict, list[str]]:
    """Bootstrap the curves of one model, read n* of every (method, reference) and the slope per method. A
    curve of fewer than two pools (a sweep still running) has no law: it is left out, and named. With
    `interpolated`, the slopes go through the references every method reaches inside its fitted pools."""
    data = study.data.assign(**{CURVE: _curve_labels(study.data, study.by, refs)})
    pools = data.groupby(CURVE)[study.x].nunique()
    short = list(pools[pools < 2].index)
    data = data[~data[CURVE].isin(short)]
    left_out = [f"curve {curve} left out: fewer than two pools" for curve in short]
    if data.empty:
        return None, [], {}, left_out
    bs = bootstrap_laws(study.but(data=data, by=CURVE))
    rows, per_method = [], {}
    for method in pd.unique(data[study.by]):
        shared = data.loc[data[study.by] == method, refs.id].isna().all()
        per_ref = per_method[method] = []
        for ref in references.itertuples():
            curve = str(method) if shared else f"{method} | {ref.reference}"
            if curve not in bs.fits:
                continue
            columns, draws = _reach_columns(bs.fits[curve], np.array([ref.reference_error]))
            found = {k: v[0] for k, v in columns.items() if k != "target"}
            rows.append(
                {
                    "method": method,
                    "reference": ref.reference,
                    "m": ref.m,
                    "reference_error": ref.reference_error,
                    "curve": curve,
                    **found,
                }
            )
            per_ref.append((ref.reference, ref.m, found["x"], draws[:, 0], bool(found["extrapolated"])))
    outside = {r for items in per_method.values() for r, *_, out in items if out} if interpolated else set()
    if outside:
        left_out.append(f"slopes without the references some method reaches outside its pools: {sorted(outside)}")
    slopes = {
        method: _slope_draws([(m, n, d) for r, m, n, d, _ in items if r not in outside])
        for method, items in per_method.items()
    }
    return bs, rows, slopes, left_out


def _slope_draws(per_ref: list[tuple[float, float, np.ndarray]]) -> tuple[float, np.ndarray, int]:
    """Slope of log n* on log m through the references with a finite n*: full-data value, one per draw (NaN
    where a draw misses a reference's n*), and the number of references (NaN slope below 2)."""
    usable = [(m, n, d) for m, n, d in per_ref if np.isfinite(n) and n > 0]
    if len(usable) < 2:
        return np.nan, np.full(len(per_ref[0][2]) if per_ref else 0, np.nan), len(usable)
    log_m = np.log([m for m, _, _ in usable])
    full = float(_slope(log_m, np.log([n for _, n, _ in usable])))
    with np.errstate(invalid="ignore", divide="ignore"):
        draws = _slope(log_m, np.log(np.stack([d for _, _, d in usable], axis=-1)))
    return full, draws, len(usable)


def _interval(draws: np.ndarray, ci: float) -> tuple[float, float]:
    """Percentile interval of the finite draws (NaN, NaN without any)."""
    draws = draws[np.isfinite(draws)]
    return tuple(map(float, percentile_interval(draws, ci))) if draws.size else (np.nan, np.nan)


def _slope_rows(slopes: dict[Hashable, tuple[float, np.ndarray, int]], ci: float) -> tuple[list, list]:
    """A row per method (slope, interval, references, valid draws), and per (baseline, method) pair of
    `baseline_pairs` the method's slope minus the baseline's, paired draw by draw."""
    rows = [
        {"method": k, "slope": full, **dict(zip(("lo", "hi"), _interval(d, ci), strict=True))}
        | {"references": refs, "valid_draws": int(np.isfinite(d).sum())}
        for k, (full, d, refs) in slopes.items()
    ]
    differences = [
        {"method": k, "versus": base}
        | paired_difference(slopes[base][0], slopes[k][0], slopes[k][1] - slopes[base][1], ci)
        for base, k in baseline_pairs(list(slopes))
    ]
    return rows, differences


CONTROLS = ("clip", "fastclip")  # plain training, and the no-reference control of DRRho-CLIP's estimator


def baseline_pairs(methods: list) -> list[tuple]:
    """(baseline, method) pairs to difference: every method against CLIP (else the first method), and every
    other method against FastCLIP too when present, so DRRho-CLIP's gain is also measured against the same
    estimator without a reference."""
    bases = [b for b in CONTROLS if b in methods] or methods[:1]
    return [(base, k) for i, base in enumerate(bases) for k in methods if k not in bases[: i + 1]]


def n_star(study: Study, refs: References, interpolated: bool = False) -> NStar:
    """n*(m) for every reference, per model (the study's `model` column, or one model) and method (`by`).

    The study's x is the unique pool, y the error; its law (power or saturating) is fitted per curve and
    its options set the bootstrap; the configuration key is the pool (seeds of a pool are averaged).
    `interpolated`: the slopes (and their differences) go only through the references that every method of
    a model reaches inside the pools its curve was fitted on, so that no slope leans on an n* read off the
    law far beyond the data (a weak reference that a method beats at its smallest pool, say)."""
    if study.by is None:
        raise InputError("n* needs a method column (--by)")
    if study.options.law not in POOL_LAWS:
        raise InputError(f"n* fits error vs pool: --law must be one of {', '.join(POOL_LAWS)}")
    require_columns(study.data, [refs.id, refs.pool, refs.error])
    references = refs.table(study.data)
    if references.empty:
        raise InputError(f"no row names a reference with a pool and an error ({refs.id}, {refs.pool}, {refs.error})")
    given = study.data[[refs.pool, refs.error]].notna().all(axis=1)
    require_positive(study.data[given], [refs.pool, refs.error])
    study = study.with_options(config=(study.x,))
    models = pd.unique(study.data[study.model]) if study.model else [None]
    tables, slopes, differences, bootstraps, skipped = [], [], [], {}, []
    for model in models:
        rows = study.data if model is None else study.data[study.data[study.model] == model]
        bs, found, slope, left_out = _model_n_star(study.but(data=rows), refs, references, interpolated)
        skipped += [note + ("" if model is None else f" at model {model}") for note in left_out]
        if bs is None:  # no curve of this model has two pools yet
            continue
        bootstraps[model] = bs
        tables += [{"model": model, **row} for row in found]
        per_method, versus = _slope_rows(slope, study.options.ci)
        slopes += [{"model": model, **row} for row in per_method]
        differences += [{"model": model, **row} for row in versus]
    table = pd.DataFrame(tables)
    notes = [
        f"{r.method} never reaches the error of reference {r.reference} ({r.reference_error:.4g})"
        + ("" if r.model is None else f" at model {r.model}")
        for r in table[~np.isfinite(table["x"].astype(float))].itertuples()
    ]
    table = table.rename(columns={"x": "n_star"})
    return NStar(table, pd.DataFrame(slopes), pd.DataFrame(differences), bootstraps, skipped + notes)


def chinchilla(study: Study, refs: References, size: str) -> tuple[dict[str, Comparison], list[str]]:
    """L(N = `size`, D = the study's pool) per method, each method compared with CLIP (else the first method)
    and with FastCLIP when present (`baseline_pairs`), keyed "drrho" and "drrho vs fastclip": paired bootstrap
    over configurations (model size, pool), DRRho's rows those of its largest-m references (one per seed; seeds
    of a configuration are averaged). Fitted on every configuration (Hoffmann et al.'s approach 3), none held
    out; a method that cannot be fitted (too few configurations) is named in the notes returned beside."""
    references = refs.table(study.data)
    largest = references.loc[references["m"] == references["m"].max(), "reference"]  # one per seed
    data = study.data[study.data[refs.id].isna() | study.data[refs.id].isin(largest)]
    n, d = (data[c].astype(float) for c in (size, study.x))
    data = data.assign(**{cli.COMPUTE_6ND: 6.0 * n * d})
    options = replace(study.options, law="chinchilla", n=size, d=study.x, frontier="all", config=(size, study.x))
    options = replace(options, y_transform="none")  # the study's y is an error already: map it once
    pool = Study.of(data, cli.COMPUTE_6ND, study.y, by=study.by, options=options, labels=study.labels)
    comparisons, notes = {}, []
    pairs = baseline_pairs([str(m) for m in pool.levels])
    for base, method in pairs:
        name = method if base == pairs[0][0] else f"{method} vs {base}"  # "drrho", and "drrho vs fastclip"
        try:
            comparisons[name] = compare_methods(pool, baseline=base, treatment=method, holdout=0)
        except InputError as err:  # e.g. too few configurations for 5 parameters (a sweep still running)
            notes.append(f"L(N, D) of {method} vs {base}: {err}")
    return comparisons, notes


CONVERGENCE_TOLERANCE = 0.05  # relative change of the error that counts as flat


def convergence(records: pd.DataFrame, y: str, tol: float = CONVERGENCE_TOLERANCE) -> pd.DataFrame:
    """Did each run (references included) converge on its pool? One row per finished run, from its evaluations:
    `final`, `best` and where it was reached, the relative change over the last two evaluations, and a verdict.
    n*(m) compares pools, so each run should be limited by its pool, not by its length: 'flat' (the last change
    within `tol` and the final within `tol` of the best), 'past its best' (the final more than `tol` above an
    earlier best: the run overfit its pool, so the pool, not the length, limits it) or 'still falling' (the last
    change below −`tol`: more training would lower it)."""
    require_columns(records, ["run_id", "samples_seen", y])
    curves = records[np.isfinite(records[y].astype(float))].sort_values(["run_id", "samples_seen"])
    by_run = curves.groupby("run_id", sort=False)
    last_two = by_run.tail(2).groupby("run_id", sort=False)[y]
    best_at = curves.loc[by_run[y].idxmin(), ["run_id", "samples_seen"]].set_index("run_id")["samples_seen"]
    keep = [c for c in ("model", "method", "seed", "data.pool_size", "reference.run_id") if c in curves]
    table = (
        by_run[keep]
        .first()
        .assign(
            samples_seen=by_run["samples_seen"].max(),
            final=last_two.last(),
            best=by_run[y].min(),
            best_at=best_at,
            last_change=last_two.last() / last_two.first() - 1,
        )
    )
    verdict = np.where(
        table["final"] > table["best"] * (1 + tol),
        "past its best",
        np.where(table["last_change"] < -tol, "still falling", "flat"),
    )
    return table.assign(verdict=verdict).reset_index()


def lengths(
    records: pd.DataFrame, y: str, pool: str = "data.pool_size", tol: float = CONVERGENCE_TOLERANCE
) -> pd.DataFrame:
    """How long must a run train to converge on its pool? From a length check (the same model, method and seed
    trained on each pool for several numbers of epochs), one row per pool: the lengths `tried`, the `epochs` whose
    final error is lowest and that `final`, `lowest` (the lowest error any run of the pool reached at any
    evaluation: what early stopping of a longer run would give), and a verdict. Small pools overfit, so their
    final error rises with length; large ones need longer; so the length is chosen per pool, not once.
    'converged': the chosen final is within `tol` of `lowest` and a longer run was tried; 'lower on the way': a
    run got more than `tol` lower before its end than any run's final (early stopping would beat every length
    tried); 'no longer run': the longest length won, so it is unchecked."""
    runs = convergence(records, y, tol)
    require_columns(runs, [pool])
    keys = [c for c in ("model", "method", "seed", pool) if c in runs]
    runs = runs.assign(epochs=runs["samples_seen"] / runs[pool]).sort_values([*keys, "epochs"])
    by_pool = runs.groupby(keys, sort=False)
    table = runs.loc[by_pool["final"].idxmin(), [*keys, "epochs", "final"]].set_index(keys)
    table["lowest"] = by_pool["best"].min()
    table["tried"] = by_pool["epochs"].agg(lambda e: ", ".join(f"{v:g}" for v in e))
    longest = by_pool["epochs"].max()
    table["verdict"] = np.select(
        [table["epochs"] == longest, table["final"] <= table["lowest"] * (1 + tol)],
        ["no longer run", "converged"],
        "lower on the way",
    )
    return table.reset_index()


def read_source(path: str) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """A CSV as it is, or a sweep's records as the data-axis table (`analysis.records.data_axis_table`) with
    the records themselves (every evaluation: what `convergence` reads); a CSV has no records."""
    if Path(path).is_dir():
        records = load_records(path)
        return data_axis_table(records), records
    return read_table(path), None


def _print_report(result: NStar, reached: pd.DataFrame | None) -> None:
    fmt = {"float_format": lambda v: f"{v:.4g}", "index": False}
    print("n*(m): pool at which each method reaches each reference's own error")
    print(result.table.drop(columns=["curve"]).to_string(**fmt))
    print("\nslope of log n* on log m (paper: ~0.5 for DRRho-CLIP, ~1 for CLIP)")
    print(result.slopes.to_string(**fmt))
    if not result.slope_differences.empty:
        print("\nslope difference (method - baseline), paired draws")
        print(result.slope_differences.to_string(**fmt))
    if reached is not None:
        print("\npool needed to reach each target error")
        print(reached.to_string(**fmt))
    for note in result.notes:
        print(f"note: {note}")


def _main(argv: Sequence[str] | None) -> int:
    parser = cli.Parser(
        prog="python -m analysis.data_efficiency",
        description="n*(m): the pool each method needs to reach each reference's own error, and its slope in m.",
    )
    parser.add_argument("source", help="a sweep (or runs) directory of records, or any CSV")
    parser.add_argument("--y", default="zeroshot_error.colour_shape", help="error column")
    parser.add_argument("--pool", default="data.pool_size", help="unique pool column (the curve's x)")
    parser.add_argument("--by", default="method", help="method column")
    parser.add_argument("--model", default="model", help="model column: one curve per model (none: 'none')")
    parser.add_argument("--reference", default="reference.name", help="column naming a steered row's reference")
    parser.add_argument("--reference-pool", default="reference.data.pool_size", help="reference's pool column")
    parser.add_argument("--reference-error", help="reference's own error column (default: reference.<y>)")
    parser.add_argument("--y-transform", default="none", help="applied to y and the reference error alike")
    parser.add_argument("--targets", help="also: pool each curve needs for these errors, e.g. 0.3,0.25")
    parser.add_argument("--out", help="write summary.json, n_star.csv, slopes.csv and the figures here")
    parser.add_argument("--size", default="model.params_nonembedding", help="model size column (isoData figure)")
    parser.add_argument("--chinchilla", action="store_true", help="also L(N, D): N = --size, D = --pool")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--lengths", action="store_true", help="only the length check of a sweep (lengths.csv)")
    parser.add_argument(
        "--interpolated-only", action="store_true", help="slopes through the references every n* is inside the pools of"
    )
    cli.add_fit_arguments(parser, default_draws=DRAWS, laws=POOL_LAWS)
    args = parser.parse_args(argv)
    if args.lengths:
        return _length_check(args)
    options = cli.fit_options(args, **({} if args.frontier else {"frontier": "all"}))
    refs = References(args.reference, args.reference_pool, args.reference_error or f"reference.{args.y}")
    table, records = read_source(args.source)
    curve_y = args.y.removesuffix(EARLY_STOPPED)  # an early-stopped error is read off its run's curve of this
    if refs.error not in table and curve_y != args.y and not args.reference_error:
        raise InputError(
            f"--y {args.y} is each run's early-stopped error, but a reference steers with its final weights: "
            f"name its own error with --reference-error reference.{curve_y}"
        )
    require_columns(table, [refs.error])
    table = transform_y(table, refs.error, options.y_transform)
    model = None if args.model == "none" else args.model
    if model is not None and model not in table:
        raise InputError(f"column {model!r} not found (--model; --model none fits one curve per method)")
    labels = {c: label(c) for c in (args.pool, args.y, args.size)} if Path(args.source).is_dir() else {}
    study = Study.of(table, args.pool, args.y, by=args.by, model=model, labels=labels, options=options)
    result = n_star(study, refs, interpolated=args.interpolated_only)
    targets = parse_targets(args.targets)
    reached = None
    if targets is not None:  # on the curves n* used: DRRho's per reference, not pooled across references
        reached = pd.concat([reach(bs, targets).assign(model=m) for m, bs in result.bootstraps.items()])
    if args.chinchilla:
        require_columns(study.data, [args.size])
    comparisons, notes = chinchilla(study, refs, args.size) if args.chinchilla else ({}, [])
    result.notes.extend(notes)
    converged = None if records is None else convergence(records, curve_y)
    if args.out:
        write_outputs(result, study, refs, args.size, args.out)
        if converged is not None:
            converged.to_csv(Path(args.out) / "convergence.csv", index=False)
    summary = {
        **result.summary(),
        "convergence": None if converged is None else converged["verdict"].value_counts().to_dict(),
        "reach": None if reached is None else reached.to_dict("records"),
        "chinchilla": {str(m): c.summary() for m, c in comparisons.items()},
    }
    if args.out:
        write_json(Path(args.out) / "summary.json", summary)
    if args.json:
        cli.print_json(summary)
        return 0
    _print_report(result, reached)
    if converged is not None:
        counts = ", ".join(f"{n} {verdict}" for verdict, n in converged["verdict"].value_counts().items())
        print(f"\nconvergence of the {len(converged)} runs on their pools (last two evaluations): {counts}")
    for comparison in comparisons.values():
        print(f"\nL(N, D) with N = {args.size}, D = {args.pool}, {comparison.treatment} vs {comparison.baseline}:")
        print_report(comparison.summary())
    return 0


def _length_check(args: argparse.Namespace) -> int:
    """`--lengths`: the length each pool needs (`lengths`), from a sweep of the same runs at several lengths."""
    if not Path(args.source).is_dir():
        raise InputError(f"--lengths reads a sweep's records: {args.source} is not a directory")
    table = lengths(load_records(args.source), args.y, args.pool)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        table.to_csv(Path(args.out) / "lengths.csv", index=False)
    if args.json:
        cli.print_json(table.to_dict("records"))
        return 0
    print("length per pool: the number of epochs whose final error is lowest")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    return 0


def write_outputs(result: NStar, study: Study, refs: References, size: str, out: str | Path) -> list[Path]:
    """n_star.csv, slopes.csv, slope_differences.csv, data.csv (the rows fitted), the n*(m) figure and the
    isoData figure (error vs model size `size` at each pool, one line per curve) under `out`; the isoData
    figure is skipped with a note when the table has a single model size."""
    from analysis.plots import isodata_plot, n_star_plot, save_figure

    require_columns(study.data, [size])  # before writing anything
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result.table.to_csv(out / "n_star.csv", index=False)
    result.slopes.to_csv(out / "slopes.csv", index=False)
    result.slope_differences.to_csv(out / "slope_differences.csv", index=False)
    study.data.to_csv(out / "data.csv", index=False)  # the rows fitted: a table `compare --law chinchilla` takes
    written = [out / f"{name}.csv" for name in ("n_star", "slopes", "slope_differences", "data")]
    pool = study.labels.get(study.x, "pool")
    written += save_figure(n_star_plot(result.table, result.slopes, pool_label=pool), out / "n_star")
    if study.data[size].nunique() < 2:
        result.notes.append(f"no isoData figure: column {size!r} has a single value")
        return written
    data = study.data.assign(**{CURVE: _curve_labels(study.data, study.by, refs)})
    pools = refs.table(study.data).set_index("reference")["m"]
    if pools.is_unique:  # name the references by their pool in the legend
        steered = data[refs.id].notna()
        by_pool = data[study.by].astype(str) + " | reference m=" + data[refs.id].map(pools).map("{:g}".format)
        data[CURVE] = data[CURVE].where(~steered | data[refs.id].map(pools).isna(), by_pool)
    fig = isodata_plot(data, size, study.y, pool=study.x, by=CURVE, labels=study.labels)
    return written + save_figure(fig, out / "isodata")


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m analysis.data_efficiency`; bad input gives one line on stderr and status 2."""
    return cli.run(_main, "python -m analysis.data_efficiency", argv)


if __name__ == "__main__":
    sys.exit(main())
