"""scaling.grid: the grid schema, its errors (key path + file:line, exit code 2), expansion and stable ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from scaling.datacomp import TASKS
from scaling.errors import ConfigError
from scaling.grid import load_grid
from scaling.plan import build_tasks
from scaling.spec import BenchmarkSpec

from .conftest import SMOKE, cli


def test_smoke_grid_expands_to_both_methods_with_an_in_sweep_reference():
    expansion = load_grid(SMOKE)
    runs = expansion.runs
    assert [(r.model, r.method) for r in runs] == [
        ("w32-l1", "clip"),
        ("w32-l1", "drrho"),
        ("w48-l2", "clip"),
        ("w48-l2", "drrho"),
    ]
    (reference,) = expansion.references
    assert (reference.model, reference.method, reference.data.seed, reference.samples_seen) == (
        "w32-l1",
        "clip",
        1,
        2048,
    )
    for run in runs:
        assert (run.eval.points, run.data.eval_size, run.batch_size) == (2, 200, 32)
        assert run.optim.lr == (1e-3 if run.model == "w48-l2" else 2e-3)  # per-model override
        if run.method == "drrho":
            assert run.reference.run == reference and run.reference.mode == "cache"
            assert run.loss.tau == 0.01  # method defaults resolved by RunSpec
        else:
            assert run.reference is None


def test_ids_are_stable_and_steered_ids_follow_their_reference():
    first, again = load_grid(SMOKE), load_grid(SMOKE)
    assert [r.run_id for r in first.runs] == [r.run_id for r in again.runs]
    longer_reference = load_grid(SMOKE, ["methods.drrho.reference.train.samples_seen=4096"])
    changed = {r.run_id for r in longer_reference.runs} ^ {r.run_id for r in first.runs}
    steered = {r.run_id for r in first.runs if r.method == "drrho"}
    assert steered <= changed and len(changed) == 2 * len(steered)  # only steered ids moved


def test_axes_zip_and_nested_axis_keys(tmp_path: Path):
    grid = tmp_path / "g.yaml"
    grid.write_text(
        """name: g
out: out
base: {model: w32-l1, batch_size: 32, data: {pool_size: 256}}
axes:
  optim: {lr: [1.0e-3, 2.0e-3]}     # same as optim.lr: [...]
  seed: [0, 1, 2]
zip:
  - {data.pool_size: [256, 512], samples_seen: [512, 1024]}
