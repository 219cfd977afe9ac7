"""Shared test inputs and a 2-process (gloo) runner that checks a loss against its single-process self."""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import Tensor

from scaling.losses import ContrastiveLoss, build_loss
from scaling.spec import LossSpec

WORLD_SIZE = 2


@dataclass(frozen=True)
class Step:
    """One global batch: unit features of the target (and of a reference), its pool indices and epoch."""

    image: Tensor
    text: Tensor
    logit_scale: float
    index: Tensor
    epoch: int
    ref_image: Tensor
    ref_text: Tensor


def unit_rows(generator: torch.Generator, rows: int, dim: int) -> Tensor:
    """Random L2-normalised float64 rows."""
    return torch.nn.functional.normalize(torch.randn(rows, dim, generator=generator, dtype=torch.float64), dim=1)


def make_steps(
    seed: int,
    indices: list[list[int]],
    epochs: list[int],
    scales: list[float],
    dim: int = 5,
    ref_dim: int = 3,
) -> list[Step]:
    """Deterministic steps (same on every process); index lists overlap so the u memory is read back."""
    generator = torch.Generator().manual_seed(seed)
    steps = []
    for index, epoch, scale in zip(indices, epochs, scales, strict=True):
        n = len(index)
        steps.append(
            Step(
                image=unit_rows(generator, n, dim),
                text=unit_rows(generator, n, dim),
                logit_scale=scale,
                index=torch.tensor(index),
                epoch=epoch,
                ref_image=unit_rows(generator, n, ref_dim),
                ref_text=unit_rows(generator, n, ref_dim),
            )
        )
    return steps


def run_steps(loss: ContrastiveLoss, steps: list[Step], rank: int = 0, world_size: int = 1) -> dict[str, list]:
    """Feed this rank's shard of every step to ``loss``; record loss values and gradients (and u tables)."""
    record: dict[str, list] = {"loss": [], "image_grad": [], "text_grad": [], "scale_grad": []}
    for step in steps:
        shard = slice(rank * len(step.index) // world_size, (rank + 1) * len(step.index) // world_size)
        image = step.image[shard].clone().requires_grad_()
        text = step.text[shard].clone().requires_grad_()
        scale = torch.tensor(step.logit_scale, dtype=torch.float64, requires_grad=True)
        reference = (step.ref_image[shard], step.ref_text[shard]) if loss.needs_reference else (None, None)
        value = loss(image, text, scale, step.index[shard], step.epoch, *reference)
        value.backward()
        for key, tensor in zip(record, (value, image.grad, text.grad, scale.grad), strict=True):
            record[key].append(tensor.detach().clone())
    record["tables"] = [buffer.clone() for name, buffer in loss.named_buffers() if "estimator." in name]
    return record


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rank_entry(rank: int, port: int, out_dir: str, function: Callable, args: tuple) -> None:
    """Entry point of one spawned rank: join the gloo group, run ``function``, save what it returned."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD_SIZE, timeout=timedelta(seconds=60))
    try:
        torch.save(function(rank, *args), Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def spawn_two_ranks(function: Callable, *args) -> list:
    """What ``function(rank, *args)`` returns on each of two gloo ranks (a module-level function; tensors,
    lists and dicts of them as results)."""
    with tempfile.TemporaryDirectory() as out_dir:
        mp.spawn(_rank_entry, args=(_free_port(), out_dir, function, args), nprocs=WORLD_SIZE)
        return [torch.load(Path(out_dir) / f"rank{rank}.pt") for rank in range(WORLD_SIZE)]


def _run_loss_steps(
    rank: int, method: str, params: LossSpec, data_size: int, steps: list[Step], options: dict
) -> dict[str, list]:
    loss = build_loss(method, params, data_size, rank, WORLD_SIZE, **options).double()
    return run_steps(loss, steps, rank, WORLD_SIZE)


def run_on_two_ranks(
    method: str, params: LossSpec, data_size: int, steps: list[Step], **options
) -> list[dict[str, list]]:
    """What each of two gloo ranks records for the same global steps (each gets half of every batch).

    ``options`` go to build_loss (e.g. ``distill=DistillSpec(...)``).
    """
    return spawn_two_ranks(_run_loss_steps, method, params, data_size, steps, options)


def assert_two_ranks_match_single_process(
    method: str, params: LossSpec, data_size: int, steps: list[Step], **options
) -> None:
    """Rank losses average, and rank gradients sum ÷ world size, to the single-process values.

    Each rank's local feature gradient already holds every rank's contribution (the all-gather's backward
    sums them), so concatenating the local gradients is the feature-level view of the trainer's all-reduce
    (sum) of parameter gradients; dividing by world_size gives the single-process gradient. The logit scale
    is replicated, so its gradients are summed over ranks directly. The u tables must be identical on all
    ranks and equal to the single-process ones.
    """
    single = run_steps(build_loss(method, params, data_size, **options).double(), steps)
    ranks = run_on_two_ranks(method, params, data_size, steps, **options)
    for step in range(len(steps)):
        torch.testing.assert_close(sum(r["loss"][step] for r in ranks) / WORLD_SIZE, single["loss"][step])
        for key in ("image_grad", "text_grad"):
            gathered = torch.cat([r[key][step] for r in ranks]) / WORLD_SIZE
            torch.testing.assert_close(gathered, single[key][step])
        torch.testing.assert_close(sum(r["scale_grad"][step] for r in ranks) / WORLD_SIZE, single["scale_grad"][step])
    for rank in ranks:
        assert len(rank["tables"]) == len(single["tables"])
        for table, other_rank, expected in zip(rank["tables"], ranks[0]["tables"], single["tables"], strict=True):
            assert torch.equal(table, other_rank)
            torch.testing.assert_close(table, expected)
