"""grid.yaml → a validated sweep definition → RunSpecs with stable ids.

The YAML is read with safe_load semantics, but the composed nodes are kept so that every key path has a line
number: an unknown key, a wrong type or an impossible combination becomes ONE ConfigError naming the key path
and file:line, before anything is written or submitted.

Each run is the merge of layers, later ones winning: `base` < `evaluation` < `models.<model>` <
`methods.<method>` < the grid point (`axes` × `zip`). Layers are kept flat (spec path → value, grid path), so a
RunSpec validation error maps straight back to the grid key that set the offending value. A DRRho run's
in-sweep reference is its own RunSpec (`methods.drrho.reference.train` merged on `base`), embedded in the
run's ReferenceSpec, so a steered run's id changes whenever its reference would.
"""

from __future__ import annotations

import difflib
import itertools
import re
import types
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from scaling.errors import ConfigError, pydantic_message
from scaling.spec import LossSpec, Method, ReferenceSpec, RunSpec, apply_override

GridPath = tuple[str | int, ...]
SpecPath = tuple[str, ...]
Layer = dict[SpecPath, tuple[Any, GridPath]]  # spec path -> (value, the grid key it came from)
# Default per-run throughputs for the plan's time estimate. CPU: sweeps/demo.yaml on 2 cores, one thread per run,
# did 4.89e13 FLOPs in 2 × 739 s of run slots = 33 GFLOP/s including evaluation and start-up (2026-11-28).
CPU_GFLOPS, GPU_GFLOPS = 33.0, 50_000.0


# -- YAML with line numbers ------------------------------------------------------------------------------------


class LineLoader(yaml.SafeLoader):
    """A SafeLoader that also records the line of every mapping key and sequence item by key path."""

    def construct_document(self, node: yaml.Node) -> Any:
        self.lines: dict[GridPath, int] = {}
        self._mark(node, ())
        return super().construct_document(node)

    def _mark(self, node: yaml.Node, path: GridPath) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                sub = (*path, str(key.value))
                self.lines.setdefault(sub, key.start_mark.line + 1)
                self._mark(value, sub)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self.lines[(*path, i)] = item.start_mark.line + 1
                self._mark(item, (*path, i))


def read_yaml(path: Path) -> tuple[dict, dict[GridPath, int]]:
    """The grid file as a mapping, with the line of every key path (1-based)."""
    try:
        loader = LineLoader(path.read_text())
    except OSError as err:
        raise ConfigError(f"{path}: cannot read ({err.strerror})") from None
    try:
        raw = loader.get_single_data()
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ConfigError(f"{at}: not valid YAML ({getattr(err, 'problem', None) or err})") from None
    finally:
        loader.dispose()
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}:1: expected a mapping (name, out, base, axes, ...) at the top level")
    return raw, getattr(loader, "lines", {})


@dataclass
class Source:
    """Where grid keys came from: the file's lines, and the keys set by command-line overrides."""

    path: Path
    lines: dict[GridPath, int] = field(default_factory=dict)
    overrides: dict[str, str] = field(default_factory=dict)  # dotted key -> the key=value given

    def error(self, path: GridPath, message: str) -> ConfigError:
        return ConfigError(f"{self.where(path)}: {dotted(path) or '(top level)'}: {message}")

    def where(self, path: GridPath) -> str:
        name = dotted(path)
        for key, item in self.overrides.items():
            if name == key or name.startswith((f"{key}.", f"{key}[")):
                return f"{self.path} (override {item})"
        for n in range(len(path), 0, -1):
            if path[:n] in self.lines:
                return f"{self.path}:{self.lines[path[:n]]}"
        return f"{self.path}:1"


