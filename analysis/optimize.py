"""L-BFGS over a batch of independent problems at once, in numpy.

Why: Hoffmann's recipe runs L-BFGS from 4500 starts, and the bootstrap refits thousands of resamples. Looping
scipy's minimiser over them is dominated by Python overhead; stepping all problems together turns each
iteration into a few array operations. Every problem keeps its own L-BFGS memory, Armijo backtracking and
stopping test. The stopping tests copy scipy's L-BFGS-B defaults (relative decrease below factr·eps with
factr = 1e7, or max |gradient| below 1e-5), so the early-stop pitfall of a mean-reduced objective
(Besiroglu et al. 2024) shows up here exactly as it does there.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

FTOL = 1e7 * np.finfo(float).eps  # scipy L-BFGS-B: factr * machine epsilon
GTOL = 1e-5  # scipy L-BFGS-B: pgtol
ARMIJO = 1e-4

# fg(theta (A, p), rows (A,)) -> (f (A,), gradient (A, p)); `rows` say which problems of the batch these are.
BatchObjective = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class BatchResult:
    """Final point, objective, convergence flag and iteration count per problem."""

    x: np.ndarray
    fun: np.ndarray
    converged: np.ndarray
    nit: np.ndarray


def _two_loop(g: np.ndarray, s: np.ndarray, y: np.ndarray, rho: np.ndarray, gamma: np.ndarray, order: list[int]):
    """L-BFGS direction -H·g for each problem; `order` lists memory slots from newest to oldest."""
    q = g.copy()
    alphas = []
    for slot in order:
        a = rho[:, slot] * np.einsum("ap,ap->a", s[:, slot], q)
        q -= a[:, None] * y[:, slot]
        alphas.append(a)
    r = gamma[:, None] * q
    for slot, a in zip(reversed(order), reversed(alphas), strict=True):
        beta = rho[:, slot] * np.einsum("ap,ap->a", y[:, slot], r)
        r += (a - beta)[:, None] * s[:, slot]
    return -r


def _backtrack(fg: BatchObjective, x, f, d, slope, rows, max_steps: int):
    """Armijo backtracking from a unit step; returns new point, value, gradient and an accepted mask."""
    x_new, f_new, g_new = x.copy(), f.copy(), np.zeros_like(x)
    accepted = np.zeros(len(x), dtype=bool)
    step = np.ones(len(x))
    pending = np.arange(len(x))
    for _ in range(max_steps):
        trial = x[pending] + step[pending, None] * d[pending]
        ft, gt = fg(trial, rows[pending])
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(ft) & (ft <= f[pending] + ARMIJO * step[pending] * slope[pending])
        done = pending[ok]
        x_new[done], f_new[done], g_new[done], accepted[done] = trial[ok], ft[ok], gt[ok], True
        pending = pending[~ok]
        if pending.size == 0:
            break
        step[pending] *= 0.5
    return x_new, f_new, g_new, accepted


def lbfgs_batch(
    fg: BatchObjective,
    x0: np.ndarray,
    *,
    memory: int = 10,
    maxiter: int = 1000,
    ftol: float = FTOL,
    gtol: float = GTOL,
    max_steps: int = 40,
) -> BatchResult:
    """Minimise S independent problems from starts x0 (S, p); unconstrained L-BFGS with Armijo steps.

    A start far from the optimum (Hoffmann's corner starts) may reach non-finite values; such a problem stops
    being active, and the fit keeps the best finite start, so numpy's warnings about it would only be noise."""
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return _lbfgs_batch(fg, x0, memory, maxiter, ftol, gtol, max_steps)


def _lbfgs_batch(
    fg: BatchObjective, x0: np.ndarray, memory: int, maxiter: int, ftol: float, gtol: float, max_steps: int
) -> BatchResult:
    n_prob, dim = x0.shape
    x = np.array(x0, dtype=float)
    f, g = fg(x, np.arange(n_prob))
    s_mem, y_mem = np.zeros((n_prob, memory, dim)), np.zeros((n_prob, memory, dim))
    rho = np.zeros((n_prob, memory))
    gamma = np.minimum(1.0, 1.0 / np.maximum(np.linalg.norm(g, axis=1), 1e-300))
    converged = np.abs(g).max(axis=1) <= gtol
    nit = np.zeros(n_prob, dtype=int)
    active = np.flatnonzero(~converged & np.isfinite(f))
    for it in range(maxiter):
        if active.size == 0:
            break
        order = [(it - 1 - j) % memory for j in range(min(it, memory))]
        ga = g[active]
        d = _two_loop(ga, s_mem[active], y_mem[active], rho[active], gamma[active], order)
        slope = np.einsum("ap,ap->a", ga, d)
        uphill = ~(slope < 0)
        d[uphill] = -gamma[active][uphill, None] * ga[uphill]
        slope[uphill] = np.einsum("ap,ap->a", ga[uphill], d[uphill])
        x_new, f_new, g_new, ok = _backtrack(fg, x[active], f[active], d, slope, active, max_steps)

        s_vec, y_vec = x_new - x[active], g_new - ga
        sy = np.einsum("ap,ap->a", s_vec, y_vec)
        good = ok & (sy > 1e-12 * np.linalg.norm(s_vec, axis=1) * np.linalg.norm(y_vec, axis=1))
        slot = it % memory
        s_mem[active, slot] = np.where(good[:, None], s_vec, 0.0)
        y_mem[active, slot] = np.where(good[:, None], y_vec, 0.0)
        rho[active, slot] = np.where(good, 1.0 / np.where(good, sy, 1.0), 0.0)
        yy = np.einsum("ap,ap->a", y_vec, y_vec)
        gamma[active] = np.where(good, sy / np.where(good, yy, 1.0), gamma[active])

        decrease = f[active] - f_new
        scale = np.maximum(np.maximum(np.abs(f[active]), np.abs(f_new)), 1.0)
        stop = ok & ((decrease <= ftol * scale) | (np.abs(g_new).max(axis=1) <= gtol))
        x[active[ok]], f[active[ok]], g[active[ok]] = x_new[ok], f_new[ok], g_new[ok]
        nit[active[ok]] += 1
        converged[active[stop]] = True
        active = active[ok & ~stop]
    return BatchResult(x=x, fun=f, converged=converged, nit=nit)
