"""Two sweeps of one grid run two ways (e.g. cosine runs vs WSD branches): are the second study's laws inside
the first's 95 % intervals, and what did each cost?

`python -m analysis.compare_studies results/cpu_study results/cpu_study_wsd --labels cosine wsd --out DIR`
reads each sweep's `figures/summary.json` (written by its analysis) and its records, and writes
`comparison.md`, `comparison.json` and `comparison.png/.pdf` (points and laws of both studies overlaid).
The first study's intervals are the yardstick: each law parameter, the exponent difference Δb and the
compute multiplier k at the first study's E* are checked against them. k of the second study at those E*
is its laws' point estimate (its own intervals are at its own E*, in its summary).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from analysis import cli
from analysis.data import InputError
from analysis.records import load_records, split_reference_runs

if TYPE_CHECKING:
    from scaling.records import Record

SUMMARY = Path("figures") / "summary.json"


def read_summary(study: Path) -> dict:
    path = study / SUMMARY
    if not path.exists():
        raise InputError(f"{str(path)!r} does not exist (the sweep's analysis writes it: python -m scaling.sweep GRID)")
    return json.loads(path.read_text())


def config_key(spec: dict) -> tuple:
    """What makes a point of the grid, whatever the schedule: (method, model, samples seen, seed)."""
    return spec["method"], spec["model"], spec["samples_seen"], spec["seed"]


def finished(study: Path) -> list[Record]:
    from scaling.records import find_records, read_record

    return [r for r in map(read_record, find_records(study / "runs")) if r is not None and r.done]


def study_cost(study: Path, keep: set[tuple] | None = None) -> dict[str, float]:
    """FLOPs and CPU seconds of training the sweep spent, from its finished records (only the configurations
    in `keep`, if given, and the reference): a WSD branch counts only its cooldown (its trunk is a record of
    its own); the in-sweep reference apart. CPU seconds are the single-thread runs'
    training-step wall time as their records measured it (evaluations and reference embedding caches are in
    neither; on a shared machine wall time grows with its load)."""
    cost = {"target_flops": 0.0, "target_cpu_s": 0.0, "reference_flops": 0.0, "reference_cpu_s": 0.0, "runs": 0}
    records = finished(study)
    references = {r.reference.run_id for r in records if r.reference is not None}
    for record in records:
        kind = "reference" if record.run_id in references else "target"
        if kind == "target" and keep is not None and config_key(record.spec) not in keep:
            continue
        spec, wsd = record.spec, record.wsd or {}
        steps = spec["samples_seen"] // spec["batch_size"] - wsd.get("fork_step", 0)  # a trunk's last evaluation
        seconds = record.throughput["train_wall_s"] - record.throughput.get("trunk_wall_s", 0.0)  # is not its end
        cost[f"{kind}_flops"] += steps * spec["batch_size"] * record.model["flops_train_per_sample"]
        cost[f"{kind}_cpu_s"] += seconds
        cost["runs"] += 1
    cost["total_flops"] = cost["target_flops"] + cost["reference_flops"]
    cost["total_cpu_s"] = cost["target_cpu_s"] + cost["reference_cpu_s"]
    return cost


def points(study: Path) -> set[tuple]:
    """The configurations a sweep finished as points of its law (WSD trunks are none)."""
    return {config_key(r.spec) for r in finished(study) if (r.wsd or {}).get("role") != "trunk"}


def refit_on(base: Path, summary: dict, keep: set[tuple]) -> dict:
    """The base study's summary refitted on the configurations in `keep` (its reference kept aside), with the
    base's axes and bootstrap draws (the other fit options at their defaults, as the shipped grids leave them)."""
    from analysis.study import FitOptions
    from analysis.sweep_study import sweep_study

    frame = load_records(base)
    spec_keys = zip(frame["method"], frame["model"], frame["samples_total"], frame["seed"], strict=True)
    runs, _ = split_reference_runs(frame)
    mine = pd.Series([key in keep for key in spec_keys], index=frame.index)
    frame = frame[mine | ~frame["run_id"].isin(set(runs["run_id"]))]
    y = summary["laws"][0]["report"]["columns"]["y"]
    options = FitOptions(draws=summary["draws"])
    study = sweep_study(
        frame, x=summary["study"]["x"], y=y, by=summary["study"]["by"], options=options, records_dir=base
    )
    return study.summary


