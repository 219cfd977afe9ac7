"""Sweeps on a REAL SLURM cluster (no mocks): results equal local ones, the DAG and array parallelism hold,
preempted runs resume exactly, failures show and resubmit, cancel works. Skipped when no controller answers.

CI starts the cluster first: `bash ../shared/slurm/local-up.sh` (partitions debug*, and urgent which
preempts debug with REQUEUE + USR2, GraceTime 20 s). Every wait is bounded.
"""

from __future__ import annotations

import json
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from scaling.plan import SweepFile
from scaling.status import collect

from .conftest import SMOKE, cli, csv_grid, job_ids, metrics, wait_until, write_csv_pool

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm")]


def sacct_rows(ids: list[str], *fields: str, history: bool = False) -> list[list[str]]:
    masters = ",".join(sorted({i.split("_")[0] for i in ids}))
    command = ["sacct", "-n", "-P", "-X", "-j", masters, "-o", ",".join(["JobID", *fields])]
    out = subprocess.run([*command, *(["-D"] if history else [])], capture_output=True, text=True, timeout=60)
    return [line.split("|") for line in out.stdout.splitlines()]


def run_times(ids: list[str]) -> dict[str, tuple[datetime, datetime]] | None:
    """Start and end of each finished job, once sacct knows them all (it lags the controller a little)."""
    rows = {
        job: (start, end) for job, start, end, state in sacct_rows(ids, "Start", "End", "State") if state == "COMPLETED"
    }
    if not set(ids) <= set(rows):
        return None
    return {job: (datetime.fromisoformat(rows[job][0]), datetime.fromisoformat(rows[job][1])) for job in ids}


def most_at_once(intervals: list[tuple[datetime, datetime]]) -> int:
    return max(sum(s < end and start < e for s, e in intervals) for start, end in intervals)


def states(out: Path) -> list[str]:
    return [s.state for s in collect(SweepFile.load(out))]


def test_smoke_on_slurm_equals_local_follows_the_dag_and_array_parallelism(local_smoke: Path, tmp_path: Path):
    out = tmp_path / "out"
    args = [SMOKE, f"out={out}", "executor.array_parallelism=1", "--executor", "slurm"]
    first = cli("scaling.sweep", *args)
    assert first.returncode == 0 and "submitted 6 task(s)" in first.stdout, first.stdout + first.stderr
    in_flight = cli("scaling.sweep", *args)
    assert "nothing to run" in in_flight.stdout and "already queued or running" in in_flight.stdout
    wait_until(lambda: set(states(out)) == {"done"}, timeout=420, every=3, what="the smoke sweep on SLURM")

    assert metrics(out) == metrics(local_smoke)  # same specs, same ids, same numbers on both executors

    history = job_ids(out)
    assert all(len(jobs) == 1 for jobs in history.values())  # the in-flight resubmission added nothing
    job_of = {task: jobs[0] for task, jobs in history.items()}
    times = wait_until(lambda: run_times(list(job_of.values())), timeout=60, what="sacct times")
    sweep = SweepFile.load(out)
    for task in sweep.tasks:
        for dep in task.after:  # reference → cache → steered runs: each starts after what it waits for ended
            assert times[job_of[task.id]][0] >= times[job_of[dep]][1]
    arrays: dict[str, list] = {}
    for job in job_of.values():
        arrays.setdefault(job.split("_")[0], []).append(times[job])
    assert any(len(a) > 1 for a in arrays.values())
    assert all(most_at_once(intervals) == 1 for intervals in arrays.values())

    again = cli("scaling.sweep", *args)
    assert "nothing to run" in again.stdout and job_ids(out) == history


