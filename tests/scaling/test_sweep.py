"""scaling.sweep: the plan, local execution of the smoke grid (both methods, in-sweep reference), skip-done."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from scaling.executors import local_slots, resolve_kind, slurm_available
from scaling.grid import load_grid
from scaling.plan import SweepFile, build_tasks
from scaling.records import load, read_record, run_dir
from scaling.runtime import Executor
from scaling.sweep import analyse

from .conftest import SMOKE, cli, job_ids


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path: Path):
    out = tmp_path / "out"
    result = cli("scaling.sweep", SMOKE, f"out={out}", "--dry-run", "--executor", "local")
    assert result.returncode == 0, result.stderr
    plan = result.stdout
    assert f"sweep smoke: 6 tasks, 6 to run -> {out}" in plan
    for row in ("reference  clip      w32-l1", "cache      -         w32-l1", "run        drrho     w48-l2"):
        assert row in plan
    assert "FLOPs; estimate:" in plan and "CPU-hours (at 33 GFLOP/s per run)" in plan
    assert "executor: local, " in plan and "dry run: nothing submitted" in plan
    assert not out.exists()


def test_local_sweep_runs_the_dag_for_both_methods(local_smoke: Path):
    sweep = SweepFile.load(local_smoke)
    assert {t.role for t in sweep.tasks} == {"reference", "cache", "run"}
    for task in sweep.tasks:
        if task.spec is None:
            continue
        record = read_record(run_dir(local_smoke, task.id))
        assert record.status == "done" and len(record.evals) == 2
        if task.spec.method == "drrho":
            assert record.reference.mode == "cache"
            assert record.reference.run_id == task.spec.reference.run.run_id
    frame = load(local_smoke, status="done")
    assert set(frame["method"]) == {"clip", "drrho"} and set(frame["model"]) == {"w32-l1", "w48-l2"}


def test_submitting_a_finished_grid_again_runs_nothing(local_smoke: Path):
    before = job_ids(local_smoke)
    result = cli("scaling.sweep", SMOKE, f"out={local_smoke}", "--executor", "local")
    assert result.returncode == 0, result.stderr
    assert "6 tasks, 0 to run" in result.stdout and "nothing to run" in result.stdout
    assert job_ids(local_smoke) == before


def test_debug_executor_runs_in_process(tmp_path: Path):
    from scaling.sweep import main

    out = tmp_path / "out"
    overrides = [f"out={out}", "axes.model=[w32-l1]", "axes.method=[clip]", "--executor", "debug"]
    assert main([str(SMOKE), *overrides]) == 0
    (task_id,) = job_ids(out)
    assert job_ids(out)[task_id][0].startswith("DEBUG_")
    assert read_record(run_dir(out, task_id)).status == "done"


def test_auto_never_picks_slurm_just_because_srun_exists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "srun").write_text("#!/bin/sh\nexit 1\n")
    (fake / "srun").chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{Path(sys.executable).parent}")
    assert not slurm_available()
    assert resolve_kind("auto") == "local"


def test_local_slots_split_the_cores():
    cores = len(os.sched_getaffinity(0))
    assert local_slots(Executor(), "local") == (cores, 1)
    assert local_slots(Executor(parallel=1), "local") == (1, cores)
    assert local_slots(Executor(), "debug") == (1, 1)


def test_the_analysis_block_fits_the_finished_runs_and_writes_the_figures(
    local_smoke: Path, capsys: pytest.CaptureFixture
):
    expansion = load_grid(SMOKE, ["analysis.x=compute_target", "analysis.frontier=all", "analysis.bootstrap=50"])
    summary = analyse(expansion.grid, local_smoke, {spec.run_id for spec in expansion.runs})
    printed = capsys.readouterr().out
    assert summary is not None, printed
    assert {law["level"] for law in summary["laws"]} == {"clip", "drrho"}
    assert (local_smoke / "figures" / "summary.md").exists()
    assert f"figures and summary: {local_smoke / 'figures'}" in printed


def test_sweep_json_holds_the_plan_and_the_jobs(local_smoke: Path):
    data = json.loads((local_smoke / "sweep.json").read_text())
    assert data["executor"]["kind"] == "local"
    assert [t["role"] for t in data["tasks"]] == ["reference", "cache", "run", "run", "run", "run"]
    assert set(data["jobs"]) == {t["id"] for t in data["tasks"]}


def test_the_dag_caches_once_per_pool_and_online_runs_wait_for_the_reference():
    cached = build_tasks(load_grid(SMOKE))
    (reference,) = [t for t in cached if t.role == "reference"]
    (cache,) = [t for t in cached if t.role == "cache"]
    assert cache.after == (reference.id,)
    assert {t.after for t in cached if t.role == "run"} == {(), (cache.id,)}
    online = build_tasks(load_grid(SMOKE, ["methods.drrho.reference.mode=online"]))
    assert [t.role for t in online].count("cache") == 0
    assert {t.after for t in online if t.role == "run"} == {(), (reference.id,)}
