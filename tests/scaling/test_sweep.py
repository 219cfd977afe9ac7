"""scaling.sweep: the plan, local execution of the smoke grid (both methods, in-sweep reference), skip-done."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
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
    for role, method, model in (("reference", "clip", "w32-l1"), ("cache", "-", "w32-l1"), ("run", "drrho", "w48-l2")):
        assert f"  {role:<10} {method:<16} {model}" in plan
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


def test_a_truncated_record_is_named_and_its_run_redone(local_smoke: Path, tmp_path: Path):
    out = tmp_path / "out"
    shutil.copytree(local_smoke, out)
    task = next(t for t in SweepFile.load(out).tasks if t.role == "run" and t.spec.method == "clip")
    path = run_dir(out, task.id) / "record.json"
    path.write_bytes(path.read_bytes()[:100])
    named = f"corrupt record {path}: invalid JSON"

    dry = cli("scaling.sweep", SMOKE, f"out={out}", "--executor", "local", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "6 tasks, 1 to run" in dry.stdout and named in dry.stdout
    status = cli("scaling.status", out)
    assert status.returncode == 1 and "done 5, failed 1" in status.stdout and named in status.stdout
    table = load(out)
    assert task.id not in set(table["run_id"])

    again = cli("scaling.sweep", SMOKE, f"out={out}", "--executor", "local")
    assert again.returncode == 0, again.stdout + again.stderr
    assert read_record(path).status == "done"
    assert "done 6, failed 0" in cli("scaling.status", out).stdout


@pytest.fixture
def small_disk(tmp_path: Path):
    """A real 600 kB file system (tmpfs; needs root): room for a sweep's files, not for a run's checkpoint."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def _tiny_grid(tmp_path: Path, out: Path) -> Path:
    grid = tmp_path / "tiny.yaml"
    grid.write_text(
        f"name: tiny\nout: {out}\nexecutor: {{kind: local}}\naxes: {{seed: [0, 1]}}\n"
        "base: {model: w32-l1, data: {pool_size: 256, eval_size: 64}, batch_size: 32, samples_seen: 512}\n"
    )
    return grid


def test_a_full_disk_is_one_line_per_failure_and_every_job_is_recorded(small_disk: Path, tmp_path: Path):
    out = small_disk / "out"
    result = cli("scaling.sweep", _tiny_grid(tmp_path, out))
    assert result.returncode == 1 and "Traceback" not in result.stdout + result.stderr
    sweep = SweepFile.load(out)
    failed = [line for line in result.stdout.splitlines() if line.startswith("failed ")]
    assert sorted(failed) == sorted(
        f"failed {t.id}: no space left on device: {run_dir(out, t.id) / 'checkpoint.pt'}" for t in sweep.tasks
    )
    assert set(job_ids(out)) == {t.id for t in sweep.tasks}  # every job it started is in sweep.json


def test_an_orchestrator_that_cannot_write_says_so_in_one_line(small_disk: Path, tmp_path: Path):
    (small_disk / "filler").write_bytes(bytes(shutil.disk_usage(small_disk).free))
    with pytest.raises(OSError, match="No space left on device"):
        (small_disk / "more").write_bytes(bytes(4096))
    out = small_disk / "out"
    result = cli("scaling.sweep", _tiny_grid(tmp_path, out))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [f"error: no space left on device: {out / '.sweep.lock'}"]


def test_sweep_json_records_a_job_even_once_the_disk_is_full(small_disk: Path):
    expansion = load_grid(SMOKE, [f"out={small_disk / 'out'}"])
    sweep = SweepFile.create(expansion, small_disk / "out", build_tasks(expansion), "local")
    sweep.save()  # keeps a reserve beside sweep.json
    free = shutil.disk_usage(small_disk).free
    (small_disk / "filler").write_bytes(bytes(free - 1024))
    sweep.add_job(sweep.tasks[0].id, "4242", "local")
    with pytest.raises(OSError, match="No space left on device"):
        sweep.save()
    assert job_ids(small_disk / "out")[sweep.tasks[0].id] == ["4242"]


def test_a_stale_lock_of_a_dead_orchestrator_is_taken_over(tmp_path: Path):
    from scaling.lock import LOCK, hold

    (tmp_path / LOCK).write_text(json.dumps({"pid": 999999999, "host": "gone", "since": 0}))
    with hold(tmp_path):  # flock dies with its holder: nothing stale remains
        assert json.loads((tmp_path / LOCK).read_text())["pid"] == os.getpid()


