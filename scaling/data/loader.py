"""A run's batches, step by step, prepared ahead by DataLoader worker processes.

The sampler's contract: the global batch of step s is a pure function of (seed, s) (`batch_indices`), and
rank r takes the r-th of `world_size` equal slices of it. The DataLoader's items are therefore *steps*: worker
k builds the whole local batch of every k-th step and the loader hands them back in step order, so a run with
workers sees exactly the batches (same samples, same pool indices for DRRho's u and the reference cache) of a
run without, and a resumed run starts its loader at the step it stopped at. One loader iterates over all
remaining steps of a run, so its workers live (persist) as long as the run does.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from scaling.data.base import Augmentation, Batch, Source

if TYPE_CHECKING:
    from scaling.distributed import World
    from scaling.spec import RunSpec


@lru_cache(maxsize=2)
def epoch_order(seed: int, epoch: int, pool: int) -> np.ndarray:
    """The order in which a run visits its pool in one epoch; seeded apart from weight init."""
    return np.random.default_rng([seed, 1, epoch]).permutation(pool)


def counters(spec: RunSpec, step: int) -> np.ndarray:
    """Run-wide sample counters of the global batch at `step` (JEST: of its loaded super-batch)."""
    return np.arange(step * spec.loaded_batch_size, (step + 1) * spec.loaded_batch_size)


def batch_indices(spec: RunSpec, pool: int, step: int) -> np.ndarray:
    """Pool indices of the global batch at `step`: samples seen beyond the pool repeat it, reshuffled."""
    epochs, offsets = np.divmod(counters(spec, step), pool)
    out = np.empty_like(offsets)
    for e in np.unique(epochs):
        mask = epochs == e
        out[mask] = epoch_order(spec.seed, int(e), pool)[offsets[mask]]
    return out


def default_workers() -> int:
    """One of the run's cores trains, the rest decode: SLURM's cpus_per_task − 1, else the run's torch threads − 1
    (all cores for `scaling.train`; a local sweep gives each of its parallel runs its share, so two runs on two
    cores fork no workers instead of four processes competing for two cores)."""
    cores = int(os.environ.get("SLURM_CPUS_PER_TASK") or torch.get_num_threads())
    return max(0, cores - 1)


def loader_workers(spec: RunSpec) -> int:
    """`data.workers`, or the default above when it is not set."""
    return default_workers() if spec.data.workers is None else spec.data.workers


class StepBatches(Dataset):
    """Item s = this rank's slice of the global batch of step s."""

    def __init__(self, source: Source, spec: RunSpec, world: World) -> None:
        self.source, self.spec, self.world = source, spec, world

    def __len__(self) -> int:
        return self.spec.steps

    def __getitem__(self, step: int) -> Batch:
        pool, ranks, rank = len(self.source), self.world.world_size, self.world.rank
        indices = np.array_split(batch_indices(self.spec, pool, step), ranks)[rank]
        epochs = np.array_split(counters(self.spec, step) // pool, ranks)[rank]
        return self.source.batch(indices, Augmentation(self.spec.seed, epochs))


def step_loader(source: Source, spec: RunSpec, world: World, start: int = 0) -> DataLoader:
    """Local batches of steps start, start + 1, ..., spec.steps − 1, in order, `data.workers` processes ahead."""
    workers = loader_workers(spec)
    return DataLoader(
        StepBatches(source, spec, world),
        batch_size=None,  # items are whole batches already
        sampler=range(start, spec.steps),
        num_workers=workers,
        prefetch_factor=spec.data.prefetch_factor if workers else None,
        pin_memory=world.device.type == "cuda",  # with non_blocking copies in the step
        worker_init_fn=_release_stop_signals if workers else None,
    )


STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}


def _release_stop_signals(worker: int) -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def start(loader: DataLoader) -> Iterator[Batch]:
    """The loader's iterator, its workers forked with stop signals held: a SIGTERM that lands mid-fork is
    delivered right after, in the training process, instead of raising inside a fork hook, where Python
    ignores it (seen: such a run trained on to `done`). Workers release the signals again when they start."""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        return iter(loader)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
