"""Replaying a finished study to test `analysis.design`: would it have reached the same confidence sooner?

Start from the `start` cheapest configurations, then add the others one at a time (every method and seed of a
configuration together, their real outcomes revealed) in three kinds of order: the design's (at each step
the candidate `score_candidates` ranks first per FLOP, scored as if its outcome were unknown), `orders`
random orders, and cheapest first. After each step the target's bootstrap interval width is measured with
the same `draws` and seed for every order, against the compute spent so far (the x column summed over the
runs). The goal (issue 12): reach the full grid's width within `factor` (1.25x) with at most half of its
compute, and sooner than the median random order.

Command line: python -m analysis.replay <records dir or CSV> --target delta-b --out results/design_replay
[--start 4] [--orders 20] [--bootstrap 1000] [--outcomes 16] [--scoring-draws 200]
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.bootstrap import bootstrap_laws
from analysis.data import InputError
from analysis.design import DRAWS, OUTCOMES, Target, config_columns, score_candidates
from analysis.study import Study

FACTOR = 1.25  # "reaches the full grid's width": within this factor
SHARE = 0.5  # ... with at most this share of the full grid's compute


@dataclass(frozen=True)
class Replay:
    """Width after each step of each order (`steps`: order, step, configuration, spent, width) and the goal."""

    steps: pd.DataFrame
    full_width: float
    full_compute: float
    settings: dict[str, Any]

    def reached(self) -> pd.DataFrame:
        """Per order: the compute at which the width first came within FACTOR of the full grid's (`spent`),
        and from which it stayed there (`settled`: widths are not monotone in the runs added), with their
        shares of the full grid's compute."""
        steps = self.steps.assign(ok=self.steps["width"] <= FACTOR * self.full_width)
        rows = []
        for order, part in steps.groupby("order", sort=False):
            ok = part["ok"].to_numpy()
            after = np.flatnonzero(~ok)
            settled = part["spent"].iloc[after[-1] + 1] if after.size else part["spent"].iloc[0]
            rows.append({"order": order, "spent": part.loc[part["ok"], "spent"].min(), "settled": settled})
        table = pd.DataFrame(rows)
        table["share"] = table["spent"] / self.full_compute
        table["settled_share"] = table["settled"] / self.full_compute
        return table

    def verdict(self) -> dict[str, Any]:
        """The goal's two conditions, as measured, on first reaching and on settling within FACTOR."""
        reached = self.reached().set_index("order")
        random = reached.loc[[o for o in reached.index if o.startswith("random")]]
        out: dict[str, Any] = {"target": self.settings["target"], "full_width": self.full_width}
        out["full_compute"] = self.full_compute
        for column, name in (("share", "first"), ("settled_share", "settled")):
            design, median = float(reached.loc["design", column]), float(random[column].median())
            out[name] = {
                "design_share": design,
                "cheapest_share": float(reached.loc["cheapest", column]),
                "random_median_share": median,
                "random_shares": [float(v) for v in random[column]],
                "within_half_compute": design <= SHARE,
                "beats_median_random": design < median,
            }
        return out


def _costs(study: Study, columns: list[str]) -> pd.DataFrame:
    """One row per configuration: key, x per level (seed mean) and cost (x summed over all its runs)."""
    data = study.data
    by = study.by
    mean_x = data.groupby([*columns, *([by] if by else [])], sort=False)[study.x].mean()
    cells = data[columns].drop_duplicates().reset_index(drop=True)
    index = pd.MultiIndex.from_frame(cells)
    for level in study.levels:
        part = mean_x.xs(level, level=by) if by else mean_x
        cells[f"x:{level}"] = part.reindex(index).to_numpy()
    cells["cost"] = data.groupby(columns, sort=False)[study.x].sum().reindex(index).to_numpy()
    return cells


def _rows_of(study: Study, columns: list[str], cells: pd.DataFrame) -> np.ndarray:
    return pd.MultiIndex.from_frame(study.data[columns]).isin(pd.MultiIndex.from_frame(cells[columns]))


def _width(study: Study, target: Target, columns: list[str], cells: pd.DataFrame) -> float:
    """The target's interval width on the runs of `cells` (NaN when it cannot be fitted yet)."""
    try:
        return target.width(bootstrap_laws(study.but(data=study.data[_rows_of(study, columns, cells)])))
    except InputError:
        return float("nan")


def _walk(study: Study, target: Target, columns: list[str], start: pd.DataFrame, order: pd.DataFrame, name: str):
    have, rows = start, []
    spent = float(start["cost"].sum())
    rows.append(
        {"order": name, "step": 0, "added": "start", "spent": spent, "width": _width(study, target, columns, have)}
    )
    for i, (_, cell) in enumerate(order.iterrows(), 1):
        have = pd.concat([have, cell.to_frame().T], ignore_index=True)
        spent += float(cell["cost"])
        added = " ".join(str(cell[c]) for c in columns)
        rows.append(
            {"order": name, "step": i, "added": added, "spent": spent, "width": _width(study, target, columns, have)}
        )
    return rows


