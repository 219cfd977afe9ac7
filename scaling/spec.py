"""RunSpec: everything that determines a run's result, frozen, validated and hashed to a stable run id.

Two specs that train the same thing must hash the same, so method defaults are resolved into concrete values
at validation time, and nothing that does not change the result (paths of outputs, threads, progress bars,
how often to checkpoint) lives here. Exceptions the grid must be able to set per run, never hashed: the
loader's `data.workers` and `data.prefetch_factor` (bitwise-neutral), `grad_checkpointing` (it recomputes
the same activations) and `logging` (live curves). Fields added after results were recorded (`precision`,
`compile`, `eval.imagenet`, `eval.clip_benchmark`) are hashed only away from their defaults, so the ids of
earlier runs stand.
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from scaling.datacomp import TASKS, check_tasks
from scaling.errors import ConfigError
from scaling.methods import METHODS, DistillSpec, SelectionSpec, method, resolve_selection, super_batch_size

Method = Literal[tuple(METHODS)]  # the baselines table's eight keys (scaling.methods)
Precision = Literal["fp32", "amp_bf16", "amp_fp16", "pure_bf16"]  # open_clip_train's --precision names

# Not part of a run's identity: how fast, never what (see the module docstring).
UNHASHED = {"grad_checkpointing": True, "logging": True, "data": {"workers", "prefetch_factor"}}
HASHED_AWAY_FROM_DEFAULT = (
    ("precision",),
    ("compile",),
    ("eval", "imagenet"),
    ("eval", "clip_benchmark"),
    ("optim", "warmup_steps"),
    ("wsd",),
)

# Loss defaults from the DRRho-CLIP spec §2g (official recipe) and open_clip's ClipLoss, by the loss a method
# trains with (a "w/ Distill." method takes its base loss's; JEST its selection.base_loss's).
METHOD_DEFAULTS: dict[str, dict[str, Any]] = {
    "clip": {"tau": 0.07, "learn_tau": True, "eps": 0.0},
    "fastclip": {"tau": 0.07, "learn_tau": True, "eps": 1e-14},
    "drrho": {"tau": 0.01, "learn_tau": False, "eps": 1e-4},
}


class Frozen(BaseModel):
    """Immutable, strict about unknown keys (a typo in a spec is an error, not a silent default) and about
    numbers: inf and nan are refused (optim.lr=.inf used to train to a NaN record)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


SYNTHETIC_POOL = 20_000


class DataSpec(Frozen):
    """Which samples a run sees. Sample i of a pool is a pure function of (seed, i)."""

    source: Literal["synthetic", "webdataset", "csv"] = "synthetic"
    pool_size: int | None = Field(None, gt=0, description="unique samples (the data axis); real data: None = all")
    seed: int = Field(0, ge=0, lt=2**63, description="dataset identity; a reference trains on another seed")
    caption_noise: float = Field(0.0, ge=0.0, lt=1.0, description="fraction of pairs with wrong captions")
    max_objects: int = Field(1, ge=1, le=3)
    image_size: int = Field(32, ge=8)
    path: str | None = Field(None, description="webdataset shards (brace pattern) or CSV file")
    eval_path: str | None = Field(None, description="held-out shards/CSV for real data")
    eval_size: int = Field(2000, gt=0)
    workers: int | None = Field(
        None,
        ge=0,
        description="loader processes per rank (None: the run's torch threads - 1, or cpus_per_task - 1 on SLURM)",
    )
    prefetch_factor: int = Field(2, ge=1, description="batches each worker prepares ahead")

    @model_validator(mode="before")
    @classmethod
    def _synthetic_pool_default(cls, values: Any) -> Any:
        synthetic = isinstance(values, dict) and values.get("source", "synthetic") == "synthetic"
        if synthetic and values.get("pool_size") is None:
            values = {**values, "pool_size": SYNTHETIC_POOL}
        return values

    @model_validator(mode="after")
    def _real_data_has_a_path(self) -> DataSpec:
        if self.source != "synthetic" and not self.path:
            raise ValueError(f"data.path is required for source {self.source!r}")
        if self.source != "synthetic" and self.caption_noise:
            raise ValueError(f"data.caption_noise: only synthetic data can be corrupted (source is {self.source})")
        return self


