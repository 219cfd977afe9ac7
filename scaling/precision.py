"""Numeric precision of a run, with open_clip_train's names: fp32, amp_bf16, amp_fp16, pure_bf16.

`amp_*` autocast the model's forward and keep fp32 weights; `pure_bf16` stores the weights (and so AdamW's
moments) in bfloat16 and feeds bfloat16 pixels, as open_clip_train does. Whatever the setting, the loss and
its per-sample state (DRRho's u tables) are computed in fp32 from features cast up, and fp16 gradients go
through a GradScaler whose state travels in the checkpoint. A disabled scaler is a pass-through, so the
training step calls it unconditionally (nanoGPT's pattern).
"""

from __future__ import annotations

from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

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
        """Around the forward only: the loss runs outside, in fp32. In bf16/fp16 on a CPU, attention takes
        PyTorch's math kernel: the CPU flash kernel is slower in bf16 than in fp32 (measured here, fwd + bwd of
        a w192-l6 attention, 1 thread: 406 ms bf16 flash, 172 ms fp32 flash, 166 ms bf16 math), which cost
        46 % of an amp_bf16 step. On CUDA, flash attention stays."""
        stack = ExitStack()
        if self.precision != "fp32" and self.device.type == "cpu":
            stack.enter_context(sdpa_kernel(SDPBackend.MATH))
        if (dtype := AUTOCAST.get(self.precision)) is not None:
            stack.enter_context(torch.autocast(self.device.type, dtype=dtype))
        return stack

    def images(self, images: torch.Tensor) -> torch.Tensor:
        """Pixels on the device in the weights' dtype (copied asynchronously from pinned memory on CUDA)."""
        return images.to(self.device, dtype=self.weight_dtype, non_blocking=True)

    def grad_scaler(self) -> torch.amp.GradScaler:
        """Dynamic loss scaling for fp16 (its range is too narrow for small gradients); a no-op otherwise."""
        return torch.amp.GradScaler(self.device.type, enabled=self.precision == "amp_fp16")