"""
    )
    runs = load_grid(grid).runs
    assert len(runs) == 2 * 3 * 2
    assert {(r.data.pool_size, r.samples_seen) for r in runs} == {(256, 512), (512, 1024)}
    assert {r.optim.lr for r in runs} == {1e-3, 2e-3}
    assert len({r.run_id for r in runs}) == len(runs)


GOOD = SMOKE.read_text()


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("axes:", "axis:", "axis: unknown key; did you mean 'axes'?"),
        ("  model: [w32-l1, w48-l2]", "  modle: [w32-l1, w48-l2]", "axes.modle: unknown key; did you mean 'model'?"),
        ("[w32-l1, w48-l2]", "[w32-l1, w48-l3]", "axes.model[1]: model: unknown model 'w48-l3'"),
        ("batch_size: 32", "batch_size: 1024", "base.batch_size: batch_size 1024 is larger than data.pool_size 512"),
        ("mode: cache ", "mode: cached ", "methods.drrho.reference.mode: Input should be 'cache' or 'online'"),
        (
            "data: {seed: 1}",
            "data: {sed: 1}",
            "methods.drrho.reference.train.data.sed: unknown key; did you mean 'seed'?",
        ),
        ("lr: 2.0e-3,", "lr: fast,", "base.optim.lr: optim.lr: Input should be a valid number"),
        ("  w48-l2: {optim", "  w48-l9: {optim", "models.w48-l9: unknown model; did you mean 'w48-l2'?"),
        ("    reference:\n", "    referenz:\n", "methods.drrho.referenz: unknown key; did you mean 'reference'?"),
        ("  timeout_min: 10", "  timeout_min: ten", "executor.timeout_min: Input should be a valid integer"),
        ("kind: auto", "kind: lokal", "executor.kind: Input should be 'auto', 'local', 'slurm' or 'debug'"),
        (
            "evaluation: {points: 2, size: 200}",
            "evaluation: {points: 2, size: 200, clip_benchmark: {root: r, taks: [cifar10]}}",
            "evaluation.clip_benchmark.taks: unknown key; did you mean 'tasks'?",
        ),
        (
            "evaluation: {points: 2, size: 200}",
            "evaluation: {points: 2, size: 200, clip_benchmark: {root: r, tasks: [cifar1O]}}",
            "evaluation.clip_benchmark: unknown task 'cifar1O'",
        ),
        (
            "evaluation: {points: 2, size: 200}",
            "evaluation: {points: 2, size: 200, clip_benchmark: {}}",
            "evaluation.clip_benchmark.root: Field required",
        ),
    ],
)
def test_errors_name_the_key_path_and_line(tmp_path: Path, old: str, new: str, expected: str):
    """Every error is one line: '<file>:<line of the culprit>: <key path>: <message>'."""
    text = GOOD.replace(old, new, 1)
    line = text[: text.index(new)].count("\n") + 1
    grid = tmp_path / "g.yaml"
    grid.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_grid(grid)
    assert str(err.value).startswith(f"{grid}:{line}: {expected}")
    assert "\n" not in str(err.value)


def test_drrho_without_a_reference_points_at_the_method(tmp_path: Path):
    grid = tmp_path / "g.yaml"
    grid.write_text("name: g\nout: o\nbase: {model: w32-l1, batch_size: 32}\naxes:\n  method: [clip, drrho]\n")
    with pytest.raises(ConfigError, match=r"g.yaml:5: axes.method\[1\]: method drrho needs a reference: set reference"):
        load_grid(grid)


def test_override_errors_name_the_override():
    with pytest.raises(
        ConfigError, match=r"^override axes.seed=\[0,-1\]: axes.seed\[1\]: seed: Input should be greater"
    ):
        load_grid(SMOKE, ["axes.seed=[0,-1]"])


def test_cli_reports_one_line_exit_2_and_writes_nothing(tmp_path: Path):
    grid = tmp_path / "bad.yaml"
    text = GOOD.replace("[w32-l1, w48-l2]", "[w32-l1, w48-l3]")
    line = text[: text.index("w48-l3")].count("\n") + 1
    grid.write_text(text)
    out = tmp_path / "out"
    result = cli("scaling.sweep", grid, f"out={out}")
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {grid}:{line}: axes.model[1]: model: unknown model 'w48-l3'")
    assert result.stderr.count("\n") == 1
    assert result.stdout == "" and not out.exists()


def test_ten_thousand_points_expand_to_distinct_runs(tmp_path: Path):
    """A 10,000-point grid expands to 10,000 distinct run ids (its speed goal lives in bench/sweep_scale.py)."""
    grid = tmp_path / "big.yaml"
    grid.write_text(
        """name: big
out: out
base: {batch_size: 32, data: {eval_size: 200}}
axes:
  model: [w32-l1, w48-l2, w64-l2, w96-l3, w128-l4]
  method: [clip, drrho]
  data.pool_size: [1000, 2000, 4000, 8000, 16000]
  samples_seen: [1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000, 256000, 512000]
  seed: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
  optim.lr: [1.0e-3, 2.0e-3]
methods:
  drrho: {reference: {train: {model: w64-l2, samples_seen: 8000, data: {seed: 1, pool_size: 4000}}}}
