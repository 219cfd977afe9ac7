"""Input tables: reading, column checks and the y transforms shared by the API and the command lines.

The analysis is schema-free: every function takes a DataFrame and the names of its columns. Errors about the
input are `InputError`s that name the offending column or option, so the command lines can print one line
and exit with status 2.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd


class InputError(ValueError):
    """Bad input: a missing column, a value the analysis cannot take the log of, an unknown option."""


# Laws are fitted to an error (a positive fraction); tables often hold an accuracy in percent instead.
Y_TRANSFORMS: dict[str, Callable[[pd.Series], pd.Series]] = {
    "none": lambda v: v,
    "error-from-acc-pct": lambda v: 1.0 - v / 100.0,
    "error-from-acc": lambda v: 1.0 - v,
    "pct-to-fraction": lambda v: v / 100.0,
}


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV, turning any failure into an InputError that names the file."""
    try:
        return pd.read_csv(path)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"cannot read CSV {str(path)!r}: {first}") from None


def require_columns(df: pd.DataFrame, columns: Iterable[str | None]) -> None:
    """Fail with the name of the first requested column the table lacks."""
    for col in columns:
        if col is not None and col not in df.columns:
            raise InputError(f"column {col!r} not found (have: {', '.join(map(str, df.columns))})")


def require_values(column: str, have: Sequence[Hashable], wanted: Iterable[Hashable | None]) -> None:
    """Fail with the first wanted value (None: none asked for) that is not among the values `have` of `column`."""
    for value in wanted:
        if value is not None and value not in have:
            raise InputError(f"{value!r} is not a value of column {column!r} (have: {', '.join(map(str, have))})")


def require_positive(
    df: pd.DataFrame, columns: Iterable[str], *, original: pd.DataFrame | None = None, note: str = ""
) -> None:
    """Laws live in log space: every value they use must be a finite positive number.

    `original` is the table before transforms, so the message quotes the value as the user wrote it.
    """
    shown = df if original is None else original
    for col in columns:
        values = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
        bad = ~(np.isfinite(values) & (values > 0))
        if bad.any():
            raise InputError(
                f"column {col!r} must be positive and numeric for a log fit{note} "
                f"({int(bad.sum())} bad value(s), first: {shown[col].iloc[int(np.argmax(bad))]})"
            )


def transform_y(df: pd.DataFrame, y: str, y_transform: str) -> pd.DataFrame:
    """Copy of `df` with column y mapped by the named transform (a name the caller has checked)."""
    out = df.copy()
    out[y] = Y_TRANSFORMS[y_transform](pd.to_numeric(out[y], errors="coerce"))
    return out


def prepare(
    df: pd.DataFrame,
    x: str,
    y: str,
    *,
    inputs: Iterable[str] = (),
    keep: Iterable[str | None] = (),
    y_transform: str = "none",
) -> pd.DataFrame:
    """Checked copy of `df` with y transformed and all log-axis columns (x, y, inputs) validated.

    `keep` names other columns that must exist (group, by, seed, ...) but need not be positive.
    """
    if y_transform not in Y_TRANSFORMS:
        raise InputError(f"unknown --y-transform {y_transform!r} (choose {', '.join(Y_TRANSFORMS)})")
    inputs = list(inputs)
    require_columns(df, [x, y, *inputs, *keep])
    out = transform_y(df, y, y_transform)
    note = "" if y_transform == "none" else f" (after --y-transform {y_transform})"
    require_positive(out, dict.fromkeys([x, y, *inputs]), original=df, note=note)
    return out
