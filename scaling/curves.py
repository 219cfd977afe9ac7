"""Live training curves in TensorBoard and/or wandb (offline), with open_clip_train's scalar names, written by the
main rank.

Off by default (`logging.tensorboard`, `logging.wandb`). TensorBoard event files go to `<run dir>/tensorboard/`,
so `tensorboard --logdir <out>/runs` shows every run of a sweep side by side. wandb runs only offline (compute
nodes often have no network, and a job must never wait for a login): `<run dir>/wandb/offline-run-*`, uploaded
later from a login node with `wandb sync`. Its run id is the spec's, so a resumed run appends to the same wandb
run. In both, the steps between a resumed run's last checkpoint and the kill appear twice, as in open_clip_train.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from scaling.errors import ConfigError
from scaling.spec import RunSpec

WANDB_PROJECT = "clip-scaling"  # where `wandb sync` puts the runs unless given `-p <project>`


class Curves:
    """Scalars of training steps and evaluation points; every method is a no-op when logging is off."""

    def __init__(self, spec: RunSpec, directory: Path, main: bool) -> None:
        self.every = spec.logging.every
        self.writer = tensorboard_writer(directory) if spec.logging.tensorboard and main else None
        self.wandb = wandb_run(spec, directory) if spec.logging.wandb and main else None

    def train(self, step: int, **scalars: float) -> None:
        """`train/<name>` at `step` (every `logging.every` steps): loss, lr, scale, samples_per_second, ..."""
        if step % self.every == 0:
            self._log({f"train/{name}": value for name, value in scalars.items()}, step)

    def evaluation(self, point: dict) -> None:
        """`val/<metric>` of one evaluation point, nested metrics flattened (val/zeroshot_error/imagenet)."""
        scalars = {}
        for name, value in point.items():
            for sub, number in value.items() if isinstance(value, dict) else [(None, value)]:
                tag = f"val/{name}" if sub is None else f"val/{name}/{sub}"
                if isinstance(number, int | float) and name != "step":
                    scalars[tag] = number
        self._log(scalars, point["step"])
        if self.writer is not None:
            self.writer.flush()

    def _log(self, scalars: dict[str, float], step: int) -> None:
        if self.writer is not None:
            for tag, value in scalars.items():
                self.writer.add_scalar(tag, value, step)
        if self.wandb is not None:
            self.wandb.log(scalars, step=step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.wandb is not None:
            self.wandb.finish()


def tensorboard_writer(directory: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError(
            "logging.tensorboard: the tensorboard package is missing; pip install 'clip-scaling[tensorboard]'"
        ) from None
    return SummaryWriter(str(directory / "tensorboard"))


def wandb_run(spec: RunSpec, directory: Path) -> Any:
    """An offline wandb run named and identified by the run id, the spec as its config. `console="off"` leaves
    the job's stdout/stderr to tqdm and the scheduler's logs."""
    try:
        import wandb
    except ImportError:
        raise ConfigError("logging.wandb: the wandb package is missing; pip install 'clip-scaling[wandb]'") from None
    return wandb.init(
        mode="offline",
        dir=str(directory),
        project=WANDB_PROJECT,
        id=spec.run_id,
        name=spec.run_id,
        config=spec.model_dump(mode="json"),
        resume="allow",
        settings=wandb.Settings(console="off", silent=True),
    )
