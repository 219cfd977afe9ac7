"""Slow, formula-level versions of the losses (explicit loops over i, j), written from the spec, not the code.

They use plain Python floats for everything that takes no gradient (g, u, weights) and scalar tensor
arithmetic only where autograd must see it, so they share no code path with scaling.losses.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def dot(a: Tensor, b: Tensor) -> Tensor:
    """Cosine similarity of two unit vectors, as an explicit sum."""
    return sum(a[k] * b[k] for k in range(a.shape[0]))


def clip_loss(image: Tensor, text: Tensor, logit_scale: Tensor) -> Tensor:
    """½ mean_i [−log softmax_j(scale·⟨x_i, t_j⟩)_i − log softmax_j(scale·⟨t_i, x_j⟩)_i] (InfoNCE)."""
    n = image.shape[0]
    total = 0.0
    for anchors, others in ((image, text), (text, image)):
        for i in range(n):
            logits = [logit_scale * dot(anchors[i], others[j]) for j in range(n)]
            total = total - (logits[i] - torch.log(sum(torch.exp(z) for z in logits)))
    return total / (2 * n)


class SlowGlobalContrastive:
    """FastCLIP / DRRho-CLIP per spec §2b steps 3–7, with the u tables as dicts {dataset index: float}."""

    def __init__(self, eps: float, rho: float) -> None:
        self.eps = eps
        self.rho = rho
        self.u_image: dict[int, float] = {}
        self.u_text: dict[int, float] = {}

    def step(self, image, text, logit_scale, index, gamma, ref_image=None, ref_text=None) -> Tensor:
        """Loss of one global batch; updates the tables afterwards (all anchors read the old values)."""
        n = image.shape[0]
        tau = 1 / logit_scale
        surrogate, u_sum, updates = 0.0, 0.0, []
        directions = (
            (image, text, ref_image, ref_text, self.u_image),
            (text, image, ref_text, ref_image, self.u_text),
        )
        for anchors, others, ref_anchors, ref_others, table in directions:
            for i in range(n):
                pairs = (anchors, others, ref_anchors, ref_others)
                diffs = {j: self.difference(*pairs, i, j, tau) for j in range(n) if j != i}
                g = sum(math.exp(d.item()) for d in diffs.values()) / n
                u = self.new_u(table.get(int(index[i])), g, gamma)
                surrogate = surrogate + sum(d * math.exp(d.item() - u) for d in diffs.values()) / (n - 1)
                u_sum += u
                updates.append((table, int(index[i]), u))
        for table, key, u in updates:
            table[key] = u
        return surrogate / n * tau.detach() + self.rho * tau + tau * u_sum / n / 2

    @staticmethod
    def difference(anchors, others, ref_anchors, ref_others, i: int, j: int, tau: Tensor) -> Tensor:
        """diff_ij = [(s_ij − s_ii) − (s^ref_ij − s^ref_ii)] / τ; no reference term for FastCLIP."""
        margin = dot(anchors[i], others[j]) - dot(anchors[i], others[i])
        if ref_anchors is not None:
            margin = margin - (dot(ref_anchors[i], ref_others[j]) - dot(ref_anchors[i], ref_others[i])).detach()
        return margin / tau

    def new_u(self, old: float | None, g: float, gamma: float) -> float:
        """u = log((1 − γ)·exp(u_old) + γ·(ε + g)); no old value (or γ = 1) means log(ε + g)."""
        if old is None or gamma == 1.0:
            return math.log(self.eps + g)
        return math.log((1 - gamma) * math.exp(old) + gamma * (self.eps + g))


def log_sum_exp(values: list[Tensor]) -> Tensor:
    """log Σ exp(v), shifted by the maximum, over a Python list of scalar tensors."""
    peak = max(v.item() for v in values)
    return peak + torch.log(sum(torch.exp(v - peak) for v in values))


def per_example_loss(image: Tensor, text: Tensor, scale: float, i: int, columns: list[int]) -> Tensor:
    """JEST's Lᵢ(S) (steering-baselines note §1.5): −t·sᵢᵢ + ½ LSE_{j∈S} t·sᵢⱼ + ½ LSE_{j∈S} t·⟨yᵢ, xⱼ⟩."""
    rows = log_sum_exp([scale * dot(image[i], text[j]) for j in columns])
    cols = log_sum_exp([scale * dot(text[i], image[j]) for j in columns])
    return -scale * dot(image[i], text[i]) + 0.5 * rows + 0.5 * cols


def learnability(learner: tuple, reference: tuple, i: int, columns: list[int]) -> float:
    """ℓᵢ(S) = Lᵢ(S) − L̂ᵢ(S), each model as (image, text, scale); S = ``columns`` (global rows)."""
    return (per_example_loss(*learner, i, columns) - per_example_loss(*reference, i, columns)).item()


def distill_loss(image: Tensor, text: Tensor, scale, teacher_image: Tensor, teacher_text: Tensor, teacher_scale):
    """½ mean_i [CE(softmax_j t_T·⟨x̂ᵢ, ŷⱼ⟩, softmax_j t·⟨xᵢ, yⱼ⟩) + the same text → image] (note §3)."""
    n = image.shape[0]
    total = 0.0
    directions = ((image, text, teacher_image, teacher_text), (text, image, teacher_text, teacher_image))
    for anchors, others, teacher_anchors, teacher_others in directions:
        for i in range(n):
            student = [scale * dot(anchors[i], others[j]) for j in range(n)]
            teacher = [teacher_scale * dot(teacher_anchors[i], teacher_others[j]) for j in range(n)]
            student_norm, teacher_norm = log_sum_exp(student), log_sum_exp(teacher)
            for j in range(n):
                total = total - torch.exp(teacher[j] - teacher_norm) * (student[j] - student_norm)
    return total / (2 * n)
