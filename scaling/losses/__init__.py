"""Contrastive losses for every method of the baselines table behind one interface (``build_loss``).

Each loss takes one rank's local, L2-normalised features and gathers the rest itself; see ``ContrastiveLoss``.
"""

from __future__ import annotations

from scaling.losses.base import ContrastiveLoss
from scaling.losses.drrho import DRRhoLoss
from scaling.losses.estimator import gamma_at
from scaling.losses.fastclip import FastClipLoss
from scaling.methods import DistillSpec, SelectionSpec, method
from scaling.spec import LossSpec

__all__ = ["ContrastiveLoss", "DRRhoLoss", "FastClipLoss", "build_loss", "gamma_at"]


def build_loss(
    key: str,
    params: LossSpec,
    data_size: int,
    rank: int = 0,
    world_size: int = 1,
    *,
    selection: SelectionSpec | None = None,
    distill: DistillSpec | None = None,
) -> ContrastiveLoss:
    """The loss of method ``key`` (scaling.methods.METHODS) over dataset indices 0..data_size-1, for one rank.

    ``params`` must have its method defaults resolved (RunSpec does that); clip uses none of them. JEST trains
    with ``selection.base_loss`` (the selection itself happens before the loss, see scaling.selection); the
    "w/ Distill." methods add KD with ``distill``'s options. Omitted options take their defaults.
    """
    info = method(key)
    loss = info.loss or (selection or SelectionSpec()).base_loss
    if info.distills:
        # Imported here: open_clip takes seconds to import and only these losses and clip need it.
        from scaling.losses.distill import ClipDistillLoss, GlobalContrastiveDistillLoss

        distill = distill or DistillSpec()
        if loss == "clip":
            return ClipDistillLoss(distill, rank, world_size)
        return GlobalContrastiveDistillLoss(loss, params, distill, data_size, rank, world_size)
    if loss == "clip":
        from scaling.losses.clip import OpenClipLoss

        return OpenClipLoss(rank, world_size)
    if loss == "fastclip":
        return FastClipLoss(params, data_size, rank, world_size)
    return DRRhoLoss(params, data_size, rank, world_size)
