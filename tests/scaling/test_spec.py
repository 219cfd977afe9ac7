"""RunSpec: validated, method defaults resolved, hashed to a stable id; bad input names the field."""

import subprocess
import sys

import pytest

from scaling.errors import ConfigError
from scaling.spec import RunSpec, load_spec, parse_spec

TINY = {"model": "w32-l1", "samples_seen": 640, "batch_size": 32, "data": {"pool_size": 256}}


def test_run_id_is_stable_and_defaults_are_resolved():
    implicit = parse_spec({**TINY, "method": "fastclip"})
    explicit = parse_spec({**TINY, "method": "fastclip", "loss": {"tau": 0.07, "learn_tau": True, "eps": 1e-14}})
    assert implicit.run_id == explicit.run_id
    assert len(implicit.run_id) == 12
    assert parse_spec({**TINY, "seed": 1}).run_id != parse_spec(TINY).run_id


REF = {"checkpoint": "ref.pt", "model": "w32-l1"}


@pytest.mark.parametrize(
    ("method", "run_id"),  # the ids these specs had before selection and distill joined RunSpec
    [("clip", "d4551573bec6"), ("fastclip", "41d7cba17ae3"), ("drrho", "2658fdb0d59d")],
)
def test_run_ids_of_earlier_methods_did_not_change(method, run_id):
    data = {"pool_size": 512, "eval_size": 128, "caption_noise": 0.2}
    reference = {"run": {"model": "w32-l1", "samples_seen": 256, "batch_size": 32, "data": {**data, "seed": 3}}}
    spec = {"method": method, "model": "w32-l1", "samples_seen": 320, "batch_size": 32, "data": data}
    assert parse_spec({**spec, **({"reference": reference} if method == "drrho" else {})}).run_id == run_id


def test_selection_and_distill_options_default_for_the_methods_that_take_them():
    jest = parse_spec({**TINY, "method": "jest", "reference": REF})
    assert jest.selection.rule == "sample" and jest.selection.filter_ratio == 0.8 and jest.distill is None
    assert parse_spec({**TINY, "method": "jest_topk", "reference": REF}).selection.rule == "greedy"
    kd = parse_spec({**TINY, "method": "drrho_distill", "reference": REF})
    assert kd.distill.weight == 1.0 and kd.selection is None
    assert (kd.loss.tau, kd.loss.learn_tau) == (0.01, False)  # its base loss's defaults: DRRho's recipe
    fast = parse_spec({**TINY, "method": "jest", "reference": REF, "selection": {"base_loss": "fastclip"}})
    assert (fast.base_loss, fast.loss.eps) == ("fastclip", 1e-14)
    assert "selection" not in kd.identity() and "distill" in kd.identity() and "distill" not in jest.identity()


def test_jest_counts_loaded_examples_as_samples_seen_unless_told_otherwise():
    loaded = parse_spec({**TINY, "method": "jest", "reference": REF})
    assert (loaded.loaded_batch_size, loaded.samples_per_step, loaded.steps) == (160, 160, 4)
    trained = parse_spec({**TINY, "method": "jest", "reference": REF, "selection": {"samples_seen_counts": "trained"}})
    assert (trained.loaded_batch_size, trained.samples_per_step, trained.steps) == (160, 32, 20)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"method": "clip", "selection": {}}, "selection: method 'clip' does not select examples"),
        ({"method": "drrho", "reference": REF, "distill": {}}, "distill: method drrho does not distill"),
        ({"method": "jest_topk", "reference": REF, "selection": {"rule": "sample"}}, "selection.rule: method"),
        ({"method": "jest", "reference": REF, "selection": {"chunks": 3}}, "selection.chunks: 3 chunks do not divide"),
        ({"method": "jest", "reference": REF, "selection": {"filter_ratio": 0.7}}, "selection.filter_ratio: a batch"),
        ({"method": "clip_distill"}, "reference: method clip_distill needs a reference"),
        ({"method": "fastclip", "reference": REF}, "reference: method fastclip takes no reference"),
        ({"method": "jest", "reference": REF, "batch_size": 64}, r"a super-batch of 320\) is larger than data.pool"),
        ({"method": "jest", "reference": REF, "samples_seen": 100}, r"smaller than one step \(160\)"),
    ],
)
def test_method_options_are_refused_on_one_line_naming_the_field(change, message):
    with pytest.raises(ConfigError, match=message) as err:
        parse_spec({**TINY, **change})
    assert "\n" not in str(err.value)


