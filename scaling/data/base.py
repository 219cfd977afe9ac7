"""The types every data source shares, kept apart from the sources so they can import them without cycles."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np
import torch


@dataclass(frozen=True)
class Batch:
    """One batch: pixels, token ids and each sample's pool index (the key of DRRho's per-sample state)."""

    images: torch.Tensor  # float32 [n, 3, S, S], normalised (synthetic: [-1, 1])
    tokens: torch.Tensor  # int64 [n, context_length]
    index: torch.Tensor  # int64 [n], pool index of each sample
    labels: np.ndarray | None = None  # eval set only: attribute labels, see synthetic.LABEL_COLUMNS

    def __len__(self) -> int:
        return len(self.index)

    def rows(self, rows: torch.Tensor) -> Batch:
        """The samples at positions `rows`, in that order, with their pool indices (JEST's selected batch)."""
        labels = None if self.labels is None else self.labels[rows.numpy()]
        return replace(self, images=self.images[rows], tokens=self.tokens[rows], index=self.index[rows], labels=labels)

    def pin_memory(self) -> Batch:
        """Page-locked copies (the DataLoader calls this on CUDA), so the step's non_blocking copies overlap."""
        return replace(self, images=self.images.pin_memory(), tokens=self.tokens.pin_memory())


@dataclass(frozen=True)
class Augmentation:
    """Training-time randomness of one batch: each sample's draw is a pure function of (run seed, pool index,
    epoch), so workers, ranks and resumes all see the same crops."""

    seed: int
    epochs: np.ndarray  # int64 [n]: the epoch in which each sample of the batch is seen

    def seeds(self, indices: np.ndarray) -> list[int]:
        """One 64-bit seed per sample, from a Philox stream keyed apart from every other use of the run seed."""
        key = np.array([self.seed, AUGMENT_STREAM], dtype=np.uint64)
        pairs = zip(indices, self.epochs, strict=True)
        return [int(np.random.Philox(key=key, counter=[0, int(e), int(i), 0]).random_raw()) for i, e in pairs]


AUGMENT_STREAM = 7


class Tokenizer(Protocol):
    """What open_clip's `build_zero_shot_classifier` and the trainer need from a tokenizer."""

    vocab_size: int
    context_length: int

    def __call__(self, texts: list[str]) -> torch.Tensor: ...


class Source(Protocol):
    """A pool of image–caption pairs with random access by index, the same on every machine."""

    tokenizer: Tokenizer

    def __len__(self) -> int: ...

    def batch(self, indices: np.ndarray, augment: Augmentation | None = None) -> Batch: ...

    def captions(self, indices: np.ndarray) -> list[str]: ...

    def describe(self) -> dict: ...


@dataclass(frozen=True, eq=False)
class ZeroShotTask:
    """A classification task over the eval set: prompt ensembles per class and one label per eval sample."""

    name: str
    classnames: tuple[str, ...]
    templates: tuple[str, ...]
    labels: np.ndarray  # int64 [eval_size], aligned with eval_batch()


def as_indices(indices: np.ndarray | list[int] | torch.Tensor, size: int) -> np.ndarray:
    """Validate pool indices once for every source: int64, 1-D, inside [0, size)."""
    idx = np.array(indices, dtype=np.int64).reshape(-1)  # a copy: the batch must not alias the caller
    if idx.size and (idx.min() < 0 or idx.max() >= size):
        raise IndexError(f"pool index out of range [0, {size}): min {idx.min()}, max {idx.max()}")
    return idx


def one_line(err: BaseException) -> str:
    """An exception's message on one line: ConfigError messages are printed as a single line by the CLI."""
    return " ".join(str(err).split())
