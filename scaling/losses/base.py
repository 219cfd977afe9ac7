"""The interface every contrastive loss of the toolkit implements, so the trainer treats all methods alike."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class ContrastiveLoss(nn.Module):
    """A loss over one step's LOCAL features that returns the mean over the local anchors.

    With ``world_size > 1`` the loss gathers the other ranks' features itself; after the trainer sums the
    gradients over ranks and divides by ``world_size``, the update equals the single-process one on the global
    batch.
    """

    needs_reference: bool = False

    def __init__(self, rank: int = 0, world_size: int = 1) -> None:
        super().__init__()
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
        self.rank = rank
        self.world_size = world_size

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
        """Loss of the local anchors against the global batch (see the subclass for the formula)."""
        raise NotImplementedError

    def tau_lr_factor(self, tau: float) -> float:
        """Multiplier for τ's learning rate; open_clip's recipe has none (spec §2e), FastCLIP overrides it."""
        return 1.0

    def check_reference(self, ref_image_features: Tensor | None, ref_text_features: Tensor | None) -> None:
        """Fail loudly when DRRho lacks reference features, or a loss that would ignore them gets some."""
        given = (ref_image_features is not None, ref_text_features is not None)
        if self.needs_reference and not all(given):
            raise ValueError(f"{type(self).__name__} needs ref_image_features and ref_text_features")
        if not self.needs_reference and any(given):
            raise ValueError(f"{type(self).__name__} takes no reference features; use method 'drrho' to steer")


def compute_dtype(features: Tensor) -> torch.dtype:
    """At least float32: exp of 1/τ = 100-scaled margins loses the weights in bf16/fp16 (spec §2b step 6)."""
    return torch.promote_types(features.dtype, torch.float32)
