"""Choosing the next runs: informative candidates win, costs follow the axes, the CLI writes a valid sweep."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis.data import InputError
from analysis.design import candidate_table, get_target, main, score_candidates, seed_noise
from analysis.study import FitOptions, Study

REPO = Path(__file__).resolve().parents[2]


def power_study(noise: float = 0.03, seed: int = 0) -> Study:
    """E = 5·C^-0.1 on samples 1..8 (×1e9 FLOPs per sample), two seeds each: a known law, known seed noise."""
    rng = np.random.default_rng(seed)
    samples = np.repeat([1, 2, 4, 8], 2)
    x = 1e9 * samples
    error = 5 * x**-0.1 * np.exp(rng.normal(0, noise, x.size))
    table = pd.DataFrame({"samples": samples, "seed": np.tile([0, 1], 4), "flops": x, "error": error})
    options = FitOptions(frontier="all", config=("samples",), draws=200)
    return Study.of(table, "flops", "error", options=options)


def test_extending_the_range_beats_repeating_the_centre_for_an_exponent():
    """At equal cost, a point beyond the range has more leverage on a slope than a repeat of a middle point
    (OLS: var(b) ∝ 1 / Σ(ln x − mean)²), so the design must rank it first."""
    study = power_study()
    candidates = pd.DataFrame({"samples": [16, 2], "x:None": [16e9, 2e9], "cost": [1.0, 1.0]})
    table = score_candidates(study, get_target("exponent", study.levels), candidates, outcomes=16)
    assert table["samples"].tolist() == [16, 2]
    extend, repeat = table["reduction"]
    assert extend > 0.2 * table["width_now"].iloc[0]  # a fifth of the interval or more
    assert extend > 5 * abs(repeat)  # the repeat barely moves it (seeds of a configuration are averaged)


def test_candidates_extend_numeric_axes_one_step_with_compute_from_the_axes():
    study = power_study()
    table = candidate_table(study)
    assert table["samples"].tolist() == [16]  # every cell is run: the one step beyond 8
    assert table["x:None"].iloc[0] == pytest.approx(16e9, rel=1e-9)  # log-linear in samples: exact here
    assert seed_noise(study) == pytest.approx(0.03, rel=0.6)


def test_unknown_target_is_an_input_error():
    with pytest.raises(InputError, match="unknown --target 'delta-b' \\(two levels"):
        get_target("delta-b", [None])


def test_cli_on_the_cpu_study_writes_a_sweep_the_grid_loader_accepts(tmp_path, capsys):
    from scaling.grid import load_grid

    out = tmp_path / "next.yaml"
    args = [str(REPO / "results/cpu_study"), "--target", "delta-b", "--budget", "2e13", "--out", str(out)]
    code = main([*args, "--grid", str(REPO / "sweeps/cpu_study.yaml"), "--bootstrap", "50", "--outcomes", "4"])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "4 simulated outcomes x 50 bootstrap draws" in printed
    document = yaml.safe_load(out.read_text())
    assert "analysis" not in document and document["name"] == "cpu_study-next"
    expansion = load_grid(out)
    assert {r.method for r in expansion.runs} == {"clip", "drrho"}
    assert sum(r.samples_seen * 0 + 1 for r in expansion.runs) == 2 * len(document["zip"][0]["model"])
    assert main([*args, "--budget", "1"]) == 2
    assert "no candidate fits the budget" in capsys.readouterr().err


def cpu_study() -> Study:
    from analysis.records import load_records, prepare_study

    data = prepare_study(load_records(REPO / "results/cpu_study"))
    options = FitOptions(config=tuple(data.config), draws=50)
    return Study.of(data.runs, "compute_target", "zeroshot_error.colour_shape", by="method", options=options)


def test_candidates_from_a_grid_are_its_unrun_cells_priced_by_the_plan(tmp_path):
    """A grid that adds a bigger model (w128-l4): its cells are candidates, their FLOPs the plan's."""
    from analysis.design import grid_candidates
    from scaling.models import model_stats

    grid = yaml.safe_load((REPO / "sweeps/cpu_study.yaml").read_text())
    grid["zip"] = [{"model": ["w64-l2", "w128-l4"], "samples_seen": [204800, 51200], "seed": [0, 0]}]
    path = tmp_path / "bigger.yaml"
    path.write_text(yaml.safe_dump(grid))
    table = grid_candidates(cpu_study(), path)
    assert table[["model", "samples_total"]].values.tolist() == [["w128-l4", 51200]]  # w64-l2 at 204800 is run
    flops = 51200 * model_stats("w128-l4").flops_train_per_sample
    assert table["x:clip"].iloc[0] == pytest.approx(flops) and table["cost"].iloc[0] == pytest.approx(2 * flops)


def test_cli_on_any_csv_lists_the_chosen_configurations(tmp_path, capsys):
    out = tmp_path / "next.yaml"
    csv = REPO / "results/paper/data/drrho_scaling_imagenet.csv"
    columns = ["--x", "compute_gflops", "--y", "imagenet_top1", "--y-transform", "error-from-acc-pct"]
    args = [str(csv), *columns, "--by", "method", "--pair-on", "arch", "samples_seen", "--target", "k@0.3"]
    assert main([*args, "--budget", "1e12", "--bootstrap", "50", "--outcomes", "4", "--out", str(out)]) == 0
    chosen = yaml.safe_load(out.read_text())["configurations"]
    assert chosen and set(chosen[0]) == {"arch", "samples_seen"}
    assert "target k@0.3" in capsys.readouterr().out
