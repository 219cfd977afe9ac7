"""Fit speed against naive peers measured in the same run (speed goals live here, not in unit tests).

    python -m bench.fit_speed [--draws 4000] [--naive-starts 300] [--seed 0]

1. Paired bootstrap (4000 draws) on the 22 points of the DRRho-CLIP paper: running-min frontier + OLS per
   method in every draw. Goal < 5 s. Peer: a per-draw Python loop (running minimum, np.polyfit).
2. Chinchilla form on 250 synthetic points from Hoffmann et al.'s 4500-start grid. Goal < 30 s. Peer:
   scipy.optimize.minimize(L-BFGS-B) looped over starts with the same objective and analytic gradient,
   timed on --naive-starts evenly spaced starts and scaled to 4500 (marked "extrapolated").
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import minimize

from analysis.bootstrap import bootstrap_laws
from analysis.estimate import fit_arrays, huber_objective
from analysis.laws import get_law
from analysis.paper import paper_study
from analysis.study import FitOptions

PAPER_CSV = Path(__file__).resolve().parents[1] / "results" / "paper" / "data" / "drrho_scaling_imagenet.csv"
TRUTH = {"E": 1.8172, "A": 477.83, "B": 2143.40, "alpha": 0.3473, "beta": 0.3672}  # Besiroglu et al. 2024


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def naive_paired_bootstrap(df: pd.DataFrame, draws: int, seed: int) -> np.ndarray:
    """The straightforward loop: per draw and method, resample configurations, running min, polyfit."""
    df = df.assign(error=1 - df["imagenet_top1"] / 100)
    table = df.pivot_table(index=["arch", "samples_seen"], columns="method", values=["compute_gflops", "error"])
    rng = np.random.default_rng(seed)
    slopes = np.empty((draws, 2))
    for draw in range(draws):
        sample = table.iloc[rng.integers(0, len(table), len(table))]
        for j, method in enumerate(("OpenCLIP", "DRRho-CLIP")):
            points = sorted(zip(sample[("compute_gflops", method)], sample[("error", method)], strict=True))
            best, keep = np.inf, []
            for c, e in points:
                if e < best:
                    keep.append((c, e))
                    best = e
            c, e = np.array(keep).T
            slopes[draw, j] = np.polyfit(np.log(c), np.log(e), 1)[0] if len(keep) > 1 else np.nan
    return slopes


def chinchilla_points(n_points: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n = 10 ** rng.uniform(7.5, 10.5, n_points)
    d = 10 ** rng.uniform(9.0, 12.0, n_points)
    loss = get_law("chinchilla").predict(TRUTH, n, d) * np.exp(rng.normal(0.0, 0.01, n_points))
    return n, d, loss


def naive_multistart(n: np.ndarray, d: np.ndarray, loss: np.ndarray, starts: np.ndarray) -> float:
    """scipy L-BFGS-B from each start in turn; returns the best objective."""
    fg = huber_objective(get_law("chinchilla"), (n[None], d[None]), np.log(loss)[None], np.ones((1, n.size)))
    one = np.zeros(1, dtype=int)

    def fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
        f, g = fg(theta[None], one)
        return float(f[0]), g[0]

    return min(minimize(fun, s, jac=True, method="L-BFGS-B").fun for s in starts)


def bench_bootstrap(draws: int, seed: int) -> tuple:
    """Row for the paired bootstrap, plus both methods' b-interval widths from ours and from the peer."""
    paper = pd.read_csv(PAPER_CSV)
    study = paper_study(paper, FitOptions(draws=draws, seed=seed))
    ours, bs = timed(lambda: bootstrap_laws(study))
    naive, slopes = timed(lambda: naive_paired_bootstrap(paper, draws, seed))
    widths = {
        "ours": [np.subtract(*bs.fits[m].interval("b")[::-1]) for m in ("OpenCLIP", "DRRho-CLIP")],
        "naive": [np.subtract(*np.nanquantile(s, [0.975, 0.025])) for s in slopes.T],
    }
    return (f"paired bootstrap, {draws} draws, 22 paper points", ours, 5.0, naive, ""), widths


def bench_chinchilla(naive_starts: int, seed: int) -> tuple:
    """Row for the 4500-start Chinchilla fit, plus the fit and the peer's best objective."""
    n, d, loss = chinchilla_points(250, seed)
    ours, fit = timed(lambda: fit_arrays("chinchilla", 6 * n * d, loss, inputs=(n, d), frontier="all"))
    grid = get_law("chinchilla").start_grid(0.0)
    subset = grid[np.linspace(0, len(grid) - 1, naive_starts).astype(int)]
    naive, naive_best = timed(lambda: naive_multistart(n, d, loss, subset))
    scale = len(grid) / len(subset)
    note = f"naive extrapolated from {len(subset)} starts" if scale > 1 else ""
    return (f"chinchilla, 250 points, {len(grid)} starts", ours, 30.0, naive * scale, note), fit, naive_best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=4000)
    parser.add_argument("--naive-starts", type=int, default=300, help="starts the naive multi-start runs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    boot_row, widths = bench_bootstrap(args.draws, args.seed)
    fit_row, fit, naive_best = bench_chinchilla(args.naive_starts, args.seed)
    table = pd.DataFrame([boot_row, fit_row], columns=["what", "seconds", "goal", "naive_seconds", "note"])
    table["speedup"] = table["naive_seconds"] / table["seconds"]
    table["meets_goal"] = table["seconds"] < table["goal"]
    print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    print(
        f"\nb-interval widths (independent draws, should be close): ours {np.round(widths['ours'], 4)}, "
        f"naive {np.round(widths['naive'], 4)}"
    )
    print(
        f"chinchilla objective: ours {fit.report.objective:.7g} (converged {fit.report.converged}), naive "
        f"best of its starts {naive_best:.7g}; alpha {fit.params['alpha']:.4f}, beta {fit.params['beta']:.4f}"
    )


if __name__ == "__main__":
    main()