def test_a_preempted_run_resumes_from_its_checkpoint_to_the_uninterrupted_result(tmp_path: Path):
    import torch

    from scaling.run import run

    out = tmp_path / "out"
    grid = tmp_path / "long.yaml"
    grid.write_text(
        f"""name: preempt
out: {out}
base: {{model: w32-l1, data: {{pool_size: 1024}}, batch_size: 32, samples_seen: 25600}}
evaluation: {{points: 2, size: 200}}
executor: {{kind: slurm, partition: debug, timeout_min: 5, mem_gb: 2, checkpoint_every_s: 2}}
"""
    )
    assert cli("scaling.sweep", grid).returncode == 0
    (task,) = SweepFile.load(out).tasks
    (job,) = job_ids(out)[task.id]
    progress = out / "runs" / task.id / "progress.json"

    def at_step() -> int:
        return json.loads(progress.read_text())["step"] if progress.exists() else 0

    wait_until(lambda: at_step() >= task.spec.steps // 8, timeout=120, every=0.5, what="the run to be training")
    urgent = ["sbatch", "--parsable", "-p", "urgent", "-c", "2", "--mem=1G", "-t", "2", "-o", "/dev/null"]
    subprocess.run([*urgent, "--wrap", "sleep 5"], check=True, capture_output=True, timeout=30)
    seen = set()

    def requeued() -> bool:
        seen.update(states(out))
        return "requeued" in seen

    wait_until(requeued, timeout=90, every=0.5, what="status to show the preempted run as requeued")
    checkpoint = torch.load(out / "runs" / task.id / "checkpoint.pt", weights_only=True)
    assert 0 < checkpoint["state"]["step"] < task.spec.steps
    wait_until(lambda: states(out) == ["done"], timeout=300, every=2, what="the resumed run to finish")
    attempts = sacct_rows([job], "State", history=True)
    assert len(attempts) >= 2 and attempts[0][1] in ("PREEMPTED", "REQUEUED")

    torch.set_num_threads(1)  # as the SLURM job ran (cpus_per_task=1)
    alone = run(task.spec, tmp_path / "uninterrupted", progress=False)
    strip = [e.model_dump(exclude={"wall_s"}) for e in alone.evals]
    assert metrics(out)[task.id] == strip


def test_a_failed_run_shows_its_error_and_completes_after_resubmission(tmp_path: Path):
    csv = tmp_path / "data" / "pool.csv"
    out = tmp_path / "out"
    assert cli("scaling.sweep", csv_grid(tmp_path, csv, "slurm")).returncode == 0
    wait_until(lambda: states(out) == ["failed"], timeout=120, every=2, what="the run to fail")
    status = cli("scaling.status", out)
    assert status.returncode == 1 and f"ConfigError: data.path: cannot read CSV {csv}" in status.stdout
    write_csv_pool(csv.parent)
    again = cli("scaling.status", out, "--resubmit-failed")
    assert again.returncode == 0 and "resubmitting" in again.stdout, again.stdout + again.stderr
    wait_until(lambda: states(out) == ["done"], timeout=180, every=2, what="the resubmitted run to finish")
    assert [len(jobs) for jobs in job_ids(out).values()] == [2]


def test_cancel_stops_every_queued_job(tmp_path: Path):
    out = tmp_path / "out"
    held = cli("scaling.sweep", SMOKE, f"out={out}", "executor.sbatch.hold=true", "--executor", "slurm")
    assert held.returncode == 0, held.stderr
    assert set(states(out)) == {"pending"}
    cancelled = cli("scaling.status", out, "--cancel")
    assert cancelled.returncode == 0 and "cancelled 6 job(s)" in cancelled.stdout
    wait_until(lambda: set(states(out)) == {"failed"}, timeout=60, what="cancelled jobs to show as failed")
    assert "job cancelled" in cli("scaling.status", out).stdout


def test_wsd_branches_start_after_their_trunk_ended(tmp_path: Path):
    from tests.scaling.test_schedule import GRID

    grid = tmp_path / "wsd.yaml"
    grid.write_text(GRID.format(out=tmp_path / "out"))
    out = tmp_path / "out"
    first = cli("scaling.sweep", grid, "--executor", "slurm")
    assert first.returncode == 0 and "submitted 3 task(s)" in first.stdout, first.stdout + first.stderr
    wait_until(lambda: set(states(out)) == {"done"}, timeout=420, every=3, what="the WSD sweep on SLURM")

    sweep = SweepFile.load(out)
    trunk, *branches = sweep.tasks
    assert trunk.role == "trunk" and all(b.after == (trunk.id,) for b in branches)
    job_of = {task: jobs[0] for task, jobs in job_ids(out).items()}
    times = wait_until(lambda: run_times(list(job_of.values())), timeout=60, what="sacct times")
    assert all(times[job_of[b.id]][0] >= times[job_of[trunk.id]][1] for b in branches)  # afterok held them back
    assert [metrics(out)[b.id][-1]["step"] for b in branches] == [12, 24]
