"""Bootstrap over configurations, re-running point selection and the fit in every draw.

Why configurations, not rows: seeds of one configuration are not independent evidence about the law. A
configuration is the row minus its seed (and minus the y and method columns) unless `FitOptions.config` names
its columns. Seeds are averaged first (default) or resampled within each drawn configuration (`seeds="resample"`),
which propagates seed noise (pitfall P10). When two methods share configurations the draws pick configuration
keys jointly (paired bootstrap), which roughly halves the width of comparison intervals on the paper data.
Intervals are percentiles of the draws.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis.data import InputError
from analysis.estimate import Fit, fit_arrays, fit_many
from analysis.laws import Law
from analysis.select import get_rule, select_many
from analysis.study import Study


@dataclass(frozen=True)
class Units:
    """Configurations × levels (methods): seed-level errors and the law's inputs, NaN where absent."""

    keys: pd.DataFrame  # K configuration keys (config columns)
    levels: list[Hashable]  # L values of the `by` column ([None] without one)
    x: np.ndarray  # (L, K)
    inputs: tuple[np.ndarray, ...]  # law inputs, each (L, K)
    y_seeds: np.ndarray  # (L, K, R)

    @property
    def counts(self) -> np.ndarray:
        return np.isfinite(self.y_seeds).sum(-1)

    @property
    def y(self) -> np.ndarray:
        """Seed-averaged error (L, K)."""
        counts = self.counts
        return np.where(counts > 0, np.nansum(self.y_seeds, -1) / np.maximum(counts, 1), np.nan)


def configurations(study: Study) -> Units:
    """Group a study's rows into configurations (per level of `by`): the key is `options.config`, or every
    column other than y, the seed column and `by`."""
    df, x, y, by, options = study.data, study.x, study.y, study.by, study.options
    config = list(options.config) if options.config else [c for c in df.columns if c not in {y, options.seed_col, by}]
    key = df.groupby(config, dropna=False, sort=False).ngroup().to_numpy()
    levels = study.levels
    lev = pd.Categorical(df[by], categories=levels).codes if by else np.zeros(len(df), dtype=int)
    rank = pd.Series(0, index=df.index).groupby([lev, key]).cumcount().to_numpy()
    shape = (len(levels), key.max() + 1)
    y_seeds = np.full((*shape, rank.max() + 1), np.nan)
    y_seeds[lev, key, rank] = df[y].to_numpy(float)

    def mean_of(col: str) -> np.ndarray:
        total, count = np.zeros(shape), np.zeros(shape)
        np.add.at(total, (lev, key), df[col].to_numpy(float))
        np.add.at(count, (lev, key), 1.0)
        with np.errstate(invalid="ignore"):
            return total / np.where(count > 0, count, np.nan)

    keys = df.assign(_key=key).drop_duplicates("_key").sort_values("_key")[config].reset_index(drop=True)
    return Units(keys, levels, mean_of(x), tuple(mean_of(c) for c in options.inputs), y_seeds)


