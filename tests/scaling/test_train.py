"""`python -m scaling.train sweeps/default_run.yaml method=<m>` runs every method of the baselines table, the way
the README tells a user to: a reference for the methods that read one is a finished run's directory."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scaling.methods import METHODS

ROOT = Path(__file__).resolve().parents[2]
TINY = ["model=w32-l1", "batch_size=32", "data.pool_size=320", "data.eval_size=64", "eval.points=1"]


def train(out: Path, *overrides: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "scaling.train", "sweeps/default_run.yaml", *TINY, *overrides]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([*cmd, "--out", str(out), "--no-progress"], cwd=ROOT, capture_output=True, text=True, env=env)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """A CLIP run on another pool (data.seed=1), as a user would train one to steer with."""
    out = tmp_path_factory.mktemp("reference")
    proc = train(out, "data.seed=1", "samples_seen=320")
    assert proc.returncode == 0, proc.stderr[-2000:]
    return next((out / "runs").iterdir())


@pytest.mark.slow  # one process start per method
@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_of_the_baselines_table_trains_from_the_command_line(tmp_path, reference, method):
    with_reference = [f"reference.checkpoint={reference}"] if METHODS[method].needs_reference else []
    proc = train(tmp_path, f"method={method}", "samples_seen=320", *with_reference)
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads(next((tmp_path / "runs").iterdir()).joinpath("record.json").read_text())
    last = record["evals"][-1]
    assert record["status"] == "done" and record["spec"]["method"] == method
    selects = METHODS[method].selects  # JEST: 320 loaded = 2 super-batches of 160, 32 trained from each
    assert (last["samples_loaded"], last["samples_trained"]) == ((320, 64) if selects else (320, 320))
    assert (record["reference"] is not None) == METHODS[method].needs_reference


def test_a_method_that_needs_a_reference_says_how_to_give_one(tmp_path):
    proc = train(tmp_path, "method=jest")
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith(
        "reference: method jest needs a reference (reference.run, .checkpoint or .pretrained)"
    ), proc.stderr