def _design_order(
    study: Study, target: Target, columns: list[str], start: pd.DataFrame, rest: pd.DataFrame, **scoring: int
) -> pd.DataFrame:
    """The design's order: at each step the best per-FLOP candidate among the configurations not yet added."""
    have, left, picked = start, rest, []
    while not left.empty:
        current = study.but(data=study.data[_rows_of(study, columns, have)])
        try:
            table = score_candidates(current, target, left.drop(columns="cost").assign(cost=left["cost"]), **scoring)
            best = table.iloc[0][left.columns]
        except InputError:
            best = left.iloc[0]
        picked.append(best)
        have = pd.concat([have, best.to_frame().T], ignore_index=True)
        key = pd.MultiIndex.from_frame(left[columns])
        left = left[~key.isin(pd.MultiIndex.from_frame(best.to_frame().T[columns]))].reset_index(drop=True)
    return pd.DataFrame(picked).reset_index(drop=True)


def replay(
    study: Study,
    target: Target,
    *,
    start: int = 4,
    orders: int = 20,
    outcomes: int = OUTCOMES,
    scoring_draws: int = DRAWS,
) -> Replay:
    """Replay `study` in the design's, `orders` random and the cheapest-first order (see the module)."""
    columns = config_columns(study)
    cells = _costs(study, columns).sort_values("cost", kind="stable").reset_index(drop=True)
    if not 1 <= start < len(cells):
        raise InputError(f"--start must be between 1 and {len(cells) - 1} (the study has {len(cells)} configurations)")
    first, rest = cells.iloc[:start], cells.iloc[start:].reset_index(drop=True)
    rng = np.random.default_rng(study.options.seed)
    plans = {"design": _design_order(study, target, columns, first, rest, outcomes=outcomes, draws=scoring_draws)}
    plans["cheapest"] = rest
    for i in range(orders):
        plans[f"random-{i + 1:02d}"] = rest.iloc[rng.permutation(len(rest))]
    steps = pd.DataFrame(
        [row for name, order in plans.items() for row in _walk(study, target, columns, first, order, name)]
    )
    settings = {
        "target": target.name,
        "start": start,
        "orders": orders,
        "draws": study.options.draws,
        "outcomes": outcomes,
        "scoring_draws": scoring_draws,
        "seed": study.options.seed,
        "x": study.x,
        "y": study.y,
        "config": columns,
    }
    return Replay(steps, float(steps["width"].iloc[-1]), float(cells["cost"].sum()), settings)


def plot_replay(result: Replay, path: str | Path) -> list[Path]:
    """Width vs compute spent: every random order (thin), their median, cheapest first and the design."""
    import matplotlib.pyplot as plt

    from analysis.plots import save_figure

    steps = result.steps
    fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
    random = steps[steps["order"].str.startswith("random")]
    for _, part in random.groupby("order"):
        ax.plot(part["spent"], part["width"], color="0.75", lw=0.8)
    median = random.groupby("step").agg(spent=("spent", "median"), width=("width", "median"))
    ax.plot(median["spent"], median["width"], color="0.35", lw=2, label="random orders (median of 20)")
    for name, style in (("cheapest", {"color": "tab:orange", "ls": "--"}), ("design", {"color": "tab:blue"})):
        part = steps[steps["order"] == name]
        ax.plot(
            part["spent"],
            part["width"],
            marker="o",
            ms=4,
            lw=2,
            label=f"{name} first" if name == "cheapest" else "design",
            **style,
        )
    ax.axhline(FACTOR * result.full_width, color="k", lw=0.8, ls=":", label=f"{FACTOR}x full grid's width")
    ax.axvline(SHARE * result.full_compute, color="k", lw=0.8, ls="-.", label="half the full grid's compute")
    ax.set_xscale("log")
    ax.set_xlabel(f"compute spent ({result.settings['x']}, FLOPs, summed over runs)")
    ax.set_ylabel(f"{result.settings['target']} interval width ({100 * 0.95:.0f}% bootstrap)")
    ax.legend(fontsize=8)
    paths = save_figure(fig, path)
    plt.close(fig)
    return paths


def write_replay(result: Replay, out: str | Path) -> None:
    """replay.csv (every step of every order), replay.json (settings and verdict), replay.png/.pdf."""
    from analysis import cli

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result.steps.to_csv(out / "replay.csv", index=False, float_format="%.10g")
    (out / "replay.json").write_text(cli.to_json({"settings": result.settings, "verdict": result.verdict()}) + "\n")
    plot_replay(result, out / "replay")


def _main(argv: Sequence[str] | None) -> int:
    from analysis import cli
    from analysis.design import add_source_arguments, get_target, study_from

    parser = cli.Parser(prog="python -m analysis.replay", description="Replay a study in the design's order.")
    add_source_arguments(parser, default_draws=1000)
    parser.add_argument("--target", required=True, help="delta-b, k@E, paired-ratio, exponent:LEVEL")
    parser.add_argument("--out", required=True, help="directory for replay.csv, replay.json, replay.png/.pdf")
    parser.add_argument("--start", type=int, default=4, help="cheapest configurations to start from (4)")
    parser.add_argument("--orders", type=int, default=20, help="random orders (20)")
    parser.add_argument("--scoring-draws", type=int, default=DRAWS, help=f"bootstrap draws while scoring ({DRAWS})")
    args = parser.parse_args(argv)
    study, _ = study_from(args)
    result = replay(
        study,
        get_target(args.target, study.levels),
        start=args.start,
        orders=args.orders,
        outcomes=args.outcomes,
        scoring_draws=args.scoring_draws,
    )
    write_replay(result, args.out)
    cli.print_json(result.verdict())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m analysis.replay`; bad input gives one line on stderr and status 2."""
    from analysis import cli

    return cli.run(_main, "python -m analysis.replay", argv)


if __name__ == "__main__":
    sys.exit(main())
