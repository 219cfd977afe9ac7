"""How a sweep's jobs run: the grid's `executor` section (kind, resources per task, SLURM options) and the
throughputs the plan's time estimate assumes. Read by the planner and by `scaling.executors`, which acts on it;
kept apart from the YAML module so a worker never needs the grid reader.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from scaling.errors import ConfigError

if TYPE_CHECKING:
    from scaling.spec import RunSpec

# Default per-run throughputs for the plan's time estimate. CPU: sweeps/demo.yaml on 2 cores, one thread per run,
# did 4.89e13 FLOPs in 2 × 739 s of run slots = 33 GFLOP/s including evaluation and start-up (2026-11-28).
CPU_GFLOPS, GPU_GFLOPS = 33.0, 50_000.0


class Resources(BaseModel):
    """What one run asks of a scheduler; None = the executor-wide value (or its default). Unknown keys are
    errors, as everywhere in a grid."""

    model_config = ConfigDict(extra="forbid")

    partition: str | None = None
    cpus_per_task: int | None = Field(None, ge=1)
    gpus_per_task: int | None = Field(None, ge=0, description="GPUs per node of a run, one process each")
    nodes: int | None = Field(None, ge=1, description="nodes per run (SLURM)")
    mem_gb: float | None = Field(None, gt=0)
    timeout_min: int | None = Field(None, ge=1)
    array_parallelism: int | None = Field(None, ge=1)
    throughput_gflops: float | None = Field(None, gt=0, description="per run, for the plan's time estimate")


RESOURCE_DEFAULTS = {
    "cpus_per_task": 1,
    "gpus_per_task": 0,
    "nodes": 1,
    "mem_gb": 4.0,
    "timeout_min": 60,
    "array_parallelism": 64,
}


class Executor(Resources):
    """Where and how runs execute. `auto` is SLURM only when a controller answers `scontrol ping`."""

    kind: Literal["auto", "local", "slurm", "debug"] = "auto"
    parallel: int | None = Field(None, ge=1, description="local: runs at once (default: one per core)")
    threads_per_run: int | None = Field(
        None, ge=1, description="torch threads (default: cpus_per_task, or cores/parallel)"
    )
    setup: list[str] = Field([], description="shell lines run before each SLURM job")
    signal_delay_s: int = Field(90, ge=10, description="SLURM sends USR2 this long before the time limit")
    checkpoint_every_s: float = Field(300.0, gt=0, description="periodic checkpoints (a signal may land mid-step)")
    max_requeues: int = Field(3, ge=0, description="timeouts a run may be requeued after")
    sbatch: dict[str, str | int | bool] = Field({}, description="extra #SBATCH options, e.g. {qos: high, hold: true}")
    resources: dict[str, Resources] = Field({}, description="per model: overrides of the values above")

    def resources_for(self, model: str | None) -> Resources:
        """The resolved resources of a run of `model` (None: any run): per-model override > executor > default."""
        own = self.resources.get(model, Resources()) if model else Resources()
        values = {}
        for name in Resources.model_fields:
            value = getattr(own, name)
            values[name] = value if value is not None else getattr(self, name)
            if values[name] is None:
                values[name] = RESOURCE_DEFAULTS.get(name)
        if values["throughput_gflops"] is None:
            values["throughput_gflops"] = GPU_GFLOPS if values["gpus_per_task"] else CPU_GFLOPS
        return Resources(**values)


# -- does a run fit ---------------------------------------------------------------------------------------------


def memory_floor_gb(spec: RunSpec) -> tuple[float, str]:
    """A lower bound on a run's memory (a training batch and the held-out set as float32 images, the pool's
    visiting order at 8 bytes a sample) and the key that dominates it: real use adds model and activations."""
    from scaling.models import image_size

    pixels = 3 * max(spec.data.image_size, image_size(spec.model)) ** 2 * 4
    parts = {
        "batch_size": spec.batch_size * pixels,
        "data.eval_size": spec.data.eval_size * pixels,
        "data.pool_size": 8 * (spec.data.pool_size or 0),
    }
    return sum(parts.values()) / 1e9, max(parts, key=parts.get)


def machine_memory_gb() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9


def check_memory(specs: list[RunSpec], limit_gb: Callable[[str], float], limit_name: str) -> None:
    """Refuse, before anything runs, a run whose batch alone cannot fit: one line naming the key to lower."""
    for spec in specs:
        need, key = memory_floor_gb(spec)
        limit = limit_gb(spec.model)
        if need > limit:
            value = {"batch_size": spec.batch_size, "data.eval_size": spec.data.eval_size}.get(key, spec.data.pool_size)
            raise ConfigError(
                f"{key}: {value} is too large: a {spec.model} run needs at least {need:.3g} GB for its images and"
                f" sample order alone, more than {limit:.3g} GB ({limit_name})"
            )
