"""Run a sweep's tasks through submitit: SLURM job arrays with `afterok` dependencies, or locally in DAG order.

SLURM is used only when a controller answers `scontrol ping` (submitit's AutoExecutor would pick it whenever
`srun` is on PATH), and `cluster=` is always passed explicitly. Job states come from squeue (live, for jobs
the controller still holds) and sacct (history, incl. requeues), never from submitit's 600 s-stale watcher.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import submitit

from scaling.errors import ConfigError
from scaling.jobs import CacheJob, RunJob
from scaling.plan import SweepFile, Task, task_done, task_record
from scaling.runtime import Executor, Resources

LOCAL_TIMEOUT_MIN = 7 * 24 * 60  # no scheduler limit locally; runs still checkpoint periodically
POLL_S = 0.5


# -- which executor --------------------------------------------------------------------------------------------


def slurm_available(timeout_s: float = 10.0) -> bool:
    """True when a SLURM controller answers: installed client tools alone do not make a cluster."""
    if shutil.which("scontrol") is None or shutil.which("srun") is None:
        return False
    try:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return ping.returncode == 0 and " is UP" in ping.stdout


def resolve_kind(kind: str, dry_run: bool = False) -> str:
    """`auto` → slurm if a controller answers, else local; an explicit slurm without one is an error, except
    in a dry run, which plans for a cluster without needing one (e.g. on a laptop before logging in)."""
    if kind == "auto":
        return "slurm" if slurm_available() else "local"
    if kind == "slurm" and not dry_run and not slurm_available():
        raise ConfigError("executor.kind: slurm, but no SLURM controller answers `scontrol ping`")
    return kind


def cores() -> int:
    return len(os.sched_getaffinity(0))


def local_slots(executor: Executor, kind: str) -> tuple[int, int]:
    """(runs at once, torch threads each) on this machine: by default one run per core, one thread each.

    Measured on the 2-core box with colleagues' jobs beside (sweeps/smoke.yaml, local): 2 runs x 1 thread took
    85 s, 1 run x 2 threads 222 s. Tiny runs are dominated by process start-up and per-step Python overhead,
    which intra-op threads do not speed up, and OpenMP threads that compete for busy cores stall. `debug` runs
    in-process, one at a time (for pdb, not speed), also with one thread unless told otherwise.
    """
    parallel = 1 if kind == "debug" else executor.parallel or cores()
    threads = executor.threads_per_run or (1 if kind == "debug" else max(1, cores() // parallel))
    return parallel, threads


def job_for(task: Task, out: Path, threads: int | None, executor: Executor) -> RunJob | CacheJob:
    """The callable a job executes for a task (pickled by reference to scaling.jobs)."""
    if task.cache is not None:
        return CacheJob(task.cache, str(out), threads)
    return RunJob(task.spec, str(out), threads, executor.checkpoint_every_s)


def waves(tasks: list[Task]) -> list[list[Task]]:
    """Tasks in dependency layers (a task comes after every task it waits for among `tasks`)."""
    level: dict[str, int] = {}
    for task in tasks:  # tasks come references, caches, runs: dependencies first
        level[task.id] = 1 + max((level[d] for d in task.after if d in level), default=-1)
    layers: dict[int, list[Task]] = defaultdict(list)
    for task in tasks:
        layers[level[task.id]].append(task)
    return [layers[i] for i in sorted(layers)]


# -- SLURM ------------------------------------------------------------------------------------------------------


def slurm_executor(sweep: SweepFile, res: Resources, name: str, after: Iterable[str]) -> submitit.AutoExecutor:
    """An executor for one array: its resources, array parallelism, and afterok on the jobs in `after`."""
    ex = sweep.executor
    executor = submitit.AutoExecutor(sweep.folder / "%j", cluster="slurm", slurm_max_num_timeout=ex.max_requeues)
    after = list(after)
    executor.update_parameters(
        name=name,
        timeout_min=res.timeout_min,
        cpus_per_task=res.cpus_per_task,
        gpus_per_node=res.gpus_per_task or None,
        mem_gb=res.mem_gb,
        nodes=res.nodes,
        tasks_per_node=res.gpus_per_task or 1,  # one process per GPU; the run joins them via SLURM's task variables
        slurm_partition=res.partition,
        slurm_array_parallelism=res.array_parallelism,
        slurm_signal_delay_s=ex.signal_delay_s,
        slurm_setup=list(ex.setup),
        slurm_dependency=f"afterok:{':'.join(after)}" if after else None,
        # dependents of a failed job are cancelled (not left pending forever) and show as failed in status
        slurm_additional_parameters={"kill-on-invalid-dep": "yes", **ex.sbatch},
    )
    return executor


def submit_slurm(sweep: SweepFile, tasks: list[Task], active: dict[str, str]) -> dict[str, str]:
    """Submit `tasks` as job arrays, one per (role, resources, dependencies), dependencies first.

    `active` maps tasks already queued or running (from an earlier submission) to their job ids, so new
    jobs can wait for them. Returns task id → new job id; sweep.json is saved after every array."""
    job_ids = dict(active)
    submitted: dict[str, str] = {}
    for wave in waves(tasks):
        groups: dict[tuple, list[Task]] = defaultdict(list)
        for task in wave:
            after = tuple(sorted(job_ids[d] for d in task.after if d in job_ids))
            resources = sweep.executor.resources_for(task.model).model_dump_json()
            groups[(task.role, resources, after)].append(task)
        for (role, resources, after), group in groups.items():
            res = Resources.model_validate_json(resources)
            threads = sweep.executor.threads_per_run or res.cpus_per_task
            executor = slurm_executor(sweep, res, f"{sweep.name}-{role}", after)
            with executor.batch():
                jobs = [executor.submit(job_for(t, sweep.out, threads, sweep.executor)) for t in group]
            for task, job in zip(group, jobs, strict=True):
                job_ids[task.id] = submitted[task.id] = job.job_id
                sweep.add_job(task.id, job.job_id, "slurm")
            sweep.save()
    return submitted


# -- local ------------------------------------------------------------------------------------------------------


class LocalDriver:
    """Runs tasks on this machine in dependency order, `parallel` at a time, through submitit's LocalExecutor
    (one process per run) or DebugExecutor (in-process, for pdb)."""

    def __init__(self, sweep: SweepFile, kind: str, on_tick: Callable[[dict[str, str]], None] | None = None):
        self.sweep, self.kind, self.on_tick = sweep, kind, on_tick
        self.parallel, self.threads = local_slots(sweep.executor, kind)
        self.executor = submitit.AutoExecutor(sweep.folder / "%j", cluster=kind)
        if kind == "local":
            self.executor.update_parameters(timeout_min=LOCAL_TIMEOUT_MIN)
        self.states: dict[str, str] = {}  # task id -> waiting | running | done | failed

    def run(self, tasks: list[Task], elsewhere: dict[str, str] | None = None) -> dict[str, str]:
        """Run to the end; returns task id → error line of every task that failed (or could not start).

        `elsewhere` maps tasks whose job an earlier local sweep left running to that job: their dependents
        wait for them to end. Other dependencies outside `tasks` are done."""
        waiting = list(tasks)
        running: dict[str, submitit.Job] = {}
        failed: dict[str, str] = {}
        elsewhere = dict(elsewhere or {})
        self.states = {t.id: "waiting" for t in tasks} | {t: "running" for t in elsewhere}
        try:
            while waiting or running or elsewhere:
                self._settle_elsewhere(elsewhere, failed)
                for task in list(waiting):
                    failed_dep = next((d for d in task.after if d in failed), None)
                    if failed_dep:
                        failed[task.id] = f"not run: {failed_dep} failed"
                        self.states[task.id] = "failed"
                    elif len(running) < self.parallel and all(self.states.get(d, "done") == "done" for d in task.after):
                        running[task.id] = self._start(task)
                    else:
                        continue
                    waiting.remove(task)
                for task_id, job in list(running.items()):
                    if self._finished(job):
                        del running[task_id]
                        line = self._failure(task_id)
                        if line:
                            failed[task_id] = line
                        self.states[task_id] = "failed" if line else "done"
                if self.on_tick:
                    self.on_tick(self.states)
                if running or elsewhere:
                    time.sleep(POLL_S)
        except (KeyboardInterrupt, OSError):  # Ctrl-C, SIGTERM, or a full disk: stop the runs started here
            for job in running.values():
                job.cancel()
            raise
        return failed

    def _settle_elsewhere(self, elsewhere: dict[str, str], failed: dict[str, str]) -> None:
        """A job left by an earlier sweep has ended: its task is done if its record (or cache) says so."""
        tasks = {t.id: t for t in self.sweep.tasks}
        for task_id, job_id in list(elsewhere.items()):
            if not local_job(job_id).active:
                del elsewhere[task_id]
                done = task_done(self.sweep.out, tasks[task_id])
                self.states[task_id] = "done" if done else "failed"
                if not done:
                    failed[task_id] = f"its earlier job {job_id} ended without finishing"

    def _failure(self, task_id: str) -> str:
        """'' if a finished job's task is done, else why not: from its record or its log, never from submitit's
        result pickle (a file in the out dir that would run code when unpickled)."""
        task = next(t for t in self.sweep.tasks if t.id == task_id)
        if task_done(self.sweep.out, task):
            return ""
        return record_error(self.sweep.out, task) or job_error(self.sweep, task_id) or "ended without finishing"

    def _start(self, task: Task) -> submitit.Job:
        job = self.executor.submit(job_for(task, self.sweep.out, self.threads, self.sweep.executor))
        self.sweep.add_job(task.id, job.job_id, self.kind)
        self.sweep.save()
        self.states[task.id] = "running"
        return job

    def _finished(self, job: submitit.Job) -> bool:
        try:
            return job.done()
        except Exception:  # the debug executor raises a run's own error from done() (after pdb)
            return True


# -- job states -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class JobInfo:
    """What the scheduler says about one job: `state` in SLURM's words, `active` while queued or running."""

    state: str
    active: bool
    reason: str = ""
    restarts: int = 0


