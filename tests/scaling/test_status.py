"""scaling.status: task states from records + scheduler info, error lines, progress, resubmission."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scaling import records
from scaling.executors import JobInfo
from scaling.grid import load_grid
from scaling.plan import SweepFile, Task, build_tasks
from scaling.records import Record
from scaling.status import progress, task_status

from .conftest import REPO, SMOKE, cli, csv_grid, write_csv_pool


@pytest.fixture
def sweep(tmp_path: Path) -> SweepFile:
    """The smoke sweep's tasks under an empty output dir, as if just submitted."""
    expansion = load_grid(SMOKE)
    return SweepFile.create(expansion, tmp_path, build_tasks(expansion), "slurm")


@pytest.mark.parametrize(
    ("info", "state", "detail"),
    [
        (None, "pending", "not submitted"),
        (JobInfo("UNKNOWN", True), "pending", "submitted"),
        (JobInfo("PENDING", True, "Dependency"), "pending", "Dependency"),
        (JobInfo("RUNNING", True), "running", ""),
        (JobInfo("RUNNING", True, restarts=1), "running", " (resumed after 1 requeue(s))"),
        (JobInfo("PENDING", True, "BeginTime", restarts=1), "requeued", "BeginTime"),
        (JobInfo("CANCELLED", False, "DependencyNeverSatisfied"), "failed", "job cancelled (DependencyNeverSatisfied)"),
        (JobInfo("TIMEOUT", False), "failed", "job timeout"),
    ],
)
def test_scheduler_states_map_to_task_states(sweep: SweepFile, info: JobInfo | None, state: str, detail: str):
    task = sweep.tasks[-1]
    if info is not None:
        sweep.add_job(task.id, "123_4", "slurm")
    status = task_status(sweep, task, info)
    assert (status.state, status.detail) == (state, detail)


def write_record(directory: Path, task: Task, **fields) -> None:
    """A record of `task` as its run would write it, with the given fields."""
    directory.mkdir(parents=True, exist_ok=True)
    Record(run_id=task.id, spec=task.spec.model_dump(mode="json"), **fields).write(directory)


def test_records_win_over_the_scheduler(sweep: SweepFile):
    task = sweep.tasks[-1]
    directory = sweep.out / "runs" / task.id
    directory.mkdir(parents=True)
    write_record(directory, task, status="failed", error="ValueError: boom")
    assert task_status(sweep, task, JobInfo("FAILED", False)).detail == "ValueError: boom"
    write_record(directory, task, status="done")
    assert task_status(sweep, task, JobInfo("FAILED", False)).state == "done"


def test_a_deleted_cache_is_done_once_every_run_it_steers_is_done(sweep: SweepFile):
    cache = next(t for t in sweep.tasks if t.role == "cache")
    steered = [t for t in sweep.tasks if cache.id in t.after]
    sweep.add_job(cache.id, "123_0", "slurm")
    ended = JobInfo("COMPLETED", False)
    assert task_status(sweep, cache, ended).state == "failed"  # no cache files, runs still to do
    for task in steered:
        write_record(sweep.out / "runs" / task.id, task, status="done")
    status = task_status(sweep, cache, ended)
    assert (status.state, status.detail) == ("done", "files removed; every run it steers is done")


def test_progress_comes_from_the_heartbeat_else_the_last_evaluation(sweep: SweepFile):
    task = sweep.tasks[-1]
    directory = sweep.out / "runs" / task.id
    directory.mkdir(parents=True)
    assert progress(sweep.out, task) == ""
    evaluation = {"step": 3, "samples_seen": 3 * task.spec.batch_size, "compute_target": 1.0, "compute_reference": 0.0}
    write_record(directory, task, status="running", evals=[evaluation])
    assert progress(sweep.out, task) == f"3/{task.spec.steps}"
    (directory / "progress.json").write_text(json.dumps({"step": 7, "steps": 32}))
    assert progress(sweep.out, task) == "7/32"


def test_status_of_a_finished_sweep(local_smoke: Path):
    result = cli("scaling.status", local_smoke)
    assert result.returncode == 0, result.stderr
    assert "6 tasks: pending 0, running 0, requeued 0, done 6, failed 0" in result.stdout


def test_a_reader_that_leaves_early_ends_status_quietly(sweep: SweepFile):
    """`python -m scaling.status <dir> | head`: no BrokenPipeError traceback, the shell's SIGPIPE code (141)."""
    sweep.save()
    read, write = os.pipe()
    subprocess.run(["head", "-n", "0"], stdin=read, check=True)  # a reader that has left before status writes
    os.close(read)
    try:
        status = [sys.executable, "-m", "scaling.status", str(sweep.out), "--all"]
        result = subprocess.run(status, stdout=write, stderr=subprocess.PIPE, text=True, cwd=REPO, timeout=120)
    finally:
        os.close(write)
    assert (result.returncode, result.stderr) == (141, "")


def test_a_failed_run_shows_its_error_and_completes_after_resubmission(tmp_path: Path):
    csv = tmp_path / "data" / "pool.csv"
    grid = csv_grid(tmp_path, csv, "local")
    out = tmp_path / "out"
    first = cli("scaling.sweep", grid)
    assert first.returncode == 1 and "data.path: cannot read CSV" in first.stdout
    status = cli("scaling.status", out)
    assert status.returncode == 1
    assert "failed 1" in status.stdout and f"ConfigError: data.path: cannot read CSV {csv}" in status.stdout
    write_csv_pool(csv.parent)
    again = cli("scaling.status", out, "--resubmit-failed")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "done 1, failed 0" in cli("scaling.status", out).stdout


def test_a_corrupt_record_is_a_failed_task_naming_its_file(sweep: SweepFile):
    task = sweep.tasks[-1]
    directory = sweep.out / "runs" / task.id
    directory.mkdir(parents=True)
    (directory / "record.json").write_text('{"run_id": "x", "evals": [{"st')
    for info in (None, JobInfo("COMPLETED", False)):
        status = task_status(sweep, task, info)
        assert status.state == "failed"
        assert status.detail.startswith(f"corrupt record {directory / 'record.json'}: invalid JSON")
    assert progress(sweep.out, task) == ""


def test_a_running_record_whose_process_died_is_failed(sweep: SweepFile):
    task = sweep.tasks[-1]
    directory = sweep.out / "runs" / task.id
    directory.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    for who, state in [(records.owner(), "pending"), ({**records.owner(), "pid": dead.pid}, "failed")]:
        write_record(directory, task, status="running", owner=who)
        status = task_status(sweep, task, None)
        assert status.state == state
    assert status.detail == f"its process {dead.pid} on {who['host']} died (killed?)"


class Planted:
    """What an attacker could leave in an out dir: unpickling it runs code (here: touches a file)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_status_never_unpickles_job_results_from_the_out_dir(sweep: SweepFile, tmp_path: Path):
    import pickle

    task = sweep.tasks[-1]
    sweep.add_job(task.id, "999999999", "local")  # a local job long gone
    sweep.save()
    logs = sweep.folder / "999999999"
    logs.mkdir(parents=True)
    marker = tmp_path / "code-ran"
    (logs / "999999999_0_result.pkl").write_bytes(pickle.dumps(("error", Planted(marker))))
    (logs / "999999999_0_log.err").write_text("Traceback (most recent call last):\nValueError: boom\nsubmitit done\n")
    result = cli("scaling.status", sweep.out)
    assert result.returncode == 1, result.stderr
    assert not marker.exists()
    assert "ValueError: boom" in result.stdout
