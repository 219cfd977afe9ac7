"""`python -m scaling.sweep grid.yaml [key=value ...] [--dry-run] [--calibrate] [--executor KIND] [--next FLOPS]`.

Expands a grid into run specs, prints the plan (tasks per role, method and model; FLOPs; estimated device
hours), skips tasks whose records are complete or whose jobs are still in flight, and runs the rest as a DAG:
reference training → reference embedding cache → steered runs. On SLURM that is job arrays with `afterok`
dependencies (submitted, then this returns; `--wait` follows them); locally the same tasks run here in
order with a live progress table. When everything is done, the grid's `analysis:` block is fitted and
plotted. State lives in `<out>/sweep.json` and `<out>/runs/<run_id>/record.json`; see `scaling.status`.
`--next FLOPS` instead chooses the runs that shrink the `--target` interval most within that budget
(analysis.design on the finished records) and writes them as `<out>/next.yaml`. Overrides may follow flags.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scaling.calibrate import calibrate
from scaling.calibrate import load as load_calibration
from scaling.errors import ConfigError, exits_cleanly
from scaling.executors import execute, in_flight, local_slots, resolve_kind
from scaling.grid import Expansion, Grid, load_grid
from scaling.lock import hold
from scaling.plan import Plan, SweepFile, Task, build_tasks, corrupt_records, todo
from scaling.runtime import check_memory, machine_memory_gb
from scaling.status import LiveDisplay, follow, render


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m scaling.sweep", description=__doc__.splitlines()[0])
    parser.add_argument("grid", type=Path, help="grid YAML (see sweeps/smoke.yaml)")
    parser.add_argument("overrides", nargs="*", help="dotted overrides of the grid, e.g. out=/tmp/s axes.seed=[0,1]")
    parser.add_argument("--dry-run", action="store_true", help="print the plan; submit and write nothing")
    parser.add_argument(
        "--executor", choices=("auto", "local", "slurm", "debug"), help="override executor.kind of the grid"
    )
    parser.add_argument("--wait", action="store_true", help="SLURM: follow the jobs to the end, then analyse")
    parser.add_argument("--analyse", action="store_true", help="only fit and plot the finished runs")
    parser.add_argument(
        "--calibrate", action="store_true", help="time a few steps of each model on the executor; plan with them"
    )
    parser.add_argument(
        "--next",
        type=_flops,
        metavar="FLOPS",
        help="choose the next runs within this budget from the finished records (analysis.design): <out>/next.yaml",
    )
    parser.add_argument(
        "--target", default="delta-b", help="with --next: delta-b (default), k@E, paired-ratio or exponent:METHOD"
    )
    return parser.parse_intermixed_args(argv)


def _flops(text: str) -> float:
    """A positive FLOP budget, e.g. 2e13."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"a budget is a positive number of FLOPs, e.g. 2e13, not {text!r}")
    return value


def plan_next(grid: Path, overrides: list[str], budget: float, target: str) -> int:
    """--next: analysis.design on the sweep's records (imported only when asked for); its bad input (no
    finished records, no candidate within the budget) is one line and exit code 2, as the grid's."""
    from analysis.data import InputError
    from analysis.design import sweep_next

    try:
        sweep_next(grid, overrides, budget, target=target)
    except InputError as err:
        raise ConfigError(f"--next: {err}") from None
    return 0


def analyse(grid: Grid, out: Path, run_ids: set[str]) -> dict | None:
    """Fit and plot what the grid's analysis block asks for, on the grid's finished runs: the final evaluation
    of each run, references set aside (analysis.sweep_study). Prints the markdown summary."""
    settings = grid.analysis
    if settings is None:
        return None
    from analysis.data import InputError
    from analysis.sweep_study import sweep_study
    from scaling.records import load

    frame = load(out, status="done")
    frame = frame[frame["run_id"].isin(run_ids)] if not frame.empty else frame
    y = settings.y or next((c for c in frame.columns if c.startswith("zeroshot_error.")), None)
    if frame.empty or y is None:
        print("analysis: skipped, no finished runs with a zero-shot error column (set analysis.y)")
        return None
    try:
        options = settings.fit_options()
        study = sweep_study(
            frame, x=settings.x, y=y, by=settings.by, out=out / "figures", records_dir=Path(grid.out), options=options
        )
    except InputError as err:  # e.g. one method finished so far: the sweep itself still finished
        print(f"analysis: skipped ({err})")
        return None
    print(study.markdown)
    print(f"figures and summary: {out / 'figures'}")
    return study.summary


