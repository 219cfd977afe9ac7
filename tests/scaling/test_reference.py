"""A reference trained by this toolkit steers a DRRho-CLIP run, from a cache or online."""

import json
import shutil

import numpy as np
import pytest
import torch

from scaling import records
from scaling.errors import ConfigError
from scaling.reference import MANIFEST, build_cache, load_reference
from scaling.run import run
from scaling.spec import DataSpec, ReferenceSpec, parse_spec

DATA = {"pool_size": 256, "eval_size": 128, "caption_noise": 0.3}
REF = {"model": "w32-l1", "samples_seen": 32 * 12, "batch_size": 32, "data": {**DATA, "seed": 7}, "eval": {"points": 2}}


def steered(mode: str, **extra) -> dict:
    return {
        "method": "drrho",
        "model": "w32-l1",
        "samples_seen": 32 * 10,
        "batch_size": 32,
        "data": DATA,
        "eval": {"points": 2},
        "reference": {"run": REF, "mode": mode},
        **extra,
    }


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    run(parse_spec(REF), out, progress=False)
    return out


def test_the_cache_holds_normalised_embeddings_of_every_pool_sample(sweep_dir):
    spec = parse_spec(steered("cache"))
    directory = build_cache(spec.reference, spec.data, sweep_dir, progress=False)
    manifest = json.loads((directory / MANIFEST).read_text())
    assert manifest["rows"] == 256 and manifest["dtype"] == "float16"
    rows = np.load(directory / "00000.npy")
    assert rows.shape == (256, 2, manifest["dim"])
    assert np.allclose(np.linalg.norm(rows.astype(np.float32), axis=-1), 1, atol=2e-3)
    assert build_cache(spec.reference, spec.data, sweep_dir, progress=False) == directory  # built once


def test_cached_and_online_features_agree(sweep_dir):
    spec = parse_spec(steered("cache"))
    cached = load_reference(spec.reference, sweep_dir, spec.data, progress=False)
    online = load_reference(spec.reference.model_copy(update={"mode": "online"}), sweep_dir, spec.data)
    batch = cached.source.batch(np.array([5, 0, 200]))
    for a, b in zip(cached.features(batch), online.features(batch), strict=True):
        assert torch.allclose(a, b, atol=2e-3)


def test_a_cache_for_another_dataset_is_rejected(sweep_dir):
    spec = parse_spec(steered("cache"))
    directory = build_cache(spec.reference, spec.data, sweep_dir, progress=False)
    manifest = json.loads((directory / MANIFEST).read_text())
    manifest["data"]["seed"] = 12345
    (directory / MANIFEST).write_text(json.dumps(manifest))
    try:
        with pytest.raises(ConfigError, match="another reference or dataset"):
            load_reference(spec.reference, sweep_dir, spec.data, progress=False)
    finally:
        (directory / MANIFEST).unlink()  # the next use rebuilds the manifest from the shards


@pytest.mark.parametrize("mode", ["cache", "online"])
def test_a_steered_run_records_both_computes_and_the_references_metrics(sweep_dir, mode):
    spec = parse_spec(steered(mode))
    record = run(spec, sweep_dir, progress=False)
    ref_record = records.read_record(records.run_dir(sweep_dir, spec.reference.run.run_id))
    assert record.reference.metrics["zeroshot_error"] == ref_record.evals[-1].zeroshot_error
    assert record.reference.run_id == ref_record.run_id  # a field: nothing parses the display name
    flops_ref = record.reference.flops_fwd_per_sample
    first, last = record.evals
    assert last.compute_target == pytest.approx(last.samples_seen * record.model["flops_train_per_sample"])
    if mode == "cache":  # paid once per unique sample
        assert first.compute_reference == last.compute_reference == pytest.approx(256 * flops_ref)
    else:  # paid per sample seen
        assert last.compute_reference == pytest.approx(last.samples_seen * flops_ref)


def test_an_unfinished_reference_run_is_a_clear_error(tmp_path):
    spec = parse_spec(steered("cache"))
    with pytest.raises(ConfigError, match="has not finished"):
        load_reference(spec.reference, tmp_path, spec.data)


def test_a_state_dict_checkpoint_can_steer(sweep_dir, tmp_path):
    weights = records.run_dir(sweep_dir, parse_spec(REF).run_id) / "model.pt"
    ref = ReferenceSpec(checkpoint=str(weights), model="w32-l1", mode="online")
    loaded = load_reference(ref, tmp_path, DataSpec(**DATA))
    assert set(loaded.info().metrics) == {"val_loss", "zeroshot_error", "retrieval_r1"}
    assert loaded.info().run_id is None  # a checkpoint file is no run of the sweep


