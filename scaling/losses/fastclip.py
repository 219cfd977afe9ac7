"""FastCLIP's global contrastive loss (RGCL-g form), as the official SogCLRLoss computes it (spec §2b–2d).

Per local anchor i against the global batch of B pairs (image anchors shown; text anchors swap the towers):

    diff_ij = (s_ij − s_ii) / τ,   u_i ≈ log(ε + (1/B) Σ_{j≠i} exp(diff_ij))   (moving average over epochs)
    L_i     = 1/(B − 1) · Σ_{j≠i} diff_ij · exp(diff_ij − u_i)                  (weights detached)
    loss    = τ.detach() · mean_i(L^I_i + L^T_i) + ρ·τ + τ · mean_i(u^I_i + u^T_i) / 2

The model gradient is that of τ·mean_i[log(ε + ĝ^I_i) + log(ε + ĝ^T_i)] (times B/(B − 1), and with the
moving average ĝ in the denominator). A learnable τ gets −mean_i Σ_j w_ij·diff_ij/(B − 1) through diff, plus
ρ + mean(u)/2 from the last two terms: the RGCL-g τ-gradient, except that the official code halves only the
u and ρ parts (the two directions are summed in the first term, averaged in the third); kept as is.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from scaling.losses.base import ContrastiveLoss, compute_dtype
from scaling.losses.distributed import gather_with_grad
from scaling.losses.estimator import (
    LogMeanEstimator,
    diagonal_mask,
    exp_or_zero,
    gamma_at,
    log_eps_plus_g,
)
from scaling.spec import LossSpec

TAU_LR_RATIO = 1.0 / 3.0


class Similarities(NamedTuple):
    """One model's similarities for the local anchors: [b, B] per direction and the positives [b]."""

    image: Tensor
    text: Tensor
    positive: Tensor


def similarities(image: Tensor, text: Tensor, all_image: Tensor, all_text: Tensor) -> Similarities:
    """s_ij of local image anchors vs global texts and of local text anchors vs global images, and s_ii."""
    return Similarities(image @ all_text.T, text @ all_image.T, (image * text).sum(dim=1))


def weighted_surrogate(diff: Tensor, u: Tensor, positives: Tensor) -> Tensor:
    """Per anchor 1/(B − 1) Σ_{j≠i} diff_ij · w_ij, detached w_ij = exp(diff_ij − u_i) (spec §2b step 6)."""
    weights = exp_or_zero(diff.detach() - u[:, None]).masked_fill(positives, 0.0)
    return (diff * weights).sum(dim=1) / (diff.shape[1] - 1)


class FastClipLoss(ContrastiveLoss):
    """Global contrastive loss with the u estimator; τ is learnable iff ``logit_scale`` requires grad."""

    def __init__(self, params: LossSpec, data_size: int, rank: int = 0, world_size: int = 1) -> None:
        super().__init__(rank, world_size)
        if params.eps is None:
            raise ValueError("LossSpec.eps is unresolved; build the loss from a validated RunSpec's loss")
        self.params = params
        self.estimator = LogMeanEstimator(data_size, world_size)
        self.register_buffer("tau_below_threshold", torch.tensor(False))

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
        """Loss of the local anchors; also advances their u (all ranks' tables) with this epoch's γ."""
        self.check_reference(ref_image_features, ref_text_features)
        dtype = compute_dtype(image_features)
        sims = self.similarities(
            image_features.to(dtype), text_features.to(dtype), ref_image_features, ref_text_features
        )
        scale = logit_scale.to(dtype)
        positive = sims.positive[:, None]
        diff_image, diff_text = (sims.image - positive) * scale, (sims.text - positive) * scale
        positives = diagonal_mask(*diff_image.shape, self.rank * diff_image.shape[0], diff_image.device)
        gamma = gamma_at(epoch, self.params.gamma, self.params.gamma_decay_epochs)
        u_image, u_text = self.estimator.update(
            index,
            log_eps_plus_g(diff_image, positives, self.params.eps),
            log_eps_plus_g(diff_text, positives, self.params.eps),
            gamma,
        )
        surrogate_image = weighted_surrogate(diff_image, u_image, positives)
        surrogate_text = weighted_surrogate(diff_text, u_text, positives)
        tau = 1.0 / scale
        return (
            (surrogate_image + surrogate_text).mean() * tau.detach()
            + self.params.rho * tau
            + tau * (u_image + u_text).mean() / 2
        )

    def similarities(
        self, image: Tensor, text: Tensor, ref_image: Tensor | None, ref_text: Tensor | None
    ) -> Similarities:
        """The target's similarities, local anchors against the gathered global batch (spec §2b step 3)."""
        all_image = gather_with_grad(image, self.world_size)
        all_text = gather_with_grad(text, self.world_size)
        return similarities(image, text, all_image, all_text)

    def tau_lr_factor(self, tau: float) -> float:
        """lr_tau multiplier of the step_thresh rule (spec §2c): 1/3 from the first time τ ≤ tau_threshold on.

        Sticky (kept in ``state_dict``, so it survives a resume); the official scheduler re-tests τ each step.
        """
        if tau <= self.params.tau_threshold:
            self.tau_below_threshold.fill_(True)
        return TAU_LR_RATIO if bool(self.tau_below_threshold) else 1.0
