"""Method comparison on the paper's points and on a synthetic grid with a known multiplier."""

import json

import numpy as np
import pandas as pd
import pytest

from analysis.bootstrap import bootstrap_laws
from analysis.compare import compare_methods, extrapolation_check, main, multiplier
from analysis.data import InputError
from analysis.laws import get_law

from .common import PAPER_ARGS, paper_study, study, two_method_grid

TARGETS = (0.35, 0.30, 0.25, 0.20)


@pytest.fixture(scope="module")
def paper_comparison(paper):
    paper = paper_study(
        paper, by="method", samples="samples_seen", group="arch", config=("arch", "samples_seen"), draws=4000
    )
    return compare_methods(paper, targets=TARGETS, holdout=1)


def test_exponent_difference_is_not_resolved_on_the_paper(paper_comparison):
    e = paper_comparison.exponent
    assert (paper_comparison.baseline, paper_comparison.treatment) == ("OpenCLIP", "DRRho-CLIP")
    assert e["delta"] == pytest.approx(-0.1228342 + 0.1156820, abs=1e-6)
    assert (e["lo"], e["hi"]) == pytest.approx((-0.0135, 0.0205), abs=0.003)
    assert e["lo"] < 0 < e["hi"]
    assert e["p_negative"] == pytest.approx(0.93, abs=0.02)


def test_compute_multiplier_on_the_paper(paper_comparison):
    k = paper_comparison.multiplier.set_index("target")
    assert k.loc[0.30, "k"] == pytest.approx(1.600, abs=0.01)
    assert (k.loc[0.30, "lo"], k.loc[0.30, "hi"]) == pytest.approx((1.03, 1.99), abs=0.05)
    assert k.loc[0.35, "lo"] > 1.0  # DRRho-CLIP needs less compute for 35% error
    assert list(k["extrapolated"]) == [False, False, True, True]
    curve = paper_comparison.curve
    assert curve["target"].min() <= 0.20 and curve["extrapolated"].any() and not curve["extrapolated"].all()


def test_pairing_narrows_the_multiplier_interval(paper):
    widths = {}
    for paired in (True, False):
        bs = bootstrap_laws(paper_study(paper, by="method", paired=paired, draws=4000))
        row = multiplier(bs, "OpenCLIP", "DRRho-CLIP", [0.30]).iloc[0]
        widths[paired] = row["hi"] - row["lo"]
    assert widths[False] > 1.3 * widths[True]


def test_paired_error_ratio(paper_comparison):
    r = paper_comparison.paired_ratio
    assert r["n"] == 11
    assert r["ratio"] == pytest.approx(0.947, abs=0.002)
    assert (r["ratio_lo"], r["ratio_hi"]) == pytest.approx((0.937, 0.957), abs=0.003)
    assert r["sd"] == pytest.approx(0.0185, abs=0.001)


def test_holdout_checks(paper_comparison):
    points = paper_comparison.extrapolation.points
    assert list(points["level"]) == ["OpenCLIP", "DRRho-CLIP"]
    assert np.allclose(points["x"], 2.2442e11)
    assert points["rel_error"].between(0.05, 0.12).all() and points["inside"].all()
    loo = paper_comparison.leave_one_out
    are = loo.groupby("group")["rel_error"].mean()
    assert set(are.index) == {"ViT-B-32", "ViT-B-16", "ViT-L-14"}
    assert are["ViT-L-14"] > 2 * are["ViT-B-32"]  # the L/14 runs sit above the B-series frontier


def test_data_efficiency_is_reported(paper_comparison):
    eff = paper_comparison.data_efficiency
    assert list(eff["target"]) == list(TARGETS)
    assert (eff["k"] > 1).all()


def test_known_multiplier_is_recovered_exactly():
    """Treatment = baseline at twice the compute: k(E*) = 2 at every target, equal exponents."""
    df = two_method_grid(noise=0.0)
    comparison = compare_methods(study(df, "compute", "error", by="method", draws=200, frontier="all"), holdout=1)
    np.testing.assert_allclose(comparison.multiplier["k"], 2.0, rtol=1e-9)
    np.testing.assert_allclose(comparison.curve["k"], 2.0, rtol=1e-9)
    assert comparison.exponent["delta"] == pytest.approx(0.0, abs=1e-12)
    assert comparison.paired_ratio["ratio"] == pytest.approx(2.0**-0.1, rel=1e-12)
    assert comparison.extrapolation.points["rel_error"].max() < 1e-9


