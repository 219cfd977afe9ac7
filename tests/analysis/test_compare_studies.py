"""Two sweeps of one grid: the second's laws against the first's intervals, also on the configurations it
finished (a sweep cut short), and what each cost."""

from __future__ import annotations

import json
import shutil

import pytest

from analysis.compare_studies import compare_studies, main, points
from analysis.study import FitOptions
from analysis.sweep_study import sweep_study

from .synthetic_records import write_sweep


@pytest.fixture(scope="module")
def two_sweeps(tmp_path_factory):
    """A synthetic sweep, and the same runs but the largest model's (a sweep cut short), each analysed."""
    root = tmp_path_factory.mktemp("two")
    first, second = root / "first", root / "second"
    write_sweep(first)
    shutil.copytree(first, second)
    for record in (second / "runs").glob("*/record.json"):
        if json.loads(record.read_text())["spec"]["model"] == "w96-l3":
            shutil.rmtree(record.parent)
    for sweep in (first, second):
        sweep_study(sweep, options=FitOptions(draws=200), out=sweep / "figures")
    return first, second


def test_the_second_study_is_checked_against_the_first_and_its_refit_on_the_same_configurations(two_sweeps, tmp_path):
    first, second = two_sweeps
    result = compare_studies(first, second, tmp_path, ("first", "second"))
    assert [r["quantity"] for r in result["full"]["rows"][:5]] == [
        "a (clip)",
        "b (clip)",
        "a (drrho)",
        "b (drrho)",
        "Δb (exponent difference)",
    ]
    refit = result["same_configurations"]["rows"]  # the same runs fitted the same way: the same numbers
    assert all(row["inside"] and row["other"] == pytest.approx(row["base"]) for row in refit)
    assert {tuple(key)[1] for key in result["missing"]} == {"w96-l3"}
    assert points(second) <= points(first)
    same = result["cost"]["first (same configurations)"]
    assert same["target_flops"] == pytest.approx(result["cost"]["second"]["target_flops"])  # same runs, same FLOPs
    assert same["target_flops"] < result["cost"]["first"]["target_flops"]
    assert json.loads((tmp_path / "comparison.json").read_text())["labels"] == ["first", "second"]
    assert "### Against first (same configurations)" in (tmp_path / "comparison.md").read_text()
    assert (tmp_path / "comparison.png").stat().st_size > 0


def test_a_sweep_without_a_summary_is_one_line_and_status_2(tmp_path, capsys):
    assert main([str(tmp_path), str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "summary.json' does not exist" in err
