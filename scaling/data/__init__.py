"""Data for scaling runs: pools of image–caption pairs with random access by index, a fixed eval set and
zero-shot tasks.

Every source answers `batch(indices)` for any indices in [0, len(source)), identically on every machine and
after a resume, so the trainer's sampler alone decides what a run sees. Synthetic data (the default) is
generated procedurally; webdataset shards and CSV files serve real data on a cluster.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from scaling.data.base import Batch, Source, Tokenizer, ZeroShotTask
from scaling.data.grammar import LABEL_COLUMNS
from scaling.data.real import RealSource
from scaling.data.synthetic import SyntheticSource, eval_source
from scaling.data.zeroshot import synthetic_tasks
from scaling.errors import ConfigError

if TYPE_CHECKING:
    from scaling.spec import DataSpec

__all__ = [
    "LABEL_COLUMNS",
    "Batch",
    "RealSource",
    "Source",
    "SyntheticSource",
    "Tokenizer",
    "ZeroShotTask",
    "build_source",
    "eval_batch",
    "zero_shot_tasks",
]


def build_source(spec: DataSpec, context_length: int = 32) -> Source:
    """The training pool of a run; `context_length` is the model's text context."""
    if spec.source == "synthetic":
        return SyntheticSource(
            spec.seed,
            spec.pool_size,
            caption_noise=spec.caption_noise,
            max_objects=spec.max_objects,
            image_size=spec.image_size,
            context_length=context_length,
        )
    return RealSource(
        spec.source,
        spec.path,
        pool_size=spec.pool_size,
        image_size=spec.image_size,
        context_length=context_length,
    )


def eval_batch(spec: DataSpec, context_length: int = 32) -> Batch:
    """The held-out set, the same for every run on the same data whatever its seed or noise.

    Synthetic: `eval_size` clean one-object samples from a fixed seed, with `labels` int64 [n, 4] in
    LABEL_COLUMNS order. Real: the first `eval_size` samples of `data.eval_path` (no labels); decoding is
    not cached, so call this once per run and keep the batch.
    """
    if spec.source == "synthetic":
        source = eval_source(spec.eval_size, spec.image_size, context_length)
        every = np.arange(spec.eval_size)
        return replace(source.batch(every), labels=source.labels(every)[:, 0])
    if not spec.eval_path:
        raise ConfigError("data.eval_path is required for real data")
    source = RealSource(
        spec.source,
        spec.eval_path,
        field="data.eval_path",
        pool_size=spec.eval_size,
        size_field="data.eval_size",
        image_size=spec.image_size,
        context_length=context_length,
    )
    return source.batch(np.arange(spec.eval_size))


def zero_shot_tasks(spec: DataSpec) -> list[ZeroShotTask]:
    """Zero-shot tasks with labels aligned with `eval_batch(spec)`; real data has none."""
    return synthetic_tasks(spec.eval_size) if spec.source == "synthetic" else []
