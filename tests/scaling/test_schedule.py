"""WSD: one constant-lr trunk, cooldown branches forked from it, each exactly a standalone run."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from scaling import records
from scaling.errors import ConfigError
from scaling.grid import load_grid
from scaling.plan import build_tasks, task_flops
from scaling.run import run
from scaling.schedule import FORK, fork_step, learning_rate, revised
from tests.scaling.test_run import Crash, crash_at

GRID = """\
name: wsd
out: {out}
base:
  model: w32-l1
  batch_size: 32
  data: {{pool_size: 320, eval_size: 128, caption_noise: 0.2}}
  optim: {{warmup: 0.1}}
axes:
  samples_seen: [384, 768]
schedule: {{kind: wsd, cooldown: 0.25}}
evaluation: {{points: 3}}
"""


def tasks_of(tmp_path: Path, grid: str = GRID, **fields: str):
    path = tmp_path / "grid.yaml"
    path.write_text(grid.format(out=tmp_path / "out", **fields))
    return build_tasks(load_grid(path))


def weights(out: Path, run_id: str) -> dict[str, torch.Tensor]:
    return torch.load(records.run_dir(out, run_id) / "model.pt", weights_only=True)


def evals(out: Path, run_id: str) -> list[dict]:
    return [e.model_dump(exclude={"wall_s"}) for e in records.read_record(records.run_dir(out, run_id)).evals]


@pytest.fixture(scope="module")
def family(tmp_path_factory):
    """The trunk and its two branches trained under `wsd/`, and each branch alone (no trunk) under `alone/`."""
    root = tmp_path_factory.mktemp("family")
    trunk, *branches = tasks_of(root)
    for task in (trunk, *branches):
        run(task.spec, root / "wsd", progress=False)
    alone = [revised(b.spec, wsd=None) for b in branches]
    for spec in alone:
        run(spec, root / "alone", progress=False)
    return root, trunk.spec, [b.spec for b in branches], alone


def test_a_grid_schedule_makes_one_trunk_and_a_branch_per_budget(tmp_path):
    trunk, *branches = tasks_of(tmp_path)
    assert trunk.role == "trunk" and [b.role for b in branches] == ["run", "run"]
    assert [b.after for b in branches] == [(trunk.id,), (trunk.id,)]
    assert [b.spec.steps for b in branches] == [12, 24]
    assert [fork_step(b.spec) for b in branches] == [9, 18]  # a quarter of each branch cools down
    assert trunk.spec.steps == 18 and trunk.spec.wsd.forks == (9, 18)
    assert {b.spec.optim.warmup_steps for b in branches} == {trunk.spec.optim.warmup_steps} == {2}  # 10 % of 24
    flops = trunk.spec.samples_seen / trunk.spec.steps * records_flops(trunk)
    assert task_flops(trunk) + sum(task_flops(b) for b in branches) == pytest.approx(flops * (18 + 3 + 6))


def records_flops(task) -> float:
    from scaling.models import model_stats

    return model_stats(task.spec.model).flops_train_per_sample


def test_every_branch_follows_the_trunks_learning_rate_until_its_fork_then_cools_to_zero(tmp_path):
    trunk, *branches = tasks_of(tmp_path)
    for branch in branches:
        spec, fork = branch.spec, fork_step(branch.spec)
        assert [learning_rate(spec, s) for s in range(fork)] == [learning_rate(trunk.spec, s) for s in range(fork)]
        cooldown = [learning_rate(spec, s) for s in range(fork, spec.steps + 1)]
        assert cooldown[0] == spec.optim.lr and cooldown[-1] == 0 and cooldown == sorted(cooldown, reverse=True)


def test_a_branch_is_bitwise_the_standalone_run_with_the_same_schedule(family):
    root, trunk, branches, alone = family
    for branch, single in zip(branches, alone, strict=True):
        a, b = weights(root / "wsd", branch.run_id), weights(root / "alone", single.run_id)
        assert all(torch.equal(a[k], b[k]) for k in a)
        assert evals(root / "wsd", branch.run_id) == evals(root / "alone", single.run_id)  # compute included
        record = records.read_record(records.run_dir(root / "wsd", branch.run_id))
        assert record.wsd == {
            "role": "branch",
            "trunk": trunk.run_id,
            "fork_step": fork_step(branch),
            "trunk_steps": 18,
        }
        assert 0 < record.throughput["trunk_wall_s"] < record.throughput["train_wall_s"]  # the cooldown's time apart
    trunk_dir = records.run_dir(root / "wsd", trunk.run_id)
    assert records.read_record(trunk_dir).wsd == {"role": "trunk", "forks": [9, 18]}
    assert sorted(p.name for p in trunk_dir.glob("fork-*.pt")) == ["fork-18.pt", "fork-9.pt"]


@pytest.mark.parametrize("which, at", [("trunk", 10), ("branch", 21)])
def test_a_killed_trunk_or_branch_resumes_to_the_same_result(tmp_path, monkeypatch, family, which, at):
    root, trunk, branches, _ = family
    out = tmp_path / "out"
    if which == "branch":
        run(trunk, out, progress=False)
    spec = trunk if which == "trunk" else branches[1]
    crash_at(monkeypatch, at)
    with pytest.raises(Crash):
        run(spec, out, checkpoint_every_steps=4, progress=False)
    monkeypatch.undo()
    assert run(spec, out, progress=False).status == "done"
    assert evals(out, spec.run_id) == evals(root / "wsd", spec.run_id)
    a, b = weights(out, spec.run_id), weights(root / "wsd", spec.run_id)
    assert all(torch.equal(a[k], b[k]) for k in a)
    if which == "trunk":  # the fork at step 9 was written before the kill, the one at 18 after the resume
        for step in (9, 18):
            name = FORK.format(step=step)
            fresh, kept = records.run_dir(out, spec.run_id) / name, records.run_dir(root / "wsd", spec.run_id) / name
            a, b = (torch.load(path, weights_only=True) for path in (fresh, kept))  # their wall times differ
            assert a["state"]["step"] == step and all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])


def test_a_branch_without_its_trunk_fails_naming_the_missing_checkpoint(tmp_path):
    _, branch, _ = tasks_of(tmp_path)
    with pytest.raises(FileNotFoundError, match=f"WSD branch {branch.id}: no intact trunk checkpoint .*fork-9.pt"):
        run(branch.spec, tmp_path / "out", progress=False)


@pytest.mark.parametrize(
    "edit, message",
    [
        ("{kind: wsd, cooldown: 0.25}", None),
        ("{kind: wsd, cooldown: 1.5}", "schedule.cooldown: Input should be less than 1"),
        (
            "{kind: wsd, branches: [0.5, 2]}",
            "schedule.branches: branches are fractions of samples_seen in (0, 1], got [0.5, 2.0]",
        ),
        ("{kind: cosine}", "schedule.kind: Input should be 'wsd'"),
        ("{kind: wsd, cooldown: 0.9}", "schedule.cooldown: the warm-up (2 steps, optim.warmup of the"),
    ],
)
def test_a_bad_schedule_is_one_line_naming_the_field(tmp_path, edit, message):
    grid = GRID.replace("{{kind: wsd, cooldown: 0.25}}", edit.replace("{", "{{").replace("}", "}}"))
    if message is None:
        assert len(tasks_of(tmp_path, grid)) == 3
        return
    with pytest.raises(ConfigError) as err:
        tasks_of(tmp_path, grid)
    assert str(err.value).startswith(f"{tmp_path / 'grid.yaml'}:10: {message}") and "\n" not in str(err.value)


def test_branches_as_fractions_of_each_grid_budget(tmp_path):
    grid = GRID.replace("[384, 768]", "[768]").replace("cooldown: 0.25", "cooldown: 0.25, branches: [0.5, 1.0]")
    trunk, *branches = tasks_of(tmp_path, grid)
    assert [b.spec.samples_seen for b in branches] == [384, 768] and trunk.spec.wsd.forks == (9, 18)
