"""Point selection: which runs a scaling law is fitted to.

The rule changes the exponent by up to 0.01–0.02 on the same data (pitfall P5), so it is named in every fit
report and re-run inside every bootstrap draw. Rules take plain arrays (x = compute, y = error) and return
the selected positions, plus the abscissa to fit (Cherti's bins fit at the bin centre, not at the run).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Selection:
    """Selected positions into the input arrays (in increasing x) and the (x, y) to fit."""

    index: np.ndarray
    x: np.ndarray
    y: np.ndarray


def _take(x: np.ndarray, y: np.ndarray, index: np.ndarray, x_fit: np.ndarray | None = None) -> Selection:
    order = np.argsort(x[index], kind="stable")
    index = index[order]
    return Selection(index, x[index] if x_fit is None else x_fit[order], y[index])


def _running_min_positions(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Positions (sorted by x, ties by y) whose y is strictly below every y at smaller x."""
    order = np.lexsort((y, x))
    ys = y[order]
    previous_best = np.minimum.accumulate(np.concatenate(([np.inf], ys[:-1])))
    return order[ys < previous_best]


def _bin_of(position: np.ndarray, bins: int) -> np.ndarray:
    """Bin number from a position measured in bin widths; a point on an edge goes to the upper bin, even
    when rounding puts it a hair below."""
    return np.minimum(np.floor(position + 1e-9).astype(int), bins - 1)


def _min_per_bin(y: np.ndarray, bins: np.ndarray) -> np.ndarray:
    """Position of the lowest y in each occupied bin."""
    order = np.lexsort((y, bins))
    first = np.concatenate(([True], bins[order][1:] != bins[order][:-1]))
    return order[first]


@dataclass(frozen=True)
class AllPoints:
    """Every run: the reference fit to report beside any frontier."""

    name: str = "all"

    def select(self, x: np.ndarray, y: np.ndarray) -> Selection:
        return _take(x, y, np.arange(len(x)))


@dataclass(frozen=True)
class RunningMin:
    """Compute-efficient frontier: runs that beat every cheaper run (reproduces Wei et al.'s OpenCLIP law)."""

    name: str = "running-min"

    def select(self, x: np.ndarray, y: np.ndarray) -> Selection:
        return _take(x, y, _running_min_positions(x, y))


@dataclass(frozen=True)
class ChertiBins:
    """Cherti et al. (2023): K equal-width bins over [min log10 C, max log10 C + 0.1]; per bin the lowest
    error, fitted at the bin centre. Kept for reproduction; the centre abscissa is a known bias source."""

    bins: int = 5

    @property
    def name(self) -> str:
        return f"bins:{self.bins}"

    def select(self, x: np.ndarray, y: np.ndarray) -> Selection:
        lx = np.log10(x)
        lo, hi = lx.min(), lx.max() + 0.1
        width = (hi - lo) / self.bins
        bins = _bin_of((lx - lo) / width, self.bins)
        index = _min_per_bin(y, bins)
        return _take(x, y, index, 10.0 ** (lo + (bins[index] + 0.5) * width))


@dataclass(frozen=True)
class ParetoBin:
    """Nezhurina et al. (2025) `pareto_bin`: geometric bins in C, lowest error per bin, kept only while it
    improves on the running minimum, plus the largest-C run if it improves.

    Their bin count floor(log2(C_max / 1500 GFLOP)) is tied to their units; by default we use one bin per
    doubling of the data's own compute range, floor(log2(C_max / C_min)), so the rule is unit-free.
    """

    bins: int | None = None

    @property
    def name(self) -> str:
        return "pareto-bin" if self.bins is None else f"pareto-bin:{self.bins}"

    def select(self, x: np.ndarray, y: np.ndarray) -> Selection:
        lo, hi = x.min(), x.max()
        if hi == lo:
            return _take(x, y, np.array([np.argmin(y)]))
        k = self.bins or max(1, math.floor(math.log2(hi / lo)))
        inner = np.flatnonzero(x < hi)
        bins = _bin_of(np.log(x[inner] / lo) / np.log(hi / lo) * k, k)
        candidates = inner[_min_per_bin(y[inner], bins)] if inner.size else inner
        top = np.flatnonzero(x == hi)
        candidates = np.concatenate((candidates, [top[np.argmin(y[top])]]))
        kept = candidates[_running_min_positions(x[candidates], y[candidates])]
        return _take(x, y, kept)


Rule = AllPoints | RunningMin | ChertiBins | ParetoBin
RULE_NAMES = "all, running-min, bins:K, pareto-bin[:K]"


def get_rule(name: str) -> Rule:
    """Parse a rule name: `all`, `running-min`, `bins:K`, `pareto-bin` or `pareto-bin:K`."""
    head, sep, count = name.partition(":")
    plain = {"all": AllPoints, "running-min": RunningMin, "pareto-bin": ParetoBin}
    counted = {"bins": ChertiBins, "pareto-bin": ParetoBin}
    if not sep and head in plain:
        return plain[head]()
    if sep and head in counted and count.isdigit() and int(count) > 0:
        return counted[head](int(count))
    raise ValueError(f"unknown frontier {name!r} (choose {RULE_NAMES})")


def select_many(rule: Rule, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apply `rule` to each row of (S, K) arrays (NaN y = absent).

    Returns left-packed positions into each row, the abscissa to fit and 0/1 weights (0 = padding); the
    bootstrap calls it so that selection is redone in every draw.
    """
    index, x_fit, weight = np.zeros(x.shape, dtype=int), np.ones_like(x), np.zeros_like(x)
    for s in range(x.shape[0]):
        valid = np.flatnonzero(np.isfinite(y[s]))
        chosen = rule.select(x[s, valid], y[s, valid])
        m = len(chosen.index)
        index[s, :m], x_fit[s, :m], weight[s, :m] = valid[chosen.index], chosen.x, 1.0
    return index, x_fit, weight
