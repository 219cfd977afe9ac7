"""Figures for scaling-law studies (matplotlib + seaborn), each returned as a Figure and saved as PNG + PDF.

Plots draw results; they do not fit. They take a table whose y is already an error (see
`analysis.data.prepare`) plus fitted objects (`Fit`, `BootstrapFit`, `Bootstrap`) or result tables. Figures
are built with `matplotlib.figure.Figure`, not pyplot, so no GUI backend or global state is involved.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter

from analysis.bootstrap import Bootstrap, BootstrapFit, percentile_interval
from analysis.laws import FittedLaw

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")
RUN_AREA = 36.0  # marker area of a run when no column sizes it
SIZE_RANGE = (10.0, 64.0)  # marker areas when a column sizes them (linear in its log)
STYLE = {"axes.grid": True, "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False}


def _palette(levels: Sequence[Hashable]) -> dict[Hashable, tuple]:
    return dict(zip(levels, sns.color_palette("colorblind", max(len(levels), 1)), strict=False))


def _figure(ncols: int = 1, width: float = 6.4, height: float = 4.6) -> tuple[Figure, list[Axes]]:
    with sns.axes_style("ticks", STYLE):
        fig = Figure(figsize=(width * ncols, height), layout="constrained")
        axes = [fig.add_subplot(1, ncols, i + 1) for i in range(ncols)]
    return fig, axes


def _plain_log_ticks(axis) -> None:
    """Readable labels on a log axis: plain numbers, and minor labels (2, 3, 5 × 10^k) so that a range
    shorter than a couple of decades still shows values."""
    lo, hi = sorted(axis.get_view_interval())
    short = hi / lo < 10

    def minor(v: float, _pos: int) -> str:
        lead = round(v / 10 ** np.floor(np.log10(v)))
        return f"{v:g}" if short or lead in (2, 3, 5) else ""

    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    axis.set_minor_formatter(FuncFormatter(minor))


def label_of(column: str | None, labels: Mapping[str, str] | None) -> str:
    """An axis or legend label in words (with units) for a column, the column name when none is given."""
    return "" if column is None else (labels or {}).get(column, column)


def error_label(y: str, labels: Mapping[str, str] | None) -> str:
    """The error axis label: the column's words when given, else `error (<column>)`."""
    return (labels or {}).get(y) or f"error ({y})"


def cap_error_axis(ax: Axes) -> None:
    """An error never exceeds 1: a band reaching past it must not stretch the axis."""
    lo, hi = ax.get_ylim()
    if hi > 1.0 > lo:
        ax.set_ylim(lo, 1.0)


def ordered(values: Sequence[Hashable], order: Sequence[Hashable] | None) -> list[Hashable]:
    """`values` in the given order (e.g. models by size), values not in it last, in their own order."""
    rank = {v: i for i, v in enumerate(order or ())}
    return sorted(values, key=lambda v: rank.get(v, len(rank)))


def marker_areas(values: np.ndarray, areas: tuple[float, float] = SIZE_RANGE) -> np.ndarray:
    """Marker area linear in log(value), spanning `areas` over the values given."""
    logs = np.log(np.asarray(values, dtype=float))
    lo, hi = float(logs.min()), float(logs.max())
    scale = (logs - lo) / (hi - lo) if hi > lo else np.full_like(logs, 0.5)
    return areas[0] + scale * (areas[1] - areas[0])


def _size_legend(ax: Axes, values: np.ndarray, title: str) -> None:
    """A small legend of marker sizes (smallest, median, largest), beside the main legend."""
    shown = np.unique(np.exp(np.quantile(np.log(np.asarray(values, dtype=float)), [0.0, 0.5, 1.0])))
    areas = marker_areas(np.concatenate([shown, np.asarray(values, dtype=float)]))[: len(shown)]
    handles = [
        Line2D([], [], marker="o", ls="", color="grey", label=f"{v:.3g}", ms=float(np.sqrt(a)))
        for v, a in zip(shown, areas, strict=True)
    ]
    legend = ax.get_legend()
    ax.legend(handles=handles, title=title, fontsize=7, title_fontsize=7, loc="lower left")
    if legend is not None:
        ax.add_artist(legend)