TERMINAL = {
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "OUT_OF_MEMORY",
    "NODE_FAIL",
    "BOOT_FAIL",
    "DEADLINE",
    "PREEMPTED",
}


def _expand(job_id: str) -> list[str]:
    """sacct's '12_[3-5,7%2]' (pending array elements) → ['12_3', '12_4', '12_5', '12_7']."""
    match = re.fullmatch(r"(\d+)_\[([\d,\-]+)(?:%\d+)?\]", job_id)
    if not match:
        return [job_id]
    ids = []
    for part in match.group(2).split(","):
        lo, _, hi = part.partition("-")
        ids += [f"{match.group(1)}_{i}" for i in range(int(lo), int(hi or lo) + 1)]
    return ids


def _rows(command: list[str]) -> list[tuple[str, str, str]]:
    """(job id, state, reason) rows of a squeue/sacct call; none if the tool fails (the caller then knows less)."""
    try:
        stdout = subprocess.run(command, capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.TimeoutExpired):
        return []
    return [tuple(fields) for line in stdout.splitlines() if len(fields := line.split("|")) == 3]


def slurm_jobs(job_ids: Iterable[str]) -> dict[str, JobInfo]:
    """States of SLURM jobs (array elements 'A_i' included) in two calls: squeue for what the controller holds,
    sacct (with every requeued attempt, -D) for the rest and for restart counts."""
    wanted = set(job_ids)
    masters = ",".join(sorted({j.split("_")[0] for j in wanted}))
    if not masters:
        return {}
    attempts: dict[str, list[tuple[str, str]]] = defaultdict(list)
    sacct = ["sacct", "-n", "-P", "-X", "-D", "-j", masters, "-o", "JobID,State,Reason"]
    for job, state, reason in _rows(sacct):
        for one in _expand(job):
            attempts[one].append((state.split()[0] if state else "UNKNOWN", reason))
    live = {
        job: (state, reason) for job, state, reason in _rows(["squeue", "-h", "-r", "-j", masters, "-o", "%i|%T|%r"])
    }
    infos = {}
    for job in wanted:
        history = attempts.get(job) or attempts.get(job.split("_")[0], [])  # an array cancelled before it split
        restarts = sum(state in ("REQUEUED", "PREEMPTED") for state, _ in history)
        if job in live:
            state, reason = live[job]
            infos[job] = JobInfo(state, True, reason, restarts)
        elif history:
            state, reason = history[-1]
            infos[job] = JobInfo(state, state not in TERMINAL, reason, restarts)
        else:  # just submitted: sacct lags the controller by a second or two
            infos[job] = JobInfo("UNKNOWN", True)
    return infos


