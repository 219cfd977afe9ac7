"""Shared fixtures of the sweep tests: the smoke grid run once locally, CLI and SLURM helpers, bounded waits."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from scaling.records import find_records, read_record

REPO = Path(__file__).resolve().parents[2]
SMOKE = REPO / "sweeps" / "smoke.yaml"


def cli(module: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m <module> args...` from the repository root, as a user would type it."""
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


def wait_until(condition: Callable[[], object], timeout: float, every: float = 1.0, what: str = "condition") -> object:
    """Poll `condition` until it returns something truthy; fail the test (never hang CI) after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def metrics(out: Path) -> dict[str, list[dict]]:
    """run id → its evaluations without wall-clock fields: what must match across executors and resumes."""
    found = {}
    for path in find_records(out / "runs"):
        record = read_record(path)
        found[record.run_id] = [e.model_dump(exclude={"wall_s"}) for e in record.evals]
    return found


def job_ids(out: Path) -> dict[str, list[str]]:
    """task id → every job id submitted for it, from sweep.json."""
    jobs = json.loads((out / "sweep.json").read_text())["jobs"]
    return {task: [j["job_id"] for j in history] for task, history in jobs.items()}


def write_csv_pool(directory: Path, n: int = 64) -> Path:
    """A tiny real-data pool: n solid-colour PNGs and a tab-separated CSV (open_clip's filepath/title columns)."""
    from PIL import Image

    colours = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255), "white": (255, 255, 255)}
    directory.mkdir(parents=True, exist_ok=True)
    rows = ["filepath\ttitle"]
    for i in range(n):
        name, rgb = list(colours.items())[i % len(colours)]
        Image.new("RGB", (16, 16), rgb).save(directory / f"{i}.png")
        rows.append(f"{i}.png\ta {name} square")
    path = directory / "pool.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def csv_grid(tmp: Path, csv: Path, kind: str) -> Path:
    """One clip run on a CSV pool that does not exist yet: valid to submit, fails when it runs."""
    grid = tmp / "csv.yaml"
    grid.write_text(
        f"""name: csv
out: {tmp / "out"}
base:
  model: w32-l1
  data: {{source: csv, path: {csv}, eval_path: {csv}, pool_size: 64}}
  batch_size: 32
  samples_seen: 128
evaluation: {{points: 1, size: 32}}
executor: {{kind: {kind}, timeout_min: 5, mem_gb: 2}}
"""
    )
    return grid


@pytest.fixture(scope="session")
def local_smoke(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sweeps/smoke.yaml run to completion on the local executor once per session; returns its output dir."""
    out = tmp_path_factory.mktemp("smoke-local") / "out"
    done = cli("scaling.sweep", SMOKE, f"out={out}", "--executor", "local", timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


@pytest.fixture(scope="session")
def slurm() -> None:
    """Skip unless a real SLURM controller answers (CI starts one with ../shared/slurm/local-up.sh)."""
    from scaling.executors import slurm_available

    if not slurm_available():
        pytest.skip("no SLURM controller answers `scontrol ping` (start one: bash ../shared/slurm/local-up.sh)")