def dotted(path: GridPath) -> str:
    """('axes', 'method', 1) -> 'axes.method[1]'."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# -- schema -----------------------------------------------------------------------------------------------------


class Strict(BaseModel):
    """Unknown keys are errors (with a did-you-mean), never silently ignored."""

    model_config = ConfigDict(extra="forbid")


class Pretrained(Strict):
    """open_clip weights already on disk: `model` + `tag` (e.g. ViT-B-32 + openai), or tag `hf-hub:org/name`."""

    model: str | None = None
    tag: str


class ReferenceBlock(Strict):
    """A DRRho reference: trained in the sweep, a checkpoint (state dict + model, or a run dir), or pretrained."""

    train: dict[str, Any] | None = Field(None, description="RunSpec fields merged on base")
    checkpoint: str | None = None
    model: str | None = Field(None, description="architecture of a state-dict checkpoint or a pretrained tag")
    pretrained: Pretrained | str | None = Field(None, description="{model, tag}, or a tag with `model` beside it")
    mode: Literal["cache", "online"] = "cache"

    @model_validator(mode="after")
    def _one_source(self) -> ReferenceBlock:
        given = [k for k in ("train", "checkpoint", "pretrained") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of train, checkpoint, pretrained (got {', '.join(given) or 'none'})")
        return self


class MethodBlock(Strict):
    """What runs of one method share: their reference (drrho) and loss settings."""

    reference: ReferenceBlock | None = None
    loss: dict[str, Any] = {}


class Evaluation(Strict):
    """Evaluation settings of every run, the reference included (eval.points, .first, .imagenet, data.eval_size)."""

    points: int | None = Field(None, ge=1, le=64)
    first: float | None = Field(None, gt=0, le=1)
    size: int | None = Field(None, gt=0)
    imagenet: str | None = Field(None, description="ImageFolder of ImageNet-1k val: zero-shot error per point")


class Logging(Strict):
    """Live curves of every run (logging.tensorboard, logging.every of each RunSpec)."""

    tensorboard: bool | None = None
    every: int | None = Field(None, ge=1)


class Resources(Strict):
    """What one run asks of a scheduler; None = the executor-wide value (or its default)."""

    partition: str | None = None
    cpus_per_task: int | None = Field(None, ge=1)
    gpus_per_task: int | None = Field(None, ge=0, description="GPUs per node of a run, one process each")
    nodes: int | None = Field(None, ge=1, description="nodes per run (SLURM)")
    mem_gb: float | None = Field(None, gt=0)
    timeout_min: int | None = Field(None, ge=1)
    array_parallelism: int | None = Field(None, ge=1)
    throughput_gflops: float | None = Field(None, gt=0, description="per run, for the plan's time estimate")


RESOURCE_DEFAULTS = {
    "cpus_per_task": 1,
    "gpus_per_task": 0,
    "nodes": 1,
    "mem_gb": 4.0,
    "timeout_min": 60,
    "array_parallelism": 64,
}


class Executor(Resources):
    """Where and how runs execute. `auto` is SLURM only when a controller answers `scontrol ping`."""

    kind: Literal["auto", "local", "slurm", "debug"] = "auto"
    parallel: int | None = Field(None, ge=1, description="local: runs at once (default: one per core)")
    threads_per_run: int | None = Field(
        None, ge=1, description="torch threads (default: cpus_per_task, or cores/parallel)"
    )
    setup: list[str] = Field([], description="shell lines run before each SLURM job")
    signal_delay_s: int = Field(90, ge=10, description="SLURM sends USR2 this long before the time limit")
    checkpoint_every_s: float = Field(300.0, gt=0, description="periodic checkpoints (a signal may land mid-step)")
    max_requeues: int = Field(3, ge=0, description="timeouts a run may be requeued after")
    sbatch: dict[str, str | int | bool] = Field({}, description="extra #SBATCH options, e.g. {qos: high, hold: true}")
    resources: dict[str, Resources] = Field({}, description="per model: overrides of the values above")

    def resources_for(self, model: str | None) -> Resources:
        """The resolved resources of a run of `model` (None: any run): per-model override > executor > default."""
        own = self.resources.get(model, Resources()) if model else Resources()
        values = {}
        for name in Resources.model_fields:
            value = getattr(own, name)
            values[name] = value if value is not None else getattr(self, name)
            if values[name] is None:
                values[name] = RESOURCE_DEFAULTS.get(name)
        if values["throughput_gflops"] is None:
            values["throughput_gflops"] = GPU_GFLOPS if values["gpus_per_task"] else CPU_GFLOPS
        return Resources(**values)


class Analysis(Strict):
    """What to fit and plot when the sweep completes (passed to analysis.figures.sweep_study)."""

    x: str = "compute"
    y: str | None = Field(None, description="default: the first zeroshot_error.* column")
    by: str = "method"
    frontier: str = "running-min"
    bootstrap: int | None = Field(None, ge=0, description="bootstrap draws (default: analysis' own)")
    law: str = "power"
    options: dict[str, Any] = Field({}, description="further sweep_study keyword arguments")


AxisValues = Annotated[list[Any], Field(min_length=1)]


class Grid(Strict):
    """A sweep: shared spec fields, the axes to vary, per-model and per-method blocks, execution and analysis."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    out: str
    base: dict[str, Any] = {}
    axes: dict[str, AxisValues] = {}
    zip: list[dict[str, AxisValues]] = []
    models: dict[str, dict[str, Any]] = {}
    methods: dict[Method, MethodBlock] = {}
    evaluation: Evaluation = Evaluation()
    logging: Logging = Logging()
    executor: Executor = Executor()
    analysis: Analysis | None = None


