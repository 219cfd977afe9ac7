"""Our step loader vs open_clip_train's `get_wds_dataset` on the same JPEG webdataset shards, in one process.

The bench writes `--images` 256 px JPEGs (smooth random scenes, ~photo-sized files) into shards of 1,000, then
times an epoch of each loader with the same open_clip train transform (224 px), tokenizer, batch and number of
workers (1 and 2), alternating which goes first. It prints samples/s and ours / peer (goal ≥ 1.0). Then it
trains w128-l4 on the shards with 2 workers and prints the fraction of step time spent waiting for data
(goal ≤ 5 % when the loader is faster than the step).

The peer runs as open_clip users run it today: open_clip_train 3.3.0 with webdataset ≥ 0.2.x crashes with
`KeyError: 'fname'`, because webdataset's `tar_file_expander` now yields an empty dict as an end-of-shard
marker (`eof_value={}`) and open_clip_train's `group_by_keys_nothrow` indexes every item's "fname". The bench
passes `eof_value=None` (the marker off, webdataset's older behaviour), the one-line workaround.

    python bench/data_loader.py [--images 20000] [--batch 256] [--rounds 1]
"""

from __future__ import annotations

import argparse
import functools
import io
import tarfile
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image

from scaling.data import build_source
from scaling.data.loader import step_loader
from scaling.distributed import World
from scaling.run import run
from scaling.spec import parse_spec

PER_SHARD, SIZE, TRAIN_SIZE = 1000, 256, 224


def write_shards(root: Path, images: int) -> str:
    """JPEG shards in open_clip's layout (<key>.jpg, <key>.txt); returns their brace pattern."""
    rng = np.random.default_rng(0)
    shards = (images + PER_SHARD - 1) // PER_SHARD
    for s in range(shards):
        with tarfile.open(root / f"{s:05d}.tar", "w") as tar:
            for i in range(s * PER_SHARD, min(images, (s + 1) * PER_SHARD)):
                small = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
                buffer = io.BytesIO()
                small.resize((SIZE, SIZE), Image.BICUBIC).save(buffer, format="JPEG", quality=90)
                for ext, data in (("jpg", buffer.getvalue()), ("txt", f"a picture number {i}".encode())):
                    info = tarfile.TarInfo(f"{i:08d}.{ext}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
    return str(root / f"{{00000..{shards - 1:05d}}}.tar")


def spec_for(pattern: str, images: int, batch: int, workers: int, model: str = "w128-l4", image_size: int = TRAIN_SIZE):
    data = {
        "source": "webdataset",
        "path": pattern,
        "eval_path": pattern,
        "eval_size": batch,
        "image_size": image_size,
        "workers": workers,
    }
    return parse_spec(
        {
            "model": model,
            "batch_size": batch,
            "samples_seen": images // batch * batch,
            "data": data,
            "eval": {"points": 1},
        }
    )


def ours(pattern: str, images: int, batch: int, workers: int) -> float:
    """Samples/s of one epoch of our step loader (index already built)."""
    spec = spec_for(pattern, images, batch, workers)
    source = build_source(spec.data, context_length=77)
    tick, n = time.perf_counter(), 0
    for b in step_loader(source, spec, World()):
        n += len(b)
    return n / (time.perf_counter() - tick)


def peer(pattern: str, images: int, batch: int, workers: int) -> float:
    """Samples/s of one epoch of open_clip_train's webdataset pipeline, as its main builds it."""
    import open_clip
    import webdataset
    from open_clip.transform import image_transform
    from open_clip_train import data as oct_data

    oct_data.tar_file_expander = functools.partial(webdataset.tariterators.tar_file_expander, eof_value=None)
    args = SimpleNamespace(
        train_data=pattern,
        train_num_samples=images,
        train_data_upsampling_factors=None,
        dataset_resampled=False,
        batch_size=batch,
        workers=workers,
        world_size=1,
        seed=0,
    )
    info = oct_data.get_wds_dataset(
        args,
        image_transform(TRAIN_SIZE, is_train=True),
        is_train=True,
        epoch=0,
        tokenizer=open_clip.get_tokenizer("ViT-B-32"),
    )
    tick, n = time.perf_counter(), 0
    for images_, _ in info.dataloader:
        n += len(images_)
    return n / (time.perf_counter() - tick)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds per side; the best is kept")
    parser.add_argument("--train-steps", type=int, default=40, help="steps of the w128-l4 data-wait run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pattern = write_shards(Path(tmp), args.images)
        build_source(spec_for(pattern, args.images, args.batch, 0).data)  # the index, built once, outside timing
        print(
            f"{args.images:,} JPEGs of {SIZE} px in {args.images // PER_SHARD} shards; train transform at "
            f"{TRAIN_SIZE} px; batch {args.batch}"
        )
        print(f"{'workers':>7} {'ours s/s':>9} {'peer s/s':>9} {'ours/peer':>9}")
        for workers in (1, 2):
            best = {"ours": 0.0, "peer": 0.0}
            sides = [("ours", ours), ("peer", peer)]
            for r in range(args.rounds):
                for name, fn in sides if r % 2 == 0 else sides[::-1]:
                    best[name] = max(best[name], fn(pattern, args.images, args.batch, workers))
            print(f"{workers:>7} {best['ours']:>9.0f} {best['peer']:>9.0f} {best['ours'] / best['peer']:>9.2f}")
        spec = spec_for(pattern, args.train_steps * args.batch, args.batch, 2, image_size=32)
        record = run(spec, Path(tmp) / "out", progress=False)
        t = record.throughput
        print(
            f"w128-l4 at 32 px, 2 workers, {spec.steps} steps: {100 * t['data_wait_s'] / t['train_wall_s']:.1f} % of"
            f" step time waiting for data ({t['samples_per_s']:.0f} samples/s)"
        )


if __name__ == "__main__":
    main()