def local_job(job_id: str) -> JobInfo:
    """A local job is its controller process: alive → running; the run's record tells the rest."""
    if job_id.isdigit():
        try:
            cmdline = Path(f"/proc/{job_id}/cmdline").read_bytes()
        except OSError:
            cmdline = b""
        if b"submitit.local._local" in cmdline:
            return JobInfo("RUNNING", True)
    return JobInfo("ENDED", False)


def job_infos(sweep: SweepFile) -> dict[str, JobInfo]:
    """Task id → what the scheduler says about its last job (tasks never submitted are absent)."""
    last = {task_id: ref for task_id in sweep.jobs if (ref := sweep.last_job(task_id))}
    slurm = slurm_jobs(ref["job_id"] for ref in last.values() if ref["kind"] == "slurm")
    return {
        task_id: slurm[ref["job_id"]] if ref["kind"] == "slurm" else local_job(ref["job_id"])
        for task_id, ref in last.items()
    }


def record_error(out: Path, task: Task) -> str:
    """The error line a run's record gives (a corrupt record names itself); '' for caches and clean records."""
    record = task_record(out, task)
    return (record.error if record else None) or ""


EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b.*")


def job_error(sweep: SweepFile, task_id: str) -> str:
    """The last exception line of a task's last job's stderr log (else its last line). Text only: submitit's
    result pickles are never loaded, since unpickling a planted file runs arbitrary code."""
    ref = sweep.last_job(task_id)
    if ref is None or ref["kind"] == "debug":
        return ""
    job = (submitit.SlurmJob if ref["kind"] == "slurm" else submitit.LocalJob)(sweep.folder / "%j", ref["job_id"])
    try:
        lines = [line.strip() for line in (job.stderr() or "").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError):
        return ""
    line = next((line for line in reversed(lines) if EXCEPTION_LINE.match(line)), lines[-1] if lines else "")
    full = re.search(r"\[Errno 28\] No space left on device: '(.*)'", line)  # as errors.error_line says it
    return f"no space left on device: {full.group(1)}" if full else line