def inside(value: float, ci: Sequence[float]) -> bool:
    return min(ci) <= value <= max(ci)


def compute_at(law: dict, error: float) -> float:
    """x at which E = a·x^b reaches `error`."""
    a, b = law["params"]["a"]["value"], law["params"]["b"]["value"]
    return (error / a) ** (1 / b)


def compare(base: dict, other: dict) -> dict[str, Any]:
    """The second summary's estimates against the first's intervals (laws, Δb, k at the first's E*)."""
    laws = {law["level"]: law for law in other["laws"]}
    rows = []
    for law in base["laws"]:
        theirs = laws.get(law["level"])
        for name in ("a", "b"):
            ref = law["params"][name]
            value = theirs["params"][name] if theirs else None
            rows.append(
                {
                    "quantity": f"{name} ({law['level']})",
                    "base": ref["value"],
                    "base_ci": ref["ci"],
                    "other": None if value is None else value["value"],
                    "other_ci": None if value is None else value["ci"],
                }
            )
    (b, b_ci), (o, o_ci) = ((s["exponent"]["delta"], [s["exponent"]["lo"], s["exponent"]["hi"]]) for s in (base, other))
    rows.append({"quantity": "Δb (exponent difference)", "base": b, "base_ci": b_ci, "other": o, "other_ci": o_ci})
    baseline, treatment = base["baseline"], base["treatment"]
    for m in base["multiplier"]:  # the study's x; the other study's k from its laws at the same E*
        both = baseline in laws and treatment in laws
        k = compute_at(laws[baseline], m["target"]) / compute_at(laws[treatment], m["target"]) if both else None
        rows.append(
            {"quantity": f"k(E* = {m['target']:.4g})", "base": m["k"], "base_ci": [m["lo"], m["hi"]], "other": k}
        )
    for row in rows:
        row["inside"] = None if row.get("other") is None else inside(row["other"], row["base_ci"])
    return {"rows": rows, "baseline": baseline, "treatment": treatment}