@exits_cleanly
def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    overrides = [*args.overrides, *([f"executor.kind={args.executor}"] if args.executor else [])]
    if args.next is not None:
        return plan_next(args.grid, overrides, args.next, args.target)
    expansion = load_grid(args.grid, overrides)
    grid = expansion.grid
    out = Path(grid.out).resolve()
    tasks = build_tasks(expansion)
    run_ids = {t.id for t in tasks if t.role == "run"}
    if args.analyse:
        analyse(grid, out, run_ids)
        return 0
    kind = resolve_kind(grid.executor.kind, dry_run=args.dry_run)
    if kind == "slurm":
        check_memory(
            expansion.runs + expansion.references, lambda m: grid.executor.resources_for(m).mem_gb, "executor.mem_gb"
        )
    else:
        check_memory(expansion.runs + expansion.references, lambda m: machine_memory_gb(), "this machine's memory")
    if args.dry_run:
        return submit(expansion, tasks, kind, args)
    with hold(out):  # one orchestrator per out dir: it alone plans, submits and writes sweep.json
        return submit(expansion, tasks, kind, args)


def submit(expansion: Expansion, tasks: list[Task], kind: str, args: argparse.Namespace) -> int:
    """Plan, then run or submit what is not done; tasks still in flight from an earlier (perhaps killed)
    orchestrator are adopted: waited for locally or with --wait, then the analysis runs."""
    grid = expansion.grid
    out = Path(grid.out).resolve()
    run_ids = {t.id for t in tasks if t.role == "run"}
    sweep = SweepFile.create(expansion, out, tasks, kind)
    active = in_flight(sweep)
    pending = todo(tasks, out, skip=set(active))
    slots = local_slots(sweep.executor, kind)
    if args.calibrate and not args.dry_run:
        calibrate(sweep, [t for t in tasks if t.spec is not None], slots)
    plan = Plan(grid.name, out, tasks, pending, sweep.executor, kind, slots, measured=load_calibration(out))
    print("\n".join(plan.lines()))
    if args.calibrate:
        print("calibrated: nothing submitted" if not args.dry_run else "dry run: nothing calibrated")
        return 0
    for err in corrupt_records(tasks, out):
        print(f"  {err}: its run counts as not done")
    if active:
        print(f"  {len(active)} task(s) already queued or running: not submitted again")
    if args.dry_run:
        print("dry run: nothing submitted, nothing written")
        return 0
    if not pending and not active:  # a finished sweep: show its comparison again
        print("nothing to run")
        analyse(grid, out, run_ids)
        return 0
    if not pending:
        print("nothing to run" + (", waiting for the task(s) in flight" if local_waits(kind, args) else ""))
        if not local_waits(kind, args):
            return 0
    failures = execute(sweep, pending, active, LiveDisplay) if pending or kind != "slurm" else {}
    if kind == "slurm":
        if pending:
            print(f"submitted {len(pending)} task(s); follow with: python -m scaling.status {out}")
        if not args.wait:
            return 0
        statuses = follow(sweep)
        print(render(sweep, statuses))
        failures = {s.task.id: s.detail for s in statuses if s.state == "failed"}
    for task_id, line in failures.items():
        print(f"failed {task_id}: {line}")
    if failures:
        print(f"{len(failures)} task(s) failed; fix the cause, then: python -m scaling.status {out} --resubmit-failed")
        return 1
    analyse(grid, out, run_ids)
    return 0


def local_waits(kind: str, args: argparse.Namespace) -> bool:
    """Whether this orchestrator follows the sweep to its end: always locally, on SLURM with --wait."""
    return kind != "slurm" or args.wait


if __name__ == "__main__":
    sys.exit(main())