def cancel(sweep: SweepFile, infos: dict[str, JobInfo]) -> list[str]:
    """Cancel every active job of the sweep (one scancel for all SLURM jobs); returns the cancelled ids."""
    active = [sweep.last_job(t) for t, info in infos.items() if info.active]
    slurm_ids = [ref["job_id"] for ref in active if ref["kind"] == "slurm"]
    if slurm_ids:
        subprocess.run(["scancel", *slurm_ids], check=False, capture_output=True, timeout=60)
    for ref in active:
        if ref["kind"] == "local":
            os.kill(int(ref["job_id"]), signal.SIGINT)  # what LocalJob.cancel sends its controller
    return [ref["job_id"] for ref in active]


# -- one entry point for sweep and status ---------------------------------------------------------------------


def in_flight(sweep: SweepFile) -> dict[str, str]:
    """Task id → job id of every task whose last job is still queued or running (never submitted twice)."""
    return {t: sweep.last_job(t)["job_id"] for t, info in job_infos(sweep).items() if info.active}


def execute(
    sweep: SweepFile, pending: list[Task], active: dict[str, str], display: Callable[..., Any] | None = None
) -> dict[str, str]:
    """Submit `pending` to SLURM (returns at once), or run it here to the end with `display(sweep, tasks)`
    showing progress; returns task id → error line of local failures."""
    kind = sweep.executor.kind
    sweep.save()
    if kind == "slurm":
        submit_slurm(sweep, pending, active)
        return {}
    previous = signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops the runs too, like Ctrl-C
    try:
        if display is None:
            return LocalDriver(sweep, kind).run(pending, active)
        shown_tasks = [t for t in sweep.tasks if t.id in active] + pending
        with display(sweep, shown_tasks) as shown:
            return LocalDriver(sweep, kind, shown.update).run(pending, active)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
