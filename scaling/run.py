"""One RunSpec → one trained model and its record. Checkpointed so a killed run resumes to the same result.

Everything a step needs is a pure function of (spec, step): the batch indices come from a per-epoch
permutation seeded by (seed, epoch), the learning rate from the schedule, the samples from the data source,
and JEST's choice of the trained batch from its super-batch from a generator seeded by (seed, step, rank).
The checkpoint therefore only holds model, optimiser, loss state (DRRho's u tables), the step and the
evaluations so far, and resuming replays exactly what an uninterrupted run would have done.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import Tensor
from tqdm import tqdm

from scaling.curves import Curves
from scaling.data import Batch, build_source, eval_batch, zero_shot_tasks
from scaling.data.loader import loader_workers, start, step_loader
from scaling.datacomp import benchmark_errors
from scaling.distributed import World, average_gradients, barrier, init_world
from scaling.errors import ConfigError, error_line
from scaling.evaluate import evaluate, imagenet_errors
from scaling.io import write_atomic
from scaling.losses import build_loss
from scaling.methods import super_batch_size
from scaling.models import build_model, context_length, model_stats
from scaling.precision import Numerics
from scaling.records import CorruptRecord, Record, owner, read_record, run_dir
from scaling.schedule import FORK, branch_evals, eval_steps, fork_file, is_branch, is_trunk, learning_rate
from scaling.schedule import describe as wsd_description
from scaling.selection import score_and_select, selection_generator, target_flops
from scaling.spec import RunSpec

if TYPE_CHECKING:
    from scaling.reference import Reference

CHECKPOINT = "checkpoint.pt"
PREVIOUS = "checkpoint.prev.pt"  # the checkpoint before the last: a fallback if the last is corrupt
WEIGHTS = "model.pt"
MAX_LOGIT_SCALE = math.log(100)  # open_clip_train clamps 1/τ to at most 100


class Diverged(RuntimeError):
    """A non-finite loss, logit scale or evaluation: the run ends `failed`, never `done` with NaN metrics."""

    def __init__(self, step: int, steps: int, what: str, value: float):
        super().__init__(f"training diverged at step {step} of {steps}: {what} is {value} (lower optim.lr?)")


class CorruptCheckpoint(ValueError):
    """A checkpoint that does not load or whose contents differ from the digest saved inside it."""

    def __init__(self, path: Path, reason: str):
        self.path = path
        super().__init__(f"corrupt checkpoint {path}: {reason}")


def state_digest(state: object) -> str:
    """sha256 of a checkpoint's contents (tensors by dtype, shape and bytes; containers in order): saved inside
    the checkpoint and checked on load, since torch.load does not notice a flipped byte in tensor data."""
    digest = hashlib.sha256()

    def feed(obj: object) -> None:
        if isinstance(obj, dict):
            digest.update(b"{%d" % len(obj))
            for key in sorted(obj, key=str):
                feed(key)
                feed(obj[key])
        elif isinstance(obj, list | tuple):
            digest.update(b"[%d" % len(obj))
            for item in obj:
                feed(item)
        elif isinstance(obj, torch.Tensor):
            tensor = obj.detach().cpu().contiguous()
            digest.update(f"T{tensor.dtype}{tuple(tensor.shape)}".encode())
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy())
        else:
            digest.update(f"{type(obj).__name__}:{obj!r};".encode())

    feed(state)
    return digest.hexdigest()


def serialized(obj: object) -> bytes:
    """torch.save into memory: written to a file by write_atomic, a full disk raises ENOSPC naming the file
    (torch's zip writer reports it as 'unexpected pos')."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def load_checkpoint(path: Path, device: torch.device | str = "cpu") -> dict:
    """A checkpoint's contents, verified against their saved digest; CorruptCheckpoint names the file."""
    try:
        blob = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # torch raises RuntimeError, UnpicklingError, EOFError, ... for damaged files
        raise CorruptCheckpoint(path, " ".join(str(err).split())[:200]) from None
    if not isinstance(blob, dict) or "sha256" not in blob:
        raise CorruptCheckpoint(path, "no checksum inside")
    if blob.pop("sha256") != state_digest(blob):
        raise CorruptCheckpoint(path, "checksum mismatch")
    return blob


@dataclass
class State:
    """What changes during training besides the weights; saved in every checkpoint."""

    step: int = 0
    evals: list[dict] = field(default_factory=list)
    train_wall_s: float = 0.0
    data_wait_s: float = 0.0  # part of train_wall_s spent waiting for the loader
    trunk_wall_s: float = 0.0  # a WSD branch: the part of train_wall_s its trunk spent before the fork


def param_groups(model: torch.nn.Module, spec: RunSpec) -> list[dict]:
    """open_clip's groups: no weight decay on gains, biases and logit_scale; τ apart when it has its own lr."""
    own_tau_lr = spec.base_loss != "clip" and spec.loss.learn_tau
    decay, no_decay, tau = [], [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name == "logit_scale" and own_tau_lr:
            tau.append(p)
        elif p.ndim < 2 or "bn" in name or "ln" in name or "bias" in name or "logit_scale" in name:
            no_decay.append(p)
        else:
            decay.append(p)
    groups = [
        {"params": no_decay, "weight_decay": 0.0, "name": "no_decay"},
        {"params": decay, "weight_decay": spec.optim.weight_decay, "name": "decay"},
    ]
    if tau:
        groups.append({"params": tau, "weight_decay": 0.0, "name": "tau"})
    return groups


def make_optimizer(model: torch.nn.Module, spec: RunSpec) -> torch.optim.AdamW:
    o = spec.optim
    return torch.optim.AdamW(param_groups(model, spec), lr=o.lr, betas=(o.beta1, o.beta2), eps=o.eps)


def set_learning_rates(optimizer: torch.optim.Optimizer, spec: RunSpec, step: int, tau_factor: float) -> float:
    """The schedule for the weights; τ's own group (FastCLIP) keeps lr_tau (default lr/4) times its factor."""
    lr = learning_rate(spec, step)
    lr_tau = spec.loss.lr_tau if spec.loss.lr_tau is not None else spec.optim.lr / 4
    for group in optimizer.param_groups:
        group["lr"] = lr_tau * tau_factor if group["name"] == "tau" else lr
    return lr


def environment(world: World) -> dict:
    """Where a number came from: versions, commit, host, device, threads."""
    versions = {}
    for pkg in ("torch", "open_clip_torch", "numpy", "submitit"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    try:
        commit = (
            subprocess.run(
                ["git", "rev-parse", "HEAD"],
                cwd=Path(__file__).parent,
                capture_output=True,
                text=True,
                timeout=5,
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {
        "packages": versions,
        "git_commit": commit,
        "host": platform.node(),
        "device": str(world.device) if world.device.type == "cpu" else torch.cuda.get_device_name(world.device),
        "threads": torch.get_num_threads(),
        "world_size": world.world_size,
    }


class Run:
    """A run in progress: build everything from the spec, restore a checkpoint if present, train, record."""

    def __init__(
        self,
        spec: RunSpec,
        out: str | Path,
        *,
        checkpoint_every_s: float = 300.0,
        checkpoint_every_steps: int | None = None,
        progress: bool = True,
    ):
        self.spec, self.dir = spec, run_dir(Path(out), spec.run_id)
        self.checkpoint_every_s, self.checkpoint_every_steps = checkpoint_every_s, checkpoint_every_steps
        self.progress = progress
        self.world = init_world()
        if spec.batch_size % self.world.world_size:
            raise ConfigError(f"batch_size {spec.batch_size} is not divisible by {self.world.world_size} processes")
        self.local_batch = spec.batch_size // self.world.world_size  # trained examples per rank and step
        if spec.selection is not None:
            try:  # per rank: each rank selects from its own super-batch, chunks must divide its batch
                super_batch_size(self.local_batch, spec.selection)
            except ValueError as err:
                raise ConfigError(f"{err} (on {self.world.world_size} processes)") from None
        self.source = build_source(spec.data, context_length(spec.model))
        torch.manual_seed(spec.seed)
        self.device = self.world.device
        self.numerics = Numerics(spec.precision, self.device)
        self.model = build_model(spec.model, self.source.tokenizer.vocab_size)
        self.model.logit_scale.data.fill_(math.log(1 / spec.loss.tau))
        self.model.logit_scale.requires_grad_(bool(spec.loss.learn_tau))
        self.model.set_grad_checkpointing(spec.grad_checkpointing)
        self.model.to(self.device, dtype=self.numerics.weight_dtype)
        self.forward = torch.compile(self.model) if spec.compile else self.model  # same weights, fused graph
        self.scaler = self.numerics.grad_scaler()
        self.stats = model_stats(spec.model, self.source.tokenizer.vocab_size)
        self.loss = build_loss(
            spec.method,
            spec.loss,
            len(self.source),
            self.world.rank,
            self.world.world_size,
            selection=spec.selection,
            distill=spec.distill,
        )
        self.reference = None if spec.reference is None else self._load_reference(spec, Path(out), progress)
        self.optimizer = make_optimizer(self.model, spec)
        self.state = State()
        self.eval_data = eval_batch(spec.data, context_length(spec.model))
        self.tasks = zero_shot_tasks(spec.data)
        self.env = environment(self.world)
        self.between_steps = False
        self.weights_sha256: str | None = None  # of model.pt, once written: a reference checks it on load

    def _load_reference(self, spec: RunSpec, out: Path, progress: bool) -> Reference:
        """The main rank builds a missing embedding cache while the others wait, then they read it: one writer."""
        from scaling.reference import load_reference

        if not self.world.is_main:
            barrier(self.world)
        reference = load_reference(spec.reference, out, spec.data, progress and self.world.is_main, self.device)
        if self.world.is_main:
            barrier(self.world)
        return reference

    # -- persistence ---------------------------------------------------------------------------------
    def save_checkpoint(self, name: str = CHECKPOINT) -> None:
        """The run's state as `name` (the checkpoint; a WSD trunk also keeps one per fork step)."""
        if not self.world.is_main:
            return
        blob = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "loss": self.loss.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": torch.get_rng_state(),
            "state": self.state.__dict__,
        }
        blob["sha256"] = state_digest(blob)
        path = self.dir / name
        if path.exists() and name == CHECKPOINT:
            os.replace(path, self.dir / PREVIOUS)
        write_atomic(path, lambda f: f.write(serialized(blob)))

    def restore(self) -> bool:
        """Resume from the last checkpoint, or the one before it if the last is corrupt, else from scratch (a
        WSD branch: from its trunk's checkpoint at its fork step); a corrupt file is set aside as
        `<name>.corrupt` and the log says which state the run resumes from."""
        corrupt = False
        fork = fork_file(self.dir, self.spec) if is_branch(self.spec) else None
        for path in [self.dir / CHECKPOINT, self.dir / PREVIOUS] + ([fork] if fork else []):
            if not path.exists():
                continue
            try:
                blob = load_checkpoint(path, self.device)
            except CorruptCheckpoint as err:
                corrupt = True
                if self.world.is_main:
                    path.replace(path.with_name(path.name + ".corrupt"))
                    print(f"{err}; set aside as {path.name}.corrupt", file=sys.stderr, flush=True)
                continue
            self.model.load_state_dict(blob["model"])
            self.optimizer.load_state_dict(blob["optimizer"])
            self.loss.load_state_dict(blob["loss"])
            self.scaler.load_state_dict(blob.get("scaler", {}))
            torch.set_rng_state(blob["rng"].cpu())
            self.state = State(**blob["state"])
            if path == fork:
                self.state.evals = branch_evals(self.spec, self.state.evals)
                self.state.trunk_wall_s = self.state.train_wall_s
            if corrupt and self.world.is_main:
                print(f"resuming from {path} (step {self.state.step})", file=sys.stderr, flush=True)
            return True
        if fork is not None:  # training from scratch would not be this branch
            raise FileNotFoundError(f"WSD branch {self.spec.run_id}: no intact trunk checkpoint {fork} (run the trunk)")
        if corrupt and self.world.is_main:
            print("no intact checkpoint left: training restarts from step 0", file=sys.stderr, flush=True)
        return False

    def record(self, status: str, error: str | None = None) -> Record:
        spec, state = self.spec, self.state
        samples = state.step * spec.samples_per_step
        return Record(
            run_id=spec.run_id,
            spec=spec.model_dump(mode="json"),
            status=status,
            error=error,
            owner=owner() if status == "running" else None,
            weights=None if self.weights_sha256 is None else {"file": WEIGHTS, "sha256": self.weights_sha256},
            model={"name": spec.model, **{k: v for k, v in self.stats.__dict__.items() if k != "name"}},
            reference=None if self.reference is None else self.reference.info(),
            wsd=wsd_description(spec),
            evals=state.evals,
            env=self.env,
            throughput={
                "samples_per_s": samples / state.train_wall_s if state.train_wall_s else None,
                "train_wall_s": state.train_wall_s,
                "data_wait_s": state.data_wait_s,
                **({"trunk_wall_s": state.trunk_wall_s} if is_branch(spec) else {}),
            },
        )

    def write_record(self, status: str, error: str | None = None) -> None:
        if self.world.is_main:
            self.record(status, error).write(self.dir)

    # -- training --------------------------------------------------------------------------------------
    def compute_reference(self, loaded: int) -> float:
        """Reference forwards: one per pool sample for the cache, else one per loaded (JEST: scored) example."""
        if self.reference is None:
            return 0.0
        per_sample = self.reference.flops_fwd_per_sample
        return per_sample * (len(self.source) if self.reference.mode == "cache" else loaded)

    def evaluate(self) -> dict:
        spec, step = self.spec, self.state.step
        loaded, trained = step * spec.loaded_batch_size, step * spec.batch_size
        metrics = evaluate(self.model, self.eval_data, self.tasks, self.source.tokenizer, self.numerics)
        if self.spec.eval.imagenet:
            tokenizer, numerics = self.source.tokenizer, self.numerics
            metrics["zeroshot_error"].update(imagenet_errors(self.model, tokenizer, self.spec, numerics, self.world))
        stats = self.stats
        if self.spec.eval.clip_benchmark and self.state.step == self.spec.steps:  # the final model only
            suite, size, workers = self.spec.eval.clip_benchmark, self.spec.data.image_size, loader_workers(self.spec)
            metrics["benchmark_error"] = benchmark_errors(
                self.model, self.source.tokenizer, suite, size, self.numerics, self.world, workers
            )
        evaluation = {
            "step": step,
            "samples_seen": step * spec.samples_per_step,
            "samples_loaded": loaded,
            "samples_trained": trained,
            "epoch": loaded / len(self.source),
            "compute_target": target_flops(trained, loaded, stats.flops_train_per_sample, stats.flops_fwd_per_sample),
            "compute_reference": self.compute_reference(loaded),
            "wall_s": round(self.state.train_wall_s, 3),
            "logit_scale": self.model.logit_scale.exp().item(),
            **metrics,
        }
        if not math.isfinite(metrics["val_loss"]):
            raise Diverged(self.state.step, self.spec.steps, "the validation loss", metrics["val_loss"])
        return evaluation

    def select(self, step: int, batch: Batch, reference: tuple[Tensor, Tensor]) -> tuple[Batch, tuple[Tensor, Tensor]]:
        """JEST: score this rank's super-batch with the learner (no gradient) and keep the rows it selects,
        with their pool indices and reference embeddings; the draw is a pure function of (seed, step, rank)."""
        generator = selection_generator(self.spec.seed, step, self.world.rank)
        with self.numerics.autocast():
            rows = score_and_select(
                self.forward,
                self.numerics.images(batch.images),
                batch.tokens.to(self.device),
                reference,
                self.spec.selection,
                self.local_batch,
                generator,
                self.world.world_size,
            )
        return batch.rows(rows.cpu()), (reference[0][rows], reference[1][rows])

    def train_step(self, step: int, batch: Batch) -> float:
        spec, model = self.spec, self.model
        tau = (1 / model.logit_scale.detach().float().exp()).item()
        set_learning_rates(self.optimizer, spec, step, self.loss.tau_lr_factor(tau))
        reference = None if self.reference is None else self.reference.features(batch)  # serves JEST, DRRho, KD
        if spec.selection is not None:
            batch, reference = self.select(step, batch, reference)
        with self.numerics.autocast():
            out = self.forward(self.numerics.images(batch.images), batch.tokens.to(self.device, non_blocking=True))
        ref_img, ref_txt = reference if self.loss.needs_reference else (None, None)
        epoch = step * spec.loaded_batch_size // len(self.source)
        loss = self.loss(  # in fp32, whatever the forward's precision
            out["image_features"].float(),
            out["text_features"].float(),
            out["logit_scale"].float(),
            batch.index,
            epoch,
            ref_image_features=ref_img,
            ref_text_features=ref_txt,
        )
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        average_gradients(model, self.world)
        self.scaler.unscale_(self.optimizer)
        if spec.optim.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), spec.optim.grad_clip)
        self.scaler.step(self.optimizer)  # skipped when fp16 gradients overflowed
        self.scaler.update()
        with torch.no_grad():
            model.logit_scale.clamp_(0, MAX_LOGIT_SCALE)
        for what, value in (("the training loss", loss.item()), ("the logit scale", model.logit_scale.item())):
            if not math.isfinite(value):
                raise Diverged(step + 1, spec.steps, what, value)
        return loss.item()

    def train(self) -> Record:
        """Train to the end (resuming if a checkpoint exists) and return the final record."""
        try:
            existing = read_record(self.dir)
        except CorruptRecord as err:  # rewritten below: the run is redone (resuming from its checkpoint)
            print(f"{err}; running again", file=sys.stderr, flush=True)
            existing = None
        if existing is not None and existing.done:
            return existing
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.world.is_main:  # a kill between write and rename leaves a temp file; only the writer may sweep them
            for stale in self.dir.glob(".*.tmp"):
                stale.unlink(missing_ok=True)
        barrier(self.world)
        self.restore()
        try:
            self._loop()
        except KeyboardInterrupt as err:  # Ctrl-C, or SIGTERM in scaling.train and local sweeps
            why = f"interrupted ({err or 'SIGINT'}) at step {self.state.step} of {self.spec.steps}"
            self.write_record("failed", error=f"{why}; starting it again resumes from its last checkpoint")
            raise
        except Exception as err:
            self.write_record("failed", error=error_line(err))
            raise
        if self.world.is_main:
            weights = serialized(self.model.state_dict())
            write_atomic(self.dir / WEIGHTS, lambda f: f.write(weights))
            self.weights_sha256 = hashlib.sha256(weights).hexdigest()
        self.write_record("done")
        if self.world.is_main:
            for name in (CHECKPOINT, PREVIOUS):
                (self.dir / name).unlink(missing_ok=True)
        barrier(self.world)
        return self.record("done")

    def _loop(self) -> None:
        spec, state = self.spec, self.state
        todo = [s for s in eval_steps(spec) if s > state.step]
        bar = tqdm(
            total=spec.steps,
            initial=state.step,
            unit="step",
            desc=spec.run_id,
            mininterval=1.0,
            disable=not (self.progress and self.world.is_main),
            dynamic_ncols=True,
        )
        last_save, last_save_step = time.monotonic(), state.step
        self.write_record("running")
        batches = start(step_loader(self.source, spec, self.world, start=state.step))
        curves = Curves(spec, self.dir, self.world.is_main)
        while state.step < spec.steps:
            self.keep_fork()
            self.between_steps = False
            tick = time.perf_counter()
            batch = next(batches)
            data_s = time.perf_counter() - tick
            loss = self.train_step(state.step, batch)
            state.step += 1
            step_s = time.perf_counter() - tick
            state.data_wait_s += data_s
            state.train_wall_s += step_s
            lr, scale = self.optimizer.param_groups[0]["lr"], self.model.logit_scale.exp().item()
            curves.train(
                state.step,
                loss=loss,
                lr=lr,
                scale=scale,
                batch_time=step_s,
                data_time=data_s,
                samples_per_second=spec.samples_per_step / step_s,
            )
            bar.update(1)
            bar.set_postfix(
                loss=f"{loss:.3f}",
                samples_s=f"{state.step * spec.samples_per_step / state.train_wall_s:.0f}",
                refresh=False,
            )
            if todo and state.step == todo[0]:
                todo.pop(0)
                state.evals.append(self.evaluate())
                curves.evaluation(state.evals[-1])
                self.save_checkpoint()
                self.write_record("running")
                last_save, last_save_step = time.monotonic(), state.step
            elif self._checkpoint_due(last_save, state.step - last_save_step):
                self.save_checkpoint()
                last_save, last_save_step = time.monotonic(), state.step
            self.between_steps = True
        self.keep_fork()
        curves.close()
        bar.close()

    def keep_fork(self) -> None:
        """A WSD trunk at a fork step (its evaluation done) keeps its state for the branch that starts here; on
        every arrival, resumes included, so a kill between the fork and the next checkpoint loses nothing."""
        if is_trunk(self.spec) and self.state.step in self.spec.wsd.forks:
            self.save_checkpoint(FORK.format(step=self.state.step))

    def checkpoint_now(self) -> bool:
        """For preemption signal handlers: save only if no step is half done (else the last save stands)."""
        if self.between_steps:
            self.save_checkpoint()
        return self.between_steps

    def _checkpoint_due(self, last_save: float, steps_since: int) -> bool:
        if self.checkpoint_every_steps and steps_since >= self.checkpoint_every_steps:
            return True
        return time.monotonic() - last_save >= self.checkpoint_every_s


def run(spec: RunSpec, out: str | Path, **options) -> Record:
    """Train one spec under `out/runs/<run_id>/` (resuming if interrupted) and return its record."""
    return Run(spec, out, **options).train()