"""
    )
    expansion = load_grid(grid)
    assert len(expansion.runs) == len({spec.run_id for spec in expansion.runs}) == 10_000


def test_the_analysis_block_is_checked_when_the_grid_loads(tmp_path: Path):
    """A typo in the fit options fails the dry run, not the analysis after every run has finished."""
    grid = tmp_path / "g.yaml"
    for block, message in [
        ("analysis: {options: {bootsrap: 5}}", "analysis: unknown fit option 'bootsrap'"),
        ("analysis: {bootstrap: 0}", "analysis: bootstrap draws .* must be at least 1, got 0"),
        ("analysis: {frontier: 'bins:0'}", "analysis: .*bins"),
    ]:
        grid.write_text(f"{SMOKE.read_text()}\n{block}\n")
        with pytest.raises(ConfigError, match=rf"g.yaml:\d+: {message}"):
            load_grid(grid)


def test_grid_logging_turns_on_live_curves_without_changing_run_ids():
    plain = load_grid(SMOKE)
    logged = load_grid(SMOKE, ["logging.tensorboard=true", "logging.wandb=true", "logging.every=5"])
    assert all(s.logging.tensorboard and s.logging.wandb and s.logging.every == 5 for s in logged.runs)
    assert [s.run_id for s in logged.runs] == [s.run_id for s in plain.runs]


SUITE = """name: g
out: out
base: {model: w32-l1, batch_size: 32, data: {source: csv, path: pairs.csv, pool_size: 256}}
evaluation:
  imagenet: /data/imagenet/val
  clip_benchmark: {root: /data/datacomp, tasks: [cifar10, country211]}
axes: {seed: [0, 1]}
"""


def test_grid_evaluation_sets_the_benchmark_suite_of_every_run(tmp_path: Path):
    grid = tmp_path / "g.yaml"
    grid.write_text(SUITE)
    runs = load_grid(grid).runs
    assert len(runs) == 2
    for run in runs:
        assert run.eval.imagenet == "/data/imagenet/val"
        assert run.eval.clip_benchmark == BenchmarkSpec(root="/data/datacomp", tasks=("cifar10", "country211"))
    grid.write_text(SUITE.replace(", tasks: [cifar10, country211]", ""))
    (default, _) = load_grid(grid).runs
    assert default.eval.clip_benchmark.tasks == TASKS


BASELINES = """name: baselines
out: {out}
base: {{data: {{pool_size: 1024}}, batch_size: 32, samples_seen: 1280}}
axes:
  method: [clip, jest, jest_topk, clip_distill]
methods:
  jest:
    reference: &reference {{train: {{model: w32-l1, data: {{seed: 1}}}}}}
    selection: {{chunks: 4, base_loss: fastclip}}
  jest_topk: {{reference: *reference}}
  clip_distill:
    reference: *reference
    distill: {{weight: 0.25}}
"""


def test_every_method_that_reads_a_reference_takes_one_and_its_own_options(tmp_path: Path):
    path = tmp_path / "grid.yaml"
    path.write_text(BASELINES.format(out=tmp_path / "out"))
    expansion = load_grid(path)
    runs = {r.method: r for r in expansion.runs}
    (reference,) = expansion.references  # one in-sweep reference serves all three methods
    assert all(runs[m].reference.run == reference for m in ("jest", "jest_topk", "clip_distill"))
    assert (runs["jest"].selection.chunks, runs["jest"].selection.base_loss, runs["jest"].loss.eps) == (
        4,
        "fastclip",
        1e-14,
    )
    assert (runs["jest_topk"].selection.rule, runs["clip_distill"].distill.weight) == ("greedy", 0.25)
    assert runs["clip"].reference is None and runs["clip"].selection is None


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "  jest_topk: {reference: *reference}",
            "  clip: {selection: {chunks: 2}}",
            ":10: methods.clip.selection: method clip takes no selection options",
        ),
        (
            "  jest_topk: {reference: *reference}",
            "  fastclip: {reference: *reference}",
            ":10: methods.fastclip.reference: method fastclip takes no reference",
        ),
        (
            "distill: {weight: 0.25}",
            "distill: {wieght: 0.25}",
            ":13: methods.clip_distill.distill.wieght: unknown key; did you mean 'weight'?",
        ),
        (
            "selection: {chunks: 4,",
            "selection: {chunks: 3,",
            ":9: methods.jest.selection.chunks: selection.chunks: 3 chunks do not divide",
        ),
        (
            "  jest_topk: {reference: *reference}",
            "  jest_topk: {}",
            ":5: axes.method[2]: method jest_topk needs a reference: set reference or methods.jest_topk.reference",
        ),
    ],
)
def test_method_blocks_are_checked_against_what_each_method_takes(tmp_path: Path, old, new, message):
    path = tmp_path / "grid.yaml"
    path.write_text(BASELINES.format(out=tmp_path / "out").replace(old, new))
    with pytest.raises(ConfigError) as err:
        load_grid(path)
    assert message in str(err.value), str(err.value)


REFERENCE_AXES = """name: data_axis
out: out
base: {data: {pool_size: 512}, batch_size: 32, samples_seen: 1024}
axes:
  method: [clip, fastclip, drrho]
  data.pool_size: [256, 512]
