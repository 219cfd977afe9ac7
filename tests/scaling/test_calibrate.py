"""--calibrate: a few timed steps of each model on the sweep's executor; the plan then uses the measurements."""

from __future__ import annotations

import json
from pathlib import Path

from scaling.calibrate import CalibrationJob, Measured, key, short_run
from scaling.grid import load_grid
from scaling.plan import Plan, build_tasks
from scaling.run import Run
from scaling.spec import parse_spec

from .conftest import SMOKE, cli

REFERENCE = {"checkpoint": "ref.pt", "model": "w32-l1"}


def test_calibrate_times_each_model_on_the_executor_and_the_plan_says_so(tmp_path: Path):
    out = tmp_path / "out"
    result = cli("scaling.sweep", SMOKE, f"out={out}", "axes.method=[clip]", "--calibrate", "--executor", "debug")
    assert result.returncode == 0, result.stderr
    stored = json.loads((out / "calibration.json").read_text())
    assert sorted(m["model"] for m in stored.values()) == ["w32-l1", "w48-l2"]
    assert all(m["startup_s"] > 0 and m["step_s"] > 0 and m["eval_s"] > 0 for m in stored.values())
    assert "2 task(s) timed on this executor by --calibrate" in result.stdout
    assert "calibrated: nothing submitted" in result.stdout and not (out / "runs").exists()


def test_the_plan_estimates_a_run_from_its_start_up_steps_and_evaluations(tmp_path: Path):
    expansion = load_grid(SMOKE, [f"out={tmp_path}", "axes.method=[clip]", "axes.model=[w32-l1]"])
    tasks = build_tasks(expansion)
    executor = expansion.grid.executor.model_copy(update={"kind": "local"})
    (spec,) = (t.spec for t in tasks)
    measured = {key(spec, executor, "local"): Measured(startup_s=10.0, step_s=2.0, eval_s=5.0)}
    plan = Plan("smoke", tmp_path, tasks, tasks, executor, "local", measured=measured)
    expected_h = (10 + spec.steps * 2 + spec.eval.points * 5) / 3600
    assert f"estimate: {expected_h:.3g} CPU-hours" in "\n".join(plan.cost_lines())


def test_a_short_run_keeps_what_sets_the_step_cost():
    steered = next(s for s in load_grid(SMOKE).runs if s.method == "drrho")
    short = short_run(steered.model_copy(update={"precision": "amp_bf16"}))
    assert (short.model, short.batch_size, short.data, short.precision) == (
        steered.model,
        steered.batch_size,
        steered.data,
        "amp_bf16",
    )
    assert short.reference is None and short.steps == 8


def test_a_short_run_of_a_distilling_method_is_plain_clip():
    spec = parse_spec({"method": "drrho_distill", "model": "w32-l1", "batch_size": 32, "reference": REFERENCE})
    short = short_run(spec)
    assert (short.method, short.selection, short.distill, short.steps) == ("clip", None, None, 8)


JEST = {"method": "jest", "model": "w32-l1", "batch_size": 32, "reference": REFERENCE, "data": {"eval_size": 64}}


def test_jest_is_calibrated_apart_from_plain_runs_of_its_model(tmp_path: Path):
    """A JEST step loads and scores a super-batch: its own measurement, never plain CLIP's of the same batch."""
    jest = parse_spec(JEST)
    plain = parse_spec({**JEST, "method": "clip", "reference": None})
    executor = load_grid(SMOKE).grid.executor
    assert key(jest, executor, "local") != key(plain, executor, "local")
    short = short_run(jest)
    assert (short.method, short.selection, short.reference, short.steps) == ("jest", jest.selection, jest.reference, 8)


def test_a_jest_calibration_times_the_scoring_of_each_super_batch(monkeypatch):
    jest = parse_spec(JEST)
    scored = []
    select = Run.select

    def counted(self, step, batch, reference):
        scored.append(len(batch))
        return select(self, step, batch, reference)

    monkeypatch.setattr(Run, "select", counted)
    figures = CalibrationJob(jest, threads=1)()
    assert scored == [jest.loaded_batch_size] * 8  # warm-up + timed steps, each on a whole super-batch
    assert all(figures[name] > 0 for name in ("startup_s", "step_s", "eval_s"))
