"""Contrastive losses for CLIP, FastCLIP and DRRho-CLIP behind one interface (``build_loss``).

Each loss takes one rank's local, L2-normalised features and gathers the rest itself; see ``ContrastiveLoss``.
"""

from __future__ import annotations

from scaling.losses.base import ContrastiveLoss
from scaling.losses.drrho import DRRhoLoss
from scaling.losses.estimator import gamma_at
from scaling.losses.fastclip import FastClipLoss
from scaling.spec import LossSpec

__all__ = ["ContrastiveLoss", "DRRhoLoss", "FastClipLoss", "build_loss", "gamma_at"]

METHODS = ("clip", "fastclip", "drrho")


def build_loss(method: str, params: LossSpec, data_size: int, rank: int = 0, world_size: int = 1) -> ContrastiveLoss:
    """The loss of ``method`` (one of METHODS) over dataset indices 0..data_size-1, for one rank of a world.

    ``params`` must have its method defaults resolved (RunSpec does that); clip uses none of them.
    """
    if method == "clip":
        # Imported here: open_clip takes seconds to import and only this loss needs it.
        from scaling.losses.clip import OpenClipLoss

        return OpenClipLoss(rank, world_size)
    if method == "fastclip":
        return FastClipLoss(params, data_size, rank, world_size)
    if method == "drrho":
        return DRRhoLoss(params, data_size, rank, world_size)
    raise ValueError(f"unknown loss method {method!r}; choose one of {', '.join(METHODS)}")
