"""The committed results are what their commands regenerate: every number of the summaries, from the records
and the paper's CSVs alone (figures are drawn from the same numbers)."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from analysis.baselines import BaselineOptions, baselines_table, write_baselines
from analysis.paper import paper_figures
from scaling.grid import load_grid
from scaling.plan import build_tasks
from scaling.sweep import analyse

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "results"
NOT_NUMBERS = {"figures", "source"}  # where the files went and which directory they came from


def same(ours: Any, committed: Any, where: str = "") -> None:
    """Equal structure and strings; numbers within float noise (another BLAS may round differently)."""
    if isinstance(committed, dict):
        assert isinstance(ours, dict) and set(ours) == set(committed), where
        for key in committed.keys() - NOT_NUMBERS:
            same(ours[key], committed[key], f"{where}.{key}")
    elif isinstance(committed, list):
        assert isinstance(ours, list) and len(ours) == len(committed), where
        for i, (a, b) in enumerate(zip(ours, committed, strict=True)):
            same(a, b, f"{where}[{i}]")
    elif isinstance(committed, float):
        assert math.isclose(ours, committed, rel_tol=1e-6, abs_tol=1e-12) or ours == committed, where
    else:
        assert ours == committed, where


def test_the_paper_summary_is_what_figures_paper_writes(tmp_path: Path):
    paper_figures(tmp_path, data_dir=RESULTS / "paper" / "data")
    name = "imagenet_summary.json"
    same(json.loads((tmp_path / name).read_text()), json.loads((RESULTS / "paper" / "figures" / name).read_text()))
    for name in ("baselines.md", "imagenet_selection_sensitivity.md", "imagenet_checklist.md"):
        assert (tmp_path / name).read_text() == (RESULTS / "paper" / "figures" / name).read_text()


@pytest.mark.slow
def test_the_cpu_study_summary_is_what_its_sweep_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    shutil.copytree(RESULTS / "cpu_study" / "runs", tmp_path / "results" / "cpu_study" / "runs")
    monkeypatch.chdir(tmp_path)  # the grid's out is relative: results/cpu_study
    expansion = load_grid(REPO / "sweeps" / "cpu_study.yaml")
    run_ids = {task.id for task in build_tasks(expansion) if task.role == "run"}
    analyse(expansion.grid, Path(expansion.grid.out).resolve(), run_ids)
    figures = Path("results/cpu_study/figures")
    committed = RESULTS / "cpu_study" / "figures"
    same(json.loads((figures / "summary.json").read_text()), json.loads((committed / "summary.json").read_text()))
    assert (figures / "summary.md").read_text() == (committed / "summary.md").read_text()


@pytest.mark.skipif(
    not (RESULTS / "cpu_baselines" / "figures" / "baselines.md").exists(), reason="no committed baselines table yet"
)
def test_the_cpu_baselines_table_is_what_figures_baselines_writes(tmp_path: Path):
    """`python -m analysis.figures baselines results/cpu_baselines` (its defaults) from the committed records."""
    write_baselines(baselines_table(RESULTS / "cpu_baselines", BaselineOptions()), tmp_path)
    committed = RESULTS / "cpu_baselines" / "figures"
    assert (tmp_path / "baselines.md").read_text() == (committed / "baselines.md").read_text()
    ours, theirs = (pd.read_csv(d / "baselines.csv") for d in (tmp_path, committed))
    pd.testing.assert_frame_equal(ours, theirs, rtol=1e-6)


DATA_EFFICIENCY = RESULTS / "cpu_data_efficiency"


def readme_command(n: int) -> list[str]:
    """The arguments of the study README's n-th `python -m analysis.data_efficiency` command."""
    command = (DATA_EFFICIENCY / "README.md").read_text().split("python -m analysis.data_efficiency ", n)[n]
    return command.split("\n", 1)[0].replace("\\", "").split()


@pytest.mark.slow
@pytest.mark.skipif(
    not (DATA_EFFICIENCY / "figures" / "summary.json").exists(), reason="the data-efficiency study has no summary yet"
)
def test_the_data_efficiency_summary_is_what_its_command_writes(tmp_path: Path):
    """n*(m), its slopes and L(N, D), regenerated from the records by the command of its README."""
    from analysis.data_efficiency import main as data_efficiency

    args = readme_command(1)
    assert args[0] == "results/cpu_data_efficiency" and args[-2] == "--out"
    assert data_efficiency([str(REPO / args[0]), *args[1:-1], str(tmp_path)]) == 0
    committed = DATA_EFFICIENCY / "figures"
    same(json.loads((tmp_path / "summary.json").read_text()), json.loads((committed / "summary.json").read_text()))


LENGTH_CHECK = RESULTS / "cpu_data_efficiency_length"


@pytest.mark.skipif(not (LENGTH_CHECK / "lengths.csv").exists(), reason="the length check has no table yet")
def test_the_length_check_table_is_what_its_command_writes(tmp_path: Path):
    """The length each pool of the data-efficiency study trains for, regenerated from the length check's records
    by the command of the study's README; the study's grid trains each pool for the length chosen there."""
    from analysis.data_efficiency import main as data_efficiency

    args = readme_command(2)
    assert args[0] == "results/cpu_data_efficiency_length" and "--lengths" in args and args[-2] == "--out"
    assert data_efficiency([str(REPO / args[0]), *args[1:-1], str(tmp_path)]) == 0
    ours, theirs = (pd.read_csv(d / "lengths.csv") for d in (tmp_path, LENGTH_CHECK))
    pd.testing.assert_frame_equal(ours, theirs)
    chosen = dict(zip(theirs["data.pool_size"], theirs["epochs"], strict=True))
    study = load_grid(REPO / "sweeps" / "cpu_data_efficiency.yaml")
    for spec in (*study.runs, *study.references):
        assert spec.samples_seen == chosen[spec.data.pool_size] * spec.data.pool_size, spec