def save_figure(fig: Figure, path: str | Path) -> list[Path]:
    """Write `path` as .png and .pdf (suffix replaced); deterministic metadata so reruns diff cleanly."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    png, pdf = path.with_suffix(".png"), path.with_suffix(".pdf")
    fig.savefig(png, dpi=150, metadata={"Software": None})
    fig.savefig(pdf, metadata={"CreationDate": None, "Creator": None, "Producer": None})
    return [png, pdf]


def _levels(df: pd.DataFrame, by: str | None) -> list[Hashable]:
    return list(pd.unique(df[by])) if by else [None]


def _law_label(name: Hashable, item: BootstrapFit) -> str:
    """'method: formula, b ∈ [lo, hi]' (for Chinchilla the compute-optimal slope's interval)."""
    law = item.fit.law
    lo, hi = percentile_interval(item.exponent(), item.ci)
    symbol = "b" if "b" in law.params else "slope"
    return f"{'' if name is None else f'{name}: '}{law.label()}, {symbol} ∈ [{lo:.3f}, {hi:.3f}]"


def _draw_law(ax: Axes, item: BootstrapFit, x_grid: np.ndarray, color, label: str) -> None:
    """Fitted curve: solid inside the fitted compute range, dashed outside; bootstrap band shaded."""
    xs = item.fit.selection.x
    inside = (x_grid >= xs.min()) & (x_grid <= xs.max())
    y_grid = item.fit.law.predict_x(x_grid)
    ax.plot(x_grid[inside], y_grid[inside], color=color, lw=2, label=label)
    for part in (x_grid <= xs.min(), x_grid >= xs.max()):
        if part.sum() > 1:
            ax.plot(x_grid[part], y_grid[part], color=color, lw=2, ls="--")
    lo, hi = item.band(x_grid)
    ax.fill_between(x_grid, lo, hi, color=color, alpha=0.18, lw=0)


def scaling_plot(
    df: pd.DataFrame,
    x: str,
    y: str,
    *,
    fits: Mapping[Hashable, BootstrapFit],
    by: str | None = None,
    marker: str | None = None,
    marker_order: Sequence[Hashable] | None = None,
    point_size: str | None = None,
    held_out: np.ndarray | None = None,
    reference_laws: Mapping[Hashable, FittedLaw] | None = None,
    reference_label: str = "printed",
    x_max: float | None = None,
    title: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> Figure:
    """Error vs compute, log–log: every run (marker = `marker` column, in `marker_order`; colour = `by`; area
    linear in log(`point_size` column), e.g. samples seen), the points each law was fitted to ringed, held-out runs
    hollow, fitted laws with bootstrap bands (dashed when extrapolated) and optional reference laws per level
    (e.g. the printed ones) as thin dotted lines. `labels` name columns in words on the axes."""
    fig, (ax,) = _figure()
    colors = _palette(_levels(df, by))
    shapes = dict(zip(ordered(_levels(df, marker), marker_order), MARKERS, strict=False)) if marker else {None: "o"}
    held = np.zeros(len(df), bool) if held_out is None else np.asarray(held_out, bool)
    areas = marker_areas(df[point_size].to_numpy(float)) if point_size else np.full(len(df), RUN_AREA)
    keys = [c for c in (by, marker) if c] + ["_held"]
    for key, part in df.assign(_held=held, _area=areas).groupby(keys, sort=False):
        role = dict(zip(keys, key, strict=True))
        color = colors[role.get(by)]
        ax.scatter(
            part[x],
            part[y],
            marker=shapes[role.get(marker)],
            s=part["_area"].to_numpy(),
            edgecolors=color,
            linewidths=1.2,
            facecolors="none" if role["_held"] else color,
            alpha=0.9,
            zorder=3,
        )
    x_hi = max(df[x].max(), x_max or 0.0)
    x_grid = np.geomspace(df[x].min() / 1.15, x_hi * 1.15, 200)
    for level, item in fits.items():
        sel = item.fit.selection
        ax.scatter(sel.x, sel.y, s=110, facecolors="none", edgecolors="black", linewidths=0.9, zorder=4)
        _draw_law(ax, item, x_grid, colors.get(level, "black"), _law_label(level, item))
    for name, law in (reference_laws or {}).items():
        ax.plot(
            x_grid,
            law.predict_x(x_grid),
            color=colors.get(name, "grey"),
            lw=0.9,
            ls=":",
            label=f"{name} ({reference_label}): {law.label(3)}",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(label_of(x, labels))
    ax.set_ylabel(error_label(y, labels))
    handles, _ = ax.get_legend_handles_labels()
    handles += [Line2D([], [], marker="o", ls="", mfc="none", mec="black", ms=10, label="fitted points")]
    if held.any():
        handles += [Line2D([], [], marker="o", ls="", mfc="none", mec="grey", label="held out")]
    handles += [Line2D([], [], marker=s, ls="", color="grey", label=str(k)) for k, s in shapes.items() if marker]
    ax.legend(handles=handles, fontsize=7, loc="upper right")
    cap_error_axis(ax)
    _plain_log_ticks(ax.yaxis)
    if point_size:
        _size_legend(ax, df[point_size].to_numpy(float), label_of(point_size, labels))
    if title:
        ax.set_title(title)
    return fig


def residual_plot(
    df: pd.DataFrame,
    x: str,
    y: str,
    *,
    fits: Mapping[Hashable, BootstrapFit],
    by: str | None = None,
    held_out: np.ndarray | None = None,
    labels: Mapping[str, str] | None = None,
) -> Figure:
    """log(observed / law) vs compute per level: fitted points filled, other runs hollow, held-out in red
    edges. Curvature here calls for a saturating form or a break (pitfall P6)."""
    fig, axes = _figure(ncols=len(fits), width=4.8)
    colors = _palette(list(fits))
    held = np.zeros(len(df), bool) if held_out is None else np.asarray(held_out, bool)
    for ax, (level, item) in zip(axes, fits.items(), strict=True):
        mask = (df[by] == level).to_numpy() if by else np.ones(len(df), bool)
        rows = df[mask]
        resid = np.log(rows[y].to_numpy(float) / item.fit.law.predict_x(rows[x].to_numpy(float)))
        ax.axhline(0, color="black", lw=0.8)
        ax.scatter(rows[x], resid, facecolors="none", edgecolors="grey", s=30, label="all runs")
        if held[mask].any():
            ax.scatter(
                rows[x][held[mask]],
                resid[held[mask]],
                facecolors="none",
                edgecolors="red",
                s=30,
                label="held out",
            )
        ax.scatter(item.fit.selection.x, item.fit.residuals, color=colors[level], s=30, label="fitted points")
        ax.set_xscale("log")
        ax.set_xlabel(label_of(x, labels))
        ax.set_ylabel("log residual, ln(observed / law)")
        ax.set_title(str(level) if level is not None else item.fit.law.label(), fontsize=9)
        ax.legend(fontsize=7)
    return fig


def multiplier_plot(curve: pd.DataFrame, targets: pd.DataFrame | None = None, *, title: str | None = None) -> Figure:
    """k(E*) against the target error with its band; extrapolated targets dashed on a shaded background."""
    fig, (ax,) = _figure()
    color = sns.color_palette("colorblind")[0]
    ax.fill_between(curve["target"], curve["lo"], curve["hi"], color=color, alpha=0.2, lw=0, label="bootstrap band")
    extrap = curve["extrapolated"].to_numpy(bool)
    ax.plot(curve["target"], curve["k"], color=color, lw=2, ls="--", label="extrapolated")
    ax.plot(curve["target"].where(~extrap), curve["k"].where(~extrap), color=color, lw=2, label="interpolated")
    inside = curve["target"][~extrap]
    if len(inside):
        ax.axvspan(inside.min(), inside.max(), color="grey", alpha=0.08, lw=0, label="both laws interpolate")
    if targets is not None:
        err = np.vstack([targets["k"] - targets["lo"], targets["hi"] - targets["k"]])
        ax.errorbar(targets["target"], targets["k"], yerr=err, fmt="o", color="black", capsize=3, label="targets")
    ax.axhline(1.0, color="black", lw=0.8, ls=":")
    ax.set_xscale("log")
    ax.set_yscale("log")  # k is a ratio: its band spans decades, and 1/2 is as far from 1 as 2
    ax.invert_xaxis()
    _plain_log_ticks(ax.xaxis)
    _plain_log_ticks(ax.yaxis)
    ax.set_xlabel("target error E*")
    ax.set_ylabel("compute multiplier k(E*) = C_baseline / C_treatment")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    return fig


def isoflop_points(
    df: pd.DataFrame,
    x: str,
    y: str,
    *,
    size: str,
    model: str | None = None,
    by: str | None = None,
    budgets: Sequence[float] | None = None,
) -> pd.DataFrame:
    """Error of each model at fixed compute budgets, interpolated linearly in (log x, log y) along the model's
    own runs/checkpoints; no extrapolation beyond a model's compute range."""
    model = model or size
    if budgets is None:
        budgets = np.geomspace(df[x].min(), df[x].max(), 6)[1:-1]
    rows = []
    for keys, part in df.groupby([c for c in (by, model) if c], sort=False):
        part = part.sort_values(x)
        lx, ly = np.log(part[x].to_numpy(float)), np.log(part[y].to_numpy(float))
        for budget in budgets:
            if lx[0] <= np.log(budget) <= lx[-1] and len(lx) > 1:
                level = keys[0] if by else None
                rows.append(
                    {
                        "level": level,
                        "model": part[model].iloc[0],
                        "size": float(part[size].iloc[0]),
                        "budget": budget,
                        "error": float(np.exp(np.interp(np.log(budget), lx, ly))),
                    }
                )
    return pd.DataFrame(rows, columns=["level", "model", "size", "budget", "error"])


def isoflop_plot(points: pd.DataFrame, *, size_label: str = "model size", compute_label: str = "C") -> Figure:
    """Error vs model size at fixed compute, one curve per budget, one panel per level; minima starred."""
    levels = list(pd.unique(points["level"])) or [None]
    fig, axes = _figure(ncols=len(levels), width=4.8)
    budgets = sorted(pd.unique(points["budget"]))
    colors = dict(zip(budgets, sns.color_palette("viridis", len(budgets)), strict=True))
    for ax, level in zip(axes, levels, strict=True):
        part = points[points["level"].isna()] if level is None else points[points["level"] == level]
        for budget, curve in part.groupby("budget"):
            curve = curve.sort_values("size")
            ax.plot(curve["size"], curve["error"], "o-", color=colors[budget], label=f"{compute_label} = {budget:.3g}")
            best = curve.loc[curve["error"].idxmin()]
            ax.scatter([best["size"]], [best["error"]], marker="*", s=160, color=colors[budget], edgecolors="black")
        ax.set_xscale("log")
        ax.set_yscale("log")
        _plain_log_ticks(ax.xaxis)
        _plain_log_ticks(ax.yaxis)
        ax.set_xlabel(size_label)
        ax.set_ylabel("error")
        cap_error_axis(ax)
        ax.set_title("isoFLOP" + ("" if level is None else f": {level}"), fontsize=9)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    return fig


def isodata_plot(
    df: pd.DataFrame, size: str, y: str, *, pool: str, by: str | None = None, labels: Mapping[str, str] | None = None
) -> Figure:
    """Error vs model size at fixed unique pool, one line per level (seed mean; each seed a dot), one panel
    per pool: what a bigger model buys at a given amount of data, and whether the methods' order holds."""
    pools = sorted(pd.unique(df[pool]))
    fig, axes = _figure(ncols=len(pools), width=3.6)
    colors = _palette(_levels(df, by))
    for ax, value in zip(axes, pools, strict=True):
        part = df[df[pool] == value]
        for level, rows in part.groupby(by, sort=False) if by else [(None, part)]:
            mean = rows.groupby(size)[y].mean()
            ax.plot(mean.index, mean.to_numpy(), "o-", color=colors[level], lw=1.5, label=str(level))
            ax.scatter(rows[size], rows[y], s=10, color=colors[level], alpha=0.5)
        ax.set_xscale("log")
        ax.set_yscale("log")
        _plain_log_ticks(ax.yaxis)
        cap_error_axis(ax)
        ax.set_xlabel(label_of(size, labels))
        ax.set_ylabel(error_label(y, labels))
        ax.set_title(f"{label_of(pool, labels)} = {value:g}", fontsize=9)
    if by:
        axes[0].legend(fontsize=7)
    return fig


def n_star_plot(table: pd.DataFrame, slopes: pd.DataFrame, *, pool_label: str = "pool") -> Figure:
    """n*(m) against the reference's pool m (`analysis.data_efficiency.n_star`), one panel per model: each
    method's n* with its interval (hollow where extrapolated), its fitted slope, and n = m for scale."""
    models = list(pd.unique(table["model"]))
    fig, axes = _figure(ncols=len(models), width=4.8)
    colors = _palette(list(pd.unique(table["method"])))
    for ax, model in zip(axes, models, strict=True):
        for method, rows in table[table["model"].eq(model) | table["model"].isna()].groupby("method", sort=False):
            row = slopes[slopes["model"].eq(model) | slopes["model"].isna()].set_index("method").loc[method]
            ok = rows[np.isfinite(rows["n_star"].astype(float))]
            face = [("white" if e else colors[method]) for e in ok["extrapolated"]]
            errors = [ok["n_star"] - ok["lo"], ok["hi"] - ok["n_star"]]
            ax.errorbar(ok["m"], ok["n_star"], yerr=errors, fmt="none", color=colors[method], lw=1)
            ax.scatter(ok["m"], ok["n_star"], color=colors[method], facecolors=face, zorder=3)
            if np.isfinite(row["slope"]):
                log_m, log_n = np.log(ok["m"].astype(float)), np.log(ok["n_star"].astype(float))
                fit = np.exp(log_n.mean() + row["slope"] * (log_m - log_m.mean()))
                text = f"{method}: slope {row['slope']:.2f} [{row['lo']:.2f}, {row['hi']:.2f}]"
                ax.plot(ok["m"], fit, color=colors[method], lw=1.5, label=text)
        m = np.geomspace(table["m"].min(), table["m"].max(), 2)
        ax.plot(m, m, color="grey", ls=":", lw=1, label="n = m")
        ax.set_xscale("log")
        ax.set_yscale("log")
        _plain_log_ticks(ax.xaxis)
        _plain_log_ticks(ax.yaxis)
        ax.set_xlabel(f"reference's {pool_label} m")
        ax.set_ylabel(f"{pool_label} n* to match the reference")
        ax.set_title(f"n*(m){'' if model is None else f': {model}'}", fontsize=9)
        ax.legend(fontsize=7)
    return fig


def learning_curves_plot(
    df: pd.DataFrame,
    samples: str,
    y: str,
    *,
    model: str,
    by: str | None = None,
    run: str | None = None,
    model_order: Sequence[Hashable] | None = None,
    labels: Mapping[str, str] | None = None,
) -> Figure:
    """Error vs samples seen for each run (colour = level, marker = model, legend in `model_order`); shows
    checkpoint behaviour and repetition effects (pitfalls P7, P11)."""
    fig, (ax,) = _figure()
    levels = _levels(df, by)
    colors = _palette(levels)
    shapes = dict(zip(ordered(list(pd.unique(df[model])), model_order), MARKERS, strict=False))
    keys = [c for c in (by, model, run) if c]
    for key, part in df.groupby(keys, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        level, name = (key[0], key[1]) if by else (None, key[0])
        part = part.sort_values(samples)
        ax.plot(part[samples], part[y], marker=shapes[name], color=colors[level], lw=1.2, ms=5)
    ax.set_xscale("log")
    ax.set_yscale("log")
    cap_error_axis(ax)
    _plain_log_ticks(ax.yaxis)
    ax.set_xlabel(label_of(samples, labels))
    ax.set_ylabel(error_label(y, labels))
    handles = [Line2D([], [], color=c, lw=2, label=str(k)) for k, c in colors.items() if k is not None]
    handles += [Line2D([], [], marker=s, ls="", color="grey", label=str(k)) for k, s in shapes.items()]
    ax.legend(handles=handles, fontsize=7)
    return fig


def bootstrap_plot(bs: Bootstrap, baseline: Hashable, treatment: Hashable, targets: Sequence[float]) -> Figure:
    """Bootstrap distributions: exponent difference, k(E*) at each target, and (log a, b) per level, whose
    strong correlation is why a and b are not compared separately (pitfall P4)."""
    fig, axes = _figure(ncols=3, width=4.4)
    a, b = bs.fits[baseline], bs.fits[treatment]
    delta = b.exponent() - a.exponent()
    sns.histplot(delta[np.isfinite(delta)], ax=axes[0], bins=60, color="grey", stat="density")
    lo, hi = np.nanquantile(delta, [0.002, 0.998])
    if hi > lo:  # a degenerate bootstrap (every draw the same) keeps matplotlib's own limits
        axes[0].set_xlim(lo, hi)
    axes[0].axvline(0, color="black", lw=0.8)
    axes[0].set_xlabel(f"exponent({treatment}) − exponent({baseline})")
    with np.errstate(invalid="ignore", divide="ignore"):
        ks = a.inverse(targets) / b.inverse(targets)
    for j, target in enumerate(targets):
        values = ks[:, j][np.isfinite(ks[:, j])]
        sns.histplot(
            np.log10(values),
            ax=axes[1],
            bins=60,
            stat="density",
            element="step",
            fill=False,
            label=f"E* = {target:.3g}",
        )
    axes[1].set_xlim(*np.nanquantile(np.log10(ks), [0.002, 0.998]))
    axes[1].axvline(0, color="black", lw=0.8)
    axes[1].set_xlabel("log10 k(E*)")
    axes[1].legend(fontsize=7)
    colors = _palette([baseline, treatment])
    for level in (baseline, treatment):
        item = bs.fits[level]
        coef = "a" if "a" in item.draws else "A"
        axes[2].scatter(
            np.log10(item.draws[coef]), item.exponent(), s=2, alpha=0.2, color=colors[level], label=str(level)
        )
    axes[2].set_xlabel(f"log10 {coef}")
    axes[2].set_ylabel("compute exponent")
    axes[2].legend(fontsize=7, markerscale=5)
    return fig


def table_heatmap(table: Mapping[str, pd.DataFrame], *, fmt: str = ".2f", title: str | None = None) -> Figure:
    """One annotated heatmap per named (rows × columns) table of numbers, e.g. a results table."""
    fig, axes = _figure(ncols=len(table), width=5.2, height=0.42 * max(len(t) for t in table.values()) + 1.6)
    for ax, (name, frame) in zip(axes, table.items(), strict=True):
        sns.heatmap(
            frame.astype(float),
            ax=ax,
            annot=True,
            fmt=fmt,
            cmap="crest",
            cbar=False,
            annot_kws={"fontsize": 8},
        )
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.tick_params(labelsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def ratio_plot(
    panels: Mapping[str, pd.DataFrame],
    *,
    rows: Mapping[Hashable, str],
    colour: str,
    colour_labels: Mapping[Hashable, str],
    marker: str,
    xlabel: str,
    overall: Hashable | None = None,
    title: str | None = None,
) -> Figure:
    """Ratios with intervals (columns `method`, `ratio`, `ratio_lo`, `ratio_hi`), one panel per named table:
    one row per method (`rows`: key → label, top to bottom), one colour per value of `colour` (in the order of
    `colour_labels`; the `overall` value, e.g. a pooled estimate, in black), one marker per value of `marker`,
    a dashed line at 1. A missing interval (one pair) is drawn as a bare point."""
    markers = list(pd.unique(pd.concat(panels.values())[marker]))
    slots = [(c, m) for m in markers for c in colour_labels]
    offsets = dict(zip(slots, np.linspace(-0.3, 0.3, len(slots)) if len(slots) > 1 else [0.0], strict=True))
    colours = _palette([c for c in colour_labels if c != overall]) | {overall: (0.0, 0.0, 0.0)}
    fig, axes = _figure(ncols=len(panels), width=5.0, height=0.45 * len(rows) + 2.2)
    for ax, (name, table) in zip(axes, panels.items(), strict=True):
        for (c, m), group in table.groupby([colour, marker], sort=False):
            group = group.set_index("method").reindex(list(rows))
            ratio = group["ratio"].to_numpy(float)
            err = np.nan_to_num(np.abs(group[["ratio_lo", "ratio_hi"]].to_numpy(float).T - ratio))
            y = np.arange(len(rows)) + offsets[(c, m)]
            shape = MARKERS[markers.index(m) % len(MARKERS)]
            ax.errorbar(ratio, y, xerr=err, fmt=shape, color=colours[c], ms=5, capsize=2, elinewidth=1)
        ax.axvline(1.0, color="0.4", lw=1, ls="--")
        ax.set_yticks(np.arange(len(rows)), list(rows.values()), fontsize=8)
        ax.set_ylim(len(rows) - 0.5, -0.5)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel(xlabel, fontsize=9)
    handles = [Line2D([], [], color=colours[c], marker="o", ls="", label=text) for c, text in colour_labels.items()]
    if len(markers) > 1:
        handles += [
            Line2D([], [], color="0.3", marker=MARKERS[i % len(MARKERS)], ls="", label=str(m))
            for i, m in enumerate(markers)
        ]
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 4), fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    return fig
