"""The study object: fit options declared once and validated, and the same options reaching every step (the
hold-out checks too, which once lost the seed options)."""

import numpy as np
import pandas as pd
import pytest

from analysis.compare import extrapolation_check, holdout_check
from analysis.data import InputError
from analysis.study import FitOptions, Study

from .common import study, two_method_grid


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"law": "cubic"}, "unknown law 'cubic'"),
        ({"frontier": "bins:0"}, "unknown frontier 'bins:0'"),
        ({"draws": 0}, "at least 1"),
        ({"ci": 1.5}, "--ci"),
        ({"seeds": "jackknife"}, "seeds mode"),
        ({"y_transform": "pct"}, "--y-transform 'pct'"),
        ({"law": "chinchilla"}, "--n and --d"),
    ],
)
def test_bad_options_are_input_errors_naming_the_option(given, message):
    with pytest.raises(InputError, match=message):
        FitOptions(**given)


def test_options_from_a_mapping_reject_unknown_names():
    assert FitOptions.of({"seed": 3}, draws=10) == FitOptions(seed=3, draws=10)
    with pytest.raises(InputError, match="unknown fit option 'bootstrap'"):
        FitOptions.of({"bootstrap": 10})


def test_the_transform_is_applied_once_and_roles_are_checked():
    table = pd.DataFrame({"c": [1.0, 2.0, 4.0], "acc": [50.0, 60.0, 70.0], "m": ["a", "a", "a"]})
    s = Study.of(table, "c", "acc", by="m", options=FitOptions(y_transform="error-from-acc-pct"))
    np.testing.assert_allclose(s.data["acc"], [0.5, 0.4, 0.3])
    np.testing.assert_allclose(s.but(x="c").with_options(seed=1).data["acc"], [0.5, 0.4, 0.3])
    with pytest.raises(InputError, match="column 'arch' not found"):
        s.but(group="arch")
    with pytest.raises(
        InputError, match=r"'acc' must be positive .*\(after --y-transform error-from-acc-pct\).* first: 100.0"
    ):
        Study.of(table.assign(acc=[50.0, 100.0, 70.0]), "c", "acc", options=s.options)


def test_a_non_finite_value_is_refused_with_its_column():
    table = pd.DataFrame({"c": [1.0, 2.0, 4.0], "e": [0.5, np.nan, 0.3]})
    with pytest.raises(InputError, match=r"column 'e' must be positive and numeric .* first: nan"):
        Study.of(table, "c", "e")
    with pytest.raises(InputError, match="column 'c' must be positive"):
        Study.of(table.assign(c=[1.0, np.inf, 4.0], e=0.5), "c", "e")


def test_the_holdout_checks_fit_with_the_studys_seed_options():
    """A seed column named `replicate`: the hold-out's bootstrap averages its seeds (it once keyed on them),
    and `seeds="resample"` reaches the hold-out's draws."""
    grid = two_method_grid(seeds=3, noise=0.03).rename(columns={"seed": "replicate"})
    base = grid[grid["method"] == "base"]
    averaged = study(base, "compute", "error", draws=200, frontier="all", seed_col="replicate")
    check = extrapolation_check(averaged, holdout=2)
    assert check.bootstrap.units.counts.max() == 3 and len(check.bootstrap.units.keys) == 10
    resampled = holdout_check(averaged.with_options(seeds="resample"), (base["samples"] == 8e8).to_numpy())
    plain = holdout_check(averaged, (base["samples"] == 8e8).to_numpy())
    assert not resampled.bootstrap.fits[None].draws.equals(plain.bootstrap.fits[None].draws)
