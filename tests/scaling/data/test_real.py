import numpy as np
import pytest
import torch
from open_clip.tokenizer import SimpleTokenizer

from scaling.data import build_source
from scaling.data.real import RealSource
from scaling.errors import ConfigError
from scaling.spec import DataSpec
from tests.scaling.data.conftest import PALETTE, SHARD_CAPTIONS

MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073])
STD = torch.tensor([0.26862954, 0.26130258, 0.27577711])


def colour_of(images: torch.Tensor) -> list[tuple[int, ...]]:
    """Undo open_clip's normalisation and read each (solid) image's colour."""
    rgb = images.mean(dim=(2, 3)) * STD + MEAN
    return [tuple(int(v) for v in (c * 255).round()) for c in rgb]


@pytest.mark.parametrize("kind", ["webdataset", "csv"])
def test_samples_load_by_index_with_their_captions(kind, shards, table):
    path = shards if kind == "webdataset" else str(table)
    src = build_source(DataSpec(source=kind, path=path, pool_size=None))
    idx = np.array([4, 0, 3])
    batch = src.batch(idx)
    assert len(src) == 6 and batch.index.tolist() == [4, 0, 3]
    assert batch.images.shape == (3, 3, 32, 32) and batch.images.dtype == torch.float32
    assert src.captions(idx) == [SHARD_CAPTIONS[i] for i in idx]
    assert torch.equal(batch.tokens, SimpleTokenizer(context_length=32)(src.captions(idx)))
    for got, i in zip(colour_of(batch.images), idx, strict=True):
        assert np.abs(np.subtract(got, PALETTE[i])).max() <= 3  # jpg shards are lossy


def test_pool_size_takes_the_first_samples_and_must_exist(shards):
    src = RealSource("webdataset", shards, pool_size=4)
    assert len(src) == 4 and src.captions(np.arange(4)) == SHARD_CAPTIONS[:4]
    with pytest.raises(IndexError):
        src.batch(np.array([4]))
    with pytest.raises(ConfigError, match=r"^data\.pool_size: 7 samples requested but data\.path has only 6"):
        RealSource("webdataset", shards, pool_size=7)


def test_describe_names_files_and_pool(shards):
    info = RealSource("webdataset", shards, pool_size=5).describe()
    assert info["kind"] == "webdataset" and info["pool_size"] == 5 and info["available"] == 6
    assert [f["path"].rsplit("/", 1)[1] for f in info["files"]] == ["shard-000000.tar", "shard-000001.tar"]
    assert info["tokenizer"] == "bpe-49408"


def test_a_corrupt_image_names_the_field_and_the_sample(table):
    (table.parent / "images" / "2.png").write_bytes(b"not an image")
    src = RealSource("csv", str(table))
    src.batch(np.array([1]))
    with pytest.raises(ConfigError, match=r"^data\.path: cannot decode image .*2\.png"):
        src.batch(np.array([2]))


def test_bad_paths_name_the_field(tmp_path):
    with pytest.raises(ConfigError, match=r"^data\.path: "):
        build_source(DataSpec(source="csv", path=str(tmp_path / "none.csv"), pool_size=None))
    with pytest.raises(ConfigError, match=r"^data\.path: "):
        build_source(DataSpec(source="webdataset", path=str(tmp_path / "s-{0..2}.tar"), pool_size=None))
