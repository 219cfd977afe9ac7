"""Learning-rate schedules, and many budgets from one run: warmup-stable-decay (WSD) trunks and their branches.

Hägele et al. 2024 ("Scaling Laws and Compute-Optimal Training Beyond Fixed Training Durations") show that a
constant learning rate followed by a short cooldown matches cosine. So a grid with `schedule: {kind: wsd}`
trains, per configuration (everything but samples_seen), one constant-lr *trunk* up to the largest budget's
fork step, and each budget is a *branch* that starts from the trunk's checkpoint at its fork step
(steps − cooldown·steps) and decays linearly to zero at its own end (open_clip_train's const-cooldown).

A branch is exactly a standalone const-cooldown run with the same absolute warm-up: the batches are a pure
function of (seed, step), the learning rate of (schedule, step), and the trunk's schedule equals every
branch's up to that branch's fork. The trunk evaluates where its branches would before their forks, so a
branch's record is the standalone run's record. The trunk never cooled down: it is no point of any law.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from scaling.spec import RunSpec

if TYPE_CHECKING:
    from scaling.yamlfile import Source

FORK = "fork-{step}.pt"  # a trunk's checkpoint at a fork step, kept after the trunk is done


def warmup_steps(spec: RunSpec) -> int:
    """Absolute warm-up steps: `optim.warmup_steps` (shared by a WSD family), else a fraction of the run."""
    o = spec.optim
    return o.warmup_steps if o.warmup_steps is not None else max(1, round(o.warmup * spec.steps))


def learning_rate(spec: RunSpec, step: int) -> float:
    """open_clip_train's schedules, evaluated as pure functions of the step."""
    from open_clip_train import scheduler

    o, steps = spec.optim, spec.steps
    if o.schedule == "cosine":
        fn = scheduler.cosine_lr(_NoGroups, o.lr, warmup_steps(spec), steps)
    else:
        fn = scheduler.const_lr_cooldown(_NoGroups, o.lr, warmup_steps(spec), steps, round(o.cooldown * steps))
    return fn(step)


class _NoGroups:
    """open_clip's schedulers write the lr into an optimizer; we only want the number."""

    param_groups: tuple = ()


def eval_steps(spec: RunSpec) -> list[int]:
    """Log-spaced evaluation steps ending at the last step (the paper's checkpoints are log-spaced too); a WSD
    trunk evaluates at its branches' steps before their forks instead."""
    if spec.wsd is not None and spec.wsd.forks:
        return list(spec.wsd.evals)
    first = max(1, round(spec.steps * spec.eval.first))
    points = np.geomspace(first, spec.steps, spec.eval.points)
    return sorted({round(p) for p in points} | {spec.steps})


def fork_step(spec: RunSpec) -> int:
    """The step at which a const-cooldown run (a WSD branch) leaves the constant learning rate."""
    return spec.steps - round(spec.optim.cooldown * spec.steps)


def fork_file(run_dir: Path, spec: RunSpec) -> Path:
    """Where a branch's starting state is: its trunk's checkpoint at its fork step (beside run_dir)."""
    return run_dir.parent / spec.wsd.trunk.run_id / FORK.format(step=fork_step(spec))


def is_branch(spec: RunSpec) -> bool:
    return spec.wsd is not None and spec.wsd.trunk is not None


def is_trunk(spec: RunSpec) -> bool:
    return spec.wsd is not None and bool(spec.wsd.forks)


def branch_evals(spec: RunSpec, evals: list[dict]) -> list[dict]:
    """The trunk's evaluations a branch inherits: those at its own evaluation steps up to its fork."""
    mine = set(eval_steps(spec))
    return [e for e in evals if e["step"] in mine and e["step"] <= fork_step(spec)]


def describe(spec: RunSpec) -> dict | None:
    """What a record says about the run's place in a WSD family, for analysis and people."""
    if is_branch(spec):
        trunk = spec.wsd.trunk
        return {"role": "branch", "trunk": trunk.run_id, "fork_step": fork_step(spec), "trunk_steps": trunk.steps}
    if is_trunk(spec):
        return {"role": "trunk", "forks": list(spec.wsd.forks)}
    return None


# -- the grid option ---------------------------------------------------------------------------------------------