class OptimSpec(Frozen):
    """AdamW with open_clip's no-decay groups and a schedule whose warm-up scales with run length."""

    lr: float = Field(2e-3, gt=0)
    weight_decay: float = Field(0.1, ge=0)
    beta1: float = Field(0.9, ge=0, lt=1)
    beta2: float = Field(0.98, ge=0, lt=1)
    eps: float = Field(1e-6, gt=0)
    schedule: Literal["cosine", "const-cooldown"] = "cosine"
    warmup: float = Field(0.05, ge=0, lt=1, description="fraction of steps")
    warmup_steps: int | None = Field(None, ge=1, description="absolute warm-up steps instead of `warmup` (WSD)")
    cooldown: float = Field(0.2, ge=0, le=1, description="fraction of steps (const-cooldown)")
    grad_clip: float | None = Field(None, gt=0)


class LossSpec(Frozen):
    """Loss hyperparameters; None means the method's default (resolved by RunSpec)."""

    tau: float | None = Field(None, gt=0, description="initial (or fixed) temperature")
    learn_tau: bool | None = None
    lr_tau: float | None = Field(None, ge=0, description="FastCLIP: τ's own lr (default lr/4)")
    tau_threshold: float = Field(0.03, gt=0, description="FastCLIP: lr_tau /= 3 once τ <= this")
    eps: float | None = Field(None, ge=0)
    rho: float = Field(11.0, ge=0)
    gamma: float = Field(1.0, gt=0, le=1, description="final γ of the moving-average estimator")
    gamma_decay_epochs: float = Field(1.0, gt=0)


