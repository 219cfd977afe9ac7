"""Paths, synthetic tables and command lines shared by the analysis tests."""

import contextlib
import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.figures import main as figures_main
from analysis.study import FitOptions, Study

REPO = Path(__file__).resolve().parents[2]
PAPER_DATA = REPO / "results" / "paper" / "data"
PAPER_CSV = PAPER_DATA / "drrho_scaling_imagenet.csv"
PAPER_COLUMNS = {"x": "compute_gflops", "y": "imagenet_top1", "y_transform": "error-from-acc-pct"}
# The same table and columns as command-line arguments (without and with the y transform).
PAPER_XY_ARGS = (str(PAPER_CSV), "--x", PAPER_COLUMNS["x"], "--y", PAPER_COLUMNS["y"])
PAPER_ARGS = (*PAPER_XY_ARGS, "--y-transform", PAPER_COLUMNS["y_transform"])
ROLES = ("by", "group", "samples", "model", "size", "marker", "point_size")


def study(table: pd.DataFrame, x: str, y: str, **given: Any) -> Study:
    """`Study.of` with its column roles and fit options given as keywords alike (tests read shorter)."""
    roles = {k: given.pop(k) for k in ROLES if k in given}
    return Study.of(table, x, y, options=FitOptions(**given), **roles)


def paper_study(table: pd.DataFrame, **given: Any) -> Study:
    """The paper's points: top-1 accuracy (percent) fitted as an error against GFLOPs × samples."""
    return study(table, **PAPER_COLUMNS, **given)


def two_method_grid(seed: int = 0, noise: float = 0.01, seeds: int = 1) -> pd.DataFrame:
    """Synthetic CLIP-like grid: 3 archs × 4 sample counts, a baseline and a treatment whose law is the
    baseline's at twice the compute (so k(E*) = 2 exactly without noise)."""
    rng = np.random.default_rng(seed)
    rows = []
    for arch, gflops in (("S", 5.0), ("M", 20.0), ("L", 80.0)):
        for samples in (1e8, 2e8, 4e8, 8e8):
            for method, factor in (("base", 1.0), ("treat", 2.0)):
                for s in range(seeds):
                    c = gflops * samples
                    err = 6.0 * (factor * c) ** -0.1 * np.exp(rng.normal(0.0, noise))
                    rows.append(
                        {
                            "method": method,
                            "arch": arch,
                            "gflops": gflops,
                            "samples": samples,
                            "compute": c,
                            "seed": s,
                            "error": err,
                        }
                    )
    return pd.DataFrame(rows)


def figures(*args: str) -> str:
    """`python -m analysis.figures <args>` in this process, which must exit 0; what it printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert figures_main(list(args)) == 0
    return printed.getvalue()
