"""Live training curves in TensorBoard, with open_clip_train's scalar names, written by the main rank.

Off by default (`logging.tensorboard`); event files go to `<run dir>/tensorboard/`, so
`tensorboard --logdir <out>/runs` shows every run of a sweep side by side. A resumed run appends to them
(the steps between its last checkpoint and the kill appear twice, as in open_clip_train).
"""

from __future__ import annotations

from pathlib import Path

from scaling.errors import ConfigError
from scaling.spec import LoggingSpec


class Curves:
    """Scalars of training steps and evaluation points; every method is a no-op when logging is off."""

    def __init__(self, spec: LoggingSpec, directory: Path, main: bool) -> None:
        self.every, self.writer = spec.every, None
        if spec.tensorboard and main:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise ConfigError(
                    "logging.tensorboard: the tensorboard package is missing; pip install 'clip-scaling[tensorboard]'"
                ) from None
            self.writer = SummaryWriter(str(directory / "tensorboard"))

    def train(self, step: int, **scalars: float) -> None:
        """`train/<name>` at `step` (every `logging.every` steps): loss, lr, scale, samples_per_second, ..."""
        if self.writer is not None and step % self.every == 0:
            for name, value in scalars.items():
                self.writer.add_scalar(f"train/{name}", value, step)

    def evaluation(self, point: dict) -> None:
        """`val/<metric>` of one evaluation point, nested metrics flattened (val/zeroshot_error/imagenet)."""
        if self.writer is None:
            return
        for name, value in point.items():
            for sub, number in value.items() if isinstance(value, dict) else [(None, value)]:
                tag = f"val/{name}" if sub is None else f"val/{name}/{sub}"
                if isinstance(number, int | float) and name != "step":
                    self.writer.add_scalar(tag, number, point["step"])
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
