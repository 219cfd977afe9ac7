"""The batched L-BFGS: same answers as scipy's L-BFGS-B, per-problem data and stopping."""

import numpy as np
from scipy.optimize import minimize

from analysis.optimize import lbfgs_batch


def rosenbrock(shift: np.ndarray):
    """Batch of Rosenbrock functions with minimum at (s, s²) per problem."""

    def fg(theta: np.ndarray, rows: np.ndarray):
        s = shift[rows]
        u, v = theta[:, 0], theta[:, 1]
        f = (s - u) ** 2 + 100.0 * (v - u**2) ** 2
        g = np.stack([-2 * (s - u) - 400.0 * u * (v - u**2), 200.0 * (v - u**2)], axis=1)
        return f, g

    return fg


def test_batch_matches_scipy_on_rosenbrock():
    shift = np.array([1.0, 0.5, -0.7, 2.0])
    starts = np.array([[-1.2, 1.0], [0.0, 0.0], [1.5, -1.0], [0.5, 3.0]])
    result = lbfgs_batch(rosenbrock(shift), starts, gtol=1e-8)
    assert result.converged.all()
    np.testing.assert_allclose(result.x[:, 0], shift, atol=1e-4)
    np.testing.assert_allclose(result.x[:, 1], shift**2, atol=1e-3)
    for i, start in enumerate(starts):
        ref = minimize(lambda t, i=i: rosenbrock(shift)(t[None], np.array([i]))[0][0], start, method="L-BFGS-B")
        assert result.fun[i] <= ref.fun + 1e-8


def test_a_tiny_objective_stops_at_once_like_scipy():
    """Relative-decrease test with max(|f|, 1): scaling an objective down by 1e6 stops it early."""
    shift = np.array([1.0])

    def tiny(theta, rows):
        f, g = rosenbrock(shift)(theta, rows)
        return f * 1e-9, g * 1e-9

    result = lbfgs_batch(tiny, np.array([[-1.2, 1.0]]))
    ref = minimize(lambda t: tiny(t[None], np.array([0]))[0][0], [-1.2, 1.0], method="L-BFGS-B")
    assert result.converged[0] and ref.success
    assert result.nit[0] <= 3 and ref.nit <= 3
    assert abs(result.x[0, 0] - 1.0) > 0.5  # far from the optimum: stopped early


def test_maxiter_leaves_problems_unconverged():
    result = lbfgs_batch(rosenbrock(np.array([1.0, 1.0])), np.array([[-1.2, 1.0], [1.0, 1.0]]), maxiter=3)
    np.testing.assert_array_equal(result.converged, [False, True])
    assert result.nit[0] == 3 and result.nit[1] == 0