class ReferenceSpec(Frozen):
    """Where a steering reference comes from: a run of this toolkit, a checkpoint, or open_clip weights."""

    run: RunSpec | None = None
    checkpoint: str | None = None
    pretrained: str | None = Field(None, description="open_clip tag (with model) or hf-hub:org/name")
    model: str | None = None
    mode: Literal["cache", "online"] = "cache"

    @model_validator(mode="after")
    def _exactly_one_source(self) -> ReferenceSpec:
        given = [k for k in ("run", "checkpoint", "pretrained") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of reference.run, .checkpoint, .pretrained (got {given or 'none'})")
        if self.pretrained and not self.model and not self.pretrained.startswith("hf-hub:"):
            raise ValueError("reference.model is required with reference.pretrained")
        return self


class WsdSpec(Frozen):
    """A run's place in a warmup-stable-decay family (scaling.schedule): the trunk trains at constant lr and
    keeps its checkpoint at every `forks` step, evaluating at `evals` (its branches' evaluations before their
    forks); a branch starts from its `trunk`'s checkpoint at its fork step and cools down to its own end."""

    trunk: RunSpec | None = Field(None, description="a branch's trunk")
    forks: tuple[int, ...] = Field((), description="a trunk's fork steps")
    evals: tuple[int, ...] = Field((), description="a trunk's evaluation steps")

    @model_validator(mode="after")
    def _trunk_or_branch(self) -> WsdSpec:
        if (self.trunk is None) == (not self.forks):
            raise ValueError("wsd: give a branch its trunk, or a trunk its forks (not both)")
        return self


class BenchmarkSpec(Frozen):
    """DataComp's task suite through clip_benchmark (scaling.datacomp), on the final model."""

    root: str = Field(description="directory of wds_<task>_test/ folders, as DataComp's download_evalsets.py writes")
    tasks: tuple[str, ...] = Field(TASKS, min_length=1, description="DataComp task names; default: the 33 scored")

    @model_validator(mode="after")
    def _known_tasks(self) -> BenchmarkSpec:
        check_tasks(self.tasks)
        return self


class EvalSpec(Frozen):
    """Log-spaced evaluation points in samples seen, the last at the end of training."""

    points: int = Field(6, ge=1, le=64)
    first: float = Field(0.05, gt=0, le=1, description="first point as a fraction of samples_seen")
    imagenet: str | None = Field(None, description="ImageFolder of the ImageNet-1k val set: zero-shot error")
    clip_benchmark: BenchmarkSpec | None = Field(None, description="DataComp's suite at the end (benchmark_error)")


class LoggingSpec(Frozen):
    """Live curves beside the record (open_clip_train's scalar names); off by default."""

    tensorboard: bool = Field(False, description="event files in <run dir>/tensorboard (needs the tensorboard extra)")
    wandb: bool = Field(False, description="an offline wandb run in <run dir>/wandb (needs the wandb extra)")
    every: int = Field(10, ge=1, description="training scalars every N steps")


class RunSpec(Frozen):
    """One training run. `run_id` is a short hash of its canonical JSON."""

    method: Method = "clip"
    model: str = "w64-l2"
    data: DataSpec = DataSpec()
    samples_seen: int = Field(100_000, gt=0)
    batch_size: int = Field(256, gt=1)
    optim: OptimSpec = OptimSpec()
    loss: LossSpec = LossSpec()
    eval: EvalSpec = EvalSpec()
    seed: int = Field(0, ge=0, lt=2**63)
    reference: ReferenceSpec | None = None
    selection: SelectionSpec | None = Field(None, description="JEST options (jest, jest_topk; defaulted there)")
    distill: DistillSpec | None = Field(None, description="KD options (the *_distill methods; defaulted there)")
    precision: Precision = Field("fp32", description="autocast (amp_*) or bf16 weights; losses stay fp32")
    grad_checkpointing: bool = Field(False, description="recompute activations in backward (open_clip's)")
    compile: bool = Field(False, description="torch.compile the model's forward")
    logging: LoggingSpec = LoggingSpec()
    wsd: WsdSpec | None = Field(None, description="a WSD trunk or cooldown branch (set by the grid's schedule)")

    @model_validator(mode="before")
    @classmethod
    def _resolve_method_defaults(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        values = dict(values)
        info = METHODS.get(values.get("method", "clip"))
        if info is not None and info.selects:
            values["selection"] = _with_rule(values.get("selection"), info.rules[0])
        if info is not None and info.distills and values.get("distill") is None:
            values["distill"] = {}
        loss = values.get("loss") or {}
        if isinstance(loss, LossSpec):
            loss = loss.model_dump()
        defaults = METHOD_DEFAULTS.get(_loss_name(values), {})
        values["loss"] = {**loss, **{k: v for k, v in defaults.items() if loss.get(k) is None}}
        return values

    @model_validator(mode="after")
    def _consistent(self) -> RunSpec:
        from scaling.models import available_models

        if self.model not in available_models():
            raise ValueError(f"model: unknown model {self.model!r}; choose one of {', '.join(available_models())}")
        for name in ("imagenet", "clip_benchmark"):
            if getattr(self.eval, name) and self.data.source == "synthetic":
                raise ValueError(f"eval.{name}: real class names need real data's BPE tokenizer (data.source)")
        if method(self.method).needs_reference != (self.reference is not None):
            raise ValueError(f"reference: {_reference_rule(self.method)}")
        if self.selection is not None:
            resolve_selection(self.method, self.selection)  # a rule of this method, else "selection.rule: ..."
            super_batch_size(self.batch_size, self.selection)  # whole super-batch, chunks divide the batch
        if self.distill is not None and not method(self.method).distills:
            distilling = ", ".join(k for k, m in METHODS.items() if m.distills)
            raise ValueError(f"distill: method {self.method} does not distill; use one of {distilling}")
        if self.data.pool_size is not None and self.loaded_batch_size > self.data.pool_size:
            loaded = "" if self.selection is None else f" (a super-batch of {self.loaded_batch_size})"
            pool = self.data.pool_size
            raise ValueError(f"batch_size {self.batch_size}{loaded} is larger than data.pool_size {pool}")
        if self.samples_seen < self.samples_per_step:
            raise ValueError(f"samples_seen {self.samples_seen} is smaller than one step ({self.samples_per_step})")
        if self.wsd is not None and self.wsd.trunk is not None:
            from scaling.schedule import branch_problem

            if problem := branch_problem(self):
                raise ValueError(problem)
        return self

    @property
    def base_loss(self) -> str:
        """The contrastive loss the learner trains with: the method's, or JEST's selection.base_loss."""
        return method(self.method).loss or self.selection.base_loss

    @property
    def loaded_batch_size(self) -> int:
        """Examples loaded per step (global): batch_size, or JEST's super-batch batch_size / (1 − f)."""
        return self.batch_size if self.selection is None else super_batch_size(self.batch_size, self.selection)

    @property
    def samples_per_step(self) -> int:
        """What one step adds to samples_seen: trained examples, or loaded ones for JEST's default convention."""
        counts_loaded = self.selection is not None and self.selection.samples_seen_counts == "loaded"
        return self.loaded_batch_size if counts_loaded else self.batch_size

    @property
    def steps(self) -> int:
        return self.samples_seen // self.samples_per_step

    def canonical_json(self) -> str:
        return json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))

    def identity(self) -> dict:
        """The fields that make the result, as JSON: loader settings and defaults of later fields left out."""
        out = self.model_dump(mode="json", exclude=UNHASHED)
        for *parents, name in HASHED_AWAY_FROM_DEFAULT:
            node, model = out, RunSpec
            for part in parents:
                node, model = node[part], model.model_fields[part].annotation
            if node[name] == model.model_fields[name].default:
                del node[name]
        if self.reference is not None and self.reference.run is not None:
            out["reference"]["run"] = self.reference.run.identity()
        for name in ("selection", "distill"):  # added with the baselines: absent, earlier ids stand
            if out[name] is None:
                del out[name]
        if self.wsd is not None and self.wsd.trunk is not None:
            out["wsd"]["trunk"] = self.wsd.trunk.identity()
        return out

    @cached_property
    def run_id(self) -> str:
        """Stable across machines and sessions: same spec, same id, same run directory."""
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:12]

    def describe(self) -> str:
        ref = "" if self.reference is None else " (steered)"
        return f"{self.method}{ref} {self.model} pool={self.data.pool_size} seen={self.samples_seen} seed={self.seed}"