@pytest.mark.parametrize(
    ("pretrained", "model", "fetch"),
    [
        ("openai", "ViT-B-32", "open_clip.create_model('ViT-B-32', pretrained='openai')"),
        ("hf-hub:laion/not-cached-here", None, "open_clip.create_model('hf-hub:laion/not-cached-here')"),
    ],
)
def test_missing_pretrained_weights_fail_at_once_naming_what_to_fetch(tmp_path, monkeypatch, pretrained, model, fetch):
    """Never the network: the Hub client is offline (it used to retry for ~47 s), and the error is one line
    saying what to run on a login node."""
    import socket

    from huggingface_hub import constants

    def no_network(*args):
        raise AssertionError(f"network access: {args}")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))  # nothing cached
    monkeypatch.setenv("HOME", str(tmp_path))  # nor in ~/.cache/clip
    ref = ReferenceSpec(pretrained=pretrained, model=model, mode="online")
    with pytest.raises(ConfigError) as caught:
        load_reference(ref, tmp_path, DataSpec(**DATA))
    message = str(caught.value)
    assert message.startswith("reference.pretrained: ") and "\n" not in message
    assert f'python -c "import open_clip; {fetch}"' in message
    assert not constants.HF_HUB_OFFLINE  # offline only while loading


def test_open_clip_pretrained_loading_with_its_own_vocabulary(tmp_path):
    """The pretrained path, offline: open_clip loads a weights file it is given as the tag, and the reference
    re-tokenizes the captions with its own (full BPE) tokenizer instead of the targets' compact one."""
    import open_clip

    from scaling.models import build_model, model_config

    cfg = model_config("w32-l1")
    cfg["text_cfg"]["vocab_size"] = 49408
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / "bpe-w32-l1.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(tmp_path / "cfg")
    weights = tmp_path / "weights.pt"
    torch.save(build_model("w32-l1", vocab_size=49408).state_dict(), weights)

    ref = ReferenceSpec(pretrained=str(weights), model="bpe-w32-l1", mode="online")
    loaded = load_reference(ref, tmp_path, DataSpec(**DATA))
    assert set(loaded.info().metrics["zeroshot_error"]) == {"shape", "colour", "position", "colour_shape"}
    batch = loaded.source.batch(np.arange(4))
    img, txt = loaded.features(batch)
    assert img.shape == txt.shape == (4, 32)
    tokens = open_clip.get_tokenizer("bpe-w32-l1")(loaded.source.captions(np.arange(4)))
    expected = loaded.loaded.model.encode_text(tokens, normalize=True)
    assert torch.allclose(txt, expected, atol=1e-6)


def _flip_middle_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_flip_middle_byte, "is missing or altered (sha256 mismatch); re-embedding it"),  # found when first read
        (lambda path: path.unlink(), "re-embedding missing or truncated 00000.npy"),  # found when the run starts
        (lambda path: path.write_bytes(path.read_bytes()[:1000]), "re-embedding missing or truncated 00000.npy"),
    ],
    ids=["flipped-byte", "deleted", "truncated"],
)
def test_a_damaged_cache_shard_is_embedded_again_and_the_run_is_right(sweep_dir, tmp_path, capsys, damage, message):
    spec = parse_spec(steered("cache", seed=5))
    clean = run(spec, sweep_dir, progress=False)
    out = tmp_path / "out"
    ref_id = spec.reference.run.run_id
    shutil.copytree(records.run_dir(sweep_dir, ref_id), records.run_dir(out, ref_id))
    shutil.copytree(sweep_dir / "cache", out / "cache")
    shard = next((out / "cache").glob("*/00000.npy"))
    intact = next((sweep_dir / "cache").glob(f"{shard.parent.name}/00000.npy")).read_bytes()
    damage(shard)
    capsys.readouterr()

    damaged = run(spec, out, progress=False)
    log = capsys.readouterr().err
    assert message in log and str(shard.parent) in log  # names the file
    assert shard.read_bytes() == intact
    assert [e.model_dump(exclude={"wall_s"}) for e in damaged.evals] == [
        e.model_dump(exclude={"wall_s"}) for e in clean.evals
    ]


def test_a_reference_checkpoint_that_is_not_a_plain_state_dict_is_one_line(tmp_path):
    from scaling.models import build_model

    path = tmp_path / "whole-model.pt"
    torch.save(build_model("w32-l1"), path)  # the module object itself, not its state dict
    ref = ReferenceSpec(checkpoint=str(path), model="w32-l1", mode="online")
    with pytest.raises(ConfigError) as caught:
        load_reference(ref, tmp_path, DataSpec(**DATA))
    message = str(caught.value)
    assert message.startswith(f"reference.checkpoint: {path} is not a plain state dict") and "\n" not in message
    assert "weights_only=False" not in message


def test_a_reference_run_whose_weights_were_altered_is_refused(sweep_dir, tmp_path):
    spec = parse_spec(steered("online"))
    source = records.run_dir(sweep_dir, spec.reference.run.run_id)
    copy = records.run_dir(tmp_path, spec.reference.run.run_id)
    shutil.copytree(source, copy)
    assert records.read_record(copy).weights["file"] == "model.pt"
    _flip_middle_byte(copy / "model.pt")
    with pytest.raises(ConfigError, match=f"reference: {copy / 'model.pt'} is corrupt"):
        load_reference(spec.reference, tmp_path, spec.data)
