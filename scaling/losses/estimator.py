"""FastCLIP's per-sample moving-average estimator of log(ε + g), shared by the fastclip and drrho losses.

Everything here is in log space (spec §2b steps 4–5): with τ = 0.01 the scaled margins reach ±400, so
exp(diff) itself overflows float32, while log(ε + g) and exp(diff − u) stay in range.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from scaling.losses.distributed import gather_no_grad


def gamma_at(epoch: int, gamma_final: float, decay_epochs: float) -> float:
    """γ of an integer epoch (spec §2d): 1 at epoch 0, cosine to γ_final at ``decay_epochs``, then flat."""
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    if epoch == 0:
        return 1.0
    if epoch >= decay_epochs:
        return gamma_final
    return 0.5 * (1.0 + math.cos(math.pi * epoch / decay_epochs)) * (1.0 - gamma_final) + gamma_final


def exp_or_zero(x: Tensor) -> Tensor:
    """exp(x), but exactly 0 where it is below eps² of the dtype (x < −31.8 in float32, −72 in float64).

    Both uses are normalised (x − max in the logsumexp; diff − u for the weights, whose rows sum to about B),
    so a term below eps² cannot change the float result. Dropping it keeps exp, and the products with it in
    the backward, off the CPU's ~100× slower underflow/denormal paths, which at τ = 0.01 (margins/τ ≈ ±400)
    made the DRRho loss several times slower than FastCLIP's.
    """
    floor = 2.0 * math.log(torch.finfo(x.dtype).eps)
    return x.clamp_min(floor).exp().masked_fill(x < floor, 0.0)


def logsumexp_rows(x: Tensor) -> Tensor:
    """log Σ_j exp(x_ij) per row, shifted by the row maximum like torch.logsumexp, with exp_or_zero."""
    peak = x.amax(dim=1, keepdim=True)
    return exp_or_zero(x - peak).sum(dim=1).log() + peak.squeeze(1)


def diagonal_mask(rows: int, cols: int, offset: int, device: torch.device) -> Tensor:
    """True at (i, offset + i): the positive pair of local anchor i among the global batch's columns."""
    mask = torch.zeros(rows, cols, dtype=torch.bool, device=device)
    local = torch.arange(rows, device=device)
    mask[local, local + offset] = True
    return mask


@torch.no_grad()
def log_eps_plus_g(diff: Tensor, positives: Tensor, eps: float) -> Tensor:
    """log(ε + g_i) with g_i = (1/B) Σ_{j≠i} exp(diff_ij), per row (spec §2b step 4).

    The positive's entry is replaced by log(εB) so a single logsumexp gives log(εB + Σ_{j≠i} e^diff) − log B.
    The divisor is B, not B − 1, as in the official code.
    """
    width = diff.shape[1]
    fill = math.log(eps * width) if eps > 0 else -math.inf
    return logsumexp_rows(diff.masked_fill(positives, fill)) - math.log(width)


def is_uninitialised(u: Tensor) -> Tensor:
    """Entries never written: tables start at 0; 0/inf/NaN all mean 'no estimate yet' (spec §2b step 5)."""
    return (u == 0) | ~torch.isfinite(u)


@torch.no_grad()
def moving_average(u_old: Tensor, log_g: Tensor, gamma: float) -> Tensor:
    """u ← log((1 − γ)·exp(u_old) + γ·(ε + g)) in log space; uninitialised u_old take the current estimate."""
    if gamma == 1.0:
        return log_g
    mixed = torch.logaddexp(u_old + math.log1p(-gamma), log_g + math.log(gamma))
    return torch.where(is_uninitialised(u_old), log_g, mixed)


class LogMeanEstimator(nn.Module):
    """The two u tables (image and text anchors), one entry per dataset index, kept identical on all ranks.

    They are buffers, so ``state_dict`` carries them into checkpoints and a resumed run continues the same
    estimates (spec §2b step 8). Memory: 2 × data_size × 4 bytes.
    """

    def __init__(self, data_size: int, world_size: int = 1) -> None:
        super().__init__()
        if data_size <= 0:
            raise ValueError(f"data_size must be positive, got {data_size}")
        self.world_size = world_size
        self.register_buffer("u_image", torch.zeros(data_size))
        self.register_buffer("u_text", torch.zeros(data_size))

    def update(self, index: Tensor, log_g_image: Tensor, log_g_text: Tensor, gamma: float) -> tuple[Tensor, Tensor]:
        """Move the local anchors' u towards this step's log(ε + g), store them on every rank, return them."""
        index = index.to(log_g_image.device)
        table_index = index.to(self.u_image.device)
        u_image = moving_average(self.u_image[table_index].to(log_g_image), log_g_image, gamma)
        u_text = moving_average(self.u_text[table_index].to(log_g_text), log_g_text, gamma)
        self._store(index, u_image, u_text)
        return u_image, u_text

    @torch.no_grad()
    def _store(self, index: Tensor, u_image: Tensor, u_text: Tensor) -> None:
        """Write the global batch's new u into this rank's tables, so all ranks' tables stay identical."""
        all_index = gather_no_grad(index, self.world_size).to(self.u_image.device)
        all_u = gather_no_grad(torch.stack([u_image, u_text], dim=1), self.world_size).to(self.u_image)
        self.u_image[all_index] = all_u[:, 0]
        self.u_text[all_index] = all_u[:, 1]
