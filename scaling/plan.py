"""A sweep's job graph, its cost, and `<out>/sweep.json`, the file status and resubmission read.

Tasks form a DAG: reference training → reference embedding cache (mode cache) → steered runs; plain runs
depend on nothing. A WSD branch (scaling.schedule) waits for its trunk, which takes the branch's place in
that chain; the sweep's cost counts the trunk once and each branch's cooldown. A task's id is its run id
(training) or a hash of (reference, data) (cache), so the same grid always yields the same tasks, and a task
is skipped once its record says done (or its cache is built).
"""

from __future__ import annotations

import errno
import math
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from scaling.cache import CacheSpec, cache_marker
from scaling.grid import Expansion
from scaling.io import write_atomic, write_json_atomic
from scaling.records import CorruptRecord, Record, is_done, read_record, run_dir
from scaling.runtime import CPU_GFLOPS, GPU_GFLOPS, Executor
from scaling.schedule import fork_step, is_branch
from scaling.spec import ReferenceSpec, RunSpec

if TYPE_CHECKING:
    from scaling.calibrate import Measured

SWEEP_FILE = "sweep.json"
RESERVE, RESERVE_BYTES = ".sweep.reserve", 1 << 18  # room to record every job even once the disk is full
CALIBRATION_FILE = "calibration.json"
Role = Literal["reference", "cache", "trunk", "run"]


@dataclass(frozen=True)
class Task:
    """One job of the sweep: train `spec` (a reference or a grid point) or build `cache`; waits for `after`."""

    id: str
    role: Role
    spec: RunSpec | None = None
    cache: CacheSpec | None = None
    after: tuple[str, ...] = ()

    @property
    def model(self) -> str:
        """The model whose resources the task needs (a cache job runs its reference)."""
        if self.spec is not None:
            return self.spec.model
        return reference_arch(self.cache.reference) or "unknown"

    @property
    def method(self) -> str:
        return self.spec.method if self.spec is not None else "-"

    def describe(self) -> str:
        if self.spec is not None:
            return self.spec.describe()
        return f"cache of {self.model} for pool={self.cache.data.pool_size} seed={self.cache.data.seed}"

    def to_json(self) -> dict:
        payload = self.spec if self.spec is not None else self.cache
        return {"id": self.id, "role": self.role, "after": list(self.after), "payload": payload.model_dump(mode="json")}

    @classmethod
    def from_json(cls, data: dict) -> Task:
        kind = CacheSpec if data["role"] == "cache" else RunSpec
        payload = kind.model_validate(data["payload"])
        fields = {"cache": payload} if data["role"] == "cache" else {"spec": payload}
        return cls(data["id"], data["role"], after=tuple(data["after"]), **fields)


def reference_arch(ref: ReferenceSpec) -> str | None:
    """The reference's architecture, if the spec or a finished run directory says."""
    if ref.run is not None:
        return ref.run.model
    if ref.model is not None:
        return ref.model
    try:
        record = read_record(Path(ref.checkpoint)) if ref.checkpoint and Path(ref.checkpoint).is_dir() else None
    except CorruptRecord:
        return None
    return record.spec["model"] if record else None


def build_tasks(expansion: Expansion) -> list[Task]:
    """References first, then caches, then the grid's runs, a WSD trunk just before its first branch (a local
    sweep cut short keeps whole families); a run equal to a reference is trained once."""
    tasks: dict[str, Task] = {r.run_id: Task(r.run_id, "reference", spec=r) for r in expansion.references}
    caches: dict[str, Task] = {}
    runs: dict[str, Task] = {}
    for spec in expansion.runs:
        if spec.run_id in tasks:
            continue
        after: tuple[str, ...] = ()
        ref = spec.reference
        if ref is not None:
            after = (ref.run.run_id,) if ref.run is not None else ()
            if ref.mode == "cache":
                cache = CacheSpec(reference=ref, data=spec.data)
                caches.setdefault(cache.task_id, Task(cache.task_id, "cache", cache=cache, after=after))
                after = (cache.task_id,)
        if is_branch(spec):
            trunk = spec.wsd.trunk
            runs.setdefault(trunk.run_id, Task(trunk.run_id, "trunk", spec=trunk, after=after))
            after = (trunk.run_id,)
        runs[spec.run_id] = Task(spec.run_id, "run", spec=spec, after=after)
    return [*tasks.values(), *caches.values(), *runs.values()]


