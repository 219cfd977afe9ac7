"""The model ladder: sizes as data, built by open_clip, FLOPs measured once and shipped."""

import json

import open_clip
import pytest

from scaling import models


def test_ladder_spans_the_cpu_range():
    names = models.ladder()
    sizes = [models.model_stats(n).params_nonembedding for n in names]
    assert len(names) >= 6
    assert sizes == sorted(sizes)
    assert 5_000 <= sizes[0] <= 15_000 and 4_000_000 <= sizes[-1] <= 6_000_000


def test_paper_models_are_available_by_name():
    assert {"ViT-B-32", "ViT-B-16", "ViT-L-14"} <= set(models.available_models())


def test_build_uses_open_clip_and_the_data_vocabulary():
    model = models.build_model("w32-l1", vocab_size=64)
    assert isinstance(model, open_clip.CLIP)
    assert model.token_embedding.num_embeddings == 64
    full = models.build_model("w32-l1", vocab_size=49408)
    assert full.token_embedding.num_embeddings == 49408


@pytest.mark.parametrize("name", ["w32-l1", "w128-l4", "ViT-B-32"])
def test_shipped_stats_equal_a_fresh_measurement(name):
    assert models.model_stats(name) == models.count_flops(name)


def test_flops_match_open_clips_published_profile():
    # open_clip's docs/model_profile.csv lists 14.78 GFLOPs (fwd, image+text) for ViT-B-32 and 175.33 for ViT-L-14.
    assert models.model_stats("ViT-B-32").flops_fwd_per_sample / 1e9 == pytest.approx(14.78, abs=0.01)
    assert models.model_stats("ViT-L-14").flops_fwd_per_sample / 1e9 == pytest.approx(175.33, abs=0.01)


def test_training_costs_about_three_forwards():
    stats = models.model_stats("w64-l2")
    assert 2.9 < stats.flops_train_per_sample / stats.flops_fwd_per_sample < 3.1


def test_non_embedding_excludes_only_the_token_table():
    stats = models.model_stats("w64-l2", vocab_size=49408)
    compact = models.model_stats("w64-l2")
    assert stats.params_nonembedding == compact.params_nonembedding
    assert stats.params_total - compact.params_total == (49408 - 64) * 64


def test_unknown_shapes_are_measured_once_then_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("SCALING_CACHE", str(tmp_path))
    stats = models.model_stats("w32-l1", vocab_size=100)
    cached = json.loads((tmp_path / "model_stats.json").read_text())
    assert [v["flops_train_per_sample"] for v in cached.values()] == [stats.flops_train_per_sample]
