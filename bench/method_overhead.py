"""Per-trained-example step time of every method of the baselines table over CLIP's, beside the FLOP ratio the
steering-baselines note predicts (§1.11, §7), in one process.

A step is (selection) + forward + cached reference lookup + loss + backward + AdamW on the same tiny model and
trained batch b. JEST also loads a super-batch of b/(1 − f), runs the learner over it without gradient and
selects b (note §1); its predicted ratio is (train + fwd/(1 − f)) / train of the model's counted FLOPs
(≈ 2.67× at f = 0.8 when a train step is 3 forwards). The other methods add no target FLOPs beyond O(b·B·d)
similarities (predicted 1.00×; goal for KD with a cache: ≤ 1.10×). The reference is a cache looked up by
dataset index, as `reference.mode: cache` does. Variants run round-robin, each step right after a clip step,
and each ratio is the median over rounds of its step time over that clip step's, so load from other processes
hits both sides of a ratio alike.

    python bench/method_overhead.py [--model w64-l2] [--ref-model w64-l2] [--batch 256] [--steps 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from drrho_overhead import build_clip, cached_reference, fake_batch, optimizer_for, update
from torch import Tensor

from scaling.losses import build_loss
from scaling.methods import METHODS, SelectionSpec, paper_name, resolve_selection, super_batch_size
from scaling.models import model_stats
from scaling.selection import score_and_select, selection_generator
from scaling.spec import METHOD_DEFAULTS, LossSpec

DATA_SIZE_BATCHES = 8  # the u tables and the feature cache cover this many trained batches of indices


class Variant:
    """One method's model copy, optimizer, loss and (JEST) selection options."""

    def __init__(self, key: str, model_name: str, data_size: int, trained: int, filter_ratio: float):
        torch.manual_seed(0)  # every variant starts from the same weights
        self.model = build_clip(model_name)
        self.selection = None
        if METHODS[key].selects:
            self.selection = resolve_selection(key, SelectionSpec(filter_ratio=filter_ratio))
        base = METHODS[key].loss or self.selection.base_loss
        params = LossSpec(**METHOD_DEFAULTS[base])
        self.optimizer = optimizer_for(self.model, params)
        self.loss = build_loss(key, params, data_size, selection=self.selection)
        self.trained = trained
        self.loaded = trained if self.selection is None else super_batch_size(trained, self.selection)

    def step(self, images: Tensor, tokens: Tensor, index: Tensor, reference, round_: int) -> float:
        """Seconds for one full training step on ``self.trained`` examples (from the first ``self.loaded``)."""
        images, tokens, index = images[: self.loaded], tokens[: self.loaded], index[: self.loaded]
        tick = time.perf_counter()
        refs = reference(images, tokens, index)
        if self.selection is not None:
            generator = selection_generator(0, round_, 0)
            keep = score_and_select(self.model, images, tokens, refs, self.selection, self.trained, generator)
            images, tokens, index = images[keep], tokens[keep], index[keep]
            refs = (refs[0][keep], refs[1][keep])
        out = self.model(images, tokens)
        refs = refs if self.loss.needs_reference else (None, None)
        loss = self.loss(out["image_features"], out["text_features"], out["logit_scale"], index, 0, *refs)
        update(self.model, self.optimizer, loss)
        return time.perf_counter() - tick


def predicted_ratio(variant: Variant, model: str) -> float:
    """Target FLOPs per trained example over CLIP's: (train + scoring fwd × loaded/trained) / train."""
    stats = model_stats(model)
    scoring = stats.flops_fwd_per_sample * variant.loaded / variant.trained if variant.selection else 0.0
    return (stats.flops_train_per_sample + scoring) / stats.flops_train_per_sample


def measure(args: argparse.Namespace) -> tuple[dict[str, Variant], dict[str, list[float]], dict[str, list[float]]]:
    """Seconds per step of every method over ``args.steps`` rounds after ``args.warmup``, and each step's ratio
    to a clip step run just before it (clip's own ratios pair consecutive clip steps)."""
    data_size = DATA_SIZE_BATCHES * args.batch
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(1)
    ref_model = build_clip(args.ref_model).eval().requires_grad_(False)
    variants = {key: Variant(key, args.model, data_size, args.batch, args.filter_ratio) for key in METHODS}
    loaded = max(v.loaded for v in variants.values())
    images, tokens = fake_batch(ref_model, loaded, generator)  # the models share input shapes
    reference = cached_reference(ref_model, images, tokens, data_size)
    times: dict[str, list[float]] = {key: [] for key in variants}
    ratios: dict[str, list[float]] = {key: [] for key in variants}
    for round_ in range(args.warmup + args.steps):
        index = torch.randperm(data_size, generator=generator)[:loaded]
        for key, variant in variants.items():
            clip = variants["clip"].step(images, tokens, index, reference, round_)
            seconds = variant.step(images, tokens, index, reference, round_)
            if round_ >= args.warmup:
                times[key].append(seconds)
                ratios[key].append(seconds / clip)
    return variants, times, ratios


def report(variants: dict[str, Variant], times: dict, ratios: dict, args: argparse.Namespace) -> str:
    """A markdown table: ms per trained example (median, best), measured × clip (median over rounds of the
    ratio to the clip step just before; and best step over clip's best step) and the predicted FLOP ratio."""
    lines = [
        f"model {args.model}, cached reference {args.ref_model}, trained batch {args.batch}, JEST f = "
        f"{args.filter_ratio}, {args.steps} rounds after {args.warmup} warm-up, {torch.get_num_threads()} threads",
        "",
        "| method | paper name | loaded/step | ms per trained ex. (median) | (best) | × clip measured | "
        "× clip best/best | × clip FLOPs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for key, seconds in times.items():
        variant = variants[key]
        ratio = statistics.median(ratios[key])
        median, best = (1e3 * s / variant.trained for s in (statistics.median(seconds), min(seconds)))
        best_ratio = min(seconds) / min(times["clip"])
        lines.append(
            f"| {key} | {paper_name(key)} | {variant.loaded} | {median:.3f} | {best:.3f} | {ratio:.3f} | "
            f"{best_ratio:.3f} | {predicted_ratio(variant, args.model):.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="w64-l2", help="target model (scaling.models ladder name)")
    parser.add_argument("--ref-model", default="w64-l2", help="the reference whose embeddings are cached")
    parser.add_argument("--batch", type=int, default=256, help="trained examples per step")
    parser.add_argument("--filter-ratio", type=float, default=0.8, help="JEST's f (super-batch = batch/(1 - f))")
    parser.add_argument("--steps", type=int, default=20, help="timed rounds (one step per method each)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds first")
    args = parser.parse_args(argv)
    print(report(*measure(args), args))


if __name__ == "__main__":
    main()
