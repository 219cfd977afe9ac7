"""The procedural image–caption pool: sample i is a pure function of (seed, i).

Samples are generated on first use, vectorised over whatever indices a batch asks for, and kept as uint8
in arrays the size of the pool (np.empty commits memory only for the pages written: ~3.1 KB per sample at
32 px once touched). Pools larger than the cache budget are generated on every access instead (~10 ms per
256 samples). A pool of N samples is the first N samples of the seed's infinite sequence, so smaller pools
are prefixes of larger ones.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import lru_cache

import numpy as np
import torch

from scaling.data import grammar
from scaling.data.base import Augmentation, Batch, as_indices
from scaling.data.render import pixel_words, render
from scaling.data.scenes import (
    EVAL,
    NOISE_WORDS,
    SCENE_WORDS,
    TRAIN,
    corrupt,
    draw_scene,
    random_words,
    uniforms,
)
from scaling.data.tokenizer import synthetic_tokenizer

GENERATOR_VERSION = 1  # bump when anything changes what a (seed, i) looks like
EVAL_SEED = 0  # the held-out set's seed, in its own domain: no training seed can reproduce it
CACHE_BYTES = 4 << 30  # pools up to this size (~1.3 M samples at 32 px) are kept in memory once generated


@dataclass(frozen=True)
class Samples:
    """Everything generated for a set of samples, in compact dtypes."""

    images: np.ndarray  # uint8 [n, 3, S, S]
    tokens: np.ndarray  # uint8 [n, context_length]
    objects: np.ndarray  # int8 [n, MAX_OBJECTS, 4], -1 for absent objects
    noisy: np.ndarray  # bool [n]
    captions: np.ndarray  # object (str) [n]

    def take(self, idx: np.ndarray) -> Samples:
        return Samples(*(getattr(self, f.name)[idx] for f in fields(self)))


class SyntheticSource:
    """A pool of `pool_size` procedural samples; `batch` returns any of them by index, on any machine."""

    def __init__(
        self,
        seed: int,
        pool_size: int,
        *,
        caption_noise: float = 0.0,
        max_objects: int = 1,
        image_size: int = 32,
        context_length: int = 32,
        domain: int = TRAIN,
        cache_bytes: int = CACHE_BYTES,
    ) -> None:
        self.seed, self.pool_size, self.domain = seed, pool_size, domain
        self.caption_noise, self.max_objects, self.image_size = caption_noise, max_objects, image_size
        self.tokenizer = synthetic_tokenizer(context_length)
        per_sample = 3 * image_size**2 + context_length + 100  # + labels, noise flag and caption string
        self._cache = self._empty(pool_size) if pool_size * per_sample <= cache_bytes else None
        self._ready = np.zeros(pool_size, dtype=bool)

    def __len__(self) -> int:
        return self.pool_size

    def batch(self, indices: np.ndarray, augment: Augmentation | None = None) -> Batch:
        """Images in [-1, 1] and compact token ids of the given pool indices, in the given order (procedural
        samples are not augmented: `augment` is ignored)."""
        idx = as_indices(indices, self.pool_size)
        samples = self._fetch(idx)
        # in numpy: torch maps a fresh multi-MB buffer per call (~15 ms of page faults on a VM), numpy reuses
        images = samples.images.astype(np.float32)
        images *= np.float32(2 / 255)
        images -= np.float32(1)
        tokens = samples.tokens.astype(np.int64)
        return Batch(images=torch.from_numpy(images), tokens=torch.from_numpy(tokens), index=torch.from_numpy(idx))

    def captions(self, indices: np.ndarray) -> list[str]:
        """The (possibly noisy) caption of each index, as tokenized in `batch`."""
        return list(self._fetch(as_indices(indices, self.pool_size)).captions)

    def labels(self, indices: np.ndarray) -> np.ndarray:
        """int64 [n, MAX_OBJECTS, 4] true (shape, colour, size, position) ids of each object, -1 if absent."""
        return self._fetch(as_indices(indices, self.pool_size)).objects.astype(np.int64)

    def noisy(self, indices: np.ndarray) -> np.ndarray:
        """bool [n]: whether the caption of each index was corrupted (caption_noise)."""
        return self._fetch(as_indices(indices, self.pool_size)).noisy

    def describe(self) -> dict:
        """Identity of the content, for cache manifests: equal dicts mean equal samples."""
        return {
            "kind": "synthetic",
            "generator_version": GENERATOR_VERSION,
            "domain": "train" if self.domain == TRAIN else "eval",
            "seed": self.seed,
            "pool_size": self.pool_size,
            "caption_noise": self.caption_noise,
            "max_objects": self.max_objects,
            "image_size": self.image_size,
            "tokenizer": f"compact-bpe-{self.tokenizer.vocab_size}",
            "context_length": self.tokenizer.context_length,
        }

    def _empty(self, n: int) -> Samples:
        size, length = self.image_size, self.tokenizer.context_length
        return Samples(
            np.empty((n, 3, size, size), np.uint8),
            np.empty((n, length), np.uint8),
            np.empty((n, grammar.MAX_OBJECTS, 4), np.int8),
            np.empty(n, bool),
            np.empty(n, object),
        )

    def _fetch(self, idx: np.ndarray) -> Samples:
        """The samples of idx, generating (and caching, if the pool fits) those not seen before."""
        if self._cache is None:
            return self._generate(idx)
        missing = np.unique(idx[~self._ready[idx]])
        if missing.size:
            new = self._generate(missing)
            for f in fields(Samples):
                getattr(self._cache, f.name)[missing] = getattr(new, f.name)
            self._ready[missing] = True
        return self._cache.take(idx)

    def _generate(self, idx: np.ndarray) -> Samples:
        """Draw, caption, render and tokenize the samples idx, vectorised over them."""
        words = random_words(self.domain, self.seed, idx, SCENE_WORDS + NOISE_WORDS + pixel_words(self.image_size))
        scene = draw_scene(uniforms(words[:, :SCENE_WORDS]), self.max_objects)
        noise = uniforms(words[:, SCENE_WORDS : SCENE_WORDS + NOISE_WORDS])
        described, noisy = corrupt(scene, noise, self.caption_noise)
        scenes = zip(described, scene.n_objects, scene.template, strict=True)
        captions = np.array([grammar.caption(objs[:k], t) for objs, k, t in scenes], dtype=object)
        images = render(scene, words[:, SCENE_WORDS + NOISE_WORDS :], self.image_size)
        tokens = self.tokenizer(list(captions)).numpy().astype(np.uint8)
        return Samples(images, tokens, scene.objects.astype(np.int8), noisy, captions)


@lru_cache(maxsize=4)
def eval_source(eval_size: int, image_size: int = 32, context_length: int = 32) -> SyntheticSource:
    """The fixed held-out set: clean, one object per image, the same for every run whatever its seed or noise.

    Cached, so repeated evaluations in a process reuse the generated images.
    """
    return SyntheticSource(EVAL_SEED, eval_size, image_size=image_size, context_length=context_length, domain=EVAL)


def eval_labels(eval_size: int) -> np.ndarray:
    """int64 [eval_size, 4] attributes of the held-out set's single objects, without rendering any pixels."""
    words = random_words(EVAL, EVAL_SEED, np.arange(eval_size), SCENE_WORDS)
    return draw_scene(uniforms(words), max_objects=1).objects[:, 0]
