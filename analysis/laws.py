"""Functional forms of scaling laws, held as small frozen objects in a registry.

A law knows its parameter names, how to predict the error from its inputs, and how to invert the
prediction into the compute needed for a target error. Laws know nothing about data sources or fitting
recipes; the robust forms additionally expose the log-sum-exp (LSE) parametrisation that the Huber fit of
Hoffmann et al. (2022, arXiv 2203.15556) searches in, so that `analysis.fit` stays form-agnostic.

Conventions: error E is a positive quantity (a fraction, not a percentage); the power-law exponent `b` is
signed (negative for an error that falls with compute); Chinchilla's `alpha`, `beta` are positive as
published. Parameters are kept as Python floats at full precision (pitfall P3: rounding biases extrapolation).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

Params = Mapping[str, "float | np.ndarray"]
VJP = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Law(ABC):
    """A named functional form E = f(inputs; params)."""

    name: str
    formula: str
    params: tuple[str, ...]
    inputs: tuple[str, ...] = ("x",)
    # Exponents of the law's own inputs, compared one by one between methods (Chinchilla: alpha of N, beta
    # of D); a law of compute alone has only `exponent`.
    input_exponents: tuple[str, ...] = ()

    @abstractmethod
    def predict(self, p: Params, *inputs: np.ndarray) -> np.ndarray:
        """Predicted error at the given inputs (broadcasts over parameter arrays)."""

    def predict_x(self, p: Params, x: np.ndarray) -> np.ndarray:
        """Prediction along the compute axis; `inverse` is its inverse."""
        return self.predict(p, x)

    @abstractmethod
    def inverse(self, p: Params, target: np.ndarray) -> np.ndarray:
        """Compute needed to reach `target` error; NaN where the law never reaches it."""

    def exponent(self, p: Params) -> np.ndarray:
        """Signed compute exponent of the reducible error: how fast the law improves with compute."""
        return np.asarray(p["b"])

    def label(self, p: Params, digits: int = 4) -> str:
        """Formula with numbers, for legends (full precision stays in `FittedLaw.table`)."""
        pattern = r"\b(" + "|".join(map(re.escape, self.params)) + r")\b"
        return re.sub(pattern, lambda m: f"{float(p[m.group(1)]):.{digits}g}", self.formula)


@dataclass(frozen=True)
class RobustLaw(Law):
    """A law fitted by Huber loss on log residuals in an LSE parametrisation `theta`.

    `scales` normalise the inputs before fitting (so one start grid works for any units); `to_params`
    maps theta back to the published parametrisation in the original units.
    """

    @abstractmethod
    def scales(self, inputs: tuple[np.ndarray, ...]) -> tuple[float, ...]:
        """Reference scale per input used to normalise it."""

    @abstractmethod
    def log_model(self, theta: np.ndarray, inputs: tuple[np.ndarray, ...]) -> tuple[np.ndarray, VJP]:
        """log prediction (S, n) for theta (S, p) on normalised inputs, and its vector–Jacobian product
        r (S, n) -> sum over n of r · d(log prediction)/d(theta) (S, p): all a gradient needs, without
        building the (S, n, p) Jacobian."""

    @abstractmethod
    def to_params(self, theta: np.ndarray, scales: tuple[float, ...]) -> dict[str, np.ndarray]:
        """Published parameters (original units) from theta (..., p)."""

    @abstractmethod
    def to_theta(self, p: Params, scales: tuple[float, ...]) -> np.ndarray:
        """Inverse of `to_params`, for user-given starting points."""

    @abstractmethod
    def start_grid(self, log_y_center: float) -> np.ndarray:
        """Starting points (G, p) for the multi-start search."""


def _lse(terms: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
    """Stable log-sum-exp and the softmax weights that form its gradient."""
    top = np.maximum.reduce(terms)
    exps = [np.exp(t - top) for t in terms]
    total = np.add.reduce(exps)
    return top + np.log(total), [e / total for e in exps]


@dataclass(frozen=True)
class PowerLaw(Law):
    """E = a·C^b: a straight line in log–log space, fitted by OLS (Cherti et al. 2023)."""

    name: str = "power"
    formula: str = "E = a·C^b"
    params: tuple[str, ...] = ("a", "b")

    def predict(self, p: Params, *inputs: np.ndarray) -> np.ndarray:
        (x,) = inputs
        return np.asarray(p["a"]) * np.power(x, p["b"])

    def inverse(self, p: Params, target: np.ndarray) -> np.ndarray:
        return np.power(np.asarray(target) / p["a"], 1.0 / np.asarray(p["b"]))


@dataclass(frozen=True)
class SaturatingLaw(RobustLaw):
    """E = E_inf + a·C^b, or with `shifted` Nezhurina et al.'s a·(C + C0)^b + E_inf (arXiv 2506.04598).

    Fitted as log E = LSE(log a' + b·log(x' [+ c0']), log E_inf) on x' = C / geometric-mean(C), which
    makes the start grid unit-free.
    """

    name: str = "saturating"
    formula: str = "E = E_inf + a·C^b"
    params: tuple[str, ...] = ("E_inf", "a", "b")
    shifted: bool = False
    # Start grid: fraction of the central error that is reducible, exponent, and (shifted) C0 / scale.
    reducible: tuple[float, ...] = (0.05, 0.2, 0.5, 0.8, 0.95, 0.999)
    exponents: tuple[float, ...] = (-0.03, -0.1, -0.3, -1.0, -3.0)
    offsets: tuple[float, ...] = (1e-3, 0.1, 1.0, 10.0)

    def predict(self, p: Params, *inputs: np.ndarray) -> np.ndarray:
        (x,) = inputs
        shifted = np.asarray(x) + (p["C0"] if self.shifted else 0.0)
        return np.asarray(p["E_inf"]) + np.asarray(p["a"]) * np.power(shifted, p["b"])

    def inverse(self, p: Params, target: np.ndarray) -> np.ndarray:
        gap = np.asarray(target) - p["E_inf"]
        with np.errstate(invalid="ignore", divide="ignore"):
            c = np.power(np.where(gap > 0, gap, np.nan) / p["a"], 1.0 / np.asarray(p["b"]))
        return c - p["C0"] if self.shifted else c

    def scales(self, inputs: tuple[np.ndarray, ...]) -> tuple[float, ...]:
        return (float(np.exp(np.nanmean(np.log(inputs[0])))),)

    def log_model(self, theta: np.ndarray, inputs: tuple[np.ndarray, ...]) -> tuple[np.ndarray, VJP]:
        (x,) = inputs
        log_a, b, log_e = (theta[:, i : i + 1] for i in range(3))
        c0 = np.exp(theta[:, 3:4]) if self.shifted else 0.0
        base = x + c0
        log_base = np.log(base)
        power = log_a + b * log_base
        value, (w_power, _) = _lse([power, np.broadcast_to(log_e, power.shape)])

        def vjp(r: np.ndarray) -> np.ndarray:
            rp = r * w_power  # the floor's weight is 1 - w_power
            columns = [rp.sum(-1), (rp * log_base).sum(-1), (r - rp).sum(-1)]
            if self.shifted:
                columns.append(b[:, 0] * (rp * c0 / base).sum(-1))
            return np.stack(columns, axis=-1)

        return value, vjp

    def to_params(self, theta: np.ndarray, scales: tuple[float, ...]) -> dict[str, np.ndarray]:
        (scale,) = scales
        b = theta[..., 1]
        out = {"E_inf": np.exp(theta[..., 2]), "a": np.exp(theta[..., 0]) * scale ** (-b), "b": b}
        if self.shifted:
            out["C0"] = np.exp(theta[..., 3]) * scale
        return out

    def to_theta(self, p: Params, scales: tuple[float, ...]) -> np.ndarray:
        (scale,) = scales
        theta = [np.log(p["a"]) + p["b"] * np.log(scale), p["b"], np.log(p["E_inf"])]
        return np.array(theta + ([np.log(p["C0"] / scale)] if self.shifted else []), dtype=float)

    def start_grid(self, log_y_center: float) -> np.ndarray:
        y_c = np.exp(log_y_center)
        rows = [
            [np.log(f * y_c), b, np.log((1 - f) * y_c), *([np.log(c)] if self.shifted else [])]
            for f in self.reducible
            for b in self.exponents
            for c in (self.offsets if self.shifted else (None,))
        ]
        return np.array(rows, dtype=float)


@dataclass(frozen=True)
class ChinchillaLaw(RobustLaw):
    """L(N, D) = E + A/N^alpha + B/D^beta (Hoffmann et al. 2022, approach 3).

    Fitted on raw N and D in theta = (a, b, e, alpha, beta) with a = log A, b = log B, e = log E, from
    Hoffmann's 4500-point start grid. `predict_x`/`inverse` use the compute-optimal allocation at C = 6·N·D.
    """

    name: str = "chinchilla"
    formula: str = "L = E + A/N^alpha + B/D^beta"
    params: tuple[str, ...] = ("E", "A", "B", "alpha", "beta")
    inputs: tuple[str, ...] = ("n", "d")
    input_exponents: tuple[str, ...] = ("alpha", "beta")
    grid_exponents: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0)
    grid_log_e: tuple[float, ...] = (-1.0, -0.5, 0.0, 0.5, 1.0)
    grid_log_coef: tuple[float, ...] = (0.0, 5.0, 10.0, 15.0, 20.0, 25.0)

    def predict(self, p: Params, *inputs: np.ndarray) -> np.ndarray:
        n, d = inputs
        return np.asarray(p["E"]) + p["A"] / np.power(n, p["alpha"]) + p["B"] / np.power(d, p["beta"])

    def allocation(self, p: Params, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Compute-optimal (N, D) at C = 6·N·D: N = G·(C/6)^(β/(α+β)), G = (αA/(βB))^(1/(α+β))."""
        alpha, beta = np.asarray(p["alpha"]), np.asarray(p["beta"])
        g = (alpha * p["A"] / (beta * p["B"])) ** (1.0 / (alpha + beta))
        n = g * (np.asarray(c) / 6.0) ** (beta / (alpha + beta))
        return n, np.asarray(c) / (6.0 * n)

    def _frontier(self, p: Params) -> tuple[np.ndarray, np.ndarray]:
        """L_opt(C) = E + K·(C/6)^(-s): coefficient K and slope s of the compute-optimal loss."""
        alpha, beta = np.asarray(p["alpha"]), np.asarray(p["beta"])
        g = (alpha * p["A"] / (beta * p["B"])) ** (1.0 / (alpha + beta))
        return p["A"] * g ** (-alpha) + p["B"] * g**beta, alpha * beta / (alpha + beta)

    def exponent(self, p: Params) -> np.ndarray:
        """Slope of the compute-optimal reducible loss, -alpha·beta/(alpha+beta)."""
        return -self._frontier(p)[1]

    def predict_x(self, p: Params, x: np.ndarray) -> np.ndarray:
        k, s = self._frontier(p)
        return np.asarray(p["E"]) + k * (np.asarray(x) / 6.0) ** (-s)

    def inverse(self, p: Params, target: np.ndarray) -> np.ndarray:
        k, s = self._frontier(p)
        gap = np.asarray(target) - p["E"]
        with np.errstate(invalid="ignore", divide="ignore"):
            return 6.0 * (np.where(gap > 0, gap, np.nan) / k) ** (-1.0 / s)

    def scales(self, inputs: tuple[np.ndarray, ...]) -> tuple[float, ...]:
        return (1.0, 1.0)

    def log_model(self, theta: np.ndarray, inputs: tuple[np.ndarray, ...]) -> tuple[np.ndarray, VJP]:
        log_n, log_d = np.log(inputs[0]), np.log(inputs[1])
        a, b, e, alpha, beta = (theta[:, i : i + 1] for i in range(5))
        term_n = a - alpha * log_n
        value, (w_n, w_d, _) = _lse([term_n, b - beta * log_d, np.broadcast_to(e, term_n.shape)])

        def vjp(r: np.ndarray) -> np.ndarray:
            rn, rd = r * w_n, r * w_d  # E's weight is 1 - w_n - w_d
            columns = [
                rn.sum(-1),
                rd.sum(-1),
                (r - rn - rd).sum(-1),
                -(rn * log_n).sum(-1),
                -(rd * log_d).sum(-1),
            ]
            return np.stack(columns, axis=-1)

        return value, vjp

    def to_params(self, theta: np.ndarray, scales: tuple[float, ...]) -> dict[str, np.ndarray]:
        return {
            "E": np.exp(theta[..., 2]),
            "A": np.exp(theta[..., 0]),
            "B": np.exp(theta[..., 1]),
            "alpha": theta[..., 3],
            "beta": theta[..., 4],
        }

    def to_theta(self, p: Params, scales: tuple[float, ...]) -> np.ndarray:
        return np.array([np.log(p["A"]), np.log(p["B"]), np.log(p["E"]), p["alpha"], p["beta"]], dtype=float)

    def start_grid(self, log_y_center: float) -> np.ndarray:
        coef, ex, le = self.grid_log_coef, self.grid_exponents, self.grid_log_e
        mesh = np.meshgrid(coef, coef, le, ex, ex, indexing="ij")
        return np.stack([m.ravel() for m in mesh], axis=-1)


LAWS: dict[str, Law] = {
    law.name: law
    for law in (
        PowerLaw(),
        SaturatingLaw(),
        SaturatingLaw(
            name="saturating-shifted",
            formula="E = a·(C + C0)^b + E_inf",
            params=("E_inf", "a", "b", "C0"),
            shifted=True,
        ),
        ChinchillaLaw(),
    )
}


def get_law(name: str) -> Law:
    """The registered law called `name` (power, saturating, saturating-shifted, chinchilla)."""
    try:
        return LAWS[name]
    except KeyError:
        raise ValueError(f"unknown law {name!r} (choose {', '.join(LAWS)})") from None


@dataclass(frozen=True)
class FittedLaw:
    """A law with parameter values: predict, invert, and tabulate at full precision."""

    law: Law
    params: dict[str, float] = field(default_factory=dict)

    def predict(self, *inputs: np.ndarray) -> np.ndarray:
        return self.law.predict(self.params, *(np.asarray(v, dtype=float) for v in inputs))

    def predict_x(self, x: np.ndarray) -> np.ndarray:
        return self.law.predict_x(self.params, np.asarray(x, dtype=float))

    def inverse(self, target: np.ndarray) -> np.ndarray:
        """Compute needed for a target error (compute-optimal C = 6ND for Chinchilla)."""
        return self.law.inverse(self.params, np.asarray(target, dtype=float))

    def label(self, digits: int = 4) -> str:
        return self.law.label(self.params, digits)

    def table(self) -> pd.DataFrame:
        """Parameter table (name, float64 value) without rounding."""
        return pd.DataFrame({"param": list(self.law.params), "value": [self.params[k] for k in self.law.params]})
