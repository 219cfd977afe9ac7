"""`python -m scaling.status <sweep dir> [--resubmit-failed | --cancel | --watch]`: where a sweep's runs are.

A task is pending, running, requeued (preempted or timed out, waiting to resume), done or failed. Records say
done (and a failed run's error line); the scheduler says the rest: squeue/sacct for SLURM jobs (forced, not
submitit's 600 s-stale watcher), the controller process for local ones. Progress of a running run comes from
its heartbeat (`progress.json`), else from its last evaluation.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from scaling.errors import exits_cleanly
from scaling.executors import JobInfo, cancel, execute, in_flight, job_error, job_infos
from scaling.jobs import PROGRESS
from scaling.lock import hold
from scaling.plan import SweepFile, Task, task_done, task_record, todo
from scaling.records import Record, owner_died, run_dir

STATES = ("pending", "running", "requeued", "done", "failed")
RUNNING = ("RUNNING", "COMPLETING", "CONFIGURING", "STAGE_OUT", "SIGNALING")
FULL_TABLE_MAX = 60  # larger sweeps list only the tasks that are not done


@dataclass(frozen=True)
class TaskStatus:
    """One task's state, with its error line (failed), progress (running) or reason (pending)."""

    task: Task
    state: str
    detail: str = ""
    job_id: str = ""


def run_record(out: Path, task: Task) -> Record | None:
    """A run task's record (a corrupt one reads as failed, naming its file); a `running` one whose process died
    reads as failed too, since nothing else will ever say so."""
    record = task_record(out, task)
    if record and owner_died(record):
        who = record.owner
        error = f"its process {who['pid']} on {who['host']} died (killed?)"
        return record.model_copy(update={"status": "failed", "error": error})
    return record


def progress(out: Path, task: Task) -> str:
    """'step/steps' of a run from its heartbeat or last evaluation; '' for caches and runs not started."""
    if task.spec is None:
        return ""
    directory = run_dir(out, task.id)
    try:
        beat = json.loads((directory / PROGRESS).read_text())
        return f"{beat['step']}/{beat['steps']}"
    except (OSError, ValueError, KeyError, TypeError):
        record = run_record(out, task)
        evals = record.evals if record else []
        return f"{evals[-1].step}/{task.spec.steps}" if evals else ""


def served(sweep: SweepFile, cache: Task) -> bool:
    """A cache whose steered runs are all done has done its work, even if its files were deleted since
    (a committed study keeps records, not caches); the sweep would not rebuild it either."""
    steered = [t for t in sweep.tasks if cache.id in t.after]
    return bool(steered) and all(task_done(sweep.out, t) for t in steered)


def task_status(sweep: SweepFile, task: Task, info: JobInfo | None) -> TaskStatus:
    out = sweep.out
    ref = sweep.last_job(task.id)
    job_id = ref["job_id"] if ref else ""
    if task_done(out, task):
        return TaskStatus(task, "done", job_id=job_id)
    if task.role == "cache" and served(sweep, task):
        return TaskStatus(task, "done", "files removed; every run it steers is done", job_id)
    record = run_record(out, task)
    if info is None:
        if record and record.status == "failed":
            return TaskStatus(task, "failed", record.error or "", job_id)
        return TaskStatus(task, "pending", "not submitted")
    requeues = f" (resumed after {info.restarts} requeue(s))" if info.restarts else ""
    if info.active and info.state in RUNNING:
        return TaskStatus(task, "running", progress(out, task) + requeues, job_id)
    if info.active and (info.restarts or info.state in ("REQUEUED", "REQUEUE_HOLD", "PREEMPTED")):
        return TaskStatus(task, "requeued", f"{progress(out, task)} {info.reason}".strip(), job_id)
    if info.active:
        return TaskStatus(task, "pending", info.reason if info.reason not in ("", "None") else "submitted", job_id)
    error = (record.error if record else None) or job_error(sweep, task.id)
    if not error:
        reason = f" ({info.reason})" if info.reason not in ("", "None") else ""
        error = f"job {info.state.lower()}{reason}"
    return TaskStatus(task, "failed", error, job_id)


def collect(sweep: SweepFile) -> list[TaskStatus]:
    infos = job_infos(sweep)
    return [task_status(sweep, task, infos.get(task.id)) for task in sweep.tasks]


def counts_line(statuses: list[TaskStatus]) -> str:
    counts = Counter(s.state for s in statuses)
    return ", ".join(f"{state} {counts[state]}" for state in STATES)


