"""Real image–caption data for cluster users: webdataset shards or a CSV, by global index.

Both formats become an index with random access, so the trainer's exact-resume sampler works the same on
real and synthetic data. Training images go through open_clip's train transform (random resized crop, seeded
per sample by `Augmentation`), held-out and reference images through its eval transform (resize, centre crop);
captions through open_clip's BPE tokenizer. Unreadable input raises ConfigError naming the spec field.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Protocol

import numpy as np
import torch
from open_clip.transform import image_transform
from PIL import Image

from scaling.data.base import Augmentation, Batch, as_indices, one_line
from scaling.data.shards import ShardIndex
from scaling.data.table import TableIndex
from scaling.data.tokenizer import bpe_tokenizer
from scaling.errors import ConfigError


class SampleIndex(Protocol):
    """What a real-data format provides: bytes of an image, a caption, a name for error messages."""

    field: str

    def __len__(self) -> int: ...

    def name(self, i: int) -> str: ...

    def image_bytes(self, i: int) -> bytes: ...

    def caption(self, i: int) -> str: ...

    def files(self) -> list[dict]: ...


def open_index(kind: str, path: str, field: str) -> SampleIndex:
    """Index a webdataset brace pattern or a CSV file."""
    return ShardIndex(path, field) if kind == "webdataset" else TableIndex(path, field)


class RealSource:
    """The first `pool_size` samples of an index (all if None)."""

    def __init__(
        self,
        kind: str,
        path: str,
        *,
        field: str = "data.path",
        pool_size: int | None = None,
        size_field: str = "data.pool_size",
        image_size: int = 32,
        context_length: int = 32,
    ) -> None:
        self.kind, self.image_size = kind, image_size
        self._index = open_index(kind, path, field)
        available = len(self._index)
        if pool_size is not None and pool_size > available:
            raise ConfigError(f"{size_field}: {pool_size} samples requested but {field} has only {available}")
        self.pool_size = available if pool_size is None else pool_size
        self.tokenizer = bpe_tokenizer(context_length)
        self._eval_transform = image_transform(image_size, is_train=False)
        self._train_transform = image_transform(image_size, is_train=True)

    def __len__(self) -> int:
        return self.pool_size

    def batch(self, indices: np.ndarray, augment: Augmentation | None = None) -> Batch:
        """Decoded, normalised images and BPE tokens of the given pool indices, in the given order; with
        `augment`, through the train transform, each sample's randomness seeded by it."""
        idx = as_indices(indices, self.pool_size)
        if augment is None:
            images = torch.stack([self._eval_transform(self._image(int(i))) for i in idx])
        else:
            images = torch.stack(list(self._augmented(idx, augment)))
        return Batch(images=images, tokens=self.tokenizer(self.captions(idx)), index=torch.from_numpy(idx))

    def captions(self, indices: np.ndarray) -> list[str]:
        """The caption of each index, as stored (before tokenization)."""
        return [self._index.caption(int(i)) for i in as_indices(indices, self.pool_size)]

    def describe(self) -> dict:
        """Identity of the content: format, files and their sizes, how many samples are used."""
        return {
            "kind": self.kind,
            "files": self._index.files(),
            "available": len(self._index),
            "pool_size": self.pool_size,
            "image_size": self.image_size,
            "tokenizer": f"bpe-{self.tokenizer.vocab_size}",
            "context_length": self.tokenizer.context_length,
        }

    def _augmented(self, idx: np.ndarray, augment: Augmentation) -> Iterator[torch.Tensor]:
        with torch.random.fork_rng(devices=[]):  # the trainer's own RNG stream is left untouched
            for i, seed in zip(idx, augment.seeds(idx), strict=True):
                torch.default_generator.manual_seed(seed)  # torch.manual_seed also queues a seed for every
                # accelerator with a formatted stack trace each (cProfile: 22.5 → 19.2 ms a sample without)
                yield self._train_transform(self._image(int(i)))

    def _image(self, i: int) -> Image.Image:
        data = self._index.image_bytes(i)
        try:
            with Image.open(io.BytesIO(data)) as image:
                return image.convert("RGB")
        except (OSError, ValueError, Image.DecompressionBombError) as err:
            raise ConfigError(
                f"{self._index.field}: cannot decode image {self._index.name(i)} ({one_line(err)})"
            ) from None
