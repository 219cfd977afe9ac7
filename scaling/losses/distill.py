"""Contrastive knowledge distillation from the reference model: the three "w/ Distill." rows of the DRRho-CLIP
baselines table (steering-baselines note §3–6).

The KD term (open_clip's DistillClipLoss, as MobileCLIP and the DRRho code use it): for local rows against the
global batch, with student logits P = t·⟨xᵢ, yⱼ⟩, Q = t·⟨yᵢ, xⱼ⟩ (t the student's current, differentiated scale;
gathered student columns carry gradient) and teacher logits P̂, Q̂ from the reference's own embeddings at the
fixed scale t_T = 100,

    KD = ½·[meanᵢ CE(softmax P̂ᵢ, softmax Pᵢ) + meanᵢ CE(softmax Q̂ᵢ, softmax Qᵢ)]

(cross-entropy, as both codes log it; the KL the MobileCLIP paper writes differs by the teacher's entropy).
It is combined with a base loss as

    clip_distill (MobileCLIP):   (1 − λ)·CLIP + λ·KD
    fastclip_distill, drrho_distill:   w_c·L + λ·τ·KD,   τ = 1/t detached (the code's --multiply_tau)

The reference features serve both the DRRho part and KD: one cache read.
"""

from __future__ import annotations

import torch
from open_clip.loss import DistillClipLoss
from torch import Tensor

from scaling.losses.base import ContrastiveLoss
from scaling.losses.drrho import DRRhoLoss
from scaling.losses.fastclip import FastClipLoss
from scaling.methods import DistillSpec
from scaling.spec import LossSpec


def check_teacher(teacher_image: Tensor, teacher_text: Tensor) -> None:
    """The teacher is frozen: features that require grad mean a caller forgot no_grad (or passed the student)."""
    if teacher_image.requires_grad or teacher_text.requires_grad:
        raise ValueError("teacher (reference) features must not require grad; compute them under torch.no_grad()")


class ClipDistillLoss(ContrastiveLoss):
    """MobileCLIP (w/ Distill.): (1 − λ)·CLIP + λ·KD from one set of student logits (open_clip's own loss)."""

    needs_reference = True

    def __init__(self, distill: DistillSpec, rank: int = 0, world_size: int = 1) -> None:
        super().__init__(rank, world_size)
        if distill.weight > 1:
            raise ValueError(
                f"distill.weight: clip_distill mixes (1 - λ)·CLIP + λ·KD, so λ <= 1 (got {distill.weight})"
            )
        self.distill = distill
        self.loss = DistillClipLoss(local_loss=True, gather_with_grad=True, rank=rank, world_size=world_size)

    def forward(
        self,
        image_features: Tensor,
        text_features: Tensor,
        logit_scale: Tensor,
        index: Tensor,
        epoch: int = 0,
        ref_image_features: Tensor | None = None,
        ref_text_features: Tensor | None = None,
    ) -> Tensor:
        """Mean over local anchors of the mixed loss; ``index`` and ``epoch`` are unused (no per-sample state)."""
        self.check_reference(ref_image_features, ref_text_features)
        check_teacher(ref_image_features, ref_text_features)
        teacher_scale = torch.tensor(
            self.distill.teacher_scale, dtype=image_features.dtype, device=image_features.device
        )
        parts = self.loss(
            image_features,
            text_features,
            logit_scale,
            ref_image_features.to(image_features.dtype),
            ref_text_features.to(image_features.dtype),
            teacher_scale,
            output_dict=True,
        )
        weight = self.distill.weight
        return (1 - weight) * parts["contrastive_loss"] + weight * parts["distill_loss"]


class KnowledgeDistillation(torch.nn.Module):
    """The KD term alone, for adding to a loss that computes its own contrastive part (fastclip, drrho)."""

    def __init__(self, teacher_scale: float, rank: int = 0, world_size: int = 1) -> None:
        super().__init__()
        self.teacher_scale = teacher_scale
        self.loss = DistillClipLoss(local_loss=True, gather_with_grad=True, rank=rank, world_size=world_size)

    def forward(
        self, image: Tensor, text: Tensor, logit_scale: Tensor, teacher_image: Tensor, teacher_text: Tensor
    ) -> Tensor:
        """KD of the local rows against the global batch (note §3); the gradient reaches image, text and t."""
        check_teacher(teacher_image, teacher_text)
        student = self.loss.get_logits(image, text, logit_scale)
        scale = torch.tensor(self.teacher_scale, dtype=image.dtype, device=image.device)
        teacher = self.loss.get_logits(teacher_image.to(image.dtype), teacher_text.to(image.dtype), scale)
        return (self.loss.dist_loss(teacher[0], student[0]) + self.loss.dist_loss(teacher[1], student[1])) / 2


class GlobalContrastiveDistillLoss(ContrastiveLoss):
    """FastCLIP / DRRho-CLIP (w/ Distill.): w_c·L + λ·τ·KD with the base loss's u untouched by KD.

    FastCLIP's contrastive part gets no reference unless ``fastclip_kd_subtracts_reference`` replays the
    official loop's quirk (it hands the reference to the loss whenever it exists, making it DRRho + KD with
    a learnable τ; note §5). ``ref_logit_scale`` > 0 (drrho only) fixes the DRRho part's scale and τ factor,
    as the code's --distill_ref_logit_scale, while KD keeps the student's t.
    """

    needs_reference = True

    def __init__(
        self, base: str, params: LossSpec, distill: DistillSpec, data_size: int, rank: int = 0, world_size: int = 1
    ) -> None:
        super().__init__(rank, world_size)
        if base == "fastclip" and distill.ref_logit_scale:
            raise ValueError("distill.ref_logit_scale applies to drrho_distill only; leave it 0 for fastclip_distill")
        steered = base == "drrho" or distill.fastclip_kd_subtracts_reference
        self.base = (DRRhoLoss if steered else FastClipLoss)(params, data_size, rank, world_size)
        self.kd = KnowledgeDistillation(distill.teacher_scale, rank, world_size)
        self.distill = distill

    def forward(
        self,
        image_features: Tensor,
        text_features: Tensor,
        logit_scale: Tensor,
        index: Tensor,
        epoch: int = 0,
        ref_image_features: Tensor | None = None,
        ref_text_features: Tensor | None = None,
    ) -> Tensor:
        """w_c·(base loss, which advances its u) + λ·τ·KD; τ is that of the base loss's scale, detached."""
        self.check_reference(ref_image_features, ref_text_features)
        reference = (ref_image_features, ref_text_features) if self.base.needs_reference else (None, None)
        base_scale = logit_scale
        if self.distill.ref_logit_scale:
            base_scale = torch.tensor(self.distill.ref_logit_scale, dtype=logit_scale.dtype, device=logit_scale.device)
        contrastive = self.base(image_features, text_features, base_scale, index, epoch, *reference)
        kd = self.kd(image_features, text_features, logit_scale, ref_image_features, ref_text_features)
        if self.distill.multiply_tau:
            kd = kd / base_scale.detach()
        return self.distill.loss_weight * contrastive + self.distill.weight * kd

    def tau_lr_factor(self, tau: float) -> float:
        """The base loss's rule (FastCLIP's step_thresh); KD does not change τ's learning rate."""
        return self.base.tau_lr_factor(tau)
