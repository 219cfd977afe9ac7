"""Random access into webdataset tar shards through a compact index built once, in parallel, and shared.

The layout is open_clip's: members `<key>.<ext>` grouped by key (the name up to the first dot of its base
name), an image (`jpg`, `png`, `jpeg` or `webp`, preferred in that order) and a caption (`txt`) per key;
other members (`json`, ...) are ignored, and keys without an image or a caption are skipped, as open_clip
does. Global index = position in (shard path, key) sorted order, the same on every machine and rank.

The index holds 16 bytes per sample (tar members start on 512-byte blocks, so uint32 block numbers reach
2 TiB per shard) plus 8 bytes per shard, in two .npy files named by a digest of the shards' paths, sizes and
modification times. It lives beside the shards (`.shard-index/`, else the user's cache) and is memory-mapped,
so every rank and loader worker of a node shares one copy through the page cache. The first process to need
it builds it with one scanning process per core while the others wait on a lock; later runs just map it.
Readers keep shard files open (a bounded LRU of descriptors, read with `pread`, safe across fork). Random
access was chosen over streaming whole shards by measurement (bench/shard_reading.py: offset reads 1.7× cold,
4.9× warm, 1.1× with decode; the numbers are in the README).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import tarfile
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from braceexpand import braceexpand

from scaling.data.base import one_line
from scaling.errors import ConfigError
from scaling.io import write_atomic

IMAGE_EXTS = ("jpg", "png", "jpeg", "webp")
_KEY_EXT = re.compile(r"^((?:.*/|)[^./]+)\.([^/]*)$")  # "dir/abc.seg.png" -> ("dir/abc", "seg.png")
BLOCK = 512  # tar's block size: every member's data starts on a block boundary
SAMPLE = np.dtype([("image_block", "<u4"), ("image_size", "<u4"), ("text_block", "<u4"), ("text_size", "<u4")])
INDEX_VERSION = 1  # bump when the layout or the sample order changes
OPEN_FILES = 64  # shard descriptors each process keeps open


def expand(pattern: str, field: str) -> list[Path]:
    """Shard paths of a brace pattern (or one path), sorted; every shard must exist."""
    paths = sorted({Path(p) for p in braceexpand(pattern)})
    missing = [p for p in paths if not p.is_file()]
    if len(missing) == len(paths):
        raise ConfigError(f"{field}: no shard found for {pattern!r}")
    if missing:
        raise ConfigError(f"{field}: {len(missing)} of {len(paths)} shards missing, e.g. {missing[0]}")
    return paths


def scan(path: Path, field: str) -> np.ndarray:
    """The SAMPLE rows of each complete sample of a shard, in key order (headers only: data is skipped)."""
    members: dict[str, dict[str, tuple[int, int]]] = {}
    try:
        with tarfile.open(path, mode="r:") as tar:  # plain tar only: offsets into compressed data are useless
            for info in tar:
                match = _KEY_EXT.match(info.name)
                if info.isfile() and match:
                    members.setdefault(match[1], {})[match[2].lower()] = (info.offset_data // BLOCK, info.size)
    except (tarfile.TarError, OSError) as err:
        raise ConfigError(f"{field}: {path} is not a readable uncompressed tar file ({one_line(err)})") from None
    rows = []
    for key in sorted(members):
        found = members[key]
        image = next((found[ext] for ext in IMAGE_EXTS if ext in found), None)
        if image and "txt" in found:
            rows.append((*image, *found["txt"]))
    if any(max(row) >= 2**32 for row in rows):
        raise ConfigError(f"{field}: {path} is larger than 2 TiB or has a member over 4 GiB; split it")
    return np.array(rows, dtype=SAMPLE)


def digest(paths: list[Path]) -> str:
    """Identity of a set of shards: paths, sizes and modification times (a rewritten shard gets a new index)."""
    h = hashlib.sha256(f"v{INDEX_VERSION}".encode())
    for p in paths:
        st = p.stat()
        h.update(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def index_dir(paths: list[Path]) -> Path:
    """Beside the shards when that is writable (shared by every user of the data), else the user's cache."""
    beside = paths[0].parent / ".shard-index"
    if os.access(beside if beside.exists() else paths[0].parent, os.W_OK):
        return beside
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "clip-scaling" / "shard-index"


