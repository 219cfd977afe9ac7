"""The model ladder as data, built through open_clip, with parameter and FLOP counts per sample.

The tiny ladder lives in `model_configs/*.json` (open_clip's config format) and is registered with
open_clip, so `open_clip.create_model(name)` is the one factory for tiny and paper-scale models alike.
FLOPs are counted by `torch.utils.flop_counter` on the meta device: the real graph, no arithmetic, so even
ViT-L-14 is counted in about a second. They are cached in `model_stats.json` (shipped for the ladder, and a
user cache for other shapes), keyed by everything that changes them.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

from scaling.errors import ConfigError

CONFIG_DIR = Path(__file__).parent / "model_configs"
SHIPPED_STATS = Path(__file__).parent / "model_stats.json"
# The paper's targets (Wei et al. 2025, §4 of the spec): open_clip's own configs, for cluster users.
PAPER_MODELS = ("ViT-B-32", "ViT-B-16", "ViT-L-14")
FLOP_BATCH = 8


@dataclass(frozen=True)
class ModelStats:
    """What a record needs about a model. FLOPs count 2 per multiply-add, as torch's FlopCounterMode does."""

    name: str
    params_total: int
    params_nonembedding: int
    flops_fwd_per_sample: float
    flops_train_per_sample: float


@cache
def _ladder() -> tuple[str, ...]:
    """Listed once per process: spec validation asks for every run of a 10,000-point grid."""

    def size(name: str) -> tuple[int, int]:
        w, l_ = name.removeprefix("w").split("-l")
        return int(w), int(l_)

    return tuple(sorted((p.stem for p in CONFIG_DIR.glob("*.json")), key=size))


def ladder() -> list[str]:
    """Tiny CPU models, smallest first (ordered by width, then depth)."""
    return list(_ladder())


def available_models() -> list[str]:
    return [*_ladder(), *PAPER_MODELS]


def model_config(name: str) -> dict:
    """The open_clip config dict of a model (without building it)."""
    path = CONFIG_DIR / f"{name}.json"
    if path.exists():
        return json.loads(path.read_text())
    _register()
    import open_clip

    cfg = open_clip.get_model_config(name)
    if cfg is None:
        raise ConfigError(f"model: unknown model {name!r}; choose one of {', '.join(available_models())}")
    return cfg


@cache
def _register() -> None:
    import open_clip

    open_clip.add_model_config(CONFIG_DIR)


def context_length(name: str) -> int:
    return model_config(name)["text_cfg"].get("context_length", 77)


def image_size(name: str) -> int:
    return model_config(name)["vision_cfg"]["image_size"]


def build_model(name: str, vocab_size: int | None = None, device: str = "cpu"):
    """An open_clip CLIP from the registry, randomly initialised (never downloads weights).

    `vocab_size` follows the tokenizer of the data: the tiny configs use a compact 64-id vocabulary for
    the synthetic captions; real captions need open_clip's full BPE vocabulary.
    """
    import logging

    import open_clip

    _register()
    cfg = model_config(name)
    text_cfg = dict(cfg["text_cfg"])
    if vocab_size is not None:
        text_cfg["vocab_size"] = vocab_size
    logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))  # "no pretrained weights" noise
    return open_clip.create_model(name, pretrained=None, device=device, text_cfg=text_cfg, output_dict=True)


def embedding_params(model) -> int:
    """Token-embedding parameters: the part that scales with vocabulary, not with capacity."""
    return model.token_embedding.weight.numel() if hasattr(model, "token_embedding") else 0


def count_flops(name: str, vocab_size: int | None = None) -> ModelStats:
    """Measure parameters and per-sample FLOPs (forward; forward + ClipLoss + backward) on the meta device."""
    import torch
    from open_clip.loss import ClipLoss
    from torch.utils.flop_counter import FlopCounterMode

    model = build_model(name, vocab_size, device="meta")
    size, ctx = image_size(name), context_length(name)
    images = torch.randn(FLOP_BATCH, 3, size, size, device="meta")
    tokens = torch.zeros(FLOP_BATCH, ctx, dtype=torch.long, device="meta")
    with FlopCounterMode(display=False) as fwd_counter:
        model(images, tokens)
    with FlopCounterMode(display=False) as train_counter:
        out = model(images, tokens)
        ClipLoss()(out["image_features"], out["text_features"], out["logit_scale"]).backward()
    total = sum(p.numel() for p in model.parameters())
    return ModelStats(
        name=name,
        params_total=total,
        params_nonembedding=total - embedding_params(model),
        flops_fwd_per_sample=fwd_counter.get_total_flops() / FLOP_BATCH,
        flops_train_per_sample=train_counter.get_total_flops() / FLOP_BATCH,
    )


def _stats_key(name: str, vocab_size: int | None) -> str:
    cfg = model_config(name)
    vocab = vocab_size or cfg["text_cfg"].get("vocab_size", 49408)
    return f"{name}|vocab={vocab}|" + json.dumps(cfg, sort_keys=True)


def _user_cache() -> Path:
    root = os.environ.get("SCALING_CACHE") or Path.home() / ".cache" / "clip-scaling"
    return Path(root) / "model_stats.json"


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def model_stats(name: str, vocab_size: int | None = None) -> ModelStats:
    """Cached stats: shipped file first, then the user cache, else measure once and remember."""
    key = _stats_key(name, vocab_size)
    for path in (SHIPPED_STATS, _user_cache()):
        if key in (table := _read(path)):
            return ModelStats(**table[key])
    stats = count_flops(name, vocab_size)
    _remember(_user_cache(), key, stats)
    return stats


def _remember(path: Path, key: str, stats: ModelStats) -> None:
    from scaling.io import write_json_atomic

    table = _read(path)
    table[key] = asdict(stats)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, table)


def update_shipped_stats() -> None:
    """Re-measure the ladder and the paper models into the file shipped with the package."""
    table = {}
    for name in available_models():
        for vocab in {None, 49408}:
            table[_stats_key(name, vocab)] = asdict(count_flops(name, vocab))
    from scaling.io import write_json_atomic

    write_json_atomic(SHIPPED_STATS, table)


def main(argv: list[str] | None = None) -> None:
    """`python -m scaling.models [--update-stats]`: print the ladder with its measured sizes and FLOPs."""
    argv = sys.argv[1:] if argv is None else argv
    if "--update-stats" in argv:
        update_shipped_stats()
    print(f"{'model':<10} {'params':>12} {'non-emb':>12} {'fwd GFLOP/sample':>17} {'train GFLOP/sample':>19}")
    for name in available_models():
        s = model_stats(name)
        print(
            f"{name:<10} {s.params_total:>12,} {s.params_nonembedding:>12,} "
            f"{s.flops_fwd_per_sample / 1e9:>17.4f} {s.flops_train_per_sample / 1e9:>19.4f}"
        )


if __name__ == "__main__":
    main()
