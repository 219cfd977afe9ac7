"""Numeric precision of a run, with open_clip_train's names: fp32, amp_bf16, amp_fp16, pure_bf16.

`amp_*` autocast the model's forward and keep fp32 weights; `pure_bf16` stores the weights (and so AdamW's
moments) in bfloat16 and feeds bfloat16 pixels, as open_clip_train does. Whatever the setting, the loss and
its per-sample state (DRRho's u tables) are computed in fp32 from features cast up, and fp16 gradients go
through a GradScaler whose state travels in the checkpoint. A disabled scaler is a pass-through, so the
training step calls it unconditionally (nanoGPT's pattern).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

import torch

from scaling.spec import Precision

AUTOCAST = {"amp_bf16": torch.bfloat16, "amp_fp16": torch.float16}


@dataclass(frozen=True)
class Numerics:
    """How a run's model computes on its device."""

    precision: Precision
    device: torch.device

    @property
    def weight_dtype(self) -> torch.dtype:
        return torch.bfloat16 if self.precision == "pure_bf16" else torch.float32

    def autocast(self) -> AbstractContextManager:
        """Around the forward only: the loss runs outside, in fp32."""
        dtype = AUTOCAST.get(self.precision)
        return nullcontext() if dtype is None else torch.autocast(self.device.type, dtype=dtype)

    def images(self, images: torch.Tensor) -> torch.Tensor:
        """Pixels on the device in the weights' dtype (copied asynchronously from pinned memory on CUDA)."""
        return images.to(self.device, dtype=self.weight_dtype, non_blocking=True)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """Dynamic loss scaling for fp16 (its range is too narrow for small gradients); a no-op otherwise."""
        return torch.amp.GradScaler(self.device.type, enabled=self.precision == "amp_fp16")
