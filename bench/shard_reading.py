"""Reading real shards: random access by byte offset (ShardIndex, what runs use) vs streaming whole shards in a
seeded order (webdataset's way), on the same local JPEG shards, in one process, ratios from the same run.

Both give every sample of one epoch with its global index:
- offset: the epoch's global permutation, each sample two `pread`s from shard descriptors kept open;
- stream: the shards in a seeded order, each read front to back with `tarfile` in stream mode, samples shuffled
  in a buffer of `--buffer` (open_clip_train's `_SHARD_SHUFFLE_SIZE` is 2,000).
Each is timed (alternating, best of two) reading bytes only, once cold (the shards' pages dropped from the
page cache with posix_fadvise(DONTNEED) first: data not yet cached, as at a run's start) and once warm, then with
open_clip's train transform (JPEG decode, random resized crop to 224 px), which is what a loader worker does per sample.

    python bench/shard_reading.py [--images 10000] [--buffer 2000]
"""

from __future__ import annotations

import argparse
import io
import os
import random
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from data_loader import PER_SHARD, SIZE, TRAIN_SIZE, write_shards
from open_clip.transform import image_transform
from PIL import Image

from scaling.data.shards import ShardIndex

Sample = tuple[int, bytes, str]


def by_offset(index: ShardIndex, seed: int) -> Iterator[Sample]:
    """Today's reader: a global permutation, each sample read where the index says it is."""
    for i in np.random.default_rng(seed).permutation(len(index)):
        yield int(i), index.image_bytes(int(i)), index.caption(int(i))


def streamed(index: ShardIndex, seed: int, buffer: int) -> Iterator[Sample]:
    """Whole shards front to back in a seeded order, through a shuffle buffer. A sample's global index is its
    shard's first index plus its position (the bench writes members in key order, as the index sorts them)."""
    rng, pending = random.Random(seed), []
    for shard in np.random.default_rng(seed).permutation(len(index.paths)):
        position, parts = int(index.starts[shard]), {}
        with tarfile.open(index.paths[shard], mode="r|") as tar:
            for member in tar:
                ext = member.name.partition(".")[2]
                parts[ext] = tar.extractfile(member).read()
                if "jpg" in parts and "txt" in parts:
                    pending.append((position, parts["jpg"], parts["txt"].decode()))
                    position, parts = position + 1, {}
                    if len(pending) >= buffer:
                        yield pending.pop(rng.randrange(len(pending)))
    rng.shuffle(pending)
    yield from pending


def drop_cache(paths: list[Path]) -> None:
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def epoch(samples: Iterator[Sample], work: Callable[[bytes], object] | None) -> tuple[float, int, set[int]]:
    """(seconds, bytes read, indices seen) of one pass, `work` applied to each image."""
    tick, size, seen = time.perf_counter(), 0, set()
    for i, image, caption in samples:
        size += len(image) + len(caption)
        seen.add(i)
        if work is not None:
            work(image)
    return time.perf_counter() - tick, size, seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--buffer", type=int, default=2_000)
    args = parser.parse_args()
    transform = image_transform(TRAIN_SIZE, is_train=True)

    def decode(data: bytes) -> object:
        with Image.open(io.BytesIO(data)) as image:
            return transform(image.convert("RGB"))

    with tempfile.TemporaryDirectory() as tmp:
        index = ShardIndex(write_shards(Path(tmp), args.images), "data.path")
        readers = {"offset": lambda: by_offset(index, 0), "stream": lambda: streamed(index, 0, args.buffer)}
        print(f"{len(index):,} JPEGs of {SIZE} px in {len(index.paths)} shards of {PER_SHARD}; 1 process")
        print(f"{'pass':<24} {'offset s/s':>10} {'stream s/s':>10} {'MB/s off':>8} {'MB/s str':>8} {'str/off':>7}")
        for name, cold, work in (
            ("read, cold cache", True, None),
            ("read, warm", False, None),
            ("read + decode + crop", False, decode),
        ):
            rates, mbs = {"offset": 0.0, "stream": 0.0}, {}
            for reader in ("offset", "stream", "stream", "offset"):  # alternating, the best of two kept
                if cold:
                    drop_cache(index.paths)
                seconds, size, seen = epoch(readers[reader](), work)
                assert seen == set(range(len(index))), f"{reader} missed or repeated samples"
                if len(index) / seconds > rates[reader]:
                    rates[reader], mbs[reader] = len(index) / seconds, size / seconds / 1e6
            print(
                f"{name:<24} {rates['offset']:>10,.0f} {rates['stream']:>10,.0f} {mbs['offset']:>8.0f} "
                f"{mbs['stream']:>8.0f} {rates['stream'] / rates['offset']:>7.2f}"
            )


if __name__ == "__main__":
    main()
