"""The committed design replay (results/design_replay) is what `python -m analysis.replay` regenerates."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from analysis.replay import main

from .test_committed import RESULTS, same

COMMAND = ["--target", "delta-b", "--bootstrap", "1000", "--seed", "0"]  # as results/design_replay/README.md


@pytest.mark.slow
def test_the_design_replay_is_what_its_command_writes(tmp_path: Path):
    committed = RESULTS / "design_replay"
    assert main([str(RESULTS / "cpu_study"), *COMMAND, "--out", str(tmp_path)]) == 0
    ours, theirs = pd.read_csv(tmp_path / "replay.csv"), pd.read_csv(committed / "replay.csv")
    assert ours[["order", "step", "added"]].equals(theirs[["order", "step", "added"]])
    pd.testing.assert_frame_equal(ours, theirs, rtol=1e-6, atol=1e-12)
    same(json.loads((tmp_path / "replay.json").read_text()), json.loads((committed / "replay.json").read_text()))
    assert "--bootstrap 1000 --seed 0" in (committed / "README.md").read_text()