def build(paths: list[Path], field: str, workers: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(samples [n] SAMPLE, starts [shards + 1] int64) by scanning the shards in parallel, one process per core."""
    workers = workers or len(os.sched_getaffinity(0))
    if workers > 1 and len(paths) > 1:
        with ProcessPoolExecutor(workers) as pool:
            parts = list(pool.map(scan, paths, [field] * len(paths), chunksize=max(1, len(paths) // (8 * workers))))
    else:
        parts = [scan(p, field) for p in paths]
    starts = np.zeros(len(paths) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in parts], out=starts[1:])
    return np.concatenate(parts), starts


def load_or_build(paths: list[Path], field: str) -> tuple[np.ndarray, np.ndarray]:
    """The memory-mapped index of `paths`, built first (by one process; the others wait) if missing."""
    where = index_dir(paths)
    where.mkdir(parents=True, exist_ok=True)
    name = digest(paths)
    samples, starts = where / f"{name}.samples.npy", where / f"{name}.starts.npy"
    if not starts.exists():  # written last: its presence means the index is complete
        with open(where / f"{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not starts.exists():
                rows, offsets = build(paths, field)
                write_atomic(samples, lambda f: np.save(f, rows))
                write_atomic(starts, lambda f: np.save(f, offsets))
    offsets = np.load(starts)
    if offsets[-1] == 0:
        raise ConfigError(f"{field}: no image+txt samples in {len(paths)} shard(s)")
    return np.load(samples, mmap_mode="r"), offsets


class ShardIndex:
    """Every sample of a set of shards as byte ranges: 16 bytes per sample, memory-mapped and shared."""

    def __init__(self, pattern: str, field: str) -> None:
        self.field = field
        self.paths = expand(pattern, field)
        self.samples, self.starts = load_or_build(self.paths, field)
        self._files: OrderedDict[int, int] = OrderedDict()  # shard -> descriptor, least recently used first

    def __len__(self) -> int:
        return len(self.samples)

    def __getstate__(self) -> dict:  # loader workers started by spawn open their own descriptors
        return {**self.__dict__, "_files": OrderedDict()}

    def __del__(self) -> None:
        for fd in getattr(self, "_files", {}).values():
            os.close(fd)

    def shard(self, i: int) -> int:
        return int(np.searchsorted(self.starts, i, side="right")) - 1

    def name(self, i: int) -> str:
        """`<shard>:<key>`, the key read back from the image member's tar header (the index stores no names)."""
        shard, row = self.shard(i), self.samples[i]
        header = os.pread(self._fd(shard), BLOCK, (int(row["image_block"]) - 1) * BLOCK)
        match = _KEY_EXT.match(header[:100].rstrip(b"\0").decode("utf-8", "replace"))
        key = match[1] if match else f"block {int(row['image_block'])}"
        return f"{self.paths[shard]}:{key}"

    def image_bytes(self, i: int) -> bytes:
        row = self.samples[i]
        return self._read(i, int(row["image_block"]), int(row["image_size"]))

    def caption(self, i: int) -> str:
        row = self.samples[i]
        try:
            return self._read(i, int(row["text_block"]), int(row["text_size"])).decode("utf-8").strip()
        except UnicodeDecodeError as err:
            raise ConfigError(f"{self.field}: caption of {self.name(i)} is not UTF-8 ({one_line(err)})") from None

    def files(self) -> list[dict]:
        return [{"path": str(p.resolve()), "bytes": p.stat().st_size} for p in self.paths]

    def _fd(self, shard: int) -> int:
        fd = self._files.pop(shard, None)
        if fd is None:
            if len(self._files) >= OPEN_FILES:
                os.close(self._files.popitem(last=False)[1])
            fd = os.open(self.paths[shard], os.O_RDONLY)
        self._files[shard] = fd
        return fd

    def _read(self, i: int, block: int, size: int) -> bytes:
        try:
            data = os.pread(self._fd(self.shard(i)), size, block * BLOCK)
        except OSError as err:
            raise ConfigError(f"{self.field}: cannot read {self.paths[self.shard(i)]} ({one_line(err)})") from None
        if len(data) != size:
            raise ConfigError(f"{self.field}: {self.name(i)} is truncated (shard changed since it was indexed?)")
        return data
