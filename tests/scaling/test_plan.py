"""The plan's cost: a local sweep's wall time, scheduled as the local driver runs its tasks."""

from __future__ import annotations

from pathlib import Path

import pytest

from scaling.calibrate import Measured, key
from scaling.grid import load_grid
from scaling.plan import Plan, Task, build_tasks, duration, local_wall_s

from .conftest import SMOKE


def task(name: str, *after: str) -> Task:
    return Task(id=name, role="run", after=after)


SECONDS = {"reference": 10.0, "cache": 2.0, "clip-1": 5.0, "clip-2": 5.0, "drrho": 5.0}
TASKS = [task("reference"), task("cache", "reference"), task("clip-1"), task("clip-2"), task("drrho", "cache")]


@pytest.mark.parametrize(
    ("parallel", "wall"),
    [
        (1, 27.0),  # one after the other
        (2, 17.0),  # the CLIP runs beside the reference; cache at 10, DRRho at 12
        (5, 17.0),  # the reference → cache → DRRho chain bounds it
    ],
)
def test_local_wall_time_follows_the_drivers_order_slots_and_dependencies(parallel: int, wall: float):
    assert local_wall_s(TASKS, SECONDS, parallel) == wall


def test_a_task_outside_the_list_is_done_and_one_without_a_time_is_instant():
    assert local_wall_s([task("drrho", "cache-built-earlier"), task("unknown")], {"drrho": 5.0}, 1) == 5.0


def test_a_calibrated_local_plan_states_its_wall_time(tmp_path: Path):
    expansion = load_grid(SMOKE, [f"out={tmp_path}", "axes.method=[clip]", "executor.kind=local"])
    tasks = build_tasks(expansion)
    executor = expansion.grid.executor
    measured = {key(t.spec, executor, "local"): Measured(startup_s=1.0, step_s=0.5, eval_s=2.0) for t in tasks}
    plan = Plan("smoke", tmp_path, tasks, tasks, executor, "local", local_slots=(1, 1), measured=measured)
    wall = sum(1.0 + t.spec.steps * 0.5 + t.spec.eval.points * 2.0 for t in tasks)  # one at a time
    assert f"about {duration(wall)} of wall time here" in "\n".join(plan.cost_lines())


@pytest.mark.parametrize(("seconds", "shown"), [(4.2, "4 s"), (89, "89 s"), (804, "13.4 min"), (9000, "2.5 h")])
def test_a_duration_is_shown_in_the_unit_a_person_reads_it_in(seconds: float, shown: str):
    assert duration(seconds) == shown
