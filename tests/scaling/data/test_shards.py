import gzip
import tarfile

import numpy as np
import pytest

from scaling.data import shards
from scaling.data.shards import ShardIndex, scan
from scaling.errors import ConfigError
from tests.scaling.data.conftest import SHARD_CAPTIONS, add_member, image_bytes, write_shard


def test_samples_are_in_shard_then_key_order(shards):
    index = ShardIndex(shards, "data.path")
    assert len(index) == 6
    assert [index.caption(i) for i in range(6)] == SHARD_CAPTIONS
    assert index.name(0).endswith("shard-000000.tar:a01")
    assert index.image_bytes(3).startswith(b"\x89PNG")


def test_a_single_path_works_and_files_are_described(shards, tmp_path):
    index = ShardIndex(str(tmp_path / "shard-000001.tar"), "data.path")
    assert [index.caption(i) for i in range(3)] == SHARD_CAPTIONS[3:]
    assert index.files()[0]["bytes"] == (tmp_path / "shard-000001.tar").stat().st_size


def test_keys_without_image_or_caption_are_skipped_and_png_beats_webp(tmp_path):
    path = tmp_path / "odd.tar"
    with tarfile.open(path, "w") as tar:
        add_member(tar, "dir/k1.txt", b"caption only")
        add_member(tar, "dir/k2.png", image_bytes((1, 2, 3)))
        add_member(tar, "dir/k3.webp", image_bytes((0, 0, 0), "WEBP"))
        add_member(tar, "dir/k3.PNG", image_bytes((0, 0, 0)))
        add_member(tar, "dir/k3.txt", b"both")
    (row,) = scan(path, "data.path")
    with open(path, "rb") as f:
        f.seek(int(row["image_block"]) * 512)
        assert f.read(4) == b"\x89PNG"
        f.seek(int(row["text_block"]) * 512)
        assert f.read(int(row["text_size"])) == b"both"


@pytest.mark.parametrize(
    "pattern, message",
    [
        ("missing-{0..3}.tar", "no shard found"),
        ("shard-{000000..000002}.tar", "1 of 3 shards missing"),
    ],
)
def test_missing_shards_name_the_field(shards, tmp_path, pattern, message):
    with pytest.raises(ConfigError, match=rf"^data\.path: .*{message}"):
        ShardIndex(str(tmp_path / pattern), "data.path")


def test_not_a_tar_and_compressed_tar_are_refused(tmp_path):
    (tmp_path / "text.tar").write_text("hello")
    write_shard(tmp_path / "plain.tar", [("a", 0, "red")])
    (tmp_path / "zipped.tar").write_bytes(gzip.compress((tmp_path / "plain.tar").read_bytes()))
    for name in ("text.tar", "zipped.tar"):
        with pytest.raises(ConfigError, match=r"^data\.path: .*not a readable uncompressed tar"):
            ShardIndex(str(tmp_path / name), "data.path")


def test_shards_without_samples_are_refused(tmp_path):
    with tarfile.open(tmp_path / "empty.tar", "w") as tar:
        add_member(tar, "a.json", b"{}")
    with pytest.raises(ConfigError, match=r"^data\.eval_path: no image\+txt samples"):
        ShardIndex(str(tmp_path / "empty.tar"), "data.eval_path")


def many_shards(tmp_path, n=5, per=7):
    for s in range(n):
        write_shard(tmp_path / f"{s:02d}.tar", [(f"k{s}-{i}", i % 8, f"caption {s} {i}") for i in range(per)])
    return str(tmp_path / f"{{00..{n - 1:02d}}}.tar")


def test_the_index_is_sixteen_bytes_a_sample_built_once_and_reused(tmp_path, monkeypatch):
    pattern = many_shards(tmp_path)
    first = ShardIndex(pattern, "data.path")
    assert first.samples.itemsize == 16 and len(first) == 35
    assert isinstance(first.samples, np.memmap)  # shared through the page cache, not copied per process
    monkeypatch.setattr(shards, "build", lambda *a, **k: pytest.fail("rebuilt an existing index"))
    again = ShardIndex(pattern, "data.path")
    assert [again.caption(i) for i in range(35)] == [first.caption(i) for i in range(35)]
    assert again.caption(8) == "caption 1 1"


def test_a_parallel_build_equals_a_serial_one_and_a_changed_shard_gets_a_new_index(tmp_path):
    paths = shards.expand(many_shards(tmp_path), "data.path")
    serial, parallel = shards.build(paths, "data.path", workers=1), shards.build(paths, "data.path", workers=2)
    assert np.array_equal(serial[0], parallel[0]) and np.array_equal(serial[1], parallel[1])
    before = shards.digest(paths)
    write_shard(paths[2], [("only", 0, "one sample now")])
    assert shards.digest(paths) != before
    assert len(ShardIndex(str(tmp_path / "{00..04}.tar"), "data.path")) == 29


def test_readers_keep_a_bounded_number_of_shards_open(tmp_path, monkeypatch):
    monkeypatch.setattr(shards, "OPEN_FILES", 2)
    index = ShardIndex(many_shards(tmp_path), "data.path")
    assert [index.caption(i) for i in (0, 7, 14, 21, 28, 0)] == [f"caption {s} 0" for s in (0, 1, 2, 3, 4, 0)]
    assert len(index._files) == 2
