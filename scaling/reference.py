"""The steering reference: load it, and cache its embeddings of a data pool once for every steered run.

A reference comes from a run of this toolkit (inside a sweep or a finished run directory), an open_clip
state dict, or open_clip pretrained weights (local only: nothing is downloaded at run time). Its normalised
image and text embeddings of every pool sample are computed once per (reference, dataset) and stored as
float16 .npy shards with a manifest naming the reference checksum, the dataset and every shard's size and
sha256; a cache whose manifest disagrees with what a run asks for is rejected, never silently reused, and a
shard that is missing, truncated or altered is embedded again (it is a pure function of reference and pool).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import pickle
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from scaling.data import build_source, eval_batch, zero_shot_tasks
from scaling.errors import ConfigError
from scaling.evaluate import evaluate, zero_shot_errors
from scaling.io import write_atomic, write_json_atomic
from scaling.models import build_model, context_length, model_stats
from scaling.records import CorruptRecord, ReferenceInfo, read_record, run_dir
from scaling.spec import DataSpec, ReferenceSpec

SHARD_ROWS = 16_384
MANIFEST = "manifest.json"
ENCODE_BATCH = 512


@dataclass
class LoadedReference:
    """A frozen reference model with its identity and its own held-out metrics."""

    model: torch.nn.Module
    name: str
    arch: str
    checksum: str
    metrics: dict
    flops_fwd_per_sample: float
    params_total: int
    tokenizer: Callable[[list[str]], torch.Tensor] | None = None  # own vocabulary (pretrained); None = the data's
    run_id: str | None = None  # the run of this toolkit that trained it (None: a checkpoint file, pretrained)

    @property
    def image_size(self) -> int:
        size = self.model.visual.image_size
        return size[0] if isinstance(size, tuple | list) else size

    @property
    def context_length(self) -> int:
        return self.model.context_length


def _sha256(path: Path, length: int = 16) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:length]


def _freeze(model: torch.nn.Module) -> torch.nn.Module:
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _own_metrics(model, arch: str, data: DataSpec, tokenizer) -> dict:
    """A reference's metrics on the same held-out set its targets are evaluated on."""
    batch = eval_batch(data, context_length(arch))
    return evaluate(model, batch, zero_shot_tasks(data), tokenizer)


def _pretrained_zero_shot(model, data: DataSpec, tokenizer) -> dict:
    """Zero-shot errors only: the eval captions are tokenized for the target's vocabulary, not this model's."""
    size = model.visual.image_size
    sized = data.model_copy(update={"image_size": size[0] if isinstance(size, tuple | list) else size})
    images = eval_batch(sized, model.context_length).images
    img = torch.cat([model.encode_image(images[i : i + 256], normalize=True) for i in range(0, len(images), 256)])
    return {"zeroshot_error": zero_shot_errors(model, img, zero_shot_tasks(data), tokenizer)}


def _from_run(directory: Path, data: DataSpec) -> LoadedReference:
    try:
        record = read_record(directory)
    except CorruptRecord as err:
        raise ConfigError(f"reference: {err}") from None
    weights = directory / "model.pt"
    if record is None or not record.done or not weights.exists():
        raise ConfigError(f"reference: run {directory} has not finished (no done record.json and model.pt)")
    checksum = _sha256(weights, 64)
    expected = (record.weights or {}).get("sha256")
    if expected is not None and checksum != expected:
        raise ConfigError(
            f"reference: {weights} is corrupt (its sha256 differs from the one its record.json gives);"
            f" delete {directory} to train the reference again"
        )
    arch = record.spec["model"]
    source = build_source(DataSpec.model_validate(record.spec["data"]), context_length(arch))
    model = build_model(arch, source.tokenizer.vocab_size)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    stats = model_stats(arch, source.tokenizer.vocab_size)
    last = record.evals[-1]
    metrics = {k: getattr(last, k) for k in ("val_loss", "zeroshot_error", "retrieval_r1")}
    return LoadedReference(
        _freeze(model),
        f"run:{record.run_id} ({arch})",
        arch,
        checksum[:16],
        metrics,
        stats.flops_fwd_per_sample,
        stats.params_total,
        run_id=record.run_id,
    )