def test_drrho_defaults_follow_the_official_recipe():
    spec = parse_spec({**TINY, "method": "drrho", "reference": {"checkpoint": "ref.pt", "model": "w32-l1"}})
    assert (spec.loss.tau, spec.loss.learn_tau, spec.loss.eps, spec.loss.gamma) == (0.01, False, 1e-4, 1.0)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"model": "w999-l9"}, "model"),
        ({"batch_size": 512}, "batch_size"),
        ({"method": "drrho"}, "reference"),
        ({"optim": {"lr": -1}}, "optim.lr"),
        ({"optimiser": {}}, "optimiser"),
        ({"data": {"pool_size": 0}}, "data.pool_size"),
        ({"data": {"source": "csv"}}, "data.path"),
        ({"data": {"source": "csv", "path": "x.csv", "caption_noise": 0.1}}, "data.caption_noise"),
    ],
)
def test_bad_input_names_the_field(change, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        parse_spec({**TINY, **change})


def test_overrides_keep_yaml_types(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("model: w32-l1\nsamples_seen: 640\nbatch_size: 32\ndata: {pool_size: 256}\n")
    spec = load_spec(path, ["optim.lr=1e-3", "eval.points=3"])
    assert spec.optim.lr == 1e-3 and spec.eval.points == 3


def test_cli_rejects_bad_input_with_one_line_and_exit_2(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("model: w32-l1\nbatch_size: 40000\n")
    proc = subprocess.run(
        [sys.executable, "-m", "scaling.train", str(path)], capture_output=True, text=True, cwd=tmp_path
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "batch_size" in proc.stderr
    assert not (tmp_path / "outputs").exists()


def test_missing_file_is_a_clean_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_spec(tmp_path / "nope.yaml")


def test_defaults_make_a_valid_run():
    assert RunSpec().model == "w64-l2"


RUN = "model: w32-l1\nsamples_seen: 640\nbatch_size: 32\ndata: {pool_size: 256}\n"


@pytest.mark.parametrize(
    ("content", "overrides", "expected"),
    [
        (RUN + "batch_size: 64\n", [], ["run.yaml:5: batch_size: duplicate key (first given at line 3)"]),
        (RUN.encode("utf-16"), [], ["run.yaml:1: not UTF-8 text"]),
        (RUN.replace("640", "6\x0040"), [], ["run.yaml:2: contains a NUL byte"]),
        (RUN, ["seed=["], ["override seed=[: not valid YAML"]),
        (RUN, ["seed=1.0e+23"], ["override seed=1.0e+23: seed: Unable to parse input string as an integer"]),
        (RUN, ["optim.lr=.inf"], ["override optim.lr=.inf: optim.lr: Input should be a finite number"]),
        (
            RUN,
            ["data.pool_size=100000000000", "batch_size=1000000000", "samples_seen=1000000000000"],
            ["batch_size: 1000000000 is too large"],
        ),
        (RUN, ["batch_size=1024"], ["override batch_size=1024: batch_size 1024 is larger than data.pool_size 256"]),
        (
            RUN.replace("32", "thirty") + "eval: {points: 0}\n",
            [],
            ["run.yaml:3: batch_size: Input should be a valid integer", "run.yaml:5: eval.points: Input should be"],
        ),
    ],
    ids=["duplicate", "utf-16", "nul", "override-[", "override-seed", "override-lr", "memory", "whole-spec", "two"],
)
def test_bad_run_files_and_overrides_exit_2_with_one_line_each(tmp_path, capsys, content, overrides, expected):
    from scaling.train import main

    path = tmp_path / "run.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(SystemExit) as exited:
        main([str(path), *overrides, "--out", str(tmp_path / "out")])
    lines = capsys.readouterr().err.splitlines()
    assert exited.value.code == 2 and len(lines) == len(expected), lines
    for line, fragment in zip(lines, expected, strict=True):
        assert line.startswith("error: ") and fragment in line, (line, fragment)
    assert not (tmp_path / "out").exists()
