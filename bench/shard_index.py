"""Building the compact shard index: scan rate serial vs parallel, bytes per sample, and DFN-192M extrapolated.

Writes `--shards` webdataset shards of `--per-shard` samples (a small JPEG, a caption and a json each, as
DFN's shards hold), builds the index with 1 process and with one per core in the same run, and prints
samples/s of each, their ratio, the index size per sample and what that means for DFN-192M (192,160,462
samples in 19,216 shards). Headers are all a scan reads, so the rate depends on the members, not the images.

    python bench/shard_index.py [--shards 16] [--per-shard 2000]
"""

from __future__ import annotations

import argparse
import io
import os
import tarfile
import tempfile
import time
from pathlib import Path

from PIL import Image

from scaling.data import shards

DFN_SAMPLES, DFN_SHARDS = 192_160_462, 19_216


def write_shards(root: Path, n: int, per: int) -> list[Path]:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 90)).save(buffer, format="JPEG")
    jpeg = buffer.getvalue()
    paths = []
    for s in range(n):
        path = root / f"{s:08d}.tar"
        with tarfile.open(path, "w") as tar:
            for i in range(per):
                for ext, data in (("jpg", jpeg), ("txt", f"caption {s} {i}".encode()), ("json", b"{}")):
                    info = tarfile.TarInfo(f"{s:08d}{i:06d}.{ext}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--per-shard", type=int, default=2000)
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_shards(Path(tmp), args.shards, args.per_shard)
        rates = {}
        for workers in (1, cores, 1, cores):  # alternating rounds; the best of each is kept
            tick = time.perf_counter()
            samples, starts = shards.build(paths, "data.path", workers=workers)
            rates[workers] = max(rates.get(workers, 0.0), len(samples) / (time.perf_counter() - tick))
        per_sample = (samples.nbytes + starts.nbytes) / len(samples)
    print(f"{len(samples):,} samples in {args.shards} shards ({3 * len(samples):,} tar members)")
    for workers, rate in rates.items():
        print(f"  build, {workers} process(es): {rate:,.0f} samples/s ({3 * rate:,.0f} members/s)")
    print(f"  parallel / serial: {rates[cores] / rates[1]:.2f}x on {cores} cores")
    print(f"  index: {per_sample:.2f} bytes/sample")
    hours = {w: DFN_SAMPLES / r / 3600 for w, r in rates.items()}
    print(
        f"DFN-192M: index {DFN_SAMPLES * 16 / 2**30:.2f} GiB + {DFN_SHARDS * 8 / 2**10:.0f} KiB (memory-mapped, one"
        f" copy per node); build {hours[1]:.2f} h with 1 process, {hours[cores]:.2f} h with {cores},"
        f" {hours[1] / 32:.2f} h on 32 cores if it scales linearly (the filesystem permitting); once, for every run"
    )


if __name__ == "__main__":
    main()
