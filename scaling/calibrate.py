"""`python -m scaling.sweep grid.yaml --calibrate`: measure what a run costs on the executor that will run it.

For each (model, batch size, resources) of the grid's runs, a job on the sweep's executor (SLURM with the
run's resources, or a local process with its threads) builds the run, times a few training steps after a
warm-up, one evaluation and the start-up, and returns them. The figures are stored in
`<out>/calibration.json`; the plan then estimates each run as start-up + steps x step time + evaluations x
evaluation time, instead of FLOPs over an assumed throughput, and says so. Nothing is written under `runs/`.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import submitit

from scaling.io import write_json_atomic
from scaling.plan import CALIBRATION_FILE, SweepFile, Task
from scaling.runtime import Executor
from scaling.spec import RunSpec

if TYPE_CHECKING:
    import torch

WARMUP_STEPS, TIMED_STEPS = 2, 6


@dataclass(frozen=True)
class Measured:
    """One run's costs on its executor."""

    startup_s: float  # process start (interpreter, imports) to the first step (model, data, reference)
    step_s: float  # one training step, median of the timed ones (data loading included)
    eval_s: float  # one evaluation point

    def run_s(self, spec: RunSpec, eval_points: int) -> float:
        return self.startup_s + spec.steps * self.step_s + eval_points * self.eval_s


def key(spec: RunSpec, executor: Executor, kind: str) -> str:
    """What a measurement is valid for: the model and batch (and a JEST step's loaded super-batch, which it
    scores: a step of another cost), the resources, the executor kind."""
    res = executor.resources_for(spec.model).model_dump(exclude={"throughput_gflops", "array_parallelism"})
    loaded = {} if spec.selection is None else {"loaded": spec.loaded_batch_size}  # plain keys as before
    return json.dumps({"model": spec.model, "batch": spec.batch_size, "kind": kind, **loaded, **res}, sort_keys=True)


def short_run(spec: RunSpec) -> RunSpec:
    """The same run cut to warm-up + timed steps (same model, batch, data, precision). A JEST run keeps its
    method: its step loads and scores a super-batch (its reference is stood in for: calibration_run). Others run
    as plain CLIP: a steered or distilled step adds only a cache lookup and a cheap loss
    (bench/drrho_overhead.py, bench/method_overhead.py), and its cache may not exist yet."""
    raw = spec.model_dump() | {"samples_seen": spec.samples_per_step * (WARMUP_STEPS + TIMED_STEPS)}
    if spec.selection is not None:
        return RunSpec.model_validate(raw)
    plain = {"method": "clip", "reference": None, "selection": None, "distill": None, "loss": {}}
    return RunSpec.model_validate(raw | plain)