def test_extrapolation_check_without_methods():
    df = two_method_grid(noise=0.01)
    base = df[df["method"] == "base"]
    result = extrapolation_check(study(base, "compute", "error", draws=200), holdout=2)
    assert len(result.points) == 2 and set(result.points["level"]) == {None}


def test_comparison_errors():
    df = two_method_grid()
    three = df.assign(method=np.where(df["arch"] == "L", "other", df["method"]))
    with pytest.raises(InputError, match="has 3 values"):
        compare_methods(study(three, "compute", "error", by="method", draws=10))
    with pytest.raises(InputError, match="'nope' is not a value"):
        compare_methods(study(df, "compute", "error", by="method", draws=10), baseline="nope")
    picked = compare_methods(
        study(three, "compute", "error", by="method", draws=10), baseline="base", treatment="treat", holdout=0
    )
    assert picked.treatment == "treat"


def test_cli_json_and_errors(capsys):
    base = [*PAPER_ARGS, "--by", "method"]
    assert main([*base, "--targets", "0.35,0.30", "--bootstrap", "500", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert [row["target"] for row in summary["multiplier"]] == [0.35, 0.30]
    assert summary["laws"][0]["level"] == "OpenCLIP" and summary["draws"] == 500
    assert summary["extrapolation"]["accuracy"][0]["n"] == 2
    assert main([*base, "--bootstrap", "200"]) == 0
    assert "compute multiplier k(E*)" in capsys.readouterr().out
    assert main([*base, "--targets", "0.3,x"]) == 2
    assert "--targets" in capsys.readouterr().err
    assert main([*base[:-1], "arch"]) == 2
    assert "has 3 values" in capsys.readouterr().err


CHINCHILLA_TRUTH = {  # two methods on one (N, D) grid, alike but for the data exponent beta
    "base": {"E": 0.2, "A": 30.0, "alpha": 0.35, "B": 5.0, "beta": 0.30},
    "treat": {"E": 0.2, "A": 30.0, "alpha": 0.35, "B": 50.0, "beta": 0.55},
}


def chinchilla_grid(noise: float = 0.005, seed: int = 0) -> pd.DataFrame:
    """5 model sizes × 5 data sizes per method, errors on L(N, D) with lognormal noise."""
    rng = np.random.default_rng(seed)
    n, d = (g.ravel() for g in np.meshgrid(np.geomspace(1e5, 1e7, 5), np.geomspace(1e4, 1e6, 5)))
    law = get_law("chinchilla")
    parts = [
        pd.DataFrame({"method": m, "params": n, "pool": d, "error": law.predict(p, n, d)})
        for m, p in CHINCHILLA_TRUTH.items()
    ]
    table = pd.concat(parts, ignore_index=True)
    return table.assign(error=table["error"] * np.exp(rng.normal(0.0, noise, len(table))))


def test_chinchilla_compare_cli_recovers_the_exponents_and_the_data_exponent_difference(tmp_path, capsys):
    csv = tmp_path / "grid.csv"
    chinchilla_grid().to_csv(csv, index=False)
    base = [str(csv), "--y", "error", "--by", "method", "--law", "chinchilla", "--n", "params", "--d", "pool"]
    assert main([*base, "--bootstrap", "200", "--holdout", "0", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for row in out["laws"]:
        truth = CHINCHILLA_TRUTH[row["level"]]
        assert row["report"]["selection"] == "all"  # every run of the grid, not a compute frontier
        assert row["report"]["columns"]["x"] == "6ND"
        for name in ("alpha", "beta"):
            lo, hi = row["params"][name]["ci"]
            assert lo < truth[name] < hi
    beta = out["input_exponents"]["beta"]
    assert beta["delta"] == pytest.approx(0.25, abs=0.03)
    assert beta["lo"] < 0.25 < beta["hi"] and beta["lo"] > 0  # covers the truth, excludes no difference
    alpha = out["input_exponents"]["alpha"]
    assert alpha["lo"] < 0 < alpha["hi"]  # the model exponents are equal
    assert main(base[:-2]) == 2
    assert "--n and --d" in capsys.readouterr().err
    assert main([*base[:-1], "size"]) == 2
    assert "column 'size' not found" in capsys.readouterr().err
    assert main([str(csv), "--y", "error", "--by", "method"]) == 2
    assert "--x (the compute column) is required for law 'power'" in capsys.readouterr().err
