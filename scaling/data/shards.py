"""Random access into webdataset tar shards: headers are scanned once, samples are read by byte offset.

The layout is open_clip's: members `<key>.<ext>` grouped by key (the name up to the first dot of its base
name), an image (`jpg`, `png`, `jpeg` or `webp`, preferred in that order) and a caption (`txt`) per key;
other members (`json`, ...) are ignored, and keys without an image or a caption are skipped, as open_clip
does. Global index = position in (shard path, key) sorted order, the same on every machine and rank.
"""

from __future__ import annotations

import re
import tarfile
from pathlib import Path

import numpy as np
from braceexpand import braceexpand

from scaling.data.base import one_line
from scaling.errors import ConfigError

IMAGE_EXTS = ("jpg", "png", "jpeg", "webp")
_KEY_EXT = re.compile(r"^((?:.*/|)[^./]+)\.([^/]*)$")  # "dir/abc.seg.png" -> ("dir/abc", "seg.png")


def expand(pattern: str, field: str) -> list[Path]:
    """Shard paths of a brace pattern (or one path), sorted; every shard must exist."""
    paths = sorted({Path(p) for p in braceexpand(pattern)})
    missing = [p for p in paths if not p.is_file()]
    if len(missing) == len(paths):
        raise ConfigError(f"{field}: no shard found for {pattern!r}")
    if missing:
        raise ConfigError(f"{field}: {len(missing)} of {len(paths)} shards missing, e.g. {missing[0]}")
    return paths


def scan(path: Path, field: str) -> list[tuple[str, int, int, int, int]]:
    """(key, image offset, image size, text offset, text size) of each complete sample of a shard, by key."""
    members: dict[str, dict[str, tuple[int, int]]] = {}
    try:
        with tarfile.open(path, mode="r:") as tar:  # plain tar only: offsets into compressed data are useless
            for info in tar:
                match = _KEY_EXT.match(info.name)
                if info.isfile() and match:
                    members.setdefault(match[1], {})[match[2].lower()] = (info.offset_data, info.size)
    except (tarfile.TarError, OSError) as err:
        raise ConfigError(f"{field}: {path} is not a readable uncompressed tar file ({one_line(err)})") from None
    samples = []
    for key in sorted(members):
        found = members[key]
        image = next((found[ext] for ext in IMAGE_EXTS if ext in found), None)
        if image and "txt" in found:
            samples.append((key, *image, *found["txt"]))
    return samples


class ShardIndex:
    """Every sample of a set of shards, as byte ranges (~100 bytes of memory per sample)."""

    def __init__(self, pattern: str, field: str) -> None:
        self.field = field
        self.paths = expand(pattern, field)
        rows = [(shard, *sample) for shard, path in enumerate(self.paths) for sample in scan(path, field)]
        if not rows:
            raise ConfigError(f"{field}: no image+txt samples in {len(self.paths)} shard(s) of {pattern!r}")
        shard, self.keys, *ranges = zip(*rows, strict=True)
        self.shard = np.array(shard, dtype=np.int32)
        self.ranges = np.array(ranges, dtype=np.int64).T  # [n, 4]: image offset, size, text offset, size

    def __len__(self) -> int:
        return len(self.keys)

    def name(self, i: int) -> str:
        return f"{self.paths[self.shard[i]]}:{self.keys[i]}"

    def image_bytes(self, i: int) -> bytes:
        return self._read(i, *self.ranges[i, :2])

    def caption(self, i: int) -> str:
        try:
            return self._read(i, *self.ranges[i, 2:]).decode("utf-8").strip()
        except UnicodeDecodeError as err:
            raise ConfigError(f"{self.field}: caption of {self.name(i)} is not UTF-8 ({one_line(err)})") from None

    def files(self) -> list[dict]:
        return [{"path": str(p.resolve()), "bytes": p.stat().st_size} for p in self.paths]

    def _read(self, i: int, offset: int, size: int) -> bytes:
        try:
            with open(self.paths[self.shard[i]], "rb") as f:
                f.seek(offset)
                data = f.read(size)
        except OSError as err:
            raise ConfigError(f"{self.field}: cannot read {self.name(i)} ({one_line(err)})") from None
        if len(data) != size:
            raise ConfigError(f"{self.field}: {self.name(i)} is truncated (shard changed since it was indexed?)")
        return data