def task_done(out: Path, task: Task) -> bool:
    if task.role == "cache":
        return cache_marker(out, task.id).exists()
    return is_done(out, task.id)


def task_record(out: Path, task: Task) -> Record | None:
    """A run task's record (None for caches and runs that never evaluated); a corrupt one reads as failed,
    its error naming the file, so it is shown and redone."""
    if task.spec is None:
        return None
    try:
        return read_record(run_dir(out, task.id))
    except CorruptRecord as err:
        return Record(run_id=task.id, spec=task.spec.model_dump(mode="json"), status="failed", error=str(err))


def corrupt_records(tasks: list[Task], out: Path) -> list[CorruptRecord]:
    """The records of these tasks that exist but cannot be read: their runs count as not done."""
    found = []
    for task in tasks:
        try:
            read_record(run_dir(out, task.id)) if task.spec is not None else None
        except CorruptRecord as err:
            found.append(err)
    return found


def todo(tasks: list[Task], out: Path, skip: set[str] = frozenset()) -> list[Task]:
    """Tasks still to run: not done, not in `skip` (in flight), and caches only if a steered run needs them."""
    pending = [t for t in tasks if t.id not in skip and not task_done(out, t)]
    needed = {dep for t in pending if t.role in ("trunk", "run") for dep in t.after}
    return [t for t in pending if t.role != "cache" or t.id in needed]


# -- cost ------------------------------------------------------------------------------------------------------


def _flops(model: str | None, kind: str) -> float:
    from scaling.models import model_stats

    if model is None:
        return math.nan
    stats = model_stats(model)
    return stats.flops_train_per_sample if kind == "train" else stats.flops_fwd_per_sample


def task_flops(task: Task) -> float:
    """Measured FLOPs of a task: training (fwd+bwd) per sample seen, plus reference forwards (online)
    or one forward per pool sample (cache job). A WSD branch trains only its cooldown: its trunk is a task."""
    if task.cache is not None:
        pool = task.cache.data.pool_size
        return math.nan if pool is None else pool * _flops(task.model, "fwd")
    from scaling.selection import target_flops  # torch, as _flops's model_stats

    spec = task.spec
    steps = spec.steps - (fork_step(spec) if is_branch(spec) else 0)  # the trunk's share is the trunk's task
    loaded, trained = steps * spec.loaded_batch_size, steps * spec.batch_size
    total = target_flops(trained, loaded, _flops(spec.model, "train"), _flops(spec.model, "fwd"))
    if spec.reference is not None and spec.reference.mode == "online":
        total += loaded * _flops(reference_arch(spec.reference), "fwd")
    return total