def percentile_interval(values: np.ndarray, ci: float) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval over draws (axis 0), ignoring NaN (failed draws)."""
    tail = (1.0 - ci) / 2.0
    lo, hi = np.nanquantile(values, [tail, 1.0 - tail], axis=0)
    return lo, hi


@dataclass(frozen=True)
class BootstrapFit:
    """Full-data fit plus one parameter set per draw (NaN rows where a draw could not be fitted)."""

    fit: Fit
    draws: pd.DataFrame
    ci: float = 0.95

    @property
    def valid(self) -> pd.DataFrame:
        return self.draws.dropna()

    def interval(self, name: str, ci: float | None = None) -> tuple[float, float]:
        """Percentile interval of one parameter."""
        lo, hi = percentile_interval(self.valid[name].to_numpy(), self.ci if ci is None else ci)
        return float(lo), float(hi)

    def summary(self, ci: float | None = None) -> pd.DataFrame:
        """param, full-data value (full precision), interval bounds."""
        rows = [(k, v, *self.interval(k, ci)) for k, v in self.fit.params.items()]
        return pd.DataFrame(rows, columns=["param", "value", "lo", "hi"])

    def _columns(self) -> dict[str, np.ndarray]:
        """Parameters as (draws, 1) columns; failed draws stay as NaN rows so paired draws stay aligned."""
        return {k: self.draws[k].to_numpy()[:, None] for k in self.fit.law.law.params}

    def exponent(self) -> np.ndarray:
        """Compute exponent per draw (NaN for failed draws)."""
        return self.fit.law.law.exponent(self._columns())[:, 0]

    def predict(self, *inputs: np.ndarray) -> np.ndarray:
        """Predictions (draws, n) at the law's own inputs."""
        return self.fit.law.law.predict(self._columns(), *(np.asarray(v, dtype=float)[None, :] for v in inputs))

    def predict_x(self, x: np.ndarray) -> np.ndarray:
        """Predictions (draws, len(x)) along the compute axis."""
        return self.fit.law.law.predict_x(self._columns(), np.asarray(x, dtype=float)[None, :])

    def band(self, x: np.ndarray, ci: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Percentile band of the fitted curve at x."""
        return percentile_interval(self.predict_x(x), self.ci if ci is None else ci)

    def inverse(self, targets: np.ndarray) -> np.ndarray:
        """Compute needed for each target error, per draw (draws, T)."""
        return self.fit.law.law.inverse(self._columns(), np.asarray(targets, dtype=float)[None, :])


@dataclass(frozen=True)
class Bootstrap:
    """Per-level bootstrap fits and the configurations they resampled (jointly when `paired`)."""

    fits: dict[Hashable, BootstrapFit]
    units: Units
    paired: bool

    @property
    def draws(self) -> int:
        return len(next(iter(self.fits.values())).draws)


def _draw_y(units: Units, level: int, index: np.ndarray, rng: np.random.Generator, seeds: str) -> np.ndarray:
    """Errors of the drawn configurations: seed means, or means of seeds resampled with replacement."""
    if seeds == "average":
        return units.y[level][index]
    counts = units.counts[level][index]
    width = units.y_seeds.shape[-1]
    pick = (rng.random((*index.shape, width)) * counts[..., None]).astype(int)
    values = units.y_seeds[level][index[..., None], pick]
    used = np.arange(width) < counts[..., None]
    with np.errstate(invalid="ignore"):
        return np.where(used, values, 0.0).sum(-1) / np.where(counts > 0, counts, np.nan)


def _draw_fits(
    law: Law, rule_name: str, units: Units, level: int, y_draw: np.ndarray, index: np.ndarray, warm: Fit
) -> pd.DataFrame:
    """Select and fit within every draw; a DataFrame of parameters with NaN for failed draws."""
    x_draw = units.x[level][index]
    x_draw = np.where(np.isfinite(y_draw), x_draw, np.nan)
    chosen, x_fit, weight = select_many(get_rule(rule_name), x_draw, y_draw)
    y_fit = np.where(weight > 0, np.take_along_axis(y_draw, chosen, 1), 1.0)
    if law.inputs == ("x",):
        inputs = (x_fit,)
    else:
        inputs = tuple(np.where(weight > 0, np.take_along_axis(v[level][index], chosen, 1), 1.0) for v in units.inputs)
    params, ok = fit_many(law, inputs, y_fit, weight, warm=warm.params)
    return pd.DataFrame({k: np.where(ok, v, np.nan) for k, v in params.items()})


def bootstrap_laws(study: Study) -> Bootstrap:
    """Bootstrap the law of y against x per level of `by`, redoing selection and fit in every draw.

    With `by` and `options.paired`, all levels use the same drawn configuration keys.
    """
    options, law = study.options, study.options.law_spec
    units = configurations(study)
    rng = np.random.default_rng(options.seed)
    n_keys = len(units.keys)
    draws = options.draws
    shared = rng.integers(0, n_keys, size=(draws, n_keys)) if options.paired else None
    fits = {}
    for level, name in enumerate(units.levels):
        present = np.flatnonzero(np.isfinite(units.y[level]))
        if present.size < 2:
            raise InputError(f"level {name!r} of {study.by!r} has fewer than 2 configurations")
        idx = shared if shared is not None else present[rng.integers(0, present.size, (draws, present.size))]
        inputs = tuple(v[level][present] for v in units.inputs) or None
        full = fit_arrays(
            law,
            units.x[level][present],
            units.y[level][present],
            inputs=inputs,
            frontier=options.rule,
            columns=study.columns(),
        )
        y_draw = _draw_y(units, level, idx, rng, options.seeds)
        fits[name] = BootstrapFit(full, _draw_fits(law, options.rule, units, level, y_draw, idx, full), options.ci)
    return Bootstrap(fits, units, options.paired)


def law_rows(fits: Mapping[Hashable, Fit | BootstrapFit], key: str | None = None) -> list[dict[str, Any]]:
    """JSON-ready rows, one per fit: formula, parameters by name with their intervals (None when not
    bootstrapped), bootstrap counts and the fit report; `key` names the field that holds the dict key."""
    rows = []
    for name, item in fits.items():
        boot = item if isinstance(item, BootstrapFit) else None
        fit = boot.fit if boot else item
        ci = {r.param: [r.lo, r.hi] for r in boot.summary().itertuples()} if boot else {}
        row = {key: name} if key else {}
        row |= {
            "law": fit.law.law.name,
            "formula": fit.law.label(),
            "params": {k: {"value": v, "ci": ci.get(k)} for k, v in fit.params.items()},
        }
        if boot:
            row["bootstrap"] = {"draws": len(boot.draws), "valid": len(boot.valid), "ci": boot.ci}
        rows.append(row | {"report": fit.report.to_dict()})
    return rows
