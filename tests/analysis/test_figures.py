"""`figures paper` on the committed data: every file of the set, the summary, the markdown tables."""

import json

import pytest

from analysis.figures import main
from analysis.report import markdown_table

from .common import PAPER_DATA

FIGURES = ("scaling", "extrapolation", "residuals", "multiplier", "bootstrap", "isoflop", "learning_curves")


@pytest.fixture(scope="module")
def paper_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("paper")
    assert main(["paper", "--out", str(out), "--data", str(PAPER_DATA), "--bootstrap", "200"]) == 0
    return out


def test_paper_figure_set_is_written(paper_out):
    for name in FIGURES:
        for suffix in (".png", ".pdf"):
            assert (paper_out / f"imagenet_{name}{suffix}").stat().st_size > 1000
    for suffix in (".png", ".pdf"):
        assert (paper_out / f"baselines{suffix}").stat().st_size > 1000


def test_paper_summary_has_laws_comparison_and_checks(paper_out):
    summary = json.loads((paper_out / "imagenet_summary.json").read_text())
    laws = {row["level"]: row for row in summary["laws"]}
    assert laws["OpenCLIP"]["params"]["a"]["value"] == pytest.approx(5.7726, abs=1e-3)
    assert laws["DRRho-CLIP"]["params"]["b"]["ci"][0] < -0.127 < laws["DRRho-CLIP"]["params"]["b"]["ci"][1]
    assert summary["printed_laws"]["DRRho-CLIP"] == {"a": 7.15, "b": -0.127}
    assert [row["target"] for row in summary["multiplier"]] == [0.35, 0.3, 0.25, 0.2]
    assert {"exponent", "paired_ratio", "extrapolation", "leave_one_out", "data_efficiency"} <= set(summary)
    rules = {row["rule"] for row in summary["selection_sensitivity"]}
    assert rules == {"running-min", "all", "bins:5", "pareto-bin"}
    assert summary["figures"]["scaling"] == ["imagenet_scaling.png", "imagenet_scaling.pdf"]


def test_baselines_markdown(paper_out):
    text = (paper_out / "baselines.md").read_text()
    assert "### ImageNet-1K zero-shot top-1 (%)" in text and "### DataComp 38-task average (%)" in text
    assert "| DRRho-CLIP | 68.84 | 69.19 | 68.69 |" in text
    assert "| DRRho-CLIP (w/ Distill.) | 55.20 | 57.17 | 56.29 |" in text


def test_markdown_table_formats_floats_only():
    import pandas as pd

    table = markdown_table(pd.DataFrame({"m": ["x"], "v": [0.123456], "n": [3]}))
    assert table == "| m | v | n |\n|---|---|---|\n| x | 0.1235 | 3 |\n"


def test_unknown_subcommand_exits_2(capsys):
    assert main(["study"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