def duration(seconds: float) -> str:
    """A wall time in the unit a person reads it in: '40 s', '13.4 min', '2.5 h'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.3g} min" if seconds < 5400 else f"{seconds / 3600:.3g} h"


def local_wall_s(tasks: list[Task], seconds: dict[str, float], parallel: int) -> float:
    """Wall time of running `tasks` as the local driver does: at each moment, in order, every task whose
    dependencies (among these) have ended starts while fewer than `parallel` run. A task without a time
    (a cache of unknown size) counts as instant."""
    waiting, running, now = list(tasks), {}, 0.0  # running: task id -> when it ends
    while waiting or running:
        pending = {t.id for t in waiting} | set(running)
        for task in list(waiting):
            if len(running) < parallel and not pending.intersection(task.after):
                running[task.id] = now + seconds.get(task.id, 0.0)
                waiting.remove(task)
        now = min(running.values())
        running = {t: end for t, end in running.items() if end > now}
    return now


@dataclass
class Plan:
    """What a submission will do, with its cost: printed before anything is submitted."""

    name: str
    out: Path
    tasks: list[Task]
    todo: list[Task]
    executor: Executor
    kind: str
    local_slots: tuple[int, int] = (1, 1)  # (runs at once, torch threads each), local kinds only
    measured: dict[str, Measured] = field(default_factory=dict)  # by calibrate.key, from calibration.json

    def lines(self) -> list[str]:
        todo_ids = {t.id for t in self.todo}
        groups: dict[tuple, list[Task]] = defaultdict(list)
        for task in self.tasks:
            groups[(task.role, task.method, task.model)].append(task)
        out = [f"sweep {self.name}: {len(self.tasks)} tasks, {len(self.todo)} to run -> {self.out}"]
        out.append(
            f"  {'role':<10} {'method':<16} {'model':<9} {'tasks':>5} {'to run':>6} {'steps':>8} {'FLOPs/task':>11}"
        )
        for (role, method, model), group in groups.items():
            steps = Counter(t.spec.steps for t in group if t.spec is not None)
            shown = "-" if not steps else "/".join(str(s) for s in sorted(steps))
            flops = sum(task_flops(t) for t in group) / len(group)
            n_todo = sum(t.id in todo_ids for t in group)
            out.append(f"  {role:<10} {method:<16} {model:<9} {len(group):>5} {n_todo:>6} {shown:>8} {flops:.3g}")
        out += self.cost_lines()
        out.append("  executor: " + self.executor_line())
        return out

    def cost_lines(self) -> list[str]:
        """FLOPs to run, and device-hours (GPUs or CPU cores held x wall time): measured by --calibrate where
        the sweep was calibrated, else at the assumed per-run throughput; locally also the sweep's wall time."""
        hours: dict[str, float] = defaultdict(float)
        rates: dict[str, set[float]] = defaultdict(set)
        seconds: dict[str, float] = {}
        flops, unknown, measured = 0.0, 0, 0
        for task in self.todo:
            res = self.executor.resources_for(task.model)
            device = "GPU" if res.gpus_per_task else "CPU"
            f = task_flops(task)
            if math.isnan(f):  # a cache of a real pool of unknown size (data.pool_size unset)
                unknown += 1
                continue
            flops += f
            seconds[task.id], timed = self.task_seconds(task, f, res.throughput_gflops)
            measured += timed
            if not timed:
                rates[device].add(res.throughput_gflops)
            devices = (res.gpus_per_task or res.cpus_per_task) * res.nodes  # held for a run's whole wall time
            hours[device] += seconds[task.id] / 3600 * devices
        estimate = ", ".join(
            f"{h:.3g} {d}-hours"
            + (f" (at {'/'.join(f'{r:g}' for r in sorted(rates[d]))} GFLOP/s per run)" * bool(rates[d]))
            for d, h in hours.items()
        )
        if self.kind in ("local", "debug") and seconds:
            estimate += f"; about {duration(local_wall_s(self.todo, seconds, self.local_slots[0]))} of wall time here"
        left_out = f" ({unknown} task(s) of unknown size left out: set data.pool_size)" if unknown else ""
        if measured:
            basis = f"{measured} task(s) timed on this executor by --calibrate ({self.out / CALIBRATION_FILE})"
            basis += "; the others at executor.throughput_gflops" if rates else ""
        else:
            basis = "throughput is an assumption: executor.throughput_gflops, "
            basis += f"default CPU {CPU_GFLOPS:g}, GPU {GPU_GFLOPS:g} GFLOP/s per run; measure it with --calibrate"
        return [
            f"  compute to run: {flops:.3g} FLOPs; estimate: {estimate or 'nothing to run'}{left_out}",
            f"  ({basis})",
        ]

    def task_seconds(self, task: Task, flops: float, throughput_gflops: float) -> tuple[float, bool]:
        """A task's wall time on its resources, and whether --calibrate timed it (else: its FLOPs at its
        resources' assumed throughput; a cache job is never timed)."""
        from scaling.calibrate import key

        cost = self.measured.get(key(task.spec, self.executor, self.kind)) if task.spec is not None else None
        if cost is not None:
            return cost.run_s(task.spec, task.spec.eval.points), True
        return flops / (throughput_gflops * 1e9), False

    def executor_line(self) -> str:
        if self.kind in ("local", "debug"):
            parallel, threads = self.local_slots
            return f"{self.kind}, {parallel} run(s) at a time, {threads} torch thread(s) each"
        res = self.executor.resources_for(None)
        per_run = f"{res.nodes} node(s) x {res.gpus_per_task} GPU(s) = {res.nodes * res.gpus_per_task} GPUs per run"
        return (
            f"slurm, {per_run if res.gpus_per_task else f'{res.nodes} node(s) per run'}, "
            f"partition {res.partition or '(default)'}, arrays of <= {res.array_parallelism} at once, "
            f"{res.timeout_min} min limit, checkpoint every {self.executor.checkpoint_every_s:g} s"
        )


