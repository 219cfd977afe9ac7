"""Fixtures: the paper's points, from the committed copy in results/paper/data."""

import os

import pandas as pd
import pytest

from .common import PAPER_CSV

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def paper() -> pd.DataFrame:
    return pd.read_csv(PAPER_CSV)
