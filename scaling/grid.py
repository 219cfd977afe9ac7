"""grid.yaml → a validated sweep definition → RunSpecs with stable ids.

The YAML is read with safe_load semantics, but the composed nodes are kept so that every key path has a line
number: an unknown key, a wrong type or an impossible combination becomes ONE ConfigError naming the key path
and file:line, before anything is written or submitted.

Each run is the merge of layers, later ones winning: `base` < `evaluation` < `models.<model>` <
`methods.<method>` < the grid point (`axes` × `zip`). Layers are kept flat (spec path → value, grid path), so a
RunSpec validation error maps straight back to the grid key that set the offending value. A steered run's
in-sweep reference is its own RunSpec (`reference.train`, or `methods.<method>.reference.train`, merged on
`base`), embedded in the run's ReferenceSpec, so a steered run's id changes whenever its reference would.

The reference is swept like any field: an axis `reference.<field>` varies the shared `reference` block,
`methods.<method>.reference.<field>` that method's. Such an axis reaches only the runs of methods that need a
reference, so a CLIP run is one run whatever the references, and each distinct reference is built once.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import reprlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import pydantic
from pydantic import BaseModel, ConfigDict, Field, model_validator

from scaling.errors import ConfigError, each_error, pydantic_message
from scaling.keys import model_at, spec_paths, suggest, unknown_key
from scaling.methods import DistillSpec, SelectionSpec
from scaling.methods import method as method_named
from scaling.runtime import Executor
from scaling.schedule import WsdSchedule
from scaling.spec import BenchmarkSpec, LossSpec, Method, ReferenceSpec, RunSpec, apply_override
from scaling.yamlfile import GridError, KeyPath, Source, dotted, duplicate_messages, read_grid_file

GridPath = KeyPath
SpecPath = tuple[str, ...]
Layer = dict[SpecPath, tuple[Any, GridPath]]  # spec path -> (value, the grid key it came from)


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
        """At most one source here; none is checked per run, as a reference axis may give it."""
        given = self.sources()
        if len(given) > 1:
            raise ValueError(f"give exactly one of train, checkpoint, pretrained (got {', '.join(given)})")
        return self

    def sources(self) -> list[str]:
        return [k for k in ("train", "checkpoint", "pretrained") if getattr(self, k) is not None]


class MethodBlock(Strict):
    """What runs of one method share: their own reference (else the grid's `reference`), loss settings, and
    the JEST (`selection`) or KD (`distill`) options of the methods that take them."""

    reference: ReferenceBlock | None = None
    loss: dict[str, Any] = {}
    selection: dict[str, Any] = {}
    distill: dict[str, Any] = {}


class Evaluation(Strict):
    """Evaluation settings of every run, the reference included (eval.points, .first, .imagenet,
    .clip_benchmark, data.eval_size)."""

    points: int | None = Field(None, ge=1, le=64)
    first: float | None = Field(None, gt=0, le=1)
    size: int | None = Field(None, gt=0)
    imagenet: str | None = Field(None, description="ImageFolder of ImageNet-1k val: zero-shot error per point")
    clip_benchmark: BenchmarkSpec | None = Field(None, description="DataComp's task suite on each final model")


class Logging(Strict):
    """Live curves of every run (logging.tensorboard, .wandb, .every of each RunSpec)."""

    tensorboard: bool | None = None
    wandb: bool | None = None
    every: int | None = Field(None, ge=1)


class Analysis(Strict):
    """What to fit and plot when the sweep completes (passed to analysis.sweep_study.sweep_study). The fit
    options are analysis.study.FitOptions, checked when the grid loads; left out, FitOptions' defaults hold."""

    x: str = "compute"
    y: str | None = Field(None, description="default: the first zeroshot_error.* column")
    by: str = "method"
    law: str | None = None
    frontier: str | None = None
    bootstrap: int | None = Field(None, description="bootstrap draws (FitOptions.draws)")
    options: dict[str, Any] = Field({}, description="further analysis.study.FitOptions (seed, ci, ...)")

    @model_validator(mode="after")
    def _fit_options_are_valid(self) -> Analysis:
        self.fit_options()
        return self

    def fit_options(self):  # -> analysis.study.FitOptions (scaling imports analysis only when it analyses)
        """The FitOptions this block asks for; a bad name or value is a ValueError naming it."""
        from analysis.data import InputError
        from analysis.study import FitOptions

        given = {"law": self.law, "frontier": self.frontier, "draws": self.bootstrap}
        try:
            return FitOptions.of(self.options, **{k: v for k, v in given.items() if v is not None})
        except InputError as err:
            raise ValueError(str(err)) from None


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
    reference: ReferenceBlock | None = Field(None, description="of every method that needs one, unless its own")
    evaluation: Evaluation = Evaluation()
    logging: Logging = Logging()
    executor: Executor = Executor()
    analysis: Analysis | None = None
    schedule: WsdSchedule | None = Field(None, description="many budgets from one run (scaling.schedule)")
    max_runs: int = Field(100_000, ge=1, description="larger grids are refused before expansion (a typo guard)")


AXIS_KEYS = frozenset(spec_paths())
REFERENCE_AXIS_KEYS = frozenset(
    ("checkpoint", "model", "pretrained", "pretrained.model", "pretrained.tag", "mode", "train")
) | {f"train.{path}" for path in AXIS_KEYS}


def needs_reference(key: Any) -> bool:
    """Whether runs of method `key` are steered by a reference (an unknown key: no; RunSpec says why)."""
    try:
        return method_named(key).needs_reference
    except (ValueError, TypeError):
        return False


def reference_axis(path: tuple[str, ...]) -> tuple[str | None, tuple[str, ...]] | None:
    """A path of an axis over a reference, split: ('reference', 'train', 'x') → (None, ('train', 'x')),
    ('methods', 'drrho', 'reference', 'mode') → ('drrho', ('mode',)); None for a path of the runs' own fields."""
    if path[0] == "reference" and len(path) > 1:
        return None, path[1:]
    if path[0] == "methods" and len(path) > 3 and path[2] == "reference":
        return path[1], path[3:]
    return None


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
    """The grid's schema; every field in error is reported (the first error of each). With errors, the grid
    without the blocks in error is returned, so that the checks after this one still find their problems
    (`source.check()` raises them all)."""
    try:
        return Grid.model_validate(raw)
    except pydantic.ValidationError as err:
        errors = each_error(err)
    for path, error in errors:
        source.add(path, _message(error, Grid, path))
    bad = {path[0] for path, _ in errors if path}
    kept = {"name": "x", "out": ".", **{key: value for key, value in raw.items() if key not in bad}}
    try:
        return Grid.model_validate(kept)
    except pydantic.ValidationError:
        source.check()
        raise


def check_spec_keys(raw: Any, cls: type[BaseModel], path: GridPath, source: Source) -> None:
    """Every key of a partial spec mapping (base, models.x, ...) must be a field of the spec: fail at the key."""
    if not isinstance(raw, dict):
        source.add(path, f"expected a mapping of {cls.__name__} fields")
        return
    for key, value in raw.items():
        if key not in cls.model_fields:
            source.add((*path, key), unknown_key(str(key), list(cls.model_fields)))
        if key == "reference" and cls is RunSpec:
            source.add((*path, key), "set a reference in the top-level reference or methods.<method>.reference")
        if key == "wsd" and cls is RunSpec:
            source.add((*path, key), "WSD trunks and branches come from the grid's schedule block")
        sub = model_at(cls, (key,)) if key in cls.model_fields else None
        if sub is not None and isinstance(value, dict):
            check_spec_keys(value, sub, (*path, key), source)


def check_grid(grid: Grid, source: Source) -> None:
    """Keys inside free-form blocks, model names, method/reference pairs and the output directory: every
    problem is collected, before expanding."""
    from scaling.models import available_models

    check_spec_keys(grid.base, RunSpec, ("base",), source)
    models = available_models()
    for model, block in grid.models.items():
        if model not in models:
            source.add(("models", model), "unknown model" + suggest(model, models))
        check_spec_keys(block, RunSpec, ("models", model), source)
    for model in grid.executor.resources:
        if model not in models:
            source.add(("executor", "resources", model), "unknown model" + suggest(model, models))
    for key, block in grid.methods.items():
        check_method_block(key, block, source)
    check_reference(grid.reference, ("reference",), source)
    groups = [("axes",), *(("zip", i) for i in range(len(grid.zip)))]
    seen: dict[str, GridPath] = {}
    for group, axes in zip(groups, [grid.axes, *grid.zip], strict=True):
        lengths = {len(values) for values in axes.values()}
        if group[0] == "zip" and len(lengths) > 1:
            source.add(group, f"zipped axes need lists of one length (got {sorted(lengths)})")
        for key in axes:
            problem = axis_problem(key) or shadowed_axis(grid, key)
            if problem:
                source.add((*group, key), problem)
            if key in seen:
                source.add((*group, key), f"axis {key} is also varied at {dotted(seen[key])}")
            seen[key] = (*group, key)
    problem = out_problem(Path(grid.out))
    if problem:
        source.add(("out",), problem)


def check_method_block(key: str, block: MethodBlock, source: Source) -> None:
    """methods.<key>: a reference only where the method reads one, selection/distill only where it takes them."""
    at, info = ("methods", key), method_named(key)
    check_spec_keys(block.loss, LossSpec, (*at, "loss"), source)
    for name, cls, takes in (("selection", SelectionSpec, info.selects), ("distill", DistillSpec, info.distills)):
        if block.__dict__[name] and not takes:
            source.add((*at, name), f"method {key} takes no {name} options")
        check_spec_keys(block.__dict__[name], cls, (*at, name), source)
    ref = block.reference
    if ref is not None and not info.needs_reference:
        source.add((*at, "reference"), f"method {key} takes no reference")
    check_reference(ref, (*at, "reference"), source)


def check_reference(ref: ReferenceBlock | None, at: GridPath, source: Source) -> None:
    """The keys of a reference's training spec, and that its checkpoint exists."""
    if ref is not None and ref.train is not None:
        check_spec_keys(ref.train, RunSpec, (*at, "train"), source)
    if ref is not None and ref.checkpoint is not None and not Path(ref.checkpoint).exists():
        source.add((*at, "checkpoint"), f"{ref.checkpoint} does not exist")


def axis_problem(key: str) -> str | None:
    """Why `key` cannot be an axis: not a RunSpec field, nor a field of a reference a method can take."""
    scoped = reference_axis(tuple(key.split(".")))
    if scoped is None:
        return None if key in AXIS_KEYS else unknown_key(key, sorted(AXIS_KEYS))
    method, field = scoped[0], ".".join(scoped[1])
    if method is not None and not needs_reference(method):
        known = [m for m in get_args(Method) if needs_reference(m)]
        return f"method {method} takes no reference" if method in get_args(Method) else unknown_key(method, known)
    if field not in REFERENCE_AXIS_KEYS:
        return "a reference's " + unknown_key(field, sorted(REFERENCE_AXIS_KEYS))
    return None


def shadowed_axis(grid: Grid, key: str) -> str | None:
    """An axis of the shared reference that no run would see: there is no shared block and a method has its own
    (which replaces the shared one for that method)."""
    scoped = reference_axis(tuple(key.split(".")))
    if scoped is None or scoped[0] is not None or grid.reference is not None:
        return None
    own = next((m for m, block in grid.methods.items() if block.reference is not None), None)
    if own is None:
        return None
    return f"methods.{own}.reference replaces the shared reference this axis varies: vary methods.{own}.{key}"


def out_problem(out: Path) -> str | None:
    """Why `out` cannot hold a sweep (a file, under a file, or not writable), else None. Nothing is created."""
    if out.exists() and not out.is_dir():
        return f"{out} exists and is not a directory"
    existing = next(p for p in (out, *out.parents) if p.exists())
    if not existing.is_dir():
        return f"{existing} is a file, so {out} cannot be created"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    return None


def grid_size(grid: Grid) -> int:
    """How many points the grid expands to (before identical runs are merged)."""
    return math.prod(len(values) for values in grid.axes.values()) * math.prod(
        len(next(iter(group.values()))) if group else 1 for group in grid.zip
    )


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
    return source.error(_origin(layer, rel, fallback), message, where)


def _origin(layer: Layer, rel: SpecPath, fallback: GridPath) -> GridPath:
    """The grid key that set spec field `rel`: the field itself, the block that holds it (`base.data` for a
    `data.path` that no key set), else `fallback`."""
    for n in range(len(rel), 0, -1):
        if rel[:n] in layer:
            return layer[rel[:n]][1]
        inside = next(((spec, grid) for spec, (_, grid) in layer.items() if spec[:n] == rel[:n]), None)
        if inside is not None:
            spec, grid = inside
            return grid[: len(grid) - (len(spec) - n)]  # the block that holds the key
    return fallback


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
    """' (at model=w32-l1, seed=0)'; long values are cut (a YAML alias can make a value of any size)."""
    shown = (f"{'.'.join(p)}={reprlib.repr(v) if isinstance(v, list | dict) else v}" for p, (v, _) in point.items())
    return " (at " + ", ".join(shown) + ")" if point else ""


def _first_axis(layer: Layer, fallback: GridPath) -> GridPath:
    """The grid path of the first axis value in `layer`, else `fallback`."""
    return next((origin for _, origin in layer.values() if origin[0] in ("axes", "zip")), fallback)


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
        if ev.clip_benchmark is not None:
            suite = ev.clip_benchmark.model_dump(exclude_unset=True)
            flatten(suite, ("eval", "clip_benchmark"), ("evaluation", "clip_benchmark"), self.base)
        for key in ("tensorboard", "wandb", "every"):
            if (value := getattr(grid.logging, key)) is not None:
                self.base[("logging", key)] = (value, ("logging", key))
        self.models = {m: flatten(block, (), ("models", m), {}) for m, block in grid.models.items()}
        self.losses = {  # the per-method layer: loss, selection and distill options
            m: {
                path: leaf
                for name in ("loss", "selection", "distill")
                for path, leaf in flatten(getattr(b, name), (name,), ("methods", m, name), {}).items()
            }
            for m, b in grid.methods.items()
        }
        self.references: dict[tuple, ReferenceSpec] = {}  # (block, its fields at a point) → reference

    def layer_value(self, layer: Layer, path: SpecPath, default: Any) -> tuple[Any, GridPath]:
        return layer.get(path, self.base.get(path, (default, ("base",))))

    def reference_layer(self, method: str, point: Layer) -> tuple[GridPath, Layer]:
        """Where `method`'s reference block is (its own, else the shared one) and its fields as a flat layer
        (path inside the block → value, grid path) with the point's reference axes merged on it: an axis
        replaces what the block says at and under its key (`pretrained: tag` replaces `{model, tag}`), and an
        axis of the method's own block wins over one of the shared block."""
        own = self.grid.methods.get(method)
        shared = own is None or own.reference is None
        at: GridPath = ("reference",) if shared else ("methods", method, "reference")
        block = self.grid.reference if shared else own.reference
        layer = flatten(block.model_dump(exclude_unset=True), (), at, {}) if block else {}
        replaced, merged = set(), []
        for path, (value, origin) in point.items():
            scoped = reference_axis(path)
            if scoped is None or not (scoped[0] == method or (scoped[0] is None and shared)):
                continue
            axis = origin[1] if origin[0] == "axes" else origin[2]  # ('axes', key, i, ...), ('zip', g, key, i, ...)
            replaced.add(reference_axis(tuple(str(axis).split(".")))[1])
            merged.append((scoped[0] is not None, scoped[1], (value, origin)))
        layer = {p: v for p, v in layer.items() if not any(p[: len(k)] == k or k[: len(p)] == p for k in replaced)}
        layer.update({inside: leaf for _, inside, leaf in sorted(merged, key=lambda m: m[0])})
        return at, layer

    def reference(self, method: str, origin: GridPath, point: Layer) -> ReferenceSpec:
        """The ReferenceSpec of `method`'s runs at `point`, validated once per distinct reference."""
        at, layer = self.reference_layer(method, point)
        if not layer:
            raise self.source.error(
                origin, f"method {method} needs a reference: set reference or methods.{method}.reference"
            )
        key = (at, tuple(sorted((p, repr(v)) for p, (v, _) in layer.items())))
        if key in self.references:
            return self.references[key]
        train = {p[1:]: v for p, v in layer.items() if p[0] == "train"}
        raw = unflatten({p: v for p, v in layer.items() if p[0] != "train"}, self.source)
        try:
            ref = ReferenceBlock.model_validate({**raw, **({"train": unflatten(train, self.source)} if train else {})})
        except pydantic.ValidationError as err:
            error = err.errors()[0]  # the block itself was valid: an axis made it invalid
            where = _origin(layer, tuple(map(str, _loc(error))), _first_axis(layer, at))
            raise self.source.error(where, _message(error, ReferenceBlock, _loc(error))) from None
        if not ref.sources():
            raise self.source.error(
                _first_axis(layer, at), "give exactly one of train, checkpoint, pretrained (got none)"
            )
        if ref.train is not None:
            model = self.layer_value(train, ("model",), None)[0]
            spec_layer = {p: v for p, v in self.base.items() if p != ("method",)}
            spec_layer.update(self.models.get(model, {}) if isinstance(model, str) else {})
            spec_layer.update(train)
            spec = validate_spec(spec_layer, self.source, (*at, "train"), " (in the reference)")
            fields = {"run": spec}
        elif ref.checkpoint is not None:
            fields = {"checkpoint": ref.checkpoint, "model": ref.model}
        elif isinstance(ref.pretrained, str):
            fields = {"pretrained": ref.pretrained, "model": ref.model}
        else:
            fields = {"pretrained": ref.pretrained.tag, "model": ref.pretrained.model or ref.model}
        try:
            self.references[key] = ReferenceSpec(**fields, mode=ref.mode)
        except pydantic.ValidationError as err:
            raise self.source.error(at, _message(err.errors()[0], ReferenceSpec, ())) from None
        return self.references[key]

    def run(self, point: Layer) -> RunSpec:
        own = {path: leaf for path, leaf in point.items() if reference_axis(path) is None}
        model = self.layer_value(own, ("model",), RunSpec.model_fields["model"].default)[0]
        method, method_origin = self.layer_value(own, ("method",), "clip")
        layer = dict(self.base)
        layer.update(self.models.get(model, {}) if isinstance(model, str) else {})  # else RunSpec says why
        layer.update(self.losses.get(method, {}) if isinstance(method, str) else {})
        layer.update(own)
        steered = needs_reference(method)
        extra = {"reference": self.reference(method, method_origin, point)} if steered else {}
        return validate_spec(layer, self.source, ("axes",), _describe(point if steered else own), **extra)

    def expand(self) -> Expansion:
        """Every point's RunSpec; a problem is reported once (at its first point) with every other problem."""
        runs, problems = {}, {}
        for point in grid_points(self.grid):
            try:
                spec = self.run(point)
            except GridError as err:
                problems.setdefault(err.problem, err)
                continue
            runs.setdefault(spec.run_id, spec)
        self.source.problems += problems.values()
        self.source.check()
        refs = {r.run.run_id: r.run for r in self.references.values() if r.run is not None}
        specs = tuple(runs.values())
        if self.grid.schedule is not None:
            specs = self.grid.schedule.expand(specs, self.source)
        return Expansion(self.grid, self.source.path, specs, tuple(refs.values()))


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
    raw, document = read_grid_file(path)
    source = Source(path, document.lines)
    for line, message in duplicate_messages(document, str(path)):
        source.problems.append(GridError(line, message))
    for item in overrides:
        apply_override(raw, item)
        source.overrides[item.partition("=")[0]] = item
    if "axes" in raw:
        raw["axes"] = _dotted_axes(raw["axes"], ("axes",), source.lines)
    if isinstance(raw.get("zip"), list):
        raw["zip"] = [_dotted_axes(group, ("zip", i), source.lines) for i, group in enumerate(raw["zip"])]
    grid = validate_grid(raw, source)
    check_grid(grid, source)
    source.check()
    if grid_size(grid) > grid.max_runs:
        where = "max_runs" if "max_runs" in raw else "axes"
        raise source.error(
            (where,), f"the grid has {grid_size(grid):,} runs, more than max_runs {grid.max_runs:,} (raise max_runs)"
        )
    return Expander(grid, source).expand()
