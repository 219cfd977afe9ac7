"""Laws: prediction, inverse, parametrisation round trips, registry."""

import numpy as np
import pytest

from analysis.laws import LAWS, FittedLaw, get_law

PARAMS = {
    "power": {"a": 5.77, "b": -0.116},
    "saturating": {"E_inf": 0.12, "a": 40.0, "b": -0.15},
    "saturating-shifted": {"E_inf": 0.12, "a": 40.0, "b": -0.15, "C0": 3e8},
    "chinchilla": {"E": 1.8172, "A": 477.83, "B": 2143.40, "alpha": 0.3473, "beta": 0.3672},
}


def test_registry_names_and_parameter_names():
    assert set(LAWS) == set(PARAMS)
    for name, params in PARAMS.items():
        assert get_law(name).params == tuple(params)
    with pytest.raises(ValueError, match="unknown law 'cubic'"):
        get_law("cubic")


@pytest.mark.parametrize("name", ["power", "saturating", "saturating-shifted", "chinchilla"])
def test_inverse_undoes_prediction_along_compute(name):
    law = FittedLaw(get_law(name), PARAMS[name])
    c = np.geomspace(1e9, 1e13, 7)
    np.testing.assert_allclose(law.inverse(law.predict_x(c)), c, rtol=1e-9)


def test_power_law_values():
    law = FittedLaw(get_law("power"), PARAMS["power"])
    assert law.predict(1e10) == pytest.approx(5.77 * 1e10**-0.116)
    assert law.inverse(0.30) == pytest.approx((0.30 / 5.77) ** (1 / -0.116))


def test_saturating_never_reaches_its_floor():
    law = FittedLaw(get_law("saturating"), PARAMS["saturating"])
    assert np.isnan(law.inverse(0.11))
    assert law.predict(1e40) == pytest.approx(0.12, abs=1e-4)


def test_chinchilla_allocation_is_compute_optimal():
    law = get_law("chinchilla")
    p = PARAMS["chinchilla"]
    c = 5.76e23
    n_opt, d_opt = law.allocation(p, c)
    assert 6 * n_opt * d_opt == pytest.approx(c)
    n_grid = n_opt * np.geomspace(0.5, 2.0, 201)
    losses = law.predict(p, n_grid, c / (6 * n_grid))
    assert n_grid[np.argmin(losses)] == pytest.approx(n_opt, rel=0.01)
    assert law.predict_x(p, c) == pytest.approx(losses.min(), rel=1e-9)
    # Besiroglu et al.'s allocation exponent a = beta / (alpha + beta) = 0.51
    assert PARAMS["chinchilla"]["beta"] / (p["alpha"] + p["beta"]) == pytest.approx(0.514, abs=1e-3)
    assert law.exponent(p) == pytest.approx(-p["alpha"] * p["beta"] / (p["alpha"] + p["beta"]))


@pytest.mark.parametrize("name", ["saturating", "saturating-shifted", "chinchilla"])
def test_theta_round_trip_and_lse_model(name):
    """The LSE parametrisation predicts the same values as the published form, gradient included."""
    law = get_law(name)
    p = PARAMS[name]
    inputs = (
        (np.geomspace(1e9, 1e12, 5),)
        if law.inputs == ("x",)
        else (np.geomspace(1e8, 1e10, 5), np.geomspace(1e10, 1e12, 5))
    )
    scales = law.scales(inputs)
    theta = law.to_theta(p, scales)
    back = law.to_params(theta, scales)
    for k, v in p.items():
        assert float(back[k]) == pytest.approx(v, rel=1e-12)
    normed = tuple(v[None, :] / s for v, s in zip(inputs, scales, strict=True))
    value, vjp = law.log_model(theta[None, :], normed)
    np.testing.assert_allclose(np.exp(value[0]), law.predict(p, *inputs), rtol=1e-12)
    r = np.random.default_rng(0).normal(size=value.shape)
    step = 1e-6
    for j, analytic in enumerate(vjp(r)[0]):
        shifted = theta.copy()
        shifted[j] += step
        numeric = np.sum(r * (law.log_model(shifted[None, :], normed)[0] - value)) / step
        assert analytic == pytest.approx(numeric, rel=1e-4, abs=1e-6)


def test_start_grids():
    assert get_law("chinchilla").start_grid(0.0).shape == (4500, 5)  # Hoffmann et al.'s grid
    assert get_law("saturating").start_grid(np.log(0.3)).shape == (30, 3)
    assert get_law("saturating-shifted").start_grid(np.log(0.3)).shape == (120, 4)


def test_table_keeps_full_precision_and_label_rounds():
    law = FittedLaw(get_law("power"), {"a": 5.772553814212034, "b": -0.1156820405511563})
    table = law.table()
    assert list(table["param"]) == ["a", "b"]
    assert table["value"].iloc[0] == 5.772553814212034
    assert law.label() == "E = 5.773·C^-0.1157"
    assert FittedLaw(get_law("saturating"), PARAMS["saturating"]).label(2) == "E = 0.12 + 40·C^-0.15"
