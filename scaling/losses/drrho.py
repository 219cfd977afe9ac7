"""DRRho-CLIP (spec §2b): FastCLIP's global contrastive loss on RHO differences of the contrastive margins.

diff^I_ij = (1/τ)[(s_ij − s_ii) − (s^ref_ij − s^ref_ii)], where s^ref comes from the reference model's OWN
normalised image and text embeddings (never mixed with the target's) and is scaled by the TARGET's τ; the
reference's own logit scale is not used. The rest (estimator, weights, τ terms) is FastClipLoss unchanged.
"""

from __future__ import annotations

from torch import Tensor

from scaling.losses.distributed import gather_no_grad
from scaling.losses.fastclip import FastClipLoss, Similarities, similarities


class DRRhoLoss(FastClipLoss):
    """FastClipLoss on target-minus-reference similarities; the reference takes no gradient."""

    needs_reference = True

    def similarities(
        self, image: Tensor, text: Tensor, ref_image: Tensor | None, ref_text: Tensor | None
    ) -> Similarities:
        """s_ij − s^ref_ij on every (local anchor, global column) pair and on the positives.

        diff_ij = [(s − s^ref)_ij − (s − s^ref)_ii]/τ regroups (s_ij − s_ii) − (s^ref_ij − s^ref_ii) and
        saves one [b, B] pass per direction.
        """
        target = super().similarities(image, text, None, None)
        ref_image, ref_text = ref_image.detach().to(image.dtype), ref_text.detach().to(image.dtype)
        all_ref_image = gather_no_grad(ref_image, self.world_size)
        all_ref_text = gather_no_grad(ref_text, self.world_size)
        reference = similarities(ref_image, ref_text, all_ref_image, all_ref_text)
        return Similarities(*(t - r for t, r in zip(target, reference, strict=True)))