# -- did-you-mean ---------------------------------------------------------------------------------------------


def _model_class(annotation: Any) -> Any:
    """Strip Optional/Annotated down to what validates a value (a model class, dict[...] or list[...])."""
    while get_origin(annotation) in (Union, types.UnionType, Annotated):
        args = [a for a in get_args(annotation) if a is not type(None)]
        annotation = args[0]
    return annotation


def model_at(cls: type[BaseModel], path: GridPath) -> type[BaseModel] | None:
    """The model class that validates the mapping at `path` under `cls` (None if it is not a model)."""
    annotation: Any = cls
    for part in path:
        annotation = _model_class(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if str(part) not in annotation.model_fields:
                return None
            annotation = annotation.model_fields[str(part)].annotation
        elif get_origin(annotation) in (dict, list):
            annotation = get_args(annotation)[-1]
        else:
            return None
    annotation = _model_class(annotation)
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def unknown_key(key: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
    return "unknown key" + (f"; did you mean {close[0]!r}?" if close else f" (expected one of {', '.join(candidates)})")


def spec_paths(cls: type[BaseModel] = RunSpec, prefix: str = "") -> list[str]:
    """Every dotted field path of a spec model (data, data.pool_size, optim.lr, ...), for axes keys."""
    paths = []
    for name, info in cls.model_fields.items():
        if name == "reference":
            continue
        paths.append(prefix + name)
        sub = _model_class(info.annotation)
        if isinstance(sub, type) and issubclass(sub, BaseModel):
            paths += spec_paths(sub, f"{prefix}{name}.")
    return paths


AXIS_KEYS = frozenset(spec_paths())


# -- validation of the grid itself ------------------------------------------------------------------------------


def _message(error: dict, cls: type[BaseModel], rel: GridPath) -> str:
    """A pydantic error as a short message; unknown keys get a did-you-mean from the model at that place."""
    if error["type"] == "extra_forbidden":
        parent = model_at(cls, rel[:-1])
        return unknown_key(str(rel[-1]), list(parent.model_fields) if parent else [])
    return pydantic_message(error)


def _loc(error: dict) -> GridPath:
    return tuple(p for p in error["loc"] if p != "[key]")


def validate_grid(raw: dict, source: Source) -> Grid:
    try:
        return Grid.model_validate(raw)
    except pydantic.ValidationError as err:
        first = err.errors()[0]
        path = _loc(first)
        raise source.error(path, _message(first, Grid, path)) from None


def check_spec_keys(raw: Any, cls: type[BaseModel], path: GridPath, source: Source) -> None:
    """Every key of a partial spec mapping (base, models.x, ...) must be a field of the spec: fail at the key."""
    if not isinstance(raw, dict):
        raise source.error(path, f"expected a mapping of {cls.__name__} fields")
    for key, value in raw.items():
        if key not in cls.model_fields:
            raise source.error((*path, key), unknown_key(str(key), list(cls.model_fields)))
        if key == "reference" and cls is RunSpec:
            raise source.error((*path, key), "set a reference in methods.<method>.reference, not per run")
        sub = model_at(cls, (key,))
        if sub is not None and isinstance(value, dict):
            check_spec_keys(value, sub, (*path, key), source)


def check_grid(grid: Grid, source: Source) -> None:
    """Keys inside free-form blocks, model names and method/reference pairs: fail before expanding."""
    from scaling.models import available_models

    check_spec_keys(grid.base, RunSpec, ("base",), source)
    models = available_models()
    for model, block in grid.models.items():
        if model not in models:
            raise source.error(("models", model), "unknown model" + _suggest(model, models))
        check_spec_keys(block, RunSpec, ("models", model), source)
    for model in grid.executor.resources:
        if model not in models:
            raise source.error(("executor", "resources", model), "unknown model" + _suggest(model, models))
    for method, block in grid.methods.items():
        check_spec_keys(block.loss, LossSpec, ("methods", method, "loss"), source)
        ref = block.reference
        if ref is not None and method != "drrho":
            raise source.error(("methods", method, "reference"), f"method {method} takes no reference")
        if ref is not None and ref.train is not None:
            check_spec_keys(ref.train, RunSpec, ("methods", method, "reference", "train"), source)
        if ref is not None and ref.checkpoint is not None and not Path(ref.checkpoint).exists():
            raise source.error(("methods", method, "reference", "checkpoint"), f"{ref.checkpoint} does not exist")
    groups = [("axes",), *(("zip", i) for i in range(len(grid.zip)))]
    seen: dict[str, GridPath] = {}
    for group, axes in zip(groups, [grid.axes, *grid.zip], strict=True):
        lengths = {len(values) for values in axes.values()}
        if group[0] == "zip" and len(lengths) > 1:
            raise source.error(group, f"zipped axes need lists of one length (got {sorted(lengths)})")
        for key in axes:
            if key not in AXIS_KEYS:
                raise source.error((*group, key), unknown_key(key, sorted(AXIS_KEYS)))
            if key in seen:
                raise source.error((*group, key), f"axis {key} is also varied at {dotted(seen[key])}")
            seen[key] = (*group, key)


def _suggest(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else f" (choose one of {', '.join(choices)})"


# -- expansion ------------------------------------------------------------------------------------------------


def flatten(raw: Any, spec: SpecPath, grid: GridPath, out: Layer) -> Layer:
    """Nested mapping -> flat layer; empty mappings add nothing, any other value is a leaf."""
    if isinstance(raw, dict):
        for key, value in raw.items():
            flatten(value, (*spec, str(key)), (*grid, key), out)
    else:
        out[spec] = (raw, grid)
    return out


def unflatten(layer: Layer, source: Source) -> dict:
    nested: dict = {}
    for path, (value, origin) in layer.items():
        node = nested
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise source.error(origin, f"{'.'.join(path[:-1])} is not a mapping in another block")
        if isinstance(node.get(path[-1]), dict):
            raise source.error(origin, f"{'.'.join(path)} is a mapping in another block")
        node[path[-1]] = value
    return nested


def _spec_error(
    err: pydantic.ValidationError, layer: Layer, fallback: GridPath, source: Source, where: str
) -> ConfigError:
    """A RunSpec validation error, located at the grid key that set the offending value."""
    first = err.errors()[0]
    rel = _loc(first)
    message = _message(first, RunSpec, rel)
    if rel:
        message = f"{'.'.join(map(str, rel))}: {message}"
    else:  # a model validator: its message starts with the field it is about
        head = re.match(r"[a-z_]+(?:\.[a-z_]+)*", message)
        rel = tuple(head.group(0).split(".")) if head else ()
    origin = next((layer[rel[:n]][1] for n in range(len(rel), 0, -1) if rel[:n] in layer), fallback)
    return source.error(origin, message + where)


def validate_spec(layer: Layer, source: Source, fallback: GridPath, where: str = "", **extra: Any) -> RunSpec:
    try:
        return RunSpec.model_validate({**unflatten(layer, source), **extra})
    except pydantic.ValidationError as err:
        raise _spec_error(err, layer, fallback, source, where) from None


def grid_points(grid: Grid) -> Iterator[Layer]:
    """The cartesian product of `axes` and the `zip` groups, in file order, each point a flat layer."""
    factors: list[list[Layer]] = [
        [flatten(v, tuple(key.split(".")), ("axes", key, i), {}) for i, v in enumerate(values)]
        for key, values in grid.axes.items()
    ]
    for g, group in enumerate(grid.zip):
        n = len(next(iter(group.values())))
        factors.append(
            [
                {
                    path: leaf
                    for key, values in group.items()
                    for path, leaf in flatten(values[i], tuple(key.split(".")), ("zip", g, key, i), {}).items()
                }
                for i in range(n)
            ]
        )
    for combination in itertools.product(*factors):
        point: Layer = {}
        for layer in combination:
            point.update(layer)
        yield point


def _describe(point: Layer) -> str:
    return " (at " + ", ".join(f"{'.'.join(p)}={v}" for p, (v, _) in point.items()) + ")" if point else ""


@dataclass(frozen=True)
class Expansion:
    """A validated grid and its runs: in-sweep references first to train, then the grid's points."""

    grid: Grid
    path: Path
    runs: tuple[RunSpec, ...]
    references: tuple[RunSpec, ...]


class Expander:
    """Merges layers per grid point; per-model and per-method layers and references are built once."""

    def __init__(self, grid: Grid, source: Source):
        self.grid, self.source = grid, source
        self.base = flatten(grid.base, (), ("base",), {})
        ev = grid.evaluation
        for path, value, key in (
            (("eval", "points"), ev.points, "points"),
            (("eval", "first"), ev.first, "first"),
            (("data", "eval_size"), ev.size, "size"),
            (("eval", "imagenet"), ev.imagenet, "imagenet"),
        ):
            if value is not None:
                self.base[path] = (value, ("evaluation", key))
        for key in ("tensorboard", "every"):
            if (value := getattr(grid.logging, key)) is not None:
                self.base[("logging", key)] = (value, ("logging", key))
        self.models = {m: flatten(block, (), ("models", m), {}) for m, block in grid.models.items()}
        self.losses = {m: flatten(b.loss, ("loss",), ("methods", m, "loss"), {}) for m, b in grid.methods.items()}
        self.references: dict[str, ReferenceSpec] = {}

    def layer_value(self, layer: Layer, path: SpecPath, default: Any) -> tuple[Any, GridPath]:
        return layer.get(path, self.base.get(path, (default, ("base",))))

    def reference(self, method: str, origin: GridPath) -> ReferenceSpec:
        """The ReferenceSpec of `method`'s runs, validated once."""
        if method in self.references:
            return self.references[method]
        block = self.grid.methods.get(method)
        if block is None or block.reference is None:
            raise self.source.error(
                origin, f"method {method} needs methods.{method}.reference (train, checkpoint or pretrained)"
            )
        ref, at = block.reference, ("methods", method, "reference")
        if ref.train is not None:
            train = flatten(ref.train, (), (*at, "train"), {})
            model = self.layer_value(train, ("model",), None)[0]
            layer = {p: v for p, v in self.base.items() if p != ("method",)}
            layer.update(self.models.get(model, {}))
            layer.update(train)
            spec = validate_spec(layer, self.source, (*at, "train"), " (in the reference)")
            fields = {"run": spec}
        elif ref.checkpoint is not None:
            fields = {"checkpoint": ref.checkpoint, "model": ref.model}
        elif isinstance(ref.pretrained, str):
            fields = {"pretrained": ref.pretrained, "model": ref.model}
        else:
            fields = {"pretrained": ref.pretrained.tag, "model": ref.pretrained.model or ref.model}
        try:
            self.references[method] = ReferenceSpec(**fields, mode=ref.mode)
        except pydantic.ValidationError as err:
            raise self.source.error(at, _message(err.errors()[0], ReferenceSpec, ())) from None
        return self.references[method]

    def run(self, point: Layer) -> RunSpec:
        model = self.layer_value(point, ("model",), RunSpec.model_fields["model"].default)[0]
        method, method_origin = self.layer_value(point, ("method",), "clip")
        layer = dict(self.base)
        layer.update(self.models.get(model, {}))
        layer.update(self.losses.get(method, {}))
        layer.update(point)
        extra = {"reference": self.reference(method, method_origin)} if method == "drrho" else {}
        return validate_spec(layer, self.source, ("axes",), _describe(point), **extra)

    def expand(self) -> Expansion:
        runs = {}
        for point in grid_points(self.grid):
            spec = self.run(point)
            runs.setdefault(spec.run_id, spec)
        refs = {r.run.run_id: r.run for r in self.references.values() if r.run is not None}
        return Expansion(self.grid, self.source.path, tuple(runs.values()), tuple(refs.values()))


def _dotted_axes(group: Any, at: GridPath, lines: dict[GridPath, int]) -> Any:
    """`{optim: {lr: [...]}}` -> `{optim.lr: [...]}` (an override axes.optim.lr=[..] nests), keeping lines."""
    if not isinstance(group, dict):
        return group
    out: dict[str, Any] = {}

    def walk(mapping: dict, keys: tuple[str, ...]) -> None:
        for key, value in mapping.items():
            sub = (*keys, str(key))
            if isinstance(value, dict):
                walk(value, sub)
                continue
            name = ".".join(sub)
            out[name] = value
            nested = (*at, *sub)
            for path, line in list(lines.items()):
                if len(sub) > 1 and path[: len(nested)] == nested:
                    lines[(*at, name, *path[len(nested) :])] = line

    walk(group, ())
    return out


def load_grid(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Expansion:
    """Read, override, validate and expand a grid file; any problem raises one ConfigError with key path + line."""
    path = Path(path)
    raw, lines = read_yaml(path)
    source = Source(path, lines)
    for item in overrides:
        apply_override(raw, item)
        source.overrides[item.partition("=")[0]] = item
    if "axes" in raw:
        raw["axes"] = _dotted_axes(raw["axes"], ("axes",), source.lines)
    if isinstance(raw.get("zip"), list):
        raw["zip"] = [_dotted_axes(group, ("zip", i), source.lines) for i, group in enumerate(raw["zip"])]
    grid = validate_grid(raw, source)
    check_grid(grid, source)
    return Expander(grid, source).expand()
