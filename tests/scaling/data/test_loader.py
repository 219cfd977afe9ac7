"""The step loader: worker processes prepare batches ahead without changing which samples a step sees."""

import numpy as np
import pytest
import torch

from scaling.data import build_source
from scaling.data.base import Augmentation
from scaling.data.loader import batch_indices, step_loader
from scaling.distributed import World
from scaling.run import run
from scaling.spec import parse_spec

from ..conftest import write_csv_pool
from .conftest import write_shard

TINY = {"model": "w32-l1", "samples_seen": 32 * 12, "batch_size": 32, "data": {"pool_size": 128, "eval_size": 64}}


@pytest.fixture
def csv_data(tmp_path):
    return {"source": "csv", "path": str(write_csv_pool(tmp_path / "csv", n=128))}


@pytest.fixture
def webdataset_data(tmp_path):
    for shard in range(2):
        write_shard(tmp_path / f"{shard}.tar", [(f"{shard}-{i:03d}", i % 8, f"sample {i}") for i in range(64)])
    return {"source": "webdataset", "path": str(tmp_path / "{0..1}.tar")}


def test_batches_visit_the_pool_once_per_epoch_then_reshuffle():
    spec = parse_spec(TINY)
    epoch = [batch_indices(spec, 128, s) for s in range(4)]
    assert sorted(np.concatenate(epoch)) == list(range(128))
    assert not np.array_equal(batch_indices(spec, 128, 4), epoch[0])


@pytest.mark.parametrize("source", ["synthetic", "csv", "webdataset"])
def test_two_ranks_with_two_workers_each_see_every_index_once_per_epoch(source, request):
    data = {"pool_size": 128} if source == "synthetic" else request.getfixturevalue(f"{source}_data")
    spec = parse_spec({**TINY, "data": {**data, "workers": 2}})
    pool = build_source(spec.data)
    steps_per_epoch = len(pool) // spec.batch_size
    seen = []
    for rank in range(2):
        world = World(rank=rank, world_size=2)
        loader = step_loader(pool, spec, world, start=0)
        seen += [batch.index for batch, _ in zip(loader, range(steps_per_epoch), strict=False)]
    seen = torch.cat(seen).tolist()
    assert sorted(seen) == list(range(len(pool)))


def test_a_resumed_loader_starts_at_its_step():
    spec = parse_spec({**TINY, "data": {**TINY["data"], "workers": 1}})
    pool = build_source(spec.data)
    later = next(iter(step_loader(pool, spec, World(), start=5)))
    assert later.index.tolist() == batch_indices(spec, len(pool), 5).tolist()


def test_a_run_with_workers_equals_a_run_without_bitwise(tmp_path):
    records = {}
    for workers in (0, 2):
        spec = parse_spec({**TINY, "data": {**TINY["data"], "workers": workers}})
        records[workers] = run(spec, tmp_path / f"w{workers}", progress=False).model_dump()
    assert records[0]["run_id"] == records[2]["run_id"]  # loader settings are not part of a run's identity
    strip = [{k: v for k, v in e.items() if k != "wall_s"} for e in records[0]["evals"]]
    assert strip == [{k: v for k, v in e.items() if k != "wall_s"} for e in records[2]["evals"]]
    a, b = (
        torch.load(tmp_path / f"w{w}" / "runs" / records[0]["run_id"] / "model.pt", weights_only=True) for w in (0, 2)
    )
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture
def gradient_csv(tmp_path):
    """Images with structure (a crop changes the pixels), unlike the solid-colour pools."""
    from PIL import Image

    rows = ["filepath\ttitle"]
    ramp = np.linspace(0, 255, 48).astype(np.int64)
    for i in range(64):
        pixels = np.stack([np.add.outer(ramp, ramp * (i % 3)) % 256] * 3, axis=-1).astype(np.uint8)
        Image.fromarray(pixels).save(tmp_path / f"{i}.png")
        rows.append(f"{i}.png\tpicture {i}")
    (tmp_path / "g.csv").write_text("\n".join(rows) + "\n")
    return {"source": "csv", "path": str(tmp_path / "g.csv")}


def test_real_training_crops_are_a_pure_function_of_seed_index_and_epoch(gradient_csv):
    spec = parse_spec({**TINY, "samples_seen": 32 * 6, "data": {**gradient_csv, "workers": 0}})
    pool = build_source(spec.data)
    idx = np.arange(8)
    first = pool.batch(idx, Augmentation(0, np.zeros(8, dtype=np.int64))).images
    assert torch.equal(first, pool.batch(idx, Augmentation(0, np.zeros(8, dtype=np.int64))).images)
    assert not torch.equal(first, pool.batch(idx, Augmentation(0, np.ones(8, dtype=np.int64))).images)
    assert not torch.equal(first, pool.batch(idx, Augmentation(1, np.zeros(8, dtype=np.int64))).images)
    assert not torch.equal(first, pool.batch(idx).images)  # held-out and reference images: the eval transform
    torch.manual_seed(5)
    expected = torch.rand(1)
    torch.manual_seed(5)
    pool.batch(idx, Augmentation(0, np.zeros(8, dtype=np.int64)))
    assert torch.equal(torch.rand(1), expected)  # the trainer's RNG stream is untouched

    def images(workers):
        loader = step_loader(
            pool, spec.model_copy(update={"data": spec.data.model_copy(update={"workers": workers})}), World()
        )
        return [batch.images for batch in loader]

    assert all(torch.equal(a, b) for a, b in zip(images(0), images(2), strict=True))