# -- sweep.json -------------------------------------------------------------------------------------------------


@dataclass
class SweepFile:
    """`<out>/sweep.json`: the expanded tasks, the settings, and every job submitted for each task."""

    out: Path
    name: str
    grid: str
    executor: Executor
    analysis: dict | None
    tasks: list[Task]
    jobs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.out / SWEEP_FILE

    @property
    def folder(self) -> Path:
        return self.out / "submitit"

    def last_job(self, task_id: str) -> dict | None:
        history = self.jobs.get(task_id)
        return history[-1] if history else None

    def add_job(self, task_id: str, job_id: str, kind: str) -> None:
        self.jobs.setdefault(task_id, []).append({"job_id": job_id, "kind": kind, "submitted": time.time()})

    def save(self) -> None:
        """Write sweep.json. A full disk must not lose a submitted job: space is kept in a reserve file, given
        up to record the jobs one last time, then the error stops the sweep."""
        self.out.mkdir(parents=True, exist_ok=True)
        try:
            self._write()
        except OSError as err:
            reserve = self.out / RESERVE
            if err.errno != errno.ENOSPC or not reserve.exists():
                raise
            reserve.unlink()
            self._write()
            raise
        self._reserve()

    def _reserve(self) -> None:
        reserve = self.out / RESERVE
        if reserve.exists():
            return
        try:
            write_atomic(reserve, lambda f: f.write(bytes(RESERVE_BYTES + 2 * self.path.stat().st_size)))
        except OSError as err:
            if err.errno != errno.ENOSPC:
                raise

    def _write(self) -> None:
        write_json_atomic(
            self.path,
            {
                "name": self.name,
                "grid": self.grid,
                "out": str(self.out),
                "executor": self.executor.model_dump(mode="json"),
                "analysis": self.analysis,
                "tasks": [t.to_json() for t in self.tasks],
                "jobs": self.jobs,
            },
        )

    @classmethod
    def load(cls, out: Path) -> SweepFile:
        import json

        from scaling.errors import ConfigError

        path = Path(out) / SWEEP_FILE
        try:
            data = json.loads(path.read_text())
        except (FileNotFoundError, NotADirectoryError):
            raise ConfigError(f"{path}: no sweep here (python -m scaling.sweep writes it)") from None
        except (ValueError, UnicodeDecodeError) as err:
            raise ConfigError(f"{path}: corrupt ({' '.join(str(err).split())})") from None
        return cls(
            out=Path(out),
            name=data["name"],
            grid=data["grid"],
            executor=Executor.model_validate(data["executor"]),
            analysis=data["analysis"],
            tasks=[Task.from_json(t) for t in data["tasks"]],
            jobs=data["jobs"],
        )

    @classmethod
    def create(cls, expansion: Expansion, out: Path, tasks: list[Task], kind: str) -> SweepFile:
        """A sweep file for this expansion run by `kind`, keeping the job history of an earlier one in `out`."""
        jobs = cls.load(out).jobs if (out / SWEEP_FILE).exists() else {}
        analysis = expansion.grid.analysis
        return cls(
            out=out,
            name=expansion.grid.name,
            grid=str(expansion.path.resolve()),
            executor=expansion.grid.executor.model_copy(update={"kind": kind}),
            analysis=None if analysis is None else analysis.model_dump(mode="json"),
            tasks=tasks,
            jobs=jobs,
        )
