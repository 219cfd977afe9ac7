"""The paper's "OpenCLIP" baseline (spec §2e): open_clip's InfoNCE with a learnable logit scale, reused."""

from __future__ import annotations

from open_clip.loss import ClipLoss
from torch import Tensor

from scaling.losses.base import ContrastiveLoss


class OpenClipLoss(ContrastiveLoss):
    """open_clip's ClipLoss with ``--local-loss --gather-with-grad``: local rows against the gathered batch.

    Mean over local anchors of ½[CE(image → texts) + CE(text → images)]; it has no per-sample state, so
    ``index`` and ``epoch`` are accepted for the common interface and ignored.
    """

    def __init__(self, rank: int = 0, world_size: int = 1) -> None:
        super().__init__(rank, world_size)
        self.clip_loss = ClipLoss(local_loss=True, gather_with_grad=True, rank=rank, world_size=world_size)

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
        """open_clip's contrastive loss of the local anchors."""
        self.check_reference(ref_image_features, ref_text_features)
        return self.clip_loss(image_features, text_features, logit_scale)
