"""Joint example selection (JEST, Evans et al. 2024) as the DRRho-CLIP code runs it: pick the trained batch
from a larger super-batch by learner-minus-reference learnability (steering-baselines note §1–2).

Per rank, from a super-batch of n = b/(1 − f) examples, K chunks of m = b/K indices are drawn:

- chunk 1 from the candidates' own diagonal term dᵢ = −t·sᵢᵢ + t̂·ŝᵢᵢ (weights linear: dᵢ − min d, as the
  official code; or exp(dᵢ); or uniform);
- chunks 2..K ∝ exp ℓᵢ(S) (JEST) or greedily the m largest (JEST (Top-k)), with the conditional learnability

      ℓᵢ(S) = Lᵢ(S) − L̂ᵢ(S),   Lᵢ(S) = −t·sᵢᵢ + ½·LSE_{j∈S}(t·sᵢⱼ) + ½·LSE_{j∈S}(t·⟨yᵢ, xⱼ⟩)

  where S is the set already chosen on ANY rank (global columns) and L̂ is the same with the reference's own
  embeddings and its fixed scale t̂ = 100. The candidate's own pair is not in the normaliser when i ∉ S.

The `independent` rule scores each example once against the whole global super-batch and keeps the b best.
Draws use Gumbel-top-k, which has the law of sequential sampling without replacement but never exponentiates
a score (ℓ reaches ±200 and overflows exp in float32, where the official code's multinomial crashes).
Everything is a pure function of its inputs and a torch.Generator, which the trainer derives from
(seed, step, rank), so a resumed run selects exactly what an uninterrupted one would.
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from scaling.losses.base import compute_dtype
from scaling.losses.distributed import gather_no_grad
from scaling.methods import SelectionSpec, super_batch_size

SELECTION_STREAM = 2  # run.epoch_order seeds with [seed, 1, epoch]; selection draws from its own stream


def selection_generator(seed: int, step: int, rank: int) -> torch.Generator:
    """The selection RNG of one rank at one step: a pure function of (seed, step, rank), so resume is exact."""
    state = np.random.SeedSequence([seed, SELECTION_STREAM, step, rank]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


def target_flops(trained: int, loaded: int, flops_train: float, flops_fwd: float) -> float:
    """Target FLOPs of training on ``trained`` examples chosen from ``loaded`` (note §1.11).

    Every loaded example is forwarded once without gradient to score it; the chosen ones are forwarded again
    in the training step. With nothing filtered (loaded == trained) no scoring pass runs.
    """
    scoring = loaded * flops_fwd if loaded > trained else 0.0
    return trained * flops_train + scoring


class Embeddings(NamedTuple):
    """One model's L2-normalised embeddings of this rank's super-batch and the scale t of its logits."""

    image: Tensor
    text: Tensor
    scale: float | Tensor


class Logits(NamedTuple):
    """One model's scaled similarities: local rows against the global super-batch's columns."""

    diagonal: Tensor  # [n]     t·⟨xᵢ, yᵢ⟩
    image: Tensor  # [n, N]  t·⟨xᵢ, yⱼ⟩
    text: Tensor  # [n, N]  t·⟨yᵢ, xⱼ⟩


def scaled_logits(embeddings: Embeddings, world_size: int = 1) -> Logits:
    """Logits of local rows against the gathered global columns, in at least float32 (note §1.8)."""
    dtype = compute_dtype(embeddings.image)
    image, text = embeddings.image.detach().to(dtype), embeddings.text.detach().to(dtype)
    scale = torch.as_tensor(embeddings.scale, dtype=dtype, device=image.device).detach()
    all_image, all_text = gather_no_grad(image, world_size), gather_no_grad(text, world_size)
    return Logits(scale * (image * text).sum(dim=1), scale * image @ all_text.T, scale * text @ all_image.T)


def conditional_loss(logits: Logits, selected: Tensor | None) -> Tensor:
    """Lᵢ(S) per local row: −t·sᵢᵢ + ½ LSE over the columns in S of each direction; S = None means all columns."""
    image, text = logits.image, logits.text
    if selected is not None:
        image, text = image.masked_fill(~selected, -math.inf), text.masked_fill(~selected, -math.inf)
    return -logits.diagonal + 0.5 * (torch.logsumexp(image, dim=1) + torch.logsumexp(text, dim=1))


def learnability(learner: Logits, reference: Logits, selected: Tensor | None) -> Tensor:
    """ℓᵢ(S) = Lᵢ(S) − L̂ᵢ(S): how much more the learner than the reference still loses on candidate i."""
    return conditional_loss(learner, selected) - conditional_loss(reference, selected)


def top_k(scores: Tensor, k: int) -> Tensor:
    """Indices of the k largest scores in descending order; ties go to the lower index (note §2)."""
    return torch.sort(scores, descending=True, stable=True).indices[:k]


def gumbel_top_k(log_weights: Tensor, k: int, generator: torch.Generator) -> Tensor:
    """k distinct indices drawn ∝ exp(log_weights) one after another without replacement (Plackett–Luce).

    The k largest of log wᵢ + Gumbel noise have exactly that law; −inf (weight 0) is never drawn while k
    finite entries remain. Noise is drawn in float64 on the CPU generator, whatever the device.
    """
    uniform = torch.rand(log_weights.shape, generator=generator, dtype=torch.float64)
    gumbel = -torch.log(-torch.log(uniform.clamp_min(torch.finfo(torch.float64).tiny)))
    return top_k(log_weights.double() + gumbel.to(log_weights.device), k)


def first_chunk_log_weights(diagonal: Tensor, law: str, m: int) -> Tensor:
    """log-weights of chunk 1 from dᵢ: linear log(dᵢ − min d) (DRRho code), exp → dᵢ, or uniform 0.

    The linear law gives the arg-min weight 0; when fewer than m weights are positive (e.g. all dᵢ equal)
    it cannot fill the chunk, so it falls back to uniform with a warning (the official code raises).
    """
    if law == "uniform":
        return torch.zeros_like(diagonal)
    if law == "exp":
        return diagonal
    weights = diagonal - diagonal.min()
    if int((weights > 0).sum()) < m:
        warnings.warn(
            f"JEST first chunk: fewer than {m} candidates have a positive linear weight; drawing it uniformly",
            RuntimeWarning,
            stacklevel=3,
        )
        return torch.zeros_like(diagonal)
    return weights.log()


def select(
    learner: Embeddings,
    reference: Embeddings,
    selection: SelectionSpec,
    trained: int,
    generator: torch.Generator,
    world_size: int = 1,
) -> Tensor:
    """Local indices (into this rank's super-batch, in draw order) of the ``trained`` examples to train on.

    Every rank calls this with its own super-batch and generator; the conditioning set S and the columns of
    the log-sum-exps are global (all-gathered), each rank chooses among its own rows, so the gathered
    trained batches stay equal-sized (note §1.9). ``selection.rule`` must be resolved (resolve_selection).
    """
    n = len(learner.image)
    if len(reference.image) != n:
        raise ValueError(f"learner has {n} super-batch embeddings, reference {len(reference.image)}")
    if super_batch_size(trained, selection) != n:
        raise ValueError(f"a super-batch of {n} does not give {trained} at filter_ratio {selection.filter_ratio}")
    if selection.filter_ratio == 0:
        return torch.arange(n, device=learner.image.device)
    if selection.rule is None:
        raise ValueError("selection.rule is unresolved; resolve it with resolve_selection(method, selection)")
    learner_logits = scaled_logits(learner, world_size)
    reference_logits = scaled_logits(reference, world_size)
    diagonal = reference_logits.diagonal - learner_logits.diagonal  # dᵢ = −t·sᵢᵢ + t̂·ŝᵢᵢ
    if not torch.isfinite(diagonal).all():
        raise FloatingPointError("JEST scores are not finite: the learner or reference embeddings hold NaN or inf")
    if selection.rule == "independent":
        return top_k(learnability(learner_logits, reference_logits, None), trained)
    m = trained // selection.chunks
    chosen = gumbel_top_k(first_chunk_log_weights(diagonal, selection.first_chunk, m), m, generator)
    for _ in range(selection.chunks - 1):
        mine = torch.zeros(n, dtype=torch.bool, device=diagonal.device)
        mine[chosen] = True
        selected = gather_no_grad(mine.to(torch.uint8), world_size).bool()
        score = learnability(learner_logits, reference_logits, selected).masked_fill(mine, -math.inf)
        new = top_k(score, m) if selection.rule == "greedy" else gumbel_top_k(score, m, generator)
        chosen = torch.cat([chosen, new])
    return chosen


@torch.no_grad()
def score_and_select(
    model: torch.nn.Module,
    images: Tensor,
    tokens: Tensor,
    reference: tuple[Tensor, Tensor],
    selection: SelectionSpec,
    trained: int,
    generator: torch.Generator,
    world_size: int = 1,
) -> Tensor:
    """The no-gradient scoring forward of the learner on the super-batch, then ``select``.

    With f = 0 nothing is filtered: the identity is returned and the model is not run (note §1.8).
    """
    if selection.filter_ratio == 0:
        return torch.arange(len(images), device=images.device)
    out = model(images, tokens)
    learner = Embeddings(out["image_features"], out["text_features"], out["logit_scale"])
    return select(learner, Embeddings(*reference, selection.reference_scale), selection, trained, generator, world_size)
