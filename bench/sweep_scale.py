"""Sweep scale: expand + validate a 10,000-point grid (goal < 2 s), then submit 500 one-step runs to a real
SLURM as job arrays, read their states once, and cancel them.

    python bench/sweep_scale.py                  # both parts (the SLURM part is skipped without a controller)
    python bench/sweep_scale.py --dry-submit     # submit the 500 runs held (never started), then cancel
    python bench/sweep_scale.py --submit 0       # expansion only
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from scaling.executors import cancel, job_infos, slurm_available, submit_slurm
from scaling.grid import load_grid
from scaling.plan import SweepFile, build_tasks, todo

GOAL_S = 2.0
BIG = """name: big
out: {out}
base: {{batch_size: 32, data: {{eval_size: 200}}}}
axes:                                   # 5 x 2 x 5 x 10 x 10 x 2 = 10,000 runs
  model: [w32-l1, w48-l2, w64-l2, w96-l3, w128-l4]
  method: [clip, drrho]
  data.pool_size: [1000, 2000, 4000, 8000, 16000]
  samples_seen: [1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000, 256000, 512000]
  seed: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
  optim.lr: [1.0e-3, 2.0e-3]
methods:
  drrho: {{reference: {{train: {{model: w64-l2, samples_seen: 8000, data: {{seed: 1, pool_size: 4000}}}}}}}}
"""
ONE_STEP = """name: bench
out: {out}
base: {{model: w32-l1, batch_size: 32, samples_seen: 32, data: {{pool_size: 64}}}}
axes: {{seed: {seeds}}}
evaluation: {{points: 1, size: 32}}
executor: {{kind: slurm, timeout_min: 5, mem_gb: 1, array_parallelism: 2}}
"""


def expand(tmp: Path, repeats: int = 3) -> None:
    grid = tmp / "big.yaml"
    grid.write_text(BIG.format(out=tmp / "big"))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        runs = len(load_grid(grid).runs)
        times.append(time.perf_counter() - start)
    first, best = times[0], min(times)
    print(f"expand + validate {runs:,} runs: first {first:.2f} s, best of {repeats} {best:.2f} s")
    print(f"  goal < {GOAL_S:g} s: first at {first / GOAL_S:.2f}x the goal, best at {best / GOAL_S:.2f}x")


def submit(tmp: Path, n: int, held: bool) -> None:
    grid = tmp / "one_step.yaml"
    grid.write_text(ONE_STEP.format(out=tmp / "bench", seeds=list(range(n))))
    start = time.perf_counter()
    expansion = load_grid(grid, ["executor.sbatch.hold=true"] if held else [])
    tasks = build_tasks(expansion)
    sweep = SweepFile.create(expansion, tmp / "bench", tasks, "slurm")
    pending = todo(tasks, sweep.out)
    planned = time.perf_counter()
    submitted = submit_slurm(sweep, pending, {})
    done = time.perf_counter()
    arrays = sorted({job.split("_")[0] for job in submitted.values()})
    print(f"submit {len(submitted)} runs{' (held)' if held else ''} as {len(arrays)} array(s) {', '.join(arrays)}:")
    print(f"  expand + skip-done check {planned - start:.2f} s, submission {done - planned:.2f} s")
    start = time.perf_counter()
    infos = job_infos(sweep)
    states = sorted({info.state for info in infos.values()})
    print(f"  states of all {len(infos)} jobs (squeue + sacct): {time.perf_counter() - start:.2f} s, seen {states}")
    start = time.perf_counter()
    cancelled = cancel(sweep, infos)
    print(f"  cancel {len(cancelled)} jobs: {time.perf_counter() - start:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submit", type=int, default=500, help="runs to submit to SLURM (0: skip)")
    parser.add_argument("--dry-submit", action="store_true", help="submit held jobs: measures submission only")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sweep_scale_") as tmp:
        expand(Path(tmp))
        if args.submit and not slurm_available():
            print("submit: skipped, no SLURM controller answers `scontrol ping`")
        elif args.submit:
            submit(Path(tmp), args.submit, args.dry_submit)


if __name__ == "__main__":
    main()
