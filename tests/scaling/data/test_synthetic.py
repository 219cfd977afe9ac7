import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from scaling.data.synthetic import SyntheticSource, eval_labels, eval_source

REPO = Path(__file__).resolve().parents[3]
PROBE = [5, 1041, 3071]


def source(**kwargs) -> SyntheticSource:
    args = {"seed": 7, "pool_size": 3072, "caption_noise": 0.3, "max_objects": 3} | kwargs
    return SyntheticSource(args.pop("seed"), args.pop("pool_size"), **args)


def fingerprint(src: SyntheticSource, indices: list[int]) -> str:
    """Hash of the images, tokens and captions of `indices`, fetched one at a time."""
    digest = hashlib.sha256()
    for i in indices:
        batch = src.batch(np.array([i]))
        digest.update(batch.images.numpy().tobytes() + batch.tokens.numpy().tobytes())
        digest.update(src.captions(np.array([i]))[0].encode())
    return digest.hexdigest()


def test_batch_has_the_documented_types_and_ranges():
    batch = source().batch(np.array([3, 1, 2]))
    assert batch.images.shape == (3, 3, 32, 32) and batch.images.dtype == torch.float32
    assert batch.images.min() >= -1 and batch.images.max() <= 1
    assert batch.tokens.shape == (3, 32) and batch.tokens.dtype == torch.int64
    assert batch.index.tolist() == [3, 1, 2] and batch.index.dtype == torch.int64
    assert batch.labels is None and len(batch) == 3


def test_a_sample_is_the_same_alone_in_any_batch_and_any_order():
    src = source()
    rng = np.random.default_rng(0)
    alone = {i: src.batch(np.array([i])) for i in PROBE}
    mixed = np.concatenate([rng.integers(0, len(src), 100), PROBE[::-1], rng.integers(0, len(src), 50)])
    batch = source().batch(mixed)  # a fresh source, generating them together with other samples
    for row, i in enumerate(mixed[100:103]):
        assert torch.equal(batch.images[100 + row], alone[i].images[0])
        assert torch.equal(batch.tokens[100 + row], alone[i].tokens[0])


def test_a_sample_is_the_same_in_a_fresh_process():
    script = (
        "from tests.scaling.data.test_synthetic import PROBE, fingerprint, source; print(fingerprint(source(), PROBE))"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == fingerprint(source(), PROBE)


def test_uncached_pools_generate_the_same_samples():
    cached, uncached = source(), source(cache_bytes=0)
    idx = np.array([PROBE[1], 3, PROBE[1]])
    assert torch.equal(cached.batch(idx).images, uncached.batch(idx).images)
    assert cached.captions(idx) == uncached.captions(idx)


def test_batch_index_does_not_alias_the_callers_array():
    idx = np.array([1, 2])
    batch = source().batch(idx)
    idx[0] = 9
    assert batch.index.tolist() == [1, 2]


def test_seeds_differ():
    a, b = source(seed=1), source(seed=2)
    assert not torch.equal(a.batch(np.arange(8)).images, b.batch(np.arange(8)).images)
    assert a.captions(np.arange(8)) != b.captions(np.arange(8))


def test_a_smaller_pool_is_a_prefix_of_a_larger_one():
    small, large = source(pool_size=1500), source(pool_size=3000)
    idx = np.array([0, 1023, 1024, 1499])
    assert torch.equal(small.batch(idx).images, large.batch(idx).images)
    assert small.captions(idx) == large.captions(idx)


def test_scenes_do_not_depend_on_image_size():
    assert source(image_size=16).captions(np.arange(20)) == source(image_size=48).captions(np.arange(20))
    assert source(image_size=48).batch(np.arange(2)).images.shape == (2, 3, 48, 48)


def test_noise_fraction_and_noisy_captions_differ_from_clean_ones():
    every = np.arange(3072)
    noisy_src, clean_src = source(caption_noise=0.3), source(caption_noise=0.0)
    noisy = noisy_src.noisy(every)
    assert abs(noisy.mean() - 0.3) < 0.03
    noisy_caps, clean_caps = np.array(noisy_src.captions(every)), np.array(clean_src.captions(every))
    assert (noisy_caps[noisy] != clean_caps[noisy]).all()
    assert (noisy_caps[~noisy] == clean_caps[~noisy]).all()
    assert not clean_src.noisy(every).any()
    assert torch.equal(noisy_src.batch(every[:64]).images, clean_src.batch(every[:64]).images)


def test_tokens_are_the_tokenized_captions_and_never_truncated():
    src = source(max_objects=3, caption_noise=0.0)
    idx = np.arange(300)
    tokens = src.batch(idx).tokens
    assert torch.equal(tokens, src.tokenizer(src.captions(idx)))
    assert ((tokens == src.tokenizer.eot_token_id).sum(1) == 1).all()


def test_labels_describe_objects_and_padding():
    labels = source(max_objects=2).labels(np.arange(200))
    assert labels.shape == (200, 3, 4)
    assert (labels[:, 2] == -1).all() and (labels[:, 0] >= 0).all()


def test_out_of_range_index_raises():
    with pytest.raises(IndexError, match="out of range"):
        source(pool_size=10).batch(np.array([10]))


def test_describe_changes_with_the_content():
    assert source().describe() == source().describe()
    assert source().describe() != source(caption_noise=0.1).describe()
    assert source().describe()["kind"] == "synthetic"


def test_eval_set_is_clean_single_object_and_matches_its_labels():
    src = eval_source(100)
    labels = eval_labels(100)
    assert np.array_equal(src.labels(np.arange(100))[:, 0], labels)
    assert (src.labels(np.arange(100))[:, 1:] == -1).all()
    assert not src.noisy(np.arange(100)).any()
    train = source(seed=0, caption_noise=0.0, max_objects=1)
    assert not torch.equal(src.batch(np.arange(8)).images, train.batch(np.arange(8)).images)
