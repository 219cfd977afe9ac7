"""The two objects every analysis step takes: `FitOptions` (how laws are fitted) and `Study` (what they are
fitted to).

Why one object each: the same options used to be re-declared and forwarded by hand through bootstrap →
compare → figures, and drifted (seed columns reached the main bootstrap but not the hold-out checks). Now
each option is declared once, here, validated once, and travels whole: the command lines and the sweep build
a `Study`; select → fit → bootstrap → compare → plots → report read from it.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import pandas as pd

from analysis.data import Y_TRANSFORMS, InputError, require_columns, require_positive, transform_y
from analysis.laws import Law, get_law
from analysis.select import get_rule

DRAWS = 4000
SEED_MODES = ("average", "resample")


@dataclass(frozen=True)
class FitOptions:
    """How every law of a study is selected, fitted and bootstrapped (validated on creation).

    `law` (with Chinchilla's `n`, `d` columns), `frontier` (point selection rule; None is the law's own:
    `running-min` on compute for laws of compute, `all` for Chinchilla's L(N, D), where a 1-D frontier on
    compute would drop most of a grid of (N, D) points), `draws` bootstrap draws with
    random `seed`, interval level `ci`; `paired` draws configuration keys jointly across methods; `seeds`
    averages seeds per configuration or resamples them; `seed_col` names the seed column and `config` the
    configuration key (default: every column but y, seed and the method column); `y_transform` maps y to an
    error once, when the study is built.
    """

    law: str = "power"
    n: str | None = None
    d: str | None = None
    frontier: str | None = None
    draws: int = DRAWS
    seed: int = 0
    ci: float = 0.95
    paired: bool = True
    seeds: str = "average"
    seed_col: str = "seed"
    config: tuple[str, ...] | None = None
    y_transform: str = "none"

    def __post_init__(self) -> None:
        for check in (get_law, get_rule):
            try:
                check(self.law if check is get_law else self.rule)
            except ValueError as exc:
                raise InputError(str(exc)) from None
        if self.seeds not in SEED_MODES:
            raise InputError(f"unknown seeds mode {self.seeds!r} (choose {', '.join(SEED_MODES)})")
        if not isinstance(self.draws, int | np.integer) or self.draws < 1:
            raise InputError(f"bootstrap draws (--bootstrap) must be at least 1, got {self.draws}")
        if not 0 < self.ci < 1:
            raise InputError(f"interval level (--ci) must lie between 0 and 1, got {self.ci}")
        if self.y_transform not in Y_TRANSFORMS:
            raise InputError(f"unknown --y-transform {self.y_transform!r} (choose {', '.join(Y_TRANSFORMS)})")
        if self.config is not None:
            object.__setattr__(self, "config", tuple(self.config))
        self.inputs  # noqa: B018  (Chinchilla without its columns fails here, not deep in a fit)

    @classmethod
    def of(cls, options: Any = None, **changes: Any) -> FitOptions:
        """FitOptions from another one, a mapping (a grid's `analysis` block) or None, with `changes`;
        an unknown name is an InputError that lists the known ones."""
        base = options if isinstance(options, FitOptions) else cls()
        given = {} if options is None or isinstance(options, FitOptions) else dict(options)
        given |= changes
        known = {f.name for f in fields(cls)}
        for name in given:
            if name not in known:
                raise InputError(f"unknown fit option {name!r} (choose {', '.join(sorted(known))})")
        return replace(base, **given)

    @property
    def law_spec(self) -> Law:
        return get_law(self.law)

    @property
    def rule(self) -> str:
        """The point-selection rule in force: `frontier`, or the law's own when it is None."""
        return self.frontier or ("running-min" if self.law_spec.inputs == ("x",) else "all")

    @property
    def inputs(self) -> list[str]:
        """Columns the law takes besides x: Chinchilla's N and D (both required), none for compute laws."""
        if self.law_spec.inputs == ("x",):
            return []
        if self.n is None or self.d is None:
            raise InputError(f"law {self.law!r} needs the --n and --d columns (parameters, data size)")
        return [self.n, self.d]


@dataclass(frozen=True)
class Study:
    """A tidy table of runs whose `y` is an error, the roles of its columns, and the fit options.

    `by` tells the methods (levels) apart; `group` is left out one value at a time (leave-one-group-out);
    `samples` is the data axis (data efficiency, learning curves); `model`, `size`, `marker` and
    `point_size` say how figures tell runs apart, and `labels` name columns in words (with units) on their
    axes. Build one with `Study.of(table, ...)`, which maps y to an
    error once (`options.y_transform`); every column a role names is checked, and the log-axis columns
    (x, y, the law's inputs) must be finite and positive.
    """

    data: pd.DataFrame
    x: str
    y: str
    by: str | None = None
    options: FitOptions = field(default_factory=FitOptions)
    group: str | None = None
    samples: str | None = None
    model: str | None = None
    size: str | None = None
    marker: str | None = None
    point_size: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        keep = [self.by, self.group, self.samples, self.model, self.size, self.marker, self.point_size]
        config = self.options.config or ()
        seed = [self.options.seed_col] if self.options.seeds == "resample" else []
        require_columns(self.data, [self.x, self.y, *self.options.inputs, *keep, *config, *seed])
        require_positive(self.data, dict.fromkeys([self.x, self.y, *self.options.inputs]))

    @classmethod
    def of(cls, table: pd.DataFrame, x: str, y: str, *, options: FitOptions | None = None, **roles: Any) -> Study:
        """A study of `table`: y mapped to an error by `options.y_transform`, columns checked."""
        options = options or FitOptions()
        require_columns(table, [x, y])
        data = transform_y(table, y, options.y_transform)
        note = "" if options.y_transform == "none" else f" (after --y-transform {options.y_transform})"
        require_positive(data, dict.fromkeys([x, y, *options.inputs]), original=table, note=note)
        return cls(data, x, y, options=options, **roles)

    def but(self, **changes: Any) -> Study:
        """The same study with other roles, rows (`data=`) or options (`options=`); y stays an error."""
        return replace(self, **changes)

    def with_options(self, **changes: Any) -> Study:
        """The same study with some fit options changed."""
        return replace(self, options=replace(self.options, **changes))

    @property
    def levels(self) -> list[Hashable]:
        """Values of `by` in order of first appearance ([None] without one)."""
        return list(pd.unique(self.data[self.by])) if self.by else [None]

    def level_rows(self, level: Hashable) -> np.ndarray:
        """Boolean mask of the rows of one level."""
        return (self.data[self.by] == level).to_numpy() if self.by else np.ones(len(self.data), bool)

    def columns(self) -> dict[str, str]:
        """What the fit report records about the columns: x, y, the law's inputs, the y transform."""
        names = dict(zip(self.options.law_spec.inputs, self.options.inputs, strict=False))
        return {"x": self.x, "y": self.y, **names, "y_transform": self.options.y_transform}

    def keep_levels(self, levels: Iterable[Hashable]) -> Study:
        """Only the rows of the given levels of `by`."""
        return self.but(data=self.data[self.data[self.by].isin(list(levels))])
