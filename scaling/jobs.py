"""What a sweep's jobs execute: train one RunSpec, or build one reference embedding cache.

Both are submitit Checkpointables. On preemption or time limit SLURM (or the local controller) sends USR2;
submitit then calls `checkpoint()`, which saves the live run between steps and requeues a fresh job object
(nothing live is pickled). The requeued job resumes from the run's checkpoint, exactly, because a run is a
pure function of (spec, step); if the signal lands mid-step, the last periodic checkpoint stands.
torch is imported only inside the job, so planning and submitting a sweep stay light.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from submitit.helpers import Checkpointable, DelayedSubmission

from scaling.cache import CacheSpec, cache_marker
from scaling.errors import error_line
from scaling.io import write_json_atomic
from scaling.records import CorruptRecord, Record, read_record, run_dir
from scaling.spec import RunSpec

PROGRESS = "progress.json"
PROGRESS_EVERY_S = 2.0


def use_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


def mark_failed(out: Path, spec: RunSpec, err: BaseException) -> None:
    """Make sure a failed run's record says so with this attempt's error, also when it failed before
    training could write a record (bad data path, missing reference, ...)."""
    directory = run_dir(out, spec.run_id)
    try:
        record = read_record(directory)
    except CorruptRecord:  # rewritten whole below
        record = None
    fresh = Record(run_id=spec.run_id, spec=spec.model_dump(mode="json"), status="failed")
    record = (record or fresh).model_copy(update={"status": "failed", "error": error_line(err)})
    directory.mkdir(parents=True, exist_ok=True)
    record.write(directory)


@contextmanager
def beating(run: Any) -> Iterator[None]:
    """Write `progress.json` (step, steps) of a live Run every few seconds, for `scaling.status`: a thread
    that only reads `run.state.step`, so the training loop stays untouched."""
    stop = threading.Event()
    last = None

    def beat() -> None:
        nonlocal last
        step = run.state.step
        if step != last and run.dir.exists():
            write_json_atomic(run.dir / PROGRESS, {"step": step, "steps": run.spec.steps, "time": time.time()})
            last = step

    def loop() -> None:
        while not stop.wait(PROGRESS_EVERY_S):
            beat()

    thread = threading.Thread(target=loop, daemon=True, name="progress")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        beat()


class RunJob(Checkpointable):
    """Train one RunSpec under `out` (resuming from its checkpoint) and return a short summary."""

    def __init__(self, spec: RunSpec, out: str, threads: int | None = None, checkpoint_every_s: float = 300.0):
        self.spec, self.out, self.threads, self.checkpoint_every_s = spec, out, threads, checkpoint_every_s
        self.live: Any = None  # the Run in progress, for checkpoint(); never pickled (see checkpoint)

    def __call__(self) -> dict:
        from scaling.run import Run

        use_threads(self.threads)
        try:
            self.live = Run(self.spec, self.out, checkpoint_every_s=self.checkpoint_every_s, progress=False)
            with beating(self.live):
                record = self.live.train()
        except Exception as err:
            mark_failed(Path(self.out), self.spec, err)
            raise
        return {"run_id": record.run_id, "status": record.status}

    def checkpoint(self, *args: Any, **kwargs: Any) -> DelayedSubmission:
        """On USR2: save the live run if it is between steps, and requeue a fresh job for the same spec."""
        if self.live is not None:
            self.live.checkpoint_now()
        return DelayedSubmission(RunJob(self.spec, self.out, self.threads, self.checkpoint_every_s))


class CacheJob(Checkpointable):
    """Embed a pool with a reference once; a requeued job skips the shards already written."""

    def __init__(self, cache: CacheSpec, out: str, threads: int | None = None):
        self.cache, self.out, self.threads = cache, out, threads

    def __call__(self) -> str:
        from scaling.reference import build_cache

        use_threads(self.threads)
        directory = build_cache(self.cache.reference, self.cache.data, Path(self.out), progress=False)
        write_json_atomic(cache_marker(Path(self.out), self.cache.task_id), {"cache": str(directory)})
        return str(directory)