class StandInReference:
    """Random unit embeddings in place of a JEST run's reference, whose cache may not exist yet: the step's cost
    (scoring the super-batch with the learner, then selecting) does not depend on their values."""

    mode, flops_fwd_per_sample, dim = "cache", 0.0, 512  # a cache lookup; ViT-B-32's embedding width

    def __init__(self, device: torch.device):
        self.device = device

    def features(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        rows = torch.nn.functional.normalize(torch.randn(2, len(batch), self.dim), dim=-1).to(self.device)
        return rows[0], rows[1]


def calibration_run(spec: RunSpec, scratch: str):  # -> scaling.run.Run, imported here: the sweep CLI starts fast
    """A Run of `spec` whose reference is a stand-in (a calibration must not build or read an embedding cache)."""
    from scaling.run import Run

    class CalibrationRun(Run):
        def _load_reference(self, spec: RunSpec, out: Path, progress: bool) -> StandInReference:
            return StandInReference(self.device)

    return CalibrationRun(spec, scratch, progress=False)


def process_age() -> float:
    """Seconds since this process started (interpreter and imports included), from /proc; 0 where unknown."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0
    return max(0.0, uptime - ticks / os.sysconf("SC_CLK_TCK"))


class CalibrationJob:
    """Times one short run in a scratch directory (pickled by reference for submitit)."""

    def __init__(self, spec: RunSpec, threads: int | None):
        self.spec, self.threads = spec, threads

    def __call__(self) -> dict:
        from scaling.data.loader import step_loader
        from scaling.jobs import use_threads

        start = time.perf_counter() - process_age()
        use_threads(self.threads)
        with tempfile.TemporaryDirectory() as scratch:
            run = calibration_run(short_run(self.spec), scratch)
            batches = iter(step_loader(run.source, run.spec, run.world))
            startup = time.perf_counter() - start
            times = []
            for step in range(WARMUP_STEPS + TIMED_STEPS):
                tick = time.perf_counter()
                run.train_step(step, next(batches))
                times.append(time.perf_counter() - tick)
            tick = time.perf_counter()
            run.evaluate()
            eval_s = time.perf_counter() - tick
        timed = sorted(times[WARMUP_STEPS:])
        return {**asdict(Measured(startup, timed[len(timed) // 2], eval_s)), "busy_s": sum(times) + eval_s}


def calibrate(sweep: SweepFile, runs: list[Task], slots: tuple[int, int]) -> dict[str, dict]:
    """Measure one run per key on the sweep's executor, store the figures beside its records, return them.

    Locally, `parallel` jobs run at once (as the sweep will run them, sharing the cores), and start-up is a job's
    whole wall time (process launch, result files) minus its steps and evaluation, so it holds every per-task
    cost that does not grow with the steps. On SLURM, where a job's wall time includes its wait in the queue,
    the jobs go one array element each and start-up counts from the job's process start."""
    executor = sweep.executor
    chosen: dict[str, RunSpec] = {}
    for task in runs:
        chosen.setdefault(key(task.spec, executor, executor.kind), task.spec)
    names = list(chosen)
    parallel = len(names) if executor.kind == "slurm" else slots[0]
    measured = {}
    for group in (names[i : i + parallel] for i in range(0, len(names), parallel)):
        jobs = {name: (time.time(), _submit(sweep, chosen[name], slots[1])) for name in group}
        for name, (submitted, job) in jobs.items():
            figures = job.results()[0]
            if executor.kind == "local":
                wall = job.paths.result_pickle.stat().st_mtime - submitted
                figures["startup_s"] = max(figures["startup_s"], wall - figures.pop("busy_s"))
            figures.pop("busy_s", None)
            spec = chosen[name]
            measured[name] = {
                **figures,
                "samples_per_s": spec.batch_size / figures["step_s"],
                "model": spec.model,
                "at": time.strftime("%Y-%m-%d %H:%M:%S"),
            }
            print(f"calibrated {spec.model} (batch {spec.batch_size}): {measured[name]}", flush=True)
    path = sweep.out / CALIBRATION_FILE
    stored = json.loads(path.read_text()) if path.exists() else {}
    write_json_atomic(path, {**stored, **measured})
    return measured


def _submit(sweep: SweepFile, spec: RunSpec, local_threads: int) -> submitit.Job:
    from scaling.executors import slurm_executor

    executor = sweep.executor
    if executor.kind == "slurm":
        res = executor.resources_for(spec.model)
        ex = slurm_executor(sweep, res, f"{sweep.name}-calibrate", after=())
        return ex.submit(CalibrationJob(spec, executor.threads_per_run or res.cpus_per_task))
    from scaling.executors import LOCAL_TIMEOUT_MIN

    ex = submitit.AutoExecutor(sweep.folder / "%j", cluster=executor.kind)
    ex.update_parameters(timeout_min=LOCAL_TIMEOUT_MIN)
    return ex.submit(CalibrationJob(spec, local_threads))


def load(out: Path) -> dict[str, Measured]:
    """Stored measurements by key (none if the sweep was never calibrated)."""
    path = out / CALIBRATION_FILE
    if not path.exists():
        return {}
    fields = set(Measured.__dataclass_fields__)
    return {k: Measured(**{f: v for f, v in m.items() if f in fields}) for k, m in json.loads(path.read_text()).items()}