class WsdSchedule(BaseModel):
    """`schedule: {kind: wsd, cooldown: 0.2, branches: [0.25, 0.5, 1.0]}` at the top of a grid.

    Without `branches`, the grid's own samples_seen values of a configuration are its branches (how grids are
    written today: a zip of models and budgets). With `branches`, every grid point's samples_seen is a trunk's
    largest budget and each fraction b of it is a branch. `optim.warmup` is a fraction of the largest budget,
    the same absolute steps for every branch of a trunk."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["wsd"]
    cooldown: float = Field(0.2, gt=0, lt=1, description="fraction of each branch's steps spent cooling down")
    branches: list[float] | None = Field(None, min_length=1, description="fractions of samples_seen (0 < b <= 1)")

    @field_validator("branches")
    @classmethod
    def _fractions(cls, value: list[float] | None) -> list[float] | None:
        if value is not None and not all(0 < b <= 1 for b in value):
            raise ValueError(f"branches are fractions of samples_seen in (0, 1], got {value}")
        return value

    def expand(self, runs: tuple[RunSpec, ...], source: Source) -> tuple[RunSpec, ...]:
        """The grid's runs as WSD branches, each carrying its trunk (plan.build_tasks makes it a task)."""
        for spec in runs:
            if spec.optim.schedule != "cosine" or spec.optim.warmup_steps is not None:
                raise source.error(("schedule",), "sets optim.schedule and optim.warmup_steps: remove them")
        families: dict[str, dict[int, RunSpec]] = defaultdict(dict)
        for spec in runs:
            budgets = (
                [spec.samples_seen] if self.branches is None else [round(b * spec.samples_seen) for b in self.branches]
            )
            for samples in budgets:
                member = revised(spec, samples_seen=samples)
                key = member.model_dump_json(exclude={"samples_seen"})
                families[key][samples] = member
        out: list[RunSpec] = []
        for members in families.values():
            out += self.family([members[s] for s in sorted(members)], source)
        return tuple(out)

    def family(self, members: list[RunSpec], source: Source) -> list[RunSpec]:
        """One trunk's branches, shortest first: shared absolute warm-up, constant lr, own cooldown."""
        largest = members[-1]
        warmup = warmup_steps(largest)  # optim.warmup of the largest budget (expand refused warmup_steps)
        optim = {"schedule": "const-cooldown", "cooldown": self.cooldown, "warmup_steps": warmup}
        branches = [revised(m, optim={**m.optim.model_dump(), **optim}) for m in members]
        forks = [fork_step(b) for b in branches]
        if warmup > forks[0]:
            raise source.error(
                ("schedule", "cooldown"),
                f"the warm-up ({warmup} steps, optim.warmup of the largest budget) outlasts the fork of the "
                f"smallest branch ({members[0].describe()}) at step {forks[0]}: lower optim.warmup or the cooldown",
            )
        evals = sorted({e for b, f in zip(branches, forks, strict=True) for e in eval_steps(b) if e <= f})
        trunk = revised(
            branches[-1],
            samples_seen=forks[-1] * largest.batch_size,
            optim={**branches[-1].optim.model_dump(), "cooldown": 0.0},
            wsd={"forks": sorted(set(forks)), "evals": evals},
        )
        return [revised(b, wsd={"trunk": trunk}) for b in branches]


def revised(spec: RunSpec, **fields: object) -> RunSpec:
    """A validated copy with some fields replaced (model_copy would keep the cached run id)."""
    return RunSpec.model_validate({**spec.model_dump(), **fields})


def branch_problem(spec: RunSpec) -> str | None:
    """Why `spec` cannot be a branch of its `wsd.trunk` (RunSpec checks it), else None."""
    trunk = spec.wsd.trunk
    if not is_trunk(trunk):
        return "wsd.trunk: is no WSD trunk (it keeps no forks)"
    if spec.optim.schedule != "const-cooldown" or spec.optim.warmup_steps is None:
        return "wsd.trunk: a branch cools down: it needs optim.schedule const-cooldown and optim.warmup_steps"
    if fork_step(spec) not in trunk.wsd.forks:
        return f"wsd.trunk: keeps no checkpoint at this branch's fork step {fork_step(spec)} ({list(trunk.wsd.forks)})"

    def before_fork(s: RunSpec) -> dict:
        out = s.identity()
        for key in ("samples_seen", "wsd", "eval"):
            out.pop(key, None)
        out["optim"].pop("cooldown")
        return out

    if trunk.optim.cooldown != 0 or before_fork(trunk) != before_fork(spec):
        return "wsd.trunk: trains differently from this branch before its fork (only budget and cooldown may differ)"
    return None
