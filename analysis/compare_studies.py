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
from typing import Any

import numpy as np

from analysis import cli
from analysis.data import InputError
from analysis.records import load_records, split_reference_runs

SUMMARY = Path("figures") / "summary.json"


def read_summary(study: Path) -> dict:
    path = study / SUMMARY
    if not path.exists():
        raise InputError(f"{str(path)!r} does not exist (the sweep's analysis writes it: python -m scaling.sweep GRID)")
    return json.loads(path.read_text())


def study_cost(study: Path) -> dict[str, float]:
    """FLOPs and CPU seconds of training the sweep spent, from its finished records: a WSD branch counts only
    its cooldown (its trunk is a record of its own); the in-sweep reference apart. CPU seconds are the runs'
    training wall time (evaluations included), as their records measured it."""
    from scaling.records import find_records, read_record

    cost = {"target_flops": 0.0, "target_cpu_s": 0.0, "reference_flops": 0.0, "reference_cpu_s": 0.0, "runs": 0}
    records = [r for r in map(read_record, find_records(study / "runs")) if r is not None and r.done]
    references = {r.reference.run_id for r in records if r.reference is not None}
    for record in records:
        last, wsd = record.evals[-1], record.wsd or {}
        share = 1 - wsd["fork_step"] / last.step if wsd.get("role") == "branch" else 1.0
        seconds = record.throughput["train_wall_s"] - record.throughput.get("trunk_wall_s", 0.0)
        kind = "reference" if record.run_id in references else "target"
        cost[f"{kind}_flops"] += last.compute_target * share
        cost[f"{kind}_cpu_s"] += seconds
        cost["runs"] += 1
    return cost


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
    """Final evaluations of both studies and their fitted laws on one log-log plot: one colour per method,
    one marker and line style per study."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from analysis.plots import save_figure

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    colours = dict(zip(("clip", "drrho"), ("tab:blue", "tab:orange"), strict=True))
    for (label, study), marker, style in zip(studies.items(), "o^", ("-", "--"), strict=False):
        summary = summaries[label]
        x, y = summary["study"]["x"], summary["laws"][0]["report"]["columns"]["y"]
        runs, _ = split_reference_runs(load_records(study))
        final = runs[runs["final"].astype(bool)]
        for law in summary["laws"]:
            level, colour = law["level"], colours.get(law["level"], "grey")
            points = final[final[summary["study"]["by"]] == level]
            face = colour if marker == "o" else "none"  # the second study hollow, over the first
            ax.scatter(
                points[x], points[y], marker=marker, s=22, edgecolors=colour, facecolors=face, label=f"{level}, {label}"
            )
            grid = np.geomspace(points[x].min(), points[x].max(), 50)
            a, b = law["params"]["a"]["value"], law["params"]["b"]["value"]
            ax.plot(grid, a * grid**b, style, color=colour, lw=1.2, label=f"{level} law, {label}: b = {b:.3f}")
    ax.set(xscale="log", yscale="log", xlabel=f"{x} (FLOPs)", ylabel=y)
    ax.legend(fontsize=7)
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


def markdown(result: dict, labels: Sequence[str]) -> str:
    base, other = labels
    lines = [
        f"| quantity | {base} (95% CI) | {other} (95% CI) | {other} inside {base}'s interval |",
        "|---|---|---|---|",
    ]
    for row in result["rows"]:
        theirs = _number(row["other"]) + (f" ({_number(row['other_ci'])})" if row.get("other_ci") else "")
        verdict = {True: "yes", False: "**no**", None: "—"}[row["inside"]]
        lines.append(
            f"| {row['quantity']} | {_number(row['base'])} ({_number(row['base_ci'])}) | {theirs} | {verdict} |"
        )
    cost = result["cost"]
    lines += ["", f"| compute | {base} | {other} | {other} / {base} |", "|---|---|---|---|"]
    for key, name in (
        ("target_flops", "target training FLOPs"),
        ("target_cpu_s", "target training CPU-s"),
        ("total_flops", "with the reference, FLOPs"),
        ("total_cpu_s", "with the reference, CPU-s"),
    ):
        a, b = cost[base][key], cost[other][key]
        lines.append(f"| {name} | {a:.4g} | {b:.4g} | {b / a:.1%} |")
    return "\n".join(lines) + "\n"


def compare_studies(base: Path, other: Path, out: Path, labels: Sequence[str] = ("base", "other")) -> dict:
    """Write comparison.md/.json/.png/.pdf under `out`; return the comparison."""
    studies = dict(zip(labels, (Path(base), Path(other)), strict=True))
    summaries = {label: read_summary(path) for label, path in studies.items()}
    result = compare(*summaries.values())
    result["cost"] = {}
    for label, path in studies.items():
        cost = study_cost(path)
        cost["total_flops"] = cost["target_flops"] + cost["reference_flops"]
        cost["total_cpu_s"] = cost["target_cpu_s"] + cost["reference_cpu_s"]
        result["cost"][label] = cost
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