def overlay(studies: dict[str, Path], summaries: dict[str, dict], path: Path) -> list[Path]:
    """Final evaluations of both studies and their fitted laws (a refit of the first on the second's
    configurations dotted) on one log-log plot: one colour per method, one marker and line style per study."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from analysis.plots import save_figure

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    colours = dict(zip(("clip", "drrho"), ("tab:blue", "tab:orange"), strict=True))
    span: dict[str, list[float]] = {}
    for (label, summary), marker, style in zip(summaries.items(), "o^.", ("-", "--", ":"), strict=False):
        x, y, by = summary["study"]["x"], summary["laws"][0]["report"]["columns"]["y"], summary["study"]["by"]
        final = None
        if label in studies:
            runs, _ = split_reference_runs(load_records(studies[label]))
            final = runs[runs["final"].astype(bool)]
        for law in summary["laws"]:
            level, colour = law["level"], colours.get(law["level"], "grey")
            if final is not None:
                pts = final[final[by] == level]
                face = colour if marker == "o" else "none"  # the second study hollow, over the first
                ax.scatter(
                    pts[x], pts[y], marker=marker, s=22, edgecolors=colour, facecolors=face, label=f"{level}, {label}"
                )
                span[level] = [pts[x].min(), pts[x].max()]
            grid = np.geomspace(*span[level], 50)
            a, b = law["params"]["a"]["value"], law["params"]["b"]["value"]
            ax.plot(grid, a * grid**b, style, color=colour, lw=1.2, label=f"{level} law, {label}: b = {b:.3f}")
    ax.set(xscale="log", yscale="log", xlabel=f"{x} (FLOPs)", ylabel=y)
    ax.legend(fontsize=6)
    fig.tight_layout()
    try:
        return save_figure(fig, path)
    finally:
        plt.close(fig)


def _number(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, list):
        return f"{_number(value[0])} – {_number(value[1])}"
    return f"{value:.4g}"


def law_table(comparison: dict, base: str, other: str) -> list[str]:
    lines = [
        f"| quantity | {base} (95% CI) | {other} (95% CI) | {other} inside {base}'s interval |",
        "|---|---|---|---|",
    ]
    for row in comparison["rows"]:
        theirs = _number(row["other"]) + (f" ({_number(row['other_ci'])})" if row.get("other_ci") else "")
        verdict = {True: "yes", False: "**no**", None: "—"}[row["inside"]]
        lines.append(
            f"| {row['quantity']} | {_number(row['base'])} ({_number(row['base_ci'])}) | {theirs} | {verdict} |"
        )
    return lines


def markdown(result: dict, labels: Sequence[str]) -> str:
    base, other = labels
    lines = [f"### Against all of {base}", "", *law_table(result["full"], base, other)]
    if "same_configurations" in result:
        subset = f"{base} (same configurations)"
        missing = ", ".join("/".join(map(str, key)) for key in result["missing"])
        lines += ["", f"### Against {subset}", "", f"{other} has not finished: {missing}", ""]
        lines += law_table(result["same_configurations"], subset, other)
    names = list(result["cost"])
    bases = [n for n in names if n != other]
    header = f"| compute | {' | '.join(names)} | {' | '.join(f'{other} / {n}' for n in bases)} |"
    lines += ["", "### Compute", "", header, "|---" * (1 + len(names) + len(bases)) + "|"]
    for key, name in (
        ("target_flops", "target training FLOPs"),
        ("target_cpu_s", "target training CPU-s"),
        ("total_flops", "with the reference, FLOPs"),
        ("total_cpu_s", "with the reference, CPU-s"),
    ):
        values = " | ".join(f"{result['cost'][n][key]:.4g}" for n in names)
        ratios = " | ".join(f"{result['cost'][other][key] / result['cost'][n][key]:.1%}" for n in bases)
        lines.append(f"| {name} | {values} | {ratios} |")
    return "\n".join(lines) + "\n"


def compare_studies(base: Path, other: Path, out: Path, labels: Sequence[str] = ("base", "other")) -> dict:
    """Write comparison.md/.json/.png/.pdf under `out`; return the comparison. When the other study finished
    fewer configurations (a sweep cut short), the base is also refitted on just those, and both are shown."""
    studies = dict(zip(labels, (Path(base), Path(other)), strict=True))
    summaries = {label: read_summary(path) for label, path in studies.items()}
    result: dict[str, Any] = {"labels": list(labels), "full": compare(*summaries.values())}
    result["cost"] = {label: study_cost(path) for label, path in studies.items()}
    shared, missing = points(studies[labels[1]]), points(studies[labels[0]]) - points(studies[labels[1]])
    if missing:
        subset = refit_on(studies[labels[0]], summaries[labels[0]], shared)
        result["same_configurations"] = compare(subset, summaries[labels[1]])
        result["cost"][f"{labels[0]} (same configurations)"] = study_cost(studies[labels[0]], keep=shared)
        result["missing"] = sorted(missing)
        summaries[f"{labels[0]} (same configurations)"] = subset
    out.mkdir(parents=True, exist_ok=True)
    (out / "comparison.json").write_text(cli.to_json(result) + "\n")
    (out / "comparison.md").write_text(markdown(result, labels))
    overlay(studies, summaries, out / "comparison")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    def _main(args_: Sequence[str] | None) -> int:
        parser = cli.Parser(prog="python -m analysis.compare_studies", description=__doc__.splitlines()[0])
        parser.add_argument("base", type=Path, help="the sweep whose intervals are the yardstick")
        parser.add_argument("other", type=Path, help="the sweep checked against them")
        parser.add_argument("--labels", nargs=2, default=("base", "other"), metavar=("BASE", "OTHER"))
        parser.add_argument("--out", type=Path, required=True, help="directory for comparison.md/.json/.png/.pdf")
        args = parser.parse_args(args_)
        compare_studies(args.base, args.other, args.out, args.labels)
        print((args.out / "comparison.md").read_text(), end="")
        return 0

    return cli.run(_main, "python -m analysis.compare_studies", argv)


if __name__ == "__main__":
    raise SystemExit(main())
