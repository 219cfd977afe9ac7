"""The committed WSD re-run of the CPU study: its summary is what its sweep's analysis writes from the committed
records, and its comparison with the cosine study is what analysis.compare_studies writes from both."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from analysis.compare_studies import compare_studies
from scaling.grid import load_grid
from scaling.plan import build_tasks
from scaling.sweep import analyse
from tests.results.test_committed import REPO, RESULTS, same

WSD = RESULTS / "cpu_study_wsd"


@pytest.mark.slow
def test_the_wsd_study_summary_is_what_its_sweep_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    shutil.copytree(WSD / "runs", tmp_path / "results" / "cpu_study_wsd" / "runs")
    monkeypatch.chdir(tmp_path)  # the grid's out is relative: results/cpu_study_wsd
    expansion = load_grid(REPO / "sweeps" / "cpu_study_wsd.yaml")
    run_ids = {task.id for task in build_tasks(expansion) if task.role == "run"}
    analyse(expansion.grid, Path(expansion.grid.out).resolve(), run_ids)
    figures, committed = Path("results/cpu_study_wsd/figures"), WSD / "figures"
    same(json.loads((figures / "summary.json").read_text()), json.loads((committed / "summary.json").read_text()))
    assert (figures / "summary.md").read_text() == (committed / "summary.md").read_text()


def test_the_comparison_with_the_cosine_study_is_what_compare_studies_writes(tmp_path: Path):
    result = compare_studies(RESULTS / "cpu_study", WSD, tmp_path, ("cosine", "wsd"))
    committed = WSD / "comparison"
    same(
        json.loads((tmp_path / "comparison.json").read_text()), json.loads((committed / "comparison.json").read_text())
    )
    assert (tmp_path / "comparison.md").read_text() == (committed / "comparison.md").read_text()
    records = [json.loads(p.read_text()) for p in (WSD / "runs").glob("*/record.json")]
    assert any((r.get("wsd") or {}).get("role") == "trunk" for r in records)  # trunks are costs, not points
    assert result["cost"]["wsd"]["runs"] == sum(r["status"] == "done" for r in records)
