"""Step-time overhead of the FastCLIP and DRRho-CLIP losses over open_clip's ClipLoss, in one process.

A step is forward + (reference) + loss + backward + AdamW step on the same tiny model and batch. DRRho runs
twice: with cached reference features (looked up by dataset index, as `reference.mode: cache` does) and
online (a second tiny CLIP's forward under no_grad every step). The variants run round-robin, one step each
per round, so load from other processes hits all of them alike; each variant's ratio to clip is the median
over rounds of its step time over clip's in the same round (goal for cached DRRho: ≤ 1.10×).

    python bench/drrho_overhead.py [--model w64-l2] [--ref-model w64-l2] [--batch 256] [--steps 30]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable

import torch
from torch import Tensor

from scaling.losses import build_loss
from scaling.spec import METHOD_DEFAULTS, LossSpec

DATA_SIZE_BATCHES = 4  # the u tables and the feature cache cover this many batches of indices
# The brief's tiny CLIP, used when scaling.models (the model ladder) is not importable.
FALLBACK_CFG = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 32, "patch_size": 4, "width": 64, "layers": 2, "head_width": 32},
    "text_cfg": {"context_length": 32, "vocab_size": 64, "width": 64, "heads": 2, "layers": 2},
}


def build_clip(name: str) -> torch.nn.Module:
    """A randomly initialised open_clip CLIP from the model ladder, or the fallback config."""
    try:
        from scaling.models import build_model
    except ImportError:
        import open_clip

        print(f"scaling.models not importable: using the fallback tiny CLIP instead of {name}")
        return open_clip.CLIP(**FALLBACK_CFG, output_dict=True)
    return build_model(name)


def fake_batch(model: torch.nn.Module, batch: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Random pixels and token ids shaped for ``model`` (timing does not depend on the content)."""
    size = model.visual.image_size
    images = torch.randn(batch, 3, *size, generator=generator)
    tokens = torch.randint(0, model.vocab_size, (batch, model.context_length), generator=generator)
    return images, tokens


def optimizer_for(model: torch.nn.Module, params: LossSpec) -> torch.optim.Optimizer:
    """τ started (and learnt or frozen) as the method's loss says, and AdamW over what trains."""
    model.logit_scale.data.fill_(math.log(1 / params.tau))
    model.logit_scale.requires_grad_(params.learn_tau)
    trainable = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(trainable, lr=1e-4, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.1)


def update(model: torch.nn.Module, optimizer: torch.optim.Optimizer, loss: Tensor) -> None:
    """Backward, one optimizer step, and t clamped to 100 as open_clip_train does after each step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        model.logit_scale.clamp_(0, math.log(100))


class Variant:
    """One method's model copy, optimizer and loss, with a way to get its reference features."""

    def __init__(self, method: str, model_name: str, data_size: int, reference: Callable | None = None):
        torch.manual_seed(0)  # every variant starts from the same weights
        self.model = build_clip(model_name)
        params = LossSpec(**METHOD_DEFAULTS[method])
        self.optimizer = optimizer_for(self.model, params)
        self.loss = build_loss(method, params, data_size)
        self.reference = reference

    def step(self, images: Tensor, tokens: Tensor, index: Tensor) -> float:
        """Seconds for one full training step."""
        tick = time.perf_counter()
        out = self.model(images, tokens)
        refs = self.reference(images, tokens, index) if self.reference else (None, None)
        loss = self.loss(out["image_features"], out["text_features"], out["logit_scale"], index, 0, *refs)
        update(self.model, self.optimizer, loss)
        return time.perf_counter() - tick


def online_reference(ref_model: torch.nn.Module) -> Callable:
    """Reference features computed every step by the frozen reference model."""

    @torch.no_grad()
    def features(images: Tensor, tokens: Tensor, index: Tensor) -> tuple[Tensor, Tensor]:
        out = ref_model(images, tokens)
        return out["image_features"], out["text_features"]

    return features


def cached_reference(ref_model: torch.nn.Module, images: Tensor, tokens: Tensor, data_size: int) -> Callable:
    """Reference features precomputed once per dataset index ([N, 2, D_ref]) and looked up each step."""
    with torch.no_grad():
        out = ref_model(images, tokens)
    rows = torch.stack([out["image_features"], out["text_features"]], dim=1)
    table = rows.repeat(math.ceil(data_size / len(rows)), 1, 1)[:data_size].contiguous()

    def features(images: Tensor, tokens: Tensor, index: Tensor) -> tuple[Tensor, Tensor]:
        cached = table[index]
        return cached[:, 0], cached[:, 1]

    return features


def measure(args: argparse.Namespace) -> dict[str, list[float]]:
    """Seconds per step of each variant over ``args.steps`` rounds after ``args.warmup`` rounds."""
    data_size = DATA_SIZE_BATCHES * args.batch
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(1)
    ref_model = build_clip(args.ref_model).eval().requires_grad_(False)
    images, tokens = fake_batch(ref_model, args.batch, generator)  # the models share input shapes
    variants = {
        "clip": Variant("clip", args.model, data_size),
        "fastclip": Variant("fastclip", args.model, data_size),
        "drrho (cached ref)": Variant(
            "drrho", args.model, data_size, cached_reference(ref_model, images, tokens, data_size)
        ),
        "drrho (online ref)": Variant("drrho", args.model, data_size, online_reference(ref_model)),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for round_ in range(args.warmup + args.steps):
        index = torch.randperm(data_size, generator=generator)[: args.batch]
        for name, variant in variants.items():
            seconds = variant.step(images, tokens, index)
            if round_ >= args.warmup:
                times[name].append(seconds)
    return times


def report(times: dict[str, list[float]], args: argparse.Namespace) -> str:
    """A markdown table: median and best ms/step, and the median over rounds of the ratio to clip's step.

    The paired ratio compares steps that ran back to back, so it stays meaningful when other processes load
    the machine unevenly over the run; the best step is the least disturbed one.
    """
    lines = [
        f"model {args.model}, reference {args.ref_model}, batch {args.batch}, {args.steps} rounds after "
        f"{args.warmup} warm-up, {torch.get_num_threads()} threads",
        "",
        "| variant | ms/step (median) | ms/step (best) | × clip (median of per-round ratios) |",
        "|---|---|---|---|",
    ]
    for name, seconds in times.items():
        ratio = statistics.median(t / c for t, c in zip(seconds, times["clip"], strict=True))
        median, best = 1e3 * statistics.median(seconds), 1e3 * min(seconds)
        lines.append(f"| {name} | {median:.1f} | {best:.1f} | {ratio:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="w64-l2", help="target model (scaling.models ladder name)")
    parser.add_argument("--ref-model", default="w64-l2", help="DRRho's reference (same input shapes)")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=30, help="timed rounds (one step per variant each)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed rounds first")
    args = parser.parse_args(argv)
    print(report(measure(args), args))


if __name__ == "__main__":
    main()