def _loss_name(values: dict) -> str | None:
    """The loss a raw spec mapping's method trains with (for its defaults); None for an unknown method."""
    info = METHODS.get(values.get("method", "clip"))
    if info is None or info.loss is not None:
        return None if info is None else info.loss
    selection = values.get("selection") or {}
    if isinstance(selection, SelectionSpec):
        return selection.base_loss
    return selection.get("base_loss", "clip") if isinstance(selection, dict) else None


def _with_rule(selection: Any, rule: str) -> Any:
    """A selecting method's raw selection options, the method's default later-chunk rule filled in if absent."""
    if selection is None:
        return {"rule": rule}
    if isinstance(selection, SelectionSpec):
        return selection if selection.rule else selection.model_copy(update={"rule": rule})
    if isinstance(selection, dict) and selection.get("rule") is None:
        return {**selection, "rule": rule}
    return selection


def _reference_rule(key: str) -> str:
    """Why a method's spec must have a reference, or must not."""
    if method(key).needs_reference:
        return f"method {key} needs a reference (reference.run, .checkpoint or .pretrained)"
    steering = ", ".join(k for k, m in METHODS.items() if m.needs_reference)
    return f"method {key} takes no reference; the methods that read one are {steering}"


def load_spec(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> RunSpec:
    """Read a run YAML (safe_load) and apply `a.b=value` overrides; bad input raises one ConfigError naming every
    problem, each by field and file:line (or by the override that set it)."""
    import pydantic

    from scaling.errors import each_error, pydantic_message
    from scaling.yamlfile import duplicate_messages, read_yaml

    path = Path(path)
    document = read_yaml(path)
    raw = {} if document.data is None else document.data
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}:1: expected a mapping of spec fields at the top level")
    problems = duplicate_messages(document, str(path))
    given = {}
    for item in overrides:
        apply_override(raw, item)
        given[item.partition("=")[0]] = item
    try:
        spec = RunSpec.model_validate(raw)
    except pydantic.ValidationError as err:
        for loc, error in each_error(err):
            message = pydantic_message(error)
            field = ".".join(map(str, loc))
            if not loc:  # a whole-spec check: its message starts with the field it is about
                loc = tuple(re.match(r"[a-z_.]*", message).group(0).split("."))
            named = ".".join(map(str, loc))
            item = next((i for key, i in given.items() if named == key or named.startswith(key + ".")), None)
            line = next((document.lines[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in document.lines), 1)
            where = f"override {item}" if item else f"{path}:{line}"
            problems.append((0 if item else line, f"{where}: {field + ': ' if field else ''}{message}"))
    if problems:
        raise ConfigError(*(message for _, message in sorted(problems, key=lambda p: p[0])))
    return spec


def apply_override(raw: dict, item: str) -> None:
    """Set a dotted key from 'a.b=value'; the value is parsed as YAML so numbers and booleans keep their type."""
    from scaling.yamlfile import override_value

    (*parents, leaf), value = override_value(item)
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {item}: {part} is not a mapping")
    node[leaf] = value


def parse_spec(raw: dict, source: str = "spec") -> RunSpec:
    """Validate a mapping into a RunSpec; the first problem becomes a one-line ConfigError."""
    import pydantic

    from scaling.errors import describe_validation_error

    try:
        return RunSpec.model_validate(raw)
    except pydantic.ValidationError as err:
        raise ConfigError(describe_validation_error(err, prefix=f"{source}: ")) from None


ReferenceSpec.model_rebuild()
WsdSpec.model_rebuild()
RunSpec.model_rebuild()