def render(sweep: SweepFile, statuses: list[TaskStatus], everything: bool = False) -> str:
    """The status table as text: every task for small sweeps, else those not done."""
    lines = [f"sweep {sweep.name} ({sweep.out}): {len(statuses)} tasks: {counts_line(statuses)}"]
    shown = statuses if everything or len(statuses) <= FULL_TABLE_MAX else [s for s in statuses if s.state != "done"]
    if shown:
        lines.append(f"  {'task':<19} {'role':<9} {'state':<8} {'job':<10} {'what':<48} detail")
    for s in shown:
        lines.append(
            f"  {s.task.id:<19} {s.task.role:<9} {s.state:<8} {s.job_id:<10} {s.task.describe():<48} {s.detail}"
        )
    return "\n".join(lines)


class LiveDisplay:
    """Progress of a running sweep: a rich Live table on a terminal, else one line per task that finishes."""

    def __init__(self, sweep: SweepFile, tasks: list[Task]):
        from rich.console import Console

        self.sweep, self.tasks = sweep, {t.id: t for t in tasks}
        self.console = Console(stderr=True)
        self.live = None
        self.reported: dict[str, str] = {}

    def __enter__(self) -> LiveDisplay:
        if self.console.is_terminal:
            from rich.live import Live

            self.live = Live(console=self.console, refresh_per_second=2, transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)

    def update(self, states: dict[str, str]) -> None:
        if self.live is not None:
            self.live.update(self.table(states))
            return
        for task_id, state in states.items():
            if state in ("done", "failed") and self.reported.get(task_id) != state:
                self.reported[task_id] = state
                finished = sum(s in ("done", "failed") for s in states.values())
                task = self.tasks[task_id]
                print(f"[{finished}/{len(states)}] {state:<6} {task.role:<9} {task_id} {task.describe()}", flush=True)

    def table(self, states: dict[str, str]):
        from rich.table import Table

        counts = Counter(states.values())
        title = f"sweep {self.sweep.name}: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        table = Table(title=title, title_justify="left")
        for column in ("task", "role", "what", "state", "step"):
            table.add_column(column)
        for task_id, state in states.items():
            if state in ("running", "failed"):
                task = self.tasks[task_id]
                table.add_row(task_id, task.role, task.describe(), state, progress(self.sweep.out, task))
        return table


def follow(sweep: SweepFile, every_s: float = 5.0, timeout_s: float | None = None) -> list[TaskStatus]:
    """Poll until no task is pending, running or requeued (or `timeout_s` passes); print changes."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    last = ""
    while True:
        statuses = collect(sweep)
        line = counts_line(statuses)
        if line != last:
            print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)
            last = line
        if all(s.state in ("done", "failed") for s in statuses):
            return statuses
        if deadline is not None and time.monotonic() > deadline:
            return statuses
        time.sleep(every_s)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m scaling.status", description=__doc__.splitlines()[0])
    parser.add_argument("sweep", type=Path, help="the sweep's output directory (holding sweep.json)")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--resubmit-failed", action="store_true", help="submit failed runs (and what they gate) again")
    action.add_argument("--cancel", action="store_true", help="cancel every queued or running job of the sweep")
    action.add_argument("--watch", action="store_true", help="poll until nothing is pending or running")
    parser.add_argument("--all", action="store_true", help="list done tasks too, however many")
    return parser.parse_args(argv)


@exits_cleanly
def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    sweep = SweepFile.load(args.sweep)
    if args.cancel:
        cancelled = cancel(sweep, job_infos(sweep))
        print(f"cancelled {len(cancelled)} job(s){': ' + ' '.join(cancelled) if cancelled else ''}")
        return 0
    if args.resubmit_failed:
        statuses = collect(sweep)
        failed = [s for s in statuses if s.state == "failed"]
        if not failed:
            print("nothing failed")
            return 0
        for s in failed:
            print(f"resubmitting {s.task.id} ({s.task.role}): {s.detail}")
        with hold(sweep.out):
            sweep = SweepFile.load(args.sweep)  # as the last orchestrator left it
            active = in_flight(sweep)
            failures = execute(sweep, todo(sweep.tasks, sweep.out, skip=set(active)), active, LiveDisplay)
        return 1 if failures else 0
    statuses = follow(sweep) if args.watch else collect(sweep)
    print(render(sweep, statuses, everything=args.all))
    return 1 if any(s.state == "failed" for s in statuses) else 0


if __name__ == "__main__":
    sys.exit(main())
