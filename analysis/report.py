"""The report of a study: its markdown summary (summary.md) and plain-language verdict, computed from the
summary dict alone, so notebooks can re-render them and no claim is written by hand."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis import cli


def markdown_table(frame: pd.DataFrame, floatfmt: str = ".4g") -> str:
    """A GitHub markdown table (no extra dependency)."""

    def cell(v: Any) -> str:
        return format(v, floatfmt) if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def write_json(path: Path, obj: Any) -> None:
    """Full-precision JSON (NaN as null), as the summaries are committed."""
    path.write_text(cli.to_json(obj) + "\n")


def _num(v: float | None, fmt: str = ".4g") -> str:
    return "n/a" if v is None or (isinstance(v, float) and not np.isfinite(v)) else format(v, fmt)


def _ci(value: float | None, lo: float | None, hi: float | None, fmt: str = ".4g") -> str:
    return f"{_num(value, fmt)} ({_num(lo, fmt)} – {_num(hi, fmt)})"


def _laws_table(laws: Sequence[dict[str, Any]]) -> str:
    """Method, points used, each parameter with its interval, formula."""
    names = list(laws[0]["params"])
    rows = []
    for law in laws:
        report = law["report"]
        cells = [_ci(p["value"], *(p["ci"] or [None, None])) for p in law["params"].values()]
        rows.append([law["level"], f"{report['points_used']}/{report['points_total']}", *cells, law["formula"]])
    return markdown_table(pd.DataFrame(rows, columns=["method", "points", *[f"{n} (95% CI)" for n in names], "law"]))


def _multiplier_rows(summary: Mapping[str, Any]) -> pd.DataFrame:
    """k(E*) per target (highest error first) under each compute convention, interpolation or
    extrapolation marked."""
    rows = [
        (
            -r["target"],
            {
                "E*": _num(r["target"]),
                "x": f"`{conv['x']}` ({conv['label']})",
                "k (95% CI)": _ci(r["k"], r["lo"], r["hi"], ".3g"),
                "P(k > 1)": _num(r["p_above_1"], ".2f"),
                "": "extrapolation" if r["extrapolated"] else "interpolation",
            },
        )
        for conv, table in _conventions(summary)
        for r in table
    ]
    return pd.DataFrame([row for _, row in sorted(rows, key=lambda item: item[0])])


def _holdout_rows(check: Mapping[str, Any] | None, *, by_group: bool) -> str:
    """Held-out accuracy per method (and per held-out model): rows, mean relative error, share inside."""
    if not check:
        return "not run (see *Rule used*)\n"
    rows = [
        {
            **({"model": r["group"]} if by_group else {}),
            "method": r["level"],
            "held-out rows": r["n"],
            "mean relative error": f"{100 * r['are']:.1f}%",
            "inside 95% PI": f"{100 * r['inside']:.0f}%",
        }
        for r in check["accuracy"]
    ]
    return markdown_table(pd.DataFrame(rows))


def _rule_lines(summary: dict[str, Any]) -> list[str]:
    study, law = summary["study"], summary["laws"][0]
    report = law["report"]
    seeds = study["configurations_with_seeds"]
    lines = [
        f"point selection `{report['selection']}` per method; law `{law['law']}` fitted by {report['optimizer']}"
        f" ({report['loss']})",
        f"{summary['draws']} {'paired ' if summary['paired'] else ''}bootstrap draws over configurations "
        f"({', '.join(f'`{c}`' for c in study['config'])}), selection and fit redone in every draw; "
        "95% percentile intervals",
        "the final evaluation of each run (mid-run checkpoints of cosine runs lie off the compute frontier, P7)"
        if study["final_only"]
        else "every evaluation of each run (`--all-evals`: checkpoints are points; cosine checkpoints sit off "
        "the frontier, P7)",
        f"seeds averaged per configuration ({seeds} configuration(s) with more than one seed)",
        f"x = `{study['x']}` ({study['x_label']}); {summary['compute_conventions']['note']}",
    ]
    if study["excluded_reference_runs"]:
        lines.append(
            "set aside as in-sweep references (not grid points): "
            + ", ".join(f"`{r}`" for r in study["excluded_reference_runs"])
        )
    return lines + list(study["notes"])


def _headline(row: Mapping[str, Any], baseline: str, treatment: str, x_label: str) -> str:
    """One sentence on k(E*) at one target: resolved above 1, below 1, or not resolved."""
    where = " (extrapolated)" if row["extrapolated"] else ""
    k, target = _ci(row["k"], row["lo"], row["hi"], ".3g"), f"{row['target']:.3g}"
    if row["lo"] > 1:
        text = f"{treatment} reaches error {target} with k = {k}× less compute than {baseline}"
    elif row["hi"] < 1:
        text = f"{treatment} needs more compute than {baseline} to reach error {target}: k = {k}"
    else:
        text = f"At error {target} the compute multiplier k = {k} is not resolved (its interval includes 1)"
    return f"{text}{where} [{x_label}]."


def _conventions(summary: Mapping[str, Any]) -> list[tuple[Mapping[str, Any], Sequence[Mapping[str, Any]]]]:
    """(convention, multiplier rows) for the primary x and, when there is one, the other compute convention."""
    conventions = summary["compute_conventions"]
    pairs = [(conventions["primary"], summary["multiplier"])]
    if conventions.get("alternative"):
        pairs.append((conventions["alternative"], conventions["alternative"]["multiplier"]))
    return pairs


def _ratio_sentence(r: Mapping[str, Any], baseline: str, treatment: str) -> str:
    ratio, n = _ci(r["ratio"], r["ratio_lo"], r["ratio_hi"], ".3g"), r["n"]
    if r["ratio_hi"] < 1:
        change = f"{100 * (1 - r['ratio']):.1f}% lower"
    elif r["ratio_lo"] > 1:
        change = f"{100 * (r['ratio'] - 1):.1f}% higher"
    else:
        return f"At matched configurations the error ratio {treatment}/{baseline} = {ratio} is not resolved (n = {n})."
    return f"At matched configurations {treatment}'s error is {change} (ratio {ratio}, n = {n})."


def study_verdict(summary: Mapping[str, Any]) -> list[str]:
    """Plain-language conclusions computed from the summary's numbers (no claim is written by hand): the
    multiplier at the middle interpolated target under each compute convention, the exponent difference,
    the paired ratio, and whether the laws predict the held-out largest-compute runs."""
    b, t = str(summary["baseline"]), str(summary["treatment"])
    lines = []
    for conv, table in _conventions(summary):
        inside = [r for r in table if not r["extrapolated"]] or list(table)
        lines.append(_headline(inside[len(inside) // 2], b, t, f"x = {conv['x']}: {conv['label']}"))
    e, n = summary["exponent"], summary["paired_ratio"]["n"]
    delta, p_neg = _ci(e["delta"], e["lo"], e["hi"]), f"P(Δb < 0) = {e['p_negative']:.2f}"
    if e["hi"] < 0:
        lines.append(f"{t}'s exponent is steeper: Δb = {delta}, {p_neg}.")
    elif e["lo"] > 0:
        lines.append(f"{t}'s exponent is flatter: Δb = {delta}, {p_neg}.")
    else:
        lines.append(f"The exponent difference Δb = {delta} is not resolved with {n} paired configurations.")
    lines.append(_ratio_sentence(summary["paired_ratio"], b, t))
    lines.append(extrapolation_sentence(summary.get("extrapolation")))
    return lines


def extrapolation_sentence(check: Mapping[str, Any] | None) -> str:
    """The leave-largest-out check of a summary in one sentence."""
    if not check:
        return "No extrapolation check: too few configurations to hold the largest out."
    acc = check["accuracy"]
    points = check["points"]
    inside = sum(bool(p["inside"]) for p in points)
    ares = " / ".join(f"{100 * a['are']:.1f}% ({a['level']})" for a in acc)
    state = "hold" if inside == len(points) else "do not hold" if inside == 0 else "partly hold"
    return (
        f"Fitted without the largest-compute configurations, the laws predict them with mean relative error "
        f"{ares}; {inside} of {len(points)} observations inside the 95% prediction interval: the laws {state} "
        "beyond the fitted range."
    )


def study_markdown(summary: Mapping[str, Any]) -> str:
    """The short markdown report of a sweep study (summary.md): laws, Δexponent, k(E*) under both compute
    conventions, paired ratio, data efficiency, checks, references, verdict, and the rule used."""
    study, b, t = summary["study"], summary["baseline"], summary["treatment"]
    e, r = summary["exponent"], summary["paired_ratio"]
    runs = ", ".join(f"{k} {v}" for k, v in study["runs"].items())
    out = [
        f"# Scaling study: {t} vs {b}\n",
        f"Source `{study['source']}`: {runs} finished runs; y = `{study['y']}` (error), x = `{study['x']}` "
        f"({study['x_label']}); {summary['draws']} bootstrap draws.\n",
        "## Verdict\n",
        *[f"- {line}" for line in summary["verdict"]],
        "\n## Laws (E = law of x; 95% bootstrap intervals)\n",
        _laws_table(summary["laws"]),
        "## Exponent difference\n",
        f"b({t}) − b({b}) = {_ci(e['delta'], e['lo'], e['hi'])}, P(< 0) = {e['p_negative']:.3f}\n",
        f"## Compute multiplier k(E*) = C_{b}(E*) / C_{t}(E*)\n",
        markdown_table(_multiplier_rows(summary)),
        "## Paired error ratio\n",
        f"E_{t} / E_{b} over {r['n']} configurations both ran: {_ci(r['ratio'], r['ratio_lo'], r['ratio_hi'])} "
        f"(sd of the log ratio {_num(r['sd'], '.3g')})\n",
    ]
    if summary.get("data_efficiency"):
        rows = [
            {
                "E*": _num(d["target"]),
                "samples ratio (95% CI)": _ci(d["k"], d["lo"], d["hi"], ".3g"),
                "": "extrapolation" if d["extrapolated"] else "interpolation",
            }
            for d in summary["data_efficiency"]
        ]
        out += ["## Data efficiency (samples seen at E*, same rule)\n", markdown_table(pd.DataFrame(rows))]
    out += [
        "## Extrapolation check (largest-compute configurations held out)\n",
        _holdout_rows(summary.get("extrapolation"), by_group=False),
        "## Leave one model out\n",
        _holdout_rows(summary.get("leave_one_out"), by_group=True),
    ]
    if summary.get("references"):
        out.append("## Reference models (their own metrics, same evaluation set)\n")
        for ref in summary["references"]:
            best = ", ".join(f"{k} {_num(v)}" for k, v in ref["best"].items())
            out.append(
                f"- {ref['name']} ({ref['mode']}, steered {ref['steered_runs']} runs): `{study['y']}` = "
                f"{_num(ref['y'])}; best final runs: {best}"
            )
        out.append("")
    out += ["## Rule used\n", *[f"- {line}" for line in _rule_lines(summary)], ""]
    if summary.get("checklist"):
        out.append(checklist_markdown(summary["checklist"]))
    if summary.get("figures"):
        out.append("Figures: " + ", ".join(f"`{files[0]}`" for files in summary["figures"].values()) + "\n")
    return "\n".join(out)


def fitting_checklist(
    laws: Sequence[Mapping[str, Any]], facts: Mapping[str, str], uncertainty: str, extrapolation: str
) -> dict[str, str]:
    """The (Mis)Fitting reporting checklist (Li et al. 2025, arXiv:2502.18969) of a set of fits: law form,
    what N, D and C count and the learning-rate schedule (`facts`, which the table cannot tell), which points
    (selection per fit and `facts['checkpoints']`), objective, optimiser and starts, uncertainty method, and
    the leave-largest-out extrapolation check, each in words."""
    reports = [(str(law.get("level", law.get("group", ""))), law["report"]) for law in laws]

    def each(text: Any) -> str:
        values = {name: text(r) for name, r in reports}
        if len(set(values.values())) == 1:
            return next(iter(values.values()))
        return "; ".join(f"{name}: {v}" for name, v in values.items())

    return {
        "law form": each(lambda r: r["form"]),
        "N (parameters)": facts["n"],
        "D (data)": facts["d"],
        "C (compute)": facts["c"],
        "learning-rate schedule": facts["schedule"],
        "points": each(lambda r: f"`{r['selection']}`")
        + " — "
        + ", ".join(f"{n or 'all'} {r['points_used']}/{r['points_total']}" for n, r in reports)
        + f"; {facts['checkpoints']}",
        "objective": each(lambda r: r["loss"]),
        "optimiser and starts": each(lambda r: f"{r['optimizer']}; {r['starts']} start(s); converged {r['converged']}"),
        "uncertainty": uncertainty,
        "extrapolation check": extrapolation,
    }


def checklist_markdown(checklist: Mapping[str, str]) -> str:
    """The checklist as a markdown section."""
    rows = pd.DataFrame({"item": list(checklist), "this fit": list(checklist.values())})
    return "## (Mis)Fitting checklist (Li et al. 2025)\n\n" + markdown_table(rows)


def bootstrap_words(summary: Mapping[str, Any], config: Sequence[str]) -> str:
    """The uncertainty method of a comparison summary, in words."""
    ci = summary["laws"][0].get("bootstrap", {}).get("ci", 0.95)
    keys = ", ".join(f"`{c}`" for c in config)
    paired = "paired (methods draw the same configurations) " if summary["paired"] else ""
    return (
        f"{summary['draws']} {paired}bootstrap draws over configurations ({keys}), point selection and fit "
        f"redone in every draw; {ci:.0%} percentile intervals"
    )