def test_one_orchestrator_per_out_dir_and_a_killed_one_is_adopted(tmp_path: Path):
    """A second sweep on the same dir refuses, naming the holder; after the orchestrator is SIGKILLed, a re-run
    adopts its job still running, waits for it and runs the analysis."""
    import signal
    import time

    from .conftest import REPO, wait_until

    out = tmp_path / "out"
    grid = tmp_path / "g.yaml"
    grid.write_text(
        f"name: adopt\nout: {out}\nexecutor: {{kind: local}}\nanalysis: {{y: zeroshot_error.colour_shape}}\n"
        "base: {model: w32-l1, data: {pool_size: 512, eval_size: 64}, batch_size: 32, samples_seen: 9600}\n"
    )
    first = subprocess.Popen(
        [sys.executable, "-m", "scaling.sweep", str(grid)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: (out / "sweep.json").exists() and job_ids(out), 120, 0.2, "the first job")
        second = cli("scaling.sweep", grid)
        assert second.returncode == 2
        assert second.stderr.startswith(f"error: {out}: another sweep is running here (pid {first.pid} on ")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    ((task_id, (job,)),) = job_ids(out).items()
    time.sleep(0.5)
    adopted = cli("scaling.sweep", grid)
    assert adopted.returncode == 0, adopted.stdout + adopted.stderr
    assert "1 task(s) already queued or running" in adopted.stdout
    assert "nothing to run, waiting for the task(s) in flight" in adopted.stdout
    assert "analysis: skipped" in adopted.stdout  # it ran the analysis (one run is too few to fit)
    assert read_record(run_dir(out, task_id)).status == "done" and job_ids(out)[task_id] == [job]


def test_overrides_may_follow_the_flags(tmp_path: Path, capsys: pytest.CaptureFixture):
    from scaling.sweep import main
    from scaling.train import parse_args as train_args

    out = tmp_path / "out"
    assert main([str(SMOKE), "--dry-run", "--executor", "local", f"out={out}", "axes.model=[w32-l1]"]) == 0
    assert f"sweep smoke: 4 tasks, 4 to run -> {out}" in capsys.readouterr().out
    args = train_args(["run.yaml", "--out", "x", "optim.lr=1e-3", "--no-progress", "samples_seen=512"])
    assert args.overrides == ["optim.lr=1e-3", "samples_seen=512"] and args.no_progress


SYNTHETIC_GRID = """\
name: synthetic
out: /nonexistent/synthetic
base: {data: {pool_size: 20000}, batch_size: 256, optim: {lr: 2.0e-3}}
axes:
  method: [clip, drrho]
  model: [w32-l1, w48-l2, w64-l2, w96-l3]
  samples_seen: [25600, 51200, 102400, 204800]
models: {w96-l3: {optim: {lr: 1.0e-3}}}
methods:
  drrho: {reference: {train: {model: w32-l1, data: {seed: 1}, samples_seen: 51200}, mode: cache}}
evaluation: {points: 4}
analysis: {x: compute_target, y: zeroshot_error.colour_shape}
"""


@pytest.fixture
def synthetic_sweep(tmp_path: Path) -> tuple[Path, Path]:
    """(grid, records): the records of tests/analysis/synthetic_records.py, run on every cell of the grid but
    its 204,800-sample column; the grid's out is elsewhere, the command line points it at the records."""
    from tests.analysis.synthetic_records import write_sweep

    grid = tmp_path / "grid.yaml"
    grid.write_text(SYNTHETIC_GRID)
    return grid, write_sweep(tmp_path / "records").root


def test_next_chooses_unrun_cells_of_the_grid_from_its_records(synthetic_sweep, capsys: pytest.CaptureFixture):
    from scaling.sweep import main

    grid, records = synthetic_sweep
    before = sorted((records / "runs").iterdir())
    assert main([str(grid), "--next", "3e13", f"out={records}"]) == 0
    printed = capsys.readouterr().out
    assert "target delta-b: 16 simulated outcomes x 200 bootstrap draws" in printed
    assert f"wrote {records / 'next.yaml'}" in printed
    expansion = load_grid(records / "next.yaml")
    assert expansion.grid.out == str(records) and expansion.grid.analysis is None
    assert {r.samples_seen for r in expansion.runs} == {204_800}  # the grid's only unrun cells
    assert {r.method for r in expansion.runs} == {"clip", "drrho"}
    chosen = {r.model for r in expansion.runs}
    assert chosen and chosen <= {"w32-l1", "w48-l2", "w64-l2", "w96-l3"}
    spent = float(printed.split("spent ")[1].split(" of ")[0])
    assert 0 < spent <= 3e13
    assert sorted((records / "runs").iterdir()) == before  # nothing trained


def test_next_on_a_fully_run_grid_extends_its_axes(synthetic_sweep, capsys: pytest.CaptureFixture):
    from scaling.sweep import main

    grid, records = synthetic_sweep
    run = ["axes.samples_seen=[25600,51200,102400]", f"out={records}"]
    assert main([str(grid), *run, "--next", "1e12", "--target", "exponent:drrho"]) == 0  # 2 cells affordable
    printed = capsys.readouterr().out
    assert "has run: the candidates are its axes extended one step" in printed
    done = {(r.model, r.samples_seen, r.optim.lr) for r in load_grid(grid, run).runs}
    chosen = {(r.model, r.samples_seen, r.optim.lr) for r in load_grid(records / "next.yaml").runs}
    assert chosen and not chosen & done  # new cells: an lr one step beyond 2e-3 (samples 204,800 costs more)


def test_next_with_a_budget_too_small_is_one_line(synthetic_sweep, capsys: pytest.CaptureFixture):
    from scaling.sweep import main

    grid, records = synthetic_sweep
    with pytest.raises(SystemExit) as exit_:
        main([str(grid), "--next", "1e9", f"out={records}"])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1
    assert err.startswith("error: --next: no candidate fits the budget 1e+09 FLOPs")
    assert not (records / "next.yaml").exists()