zip:
  - reference.train.data.pool_size: [256, 512, 1024, 2048]
    reference.train.samples_seen: [1024, 2048, 4096, 8192]
reference:
  train: {model: w32-l1, data: {seed: 1}}
"""


def test_a_reference_axis_steers_only_the_methods_that_take_a_reference(tmp_path: Path):
    """4 references × 2 pools: 8 DRRho runs; CLIP and FastCLIP do not multiply (2 runs each, not 8)."""
    grid = tmp_path / "g.yaml"
    grid.write_text(REFERENCE_AXES)
    expansion = load_grid(grid)
    counts = {m: sum(r.method == m for r in expansion.runs) for m in ("clip", "fastclip", "drrho")}
    assert counts == {"clip": 2, "fastclip": 2, "drrho": 8}
    assert [(r.data.pool_size, r.samples_seen, r.data.seed) for r in expansion.references] == [
        (256, 1024, 1),
        (512, 2048, 1),
        (1024, 4096, 1),
        (2048, 8192, 1),
    ]
    steered = [r for r in expansion.runs if r.method == "drrho"]
    assert {(r.data.pool_size, r.reference.run.data.pool_size) for r in steered} == {
        (n, m) for n in (256, 512) for m in (256, 512, 1024, 2048)
    }
    assert {r.reference.run for r in steered} == set(expansion.references)


def test_each_reference_and_each_cache_is_one_task(tmp_path: Path):
    """The DAG trains each reference once and embeds each (reference, pool) once, shared by both models."""
    grid = tmp_path / "g.yaml"
    grid.write_text(REFERENCE_AXES.replace("axes:\n", "axes:\n  model: [w32-l1, w48-l2]\n"))
    tasks = build_tasks(load_grid(grid))
    roles = [t.role for t in tasks]
    assert (roles.count("reference"), roles.count("cache"), roles.count("run")) == (4, 4 * 2, 2 * (2 + 2 + 8))
    assert len({t.id for t in tasks}) == len(tasks)
    caches = {t.id for t in tasks if t.role == "cache"}
    steered = [t for t in tasks if t.role == "run" and t.spec.method == "drrho"]
    assert {t.after[0] for t in steered} == caches  # every cache is used, by a w32-l1 and a w48-l2 run


def test_a_method_block_overrides_the_shared_reference(tmp_path: Path):
    grid = tmp_path / "g.yaml"
    grid.write_text(
        REFERENCE_AXES.replace(" reference.train", " methods.drrho.reference.train")
        + "methods:\n  drrho:\n    reference: {train: {model: w48-l2, data: {seed: 2}}, mode: online}\n"
    )
    steered = [r for r in load_grid(grid).runs if r.method == "drrho"]
    assert len(steered) == 8
    assert {(r.reference.run.model, r.reference.run.data.seed, r.reference.mode) for r in steered} == {
        ("w48-l2", 2, "online")
    }
    assert {r.reference.run.samples_seen for r in steered} == {1024, 2048, 4096, 8192}


def test_a_pretrained_axis_sweeps_several_references(tmp_path: Path):
    grid = tmp_path / "g.yaml"
    grid.write_text(
        "name: p\nout: out\nbase: {model: w32-l1, batch_size: 32}\naxes:\n  method: [clip, drrho]\n"
        "  reference.pretrained: [{model: ViT-B-32, tag: openai}, hf-hub:org/name]\n"
        "reference: {mode: online}\n"
    )
    runs = load_grid(grid).runs
    assert [(r.method, r.reference and (r.reference.model, r.reference.pretrained)) for r in runs] == [
        ("clip", None),
        ("drrho", ("ViT-B-32", "openai")),
        ("drrho", (None, "hf-hub:org/name")),
    ]
