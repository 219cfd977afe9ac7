"""Bootstrap over configurations: intervals on the paper, per-draw selection, seeds, robust laws."""

import numpy as np
import pandas as pd
import pytest

from analysis.bootstrap import bootstrap_laws, configurations
from analysis.data import InputError
from analysis.laws import get_law

from .common import paper_study, study, two_method_grid


@pytest.fixture(scope="module")
def paper_bootstrap(paper):
    return bootstrap_laws(paper_study(paper, by="method", draws=4000, seed=0))


def test_paper_intervals_beside_the_printed_laws(paper_bootstrap):
    clip, drrho = paper_bootstrap.fits["OpenCLIP"], paper_bootstrap.fits["DRRho-CLIP"]
    assert clip.interval("b") == pytest.approx((-0.1475, -0.0884), abs=0.003)
    lo, hi = drrho.interval("b")
    assert (lo, hi) == pytest.approx((-0.1471, -0.1012), abs=0.003)
    assert lo < -0.127 < hi  # the printed DRRho-CLIP exponent is inside our interval ...
    assert drrho.fit.params["b"] == pytest.approx(-0.1228, abs=1e-4)  # ... though our fit differs
    assert len(clip.valid) == 4000 and paper_bootstrap.paired
    summary = drrho.summary()
    assert list(summary["param"]) == ["a", "b"]
    assert summary["lo"].iloc[0] < summary["value"].iloc[0] < summary["hi"].iloc[0]


def test_every_draw_reselects_and_refits(paper, paper_bootstrap):
    """Reference: redo the first draws by hand (same keys, running-min, polyfit) and compare exactly."""
    units = paper_bootstrap.units
    keys = np.random.default_rng(0).integers(0, len(units.keys), (4000, len(units.keys)))[:50]
    for level, name in enumerate(units.levels):
        for draw, idx in enumerate(keys):
            x, y = units.x[level][idx], units.y[level][idx]
            order = np.lexsort((y, x))
            best = np.minimum.accumulate(np.r_[np.inf, y[order][:-1]])
            keep = order[y[order] < best]
            slope, _ = np.polyfit(np.log(x[keep]), np.log(y[keep]), 1)
            assert paper_bootstrap.fits[name].draws["b"].iloc[draw] == pytest.approx(slope, rel=1e-9)


def test_same_seed_same_draws_and_bands(paper):
    one = bootstrap_laws(paper_study(paper, by="method", draws=300, seed=7)).fits["OpenCLIP"]
    two = bootstrap_laws(paper_study(paper, by="method", draws=300, seed=7)).fits["OpenCLIP"]
    other = bootstrap_laws(paper_study(paper, by="method", draws=300, seed=8)).fits["OpenCLIP"]
    assert one.draws.equals(two.draws) and not one.draws.equals(other.draws)
    lo, hi = one.band(np.array([1e10, 1e11]))
    mid = one.fit.law.predict_x(np.array([1e10, 1e11]))
    assert np.all(lo < mid) and np.all(mid < hi)


def test_configurations_average_seeds_and_key_on_the_rest():
    df = two_method_grid(seeds=3)
    units = configurations(study(df, "compute", "error", by="method"))
    assert units.levels == ["base", "treat"] and len(units.keys) == 12
    assert list(units.keys.columns) == ["arch", "gflops", "samples", "compute"]
    assert units.counts.min() == 3
    first = df[(df["method"] == "base") & (df["arch"] == "S") & (df["samples"] == 1e8)]
    assert units.y[0, 0] == pytest.approx(first["error"].mean())


def test_seed_resampling_widens_intervals_and_is_neutral_with_one_seed():
    noisy = two_method_grid(seeds=3, noise=0.03)
    averaged = bootstrap_laws(study(noisy, "compute", "error", by="method", draws=1000, frontier="all"))
    resampled = bootstrap_laws(
        study(noisy, "compute", "error", by="method", draws=1000, frontier="all", seeds="resample")
    )

    def width(bs):
        lo, hi = bs.fits["base"].interval("b")
        return hi - lo

    assert width(resampled) > 1.1 * width(averaged)
    single = two_method_grid(seeds=1, noise=0.03)
    a = bootstrap_laws(study(single, "compute", "error", by="method", draws=200))
    b = bootstrap_laws(study(single, "compute", "error", by="method", draws=200, seeds="resample"))
    assert a.fits["treat"].draws.equals(b.fits["treat"].draws)


def test_robust_law_bootstrap_covers_the_truth():
    rng = np.random.default_rng(5)
    truth = {"E_inf": 0.2, "a": 30.0, "b": -0.12}
    c = np.geomspace(1e15, 1e21, 24)
    error = get_law("saturating").predict(truth, c) * np.exp(rng.normal(0, 0.003, c.size))
    df = pd.DataFrame({"compute": c, "error": error})
    bs = bootstrap_laws(study(df, "compute", "error", law="saturating", frontier="all", draws=60, seed=1))
    fit = bs.fits[None]
    assert len(fit.valid) >= 55
    lo, hi = fit.interval("E_inf")
    assert lo < truth["E_inf"] < hi
    lo, hi = fit.interval("b")
    assert lo < truth["b"] < hi


def test_chinchilla_bootstrap_intervals_are_not_collapsed_onto_the_warm_start():
    """Draws start at the full-data optimum; a relative-decrease stop would return it unchanged."""
    rng = np.random.default_rng(6)
    n = 10 ** rng.uniform(7.5, 10.0, 60)
    d = 10 ** rng.uniform(9.0, 11.5, 60)
    truth = {"E": 1.8, "A": 480.0, "B": 2100.0, "alpha": 0.35, "beta": 0.37}
    loss = get_law("chinchilla").predict(truth, n, d) * np.exp(rng.normal(0, 0.003, 60))
    df = pd.DataFrame({"n": n, "d": d, "c": 6 * n * d, "loss": loss})
    chinchilla = study(df, "c", "loss", law="chinchilla", n="n", d="d", frontier="all", draws=100)
    fit = bootstrap_laws(chinchilla).fits[None]
    assert fit.fit.params["alpha"] == pytest.approx(0.35, abs=0.03)
    assert len(fit.valid) >= 95
    for name in ("alpha", "beta"):
        lo, hi = fit.interval(name)
        assert lo < truth[name] < hi and hi - lo > 0.005
    lo, hi = fit.interval("A")
    assert hi / lo > 1.1


def test_bootstrap_input_errors(paper):
    with pytest.raises(InputError, match="seeds mode"):
        paper_study(paper, by="method", seeds="jackknife")
    with pytest.raises(InputError, match="at least 1"):
        paper_study(paper, by="method", draws=0)
    with pytest.raises(InputError, match="'lab'"):
        paper_study(paper, by="lab")
