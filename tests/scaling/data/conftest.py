"""Helpers that write small real datasets (webdataset shards, CSV files) into a test's tmp_path."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from PIL import Image

# Eight distinct solid colours: a decoded image's mean colour tells which sample it was.
PALETTE = [
    (255, 0, 0),
    (0, 255, 0),
    (0, 0, 255),
    (255, 255, 0),
    (0, 255, 255),
    (255, 0, 255),
    (255, 255, 255),
    (0, 0, 0),
]


def image_bytes(colour: tuple[int, int, int], fmt: str = "PNG", size: int = 12) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(buffer, format=fmt)
    return buffer.getvalue()


def add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_shard(path: Path, samples: list[tuple[str, int, str]], ext: str = "png") -> Path:
    """A shard with an image (a PALETTE colour), txt and json per (key, colour, caption), in order."""
    fmt = {"png": "PNG", "jpg": "JPEG", "webp": "WEBP"}[ext]
    with tarfile.open(path, "w") as tar:
        for key, colour, caption in samples:
            add_member(tar, f"{key}.{ext}", image_bytes(PALETTE[colour], fmt))
            add_member(tar, f"{key}.txt", caption.encode())
            add_member(tar, f"{key}.json", b"{}")
    return path


@pytest.fixture
def shards(tmp_path: Path) -> str:
    """Two shards of 3 samples each, keys written out of order; returns the brace pattern."""
    write_shard(
        tmp_path / "shard-000001.tar",
        [("b03", 5, "a magenta one"), ("b01", 3, "a yellow one"), ("b02", 4, "a cyan one")],
    )
    write_shard(
        tmp_path / "shard-000000.tar",
        [("a02", 1, "a green one"), ("a01", 0, "a red one"), ("a03", 2, "a blue one")],
        ext="jpg",
    )
    return str(tmp_path / "shard-{000000..000001}.tar")


SHARD_CAPTIONS = ["a red one", "a green one", "a blue one", "a yellow one", "a cyan one", "a magenta one"]


@pytest.fixture
def table(tmp_path: Path) -> Path:
    """A tab-separated CSV in open_clip's layout with relative image paths (a folder next to the CSV)."""
    (tmp_path / "images").mkdir()
    rows = ["filepath\ttitle"]
    for i, caption in enumerate(SHARD_CAPTIONS):
        (tmp_path / "images" / f"{i}.png").write_bytes(image_bytes(PALETTE[i]))
        rows.append(f"images/{i}.png\t{caption}")
    path = tmp_path / "train.csv"
    path.write_text("\n".join(rows) + "\n")
    return path
