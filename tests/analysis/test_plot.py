"""`python -m analysis.plot_csv`: one figure from any CSV, PNG + PDF, errors with status 2."""

import pytest

from analysis.plot_csv import main

from .common import PAPER_ARGS


@pytest.mark.parametrize(
    "extra",
    [
        ["--by", "method", "--marker", "arch", "--holdout", "1"],
        ["--kind", "learning", "--by", "method", "--samples", "samples_seen", "--model", "arch"],
    ],
)
def test_plot_writes_png_and_pdf(tmp_path, capsys, extra):
    out = tmp_path / "figure"
    assert main([*PAPER_ARGS, "--out", str(out), "--bootstrap", "100", *extra]) == 0
    assert capsys.readouterr().out.split() == [str(out) + ".png", str(out) + ".pdf"]
    assert out.with_suffix(".png").stat().st_size > 1000


def test_plot_errors(tmp_path, capsys):
    assert main([*PAPER_ARGS, "--out", str(tmp_path / "f"), "--kind", "isoflop"]) == 2
    assert "--kind isoflop needs --size" in capsys.readouterr().err
    assert main([*PAPER_ARGS, "--out", str(tmp_path / "f"), "--kind", "multiplier"]) == 2
    assert "needs --by" in capsys.readouterr().err
    assert main([*PAPER_ARGS, "--out", str(tmp_path / "f"), "--marker", "archx"]) == 2
    assert "column 'archx' not found" in capsys.readouterr().err
