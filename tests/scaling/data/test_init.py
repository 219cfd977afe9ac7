import numpy as np
import pytest
import torch

from scaling.data import LABEL_COLUMNS, build_source, eval_batch, zero_shot_tasks
from scaling.errors import ConfigError
from scaling.spec import DataSpec


def test_eval_set_is_independent_of_seed_noise_objects_and_pool():
    a = eval_batch(DataSpec(eval_size=300))
    b = eval_batch(DataSpec(seed=5, caption_noise=0.5, max_objects=3, pool_size=1000, eval_size=300))
    assert torch.equal(a.images, b.images) and torch.equal(a.tokens, b.tokens)
    assert np.array_equal(a.labels, b.labels)
    assert a.labels.shape == (300, len(LABEL_COLUMNS)) and a.index.tolist() == list(range(300))


def test_eval_set_follows_image_size_and_context_length():
    batch = eval_batch(DataSpec(eval_size=10, image_size=24), context_length=20)
    assert batch.images.shape == (10, 3, 24, 24) and batch.tokens.shape == (10, 20)


def test_zero_shot_labels_are_aligned_with_eval_batch_labels():
    spec = DataSpec(eval_size=200)
    labels = eval_batch(spec).labels
    tasks = {t.name: t for t in zero_shot_tasks(spec)}
    assert np.array_equal(tasks["shape"].labels, labels[:, LABEL_COLUMNS.index("shape")])
    assert np.array_equal(tasks["position"].labels, labels[:, LABEL_COLUMNS.index("position")])


def test_build_source_uses_the_spec():
    spec = DataSpec(seed=3, pool_size=500, caption_noise=0.2, max_objects=2, image_size=16)
    src = build_source(spec, context_length=24)
    assert len(src) == 500 and src.tokenizer.context_length == 24 and src.tokenizer.vocab_size == 64
    assert src.batch(np.arange(4)).images.shape == (4, 3, 16, 16)
    assert src.describe()["seed"] == 3 and src.describe()["caption_noise"] == 0.2


def test_real_data_has_no_zero_shot_tasks_and_needs_an_eval_path(shards):
    spec = DataSpec(source="webdataset", path=shards, pool_size=None)
    assert zero_shot_tasks(spec) == []
    with pytest.raises(ConfigError, match=r"^data\.eval_path is required for real data$"):
        eval_batch(spec)


def test_real_eval_set_is_the_first_eval_size_samples(shards):
    spec = DataSpec(source="webdataset", path=shards, pool_size=None, eval_path=shards, eval_size=4)
    batch = eval_batch(spec)
    assert batch.images.shape == (4, 3, 32, 32) and batch.labels is None
    with pytest.raises(ConfigError, match=r"data\.eval_size: 7 samples requested but data\.eval_path has only 6"):
        eval_batch(spec.model_copy(update={"eval_size": 7}))