def _from_state_dict(path: Path, arch: str, data: DataSpec) -> LoadedReference:
    source = build_source(data, context_length(arch))
    model = build_model(arch, source.tokenizer.vocab_size)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:  # its advice, weights_only=False, would run whatever code the file holds
        raise ConfigError(
            f"reference.checkpoint: {path} is not a plain state dict (it pickles Python objects, which are never"
            " loaded); save model.state_dict() with torch.save and point reference.checkpoint at that file"
        ) from None
    except (OSError, RuntimeError, EOFError, ValueError) as err:
        raise ConfigError(f"reference.checkpoint: cannot read {path} ({' '.join(str(err).split())[:200]})") from None
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    try:
        if not isinstance(state, dict):
            raise TypeError(f"it holds a {type(state).__name__}, not a mapping of parameter names to tensors")
        model.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError) as err:
        raise ConfigError(f"reference.checkpoint: cannot load {path} as {arch} ({str(err).splitlines()[0]})") from None
    stats = model_stats(arch, source.tokenizer.vocab_size)
    metrics = _own_metrics(model, arch, data, source.tokenizer)
    return LoadedReference(
        _freeze(model),
        f"checkpoint:{path.name} ({arch})",
        arch,
        _sha256(path),
        metrics,
        stats.flops_fwd_per_sample,
        stats.params_total,
    )


@contextmanager
def hub_offline() -> Iterator[None]:
    """The Hugging Face Hub client answers from its cache only: online, a compute node without internet retries
    for ~47 s before failing, and a job must never download weights anyway."""
    from huggingface_hub import constants

    previous, constants.HF_HUB_OFFLINE = constants.HF_HUB_OFFLINE, True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = previous


def _create_pretrained(name: str, tag: str | None):
    """open_clip's model with its weights from disk: a file, the Hub cache, or open_clip's URL cache."""
    import open_clip

    cfg = open_clip.get_pretrained_cfg(name, tag) if tag and not Path(tag).is_file() else {}
    if cfg.get("url") and not cfg.get("hf_hub"):  # open_clip would fetch a URL-only tag with urllib
        cached = Path("~/.cache/clip").expanduser() / os.path.basename(cfg["url"])
        if not cached.is_file():
            raise FileNotFoundError(f"{cached} is missing")
    logging.disable(logging.ERROR)  # open_clip logs the failure we report in one line
    try:
        with hub_offline():
            return open_clip.create_model(name, pretrained=tag, output_dict=True)
    finally:
        logging.disable(logging.NOTSET)


def _from_pretrained(spec: ReferenceSpec, data: DataSpec) -> LoadedReference:
    """open_clip pretrained weights, only if they are already on disk (hub cache or a local file)."""
    import open_clip

    name = spec.pretrained if spec.pretrained.startswith("hf-hub:") else spec.model
    tag = None if spec.pretrained.startswith("hf-hub:") else spec.pretrained
    try:
        model = _create_pretrained(name, tag)
    except Exception:  # open_clip raises several types for missing weights / offline hub
        what, fetch = (f"{name} {tag!r}", f"{name!r}, pretrained={tag!r}") if tag else (name, repr(name))
        raise ConfigError(
            f"reference.pretrained: {what} weights are not on this machine (a file, the Hugging Face Hub cache or"
            f" ~/.cache/clip) and jobs never download; on a login node run"
            f' python -c "import open_clip; open_clip.create_model({fetch})", or give reference.checkpoint'
        ) from None
    arch = spec.model or name
    tokenizer = open_clip.get_tokenizer(name)
    metrics = _pretrained_zero_shot(_freeze(model), data, tokenizer)
    stats = model_stats(arch) if arch in open_clip.list_models() else None
    flops = stats.flops_fwd_per_sample if stats else float("nan")
    return LoadedReference(
        _freeze(model),
        f"pretrained:{name}:{tag}",
        arch,
        f"{name}:{tag}",
        metrics,
        flops,
        sum(p.numel() for p in model.parameters()),
        tokenizer,
    )


def load_reference_model(spec: ReferenceSpec, out: Path, data: DataSpec) -> LoadedReference:
    """Resolve a ReferenceSpec: a sweep's own reference run lives beside the steered runs under `out`."""
    if spec.run is not None:
        return _from_run(run_dir(out, spec.run.run_id), data)
    if spec.checkpoint is not None:
        path = Path(spec.checkpoint)
        if path.is_dir():
            return _from_run(path, data)
        if not path.exists():
            raise ConfigError(f"reference.checkpoint: {path} does not exist")
        if spec.model is None:
            raise ConfigError("reference.model: required with a state-dict checkpoint")
        return _from_state_dict(path, spec.model, data)
    return _from_pretrained(spec, data)


# -- the embedding cache ------------------------------------------------------------------------------


def cache_key(ref: LoadedReference, source_identity: dict) -> str:
    blob = json.dumps({"reference": ref.checksum, "data": source_identity}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cache_dir(out: Path, ref: LoadedReference, source_identity: dict) -> Path:
    return Path(out) / "cache" / cache_key(ref, source_identity)


def build_cache(spec: ReferenceSpec, data: DataSpec, out: Path, progress: bool = True) -> Path:
    """The sweep's cache job: embed a pool with a reference once, before any steered run starts."""
    ref = load_reference_model(spec, Path(out), data)
    return ensure_cache(ref, reference_source(ref, data), Path(out), progress)


def shard_name(shard: int) -> str:
    return f"{shard:05d}.npy"


def _file_entry(path: Path) -> dict:
    """What the manifest says of a shard, to check it against later."""
    return {"bytes": path.stat().st_size, "sha256": _sha256(path, 64)}


def _size_matches(path: Path, entry: dict | None) -> bool:
    return entry is not None and path.is_file() and path.stat().st_size == entry["bytes"]


def _read_manifest(directory: Path) -> dict | None:
    """The cache's manifest if it is complete (this format, with per-shard checksums); None means build it."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and isinstance(manifest.get("shards"), dict) else None


def embed_shard(ref: LoadedReference, source, directory: Path, shard: int, shard_rows: int) -> dict:
    """Embed one shard's rows of the pool and write it atomically; returns its manifest entry."""
    rows = _embed(ref, source, np.arange(shard * shard_rows, min((shard + 1) * shard_rows, len(source))))
    buffer = io.BytesIO()
    np.save(buffer, rows)
    data = buffer.getvalue()
    write_atomic(directory / shard_name(shard), lambda f: f.write(data))
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


@torch.no_grad()
def ensure_cache(ref: LoadedReference, source, out: Path, progress: bool = True) -> Path:
    """Embed the whole pool shard by shard, the manifest last. An interrupted build keeps the shards it wrote;
    a shard of a finished cache that is missing or truncated (by its size in the manifest) is embedded again."""
    directory = cache_dir(out, ref, source.describe())
    manifest = _read_manifest(directory)
    listed = manifest["shards"] if manifest else {}
    names = [shard_name(i) for i in range(-(-len(source) // SHARD_ROWS))]
    broken = [name for name in names if not _size_matches(directory / name, listed.get(name))]
    if manifest and not broken:
        return directory
    if manifest:
        print(f"reference cache {directory}: re-embedding missing or truncated {', '.join(broken)}", file=sys.stderr)
    directory.mkdir(parents=True, exist_ok=True)
    shards = {}
    for shard, name in enumerate(tqdm(names, desc="reference cache", unit="shard", disable=not progress)):
        path = directory / name
        if name in listed and name not in broken:
            shards[name] = listed[name]
        elif manifest is None and path.is_file():  # written (atomically) by an interrupted build
            shards[name] = _file_entry(path)
        else:
            shards[name] = embed_shard(ref, source, directory, shard, SHARD_ROWS)
    manifest = {
        "reference": {"name": ref.name, "checksum": ref.checksum, "arch": ref.arch},
        "data": source.describe(),
        "rows": len(source),
        "shard_rows": SHARD_ROWS,
        "dim": int(np.load(directory / names[0], mmap_mode="r").shape[-1]),
        "dtype": "float16",
        "layout": "[rows, 2, dim]: image then text embedding, L2-normalised",
        "shards": shards,
    }
    write_json_atomic(directory / MANIFEST, manifest)
    return directory


def reference_source(ref: LoadedReference, data: DataSpec):
    """The pool as the reference sees it: at its own image size and text context."""
    return build_source(data.model_copy(update={"image_size": ref.image_size}), ref.context_length)


def reference_inputs(ref: LoadedReference, source, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and tokens for the reference; a reference with its own vocabulary re-tokenizes the captions."""
    batch = source.batch(indices)
    tokens = batch.tokens if ref.tokenizer is None else ref.tokenizer(source.captions(indices))
    device = next(ref.model.parameters()).device
    return batch.images.to(device), tokens.to(device)


@torch.no_grad()
def embed(ref: LoadedReference, source, indices: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    images, tokens = reference_inputs(ref, source, indices)
    return ref.model.encode_image(images, normalize=True), ref.model.encode_text(tokens, normalize=True)


def _embed(ref: LoadedReference, source, indices: np.ndarray) -> np.ndarray:
    rows = []
    for i in range(0, len(indices), ENCODE_BATCH):
        img, txt = embed(ref, source, indices[i : i + ENCODE_BATCH])
        rows.append(torch.stack([img, txt], dim=1).cpu().numpy().astype(np.float16))
    return np.concatenate(rows)


class Reference:
    """What a steered run asks of its reference: features by sample, its identity and its compute."""

    def __init__(self, loaded: LoadedReference, mode: str, source, cache: Path | None = None):
        self.loaded, self.mode, self.source, self.cache = loaded, mode, source, cache
        self.flops_fwd_per_sample = loaded.flops_fwd_per_sample
        self._shards: dict[int, np.ndarray] = {}
        if cache is not None:
            self._check_manifest()

    def _check_manifest(self) -> None:
        manifest = json.loads((self.cache / MANIFEST).read_text())
        if manifest["reference"]["checksum"] != self.loaded.checksum or manifest["data"] != self.source.describe():
            raise ConfigError(f"reference cache {self.cache} was built for another reference or dataset; delete it")
        self.shard_rows, self.listed = manifest["shard_rows"], manifest["shards"]

    def _shard(self, shard: int) -> np.ndarray:
        """A shard, checked against its sha256 on first use (a flipped byte once trained a run to a val_loss of
        46.6); a damaged one is embedded again, here, from the reference it came from."""
        path = self.cache / shard_name(shard)
        expected = self.listed[path.name]
        if not path.is_file() or _sha256(path, 64) != expected["sha256"]:
            print(
                f"reference cache shard {path} is missing or altered (sha256 mismatch); re-embedding it",
                file=sys.stderr,
                flush=True,
            )
            entry = embed_shard(self.loaded, self.source, self.cache, shard, self.shard_rows)
            if entry != expected:  # same reference and rows, other threads: float16 may round differently
                manifest = json.loads((self.cache / MANIFEST).read_text())
                manifest["shards"][path.name] = self.listed[path.name] = entry
                write_json_atomic(self.cache / MANIFEST, manifest)
        return np.load(path, mmap_mode="r")

    def _rows(self, index: np.ndarray) -> np.ndarray:
        shard_ids, offsets = np.divmod(index, self.shard_rows)
        out = None
        for s in np.unique(shard_ids):
            if s not in self._shards:
                self._shards[s] = self._shard(int(s))
            mask = shard_ids == s
            rows = self._shards[s][offsets[mask]]
            if out is None:
                out = np.empty((len(index), *rows.shape[1:]), dtype=np.float32)
            out[mask] = rows
        return out

    @torch.no_grad()
    def features(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised reference embeddings of the batch's samples (from the cache, or by running the model)."""
        device = next(self.loaded.model.parameters()).device
        if self.cache is not None:
            rows = torch.from_numpy(self._rows(batch.index.numpy())).to(device)
            return rows[:, 0], rows[:, 1]
        same_inputs = (
            self.loaded.tokenizer is None
            and batch.images.shape[-1] == self.loaded.image_size
            and batch.tokens.shape[1] == self.loaded.context_length
        )
        if not same_inputs:
            return embed(self.loaded, self.source, batch.index.numpy())
        model = self.loaded.model
        images, tokens = batch.images.to(device), batch.tokens.to(device)
        return model.encode_image(images, normalize=True), model.encode_text(tokens, normalize=True)

    def info(self) -> ReferenceInfo:
        """What a steered run's record says about its reference."""
        return ReferenceInfo(
            name=self.loaded.name,
            run_id=self.loaded.run_id,
            arch=self.loaded.arch,
            checksum=self.loaded.checksum,
            params_total=self.loaded.params_total,
            flops_fwd_per_sample=self.flops_fwd_per_sample,
            mode=self.mode,
            cache=None if self.cache is None else str(self.cache),
            metrics=self.loaded.metrics,
        )


def load_reference(
    spec: ReferenceSpec, out: Path, data: DataSpec, progress: bool = True, device: torch.device | str = "cpu"
) -> Reference:
    """The reference a steered run uses: cached embeddings (built now if missing) or the online model."""
    loaded = load_reference_model(spec, Path(out), data)
    loaded.model.to(device)
    source = reference_source(loaded, data)
    cache = ensure_cache(loaded, source, Path(out), progress) if spec.mode == "cache" else None
    return Reference(loaded, spec.mode, source, cache)
