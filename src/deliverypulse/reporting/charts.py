"""The report's charts: matplotlib (Agg) figures rendered to inline SVG strings.

SVG inside the page needs no JavaScript and fetches nothing, so the report opens offline and
prints sharply. Text stays text (``svg.fonttype = none``) so the page's own font is used and a
reader can select the labels. One calm palette throughout; cluster colours match the badges.
"""

from __future__ import annotations

import functools
import io
import re
import textwrap
from collections.abc import Callable, Sequence
from typing import Any, ParamSpec, cast

import matplotlib
import matplotlib.dates
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from deliverypulse.dora.clusters import BENCHMARKS

P = ParamSpec("P")

INK = "#1f2933"
MUTED = "#616e7c"
GRID = "#e4e7eb"
PRIMARY = "#2f5d8a"
GATED = "#c17c2e"
CLUSTER_COLOURS = {
    "elite": "#1b7f5f",
    "high": "#4f9a6b",
    "medium": "#d49a2a",
    "low": "#c0504d",
}
STAGE_COLOURS = {
    "coding": "#2f5d8a",
    "pickup": "#6f9cc6",
    "review": "#b3cde6",
    "deploy": "#e0a458",
}
STAGE_LABELS = {
    "coding": "Coding (first commit → ready)",
    "pickup": "Pickup (→ first review)",
    "review": "Review (→ merged)",
    "deploy": "Deploy (merged → production)",
}

_STYLE: dict[str, Any] = {
    # Names come from the data (repos, teams): draw "$x$" as the text it is, never as mathtext.
    "text.parse_math": False,
    "svg.fonttype": "none",
    "svg.hashsalt": "deliverypulse",
    "font.family": "sans-serif",
    "font.size": 10,
    "axes.edgecolor": GRID,
    "axes.labelcolor": MUTED,
    "axes.titlecolor": INK,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.grid.axis": "y",
    "grid.color": GRID,
    "grid.linewidth": 0.8,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "xtick.major.size": 0,
    "ytick.major.size": 0,
    "legend.frameon": False,
    "figure.dpi": 96,
}


def _drawn_as_text(chart: Callable[P, str]) -> Callable[P, str]:
    """Build a chart with the page's style in force throughout, so every text made while
    drawing (tick labels, legends, layout passes) is plain text, not mathtext."""

    @functools.wraps(chart)
    def build(*args: P.args, **kwargs: P.kwargs) -> str:
        with matplotlib.rc_context(cast(Any, _STYLE)):
            return chart(*args, **kwargs)

    return build


def _svg(figure: Figure, name: str) -> str:
    """The figure as an ``<svg>`` element ready to inline: no XML prologue, no metadata, and ids
    unique to this chart (several charts share one page). Its size stays the figure's; the
    page only shrinks it to fit."""
    buffer = io.StringIO()
    with matplotlib.rc_context(cast(Any, {"svg.hashsalt": name})):
        figure.savefig(buffer, format="svg", metadata={"Date": None}, bbox_inches="tight")
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    text = re.sub(r"\s*<metadata>.*?</metadata>", "", text, count=1, flags=re.DOTALL)
    text = re.sub(r'\bid="', f'id="{name}-', text)
    text = re.sub(r'(url\(#|href="#)', rf"\g<1>{name}-", text)
    label = name.replace("-", " ")
    return text.replace("<svg", f'<svg role="img" aria-label="{label}" class="chart"', 1)


def _figure(width: float, height: float, **subplots: Any) -> tuple[Figure, Any]:
    """A figure on the Agg canvas, made without pyplot: no global figure registry to leak
    into, nothing that depends on a display, safe in a server or a notebook."""
    with matplotlib.rc_context(cast(Any, _STYLE)):
        figure = Figure(figsize=(width, height))
        FigureCanvasAgg(figure)
        axes = figure.subplots(**subplots)
    for axis in np.atleast_1d(axes).ravel():
        _style(axis)
    return figure, axes


def _style(axis: Axes) -> None:
    """Apply the palette to one axis (rc_context only covers creation, so set it here too)."""
    for side in ("left", "bottom"):
        axis.spines[side].set_color(GRID)
    for side in ("top", "right"):
        axis.spines[side].set_visible(False)
    axis.tick_params(colors=MUTED, length=0, labelsize=9)
    axis.grid(axis="y", color=GRID, linewidth=0.8)
    axis.set_axisbelow(True)
    axis.title.set_color(INK)


def duration_unit(hours: Sequence[float] | pd.Series) -> tuple[float, str]:
    """Divisor and name of the unit that suits the largest value: hours below two days."""
    values = pd.to_numeric(pd.Series(hours, dtype="Float64"), errors="coerce").dropna()
    largest = float(values.max()) if len(values) else 0.0
    return (1.0, "hours") if largest < 48 else (24.0, "days")


@_drawn_as_text
def trends(table: pd.DataFrame, period: str, benchmarks: str = "2023") -> str:
    """Four small multiples over time: deployments, median lead time, change failure rate and
    median recovery time, one point per ``period``. Behind the last three, faint bands of the
    DORA clusters of ``benchmarks``, so a reader sees where each period stood."""
    figure, axes = _figure(10.5, 5.6, nrows=2, ncols=2, sharex=True)
    when = pd.to_datetime(table["period"]).dt.tz_localize(None)
    width = 5.5 if period == "week" else 22.0
    bars, lead, rate, recovery = axes.ravel()

    counts = table["deployments"].astype(float)
    bars.bar(when, counts, width=width, color=PRIMARY, alpha=0.85)
    bars.set_title(f"Deployments per {period}")
    bars.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=5))
    bars.set_ylim(0, float(np.nanmax(np.r_[counts.to_numpy(), 1.0])) * 1.15)
    small = 7 if len(table) <= 14 else 6
    for moment, count in zip(when, counts, strict=True):
        if not np.isnan(count):
            bars.annotate(
                f"{count:.0f}",
                (_x(moment), count),
                xytext=(0, 2),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=small,
                color=MUTED,
            )

    panels = (
        (lead, "lead_time_median_hours", "lead_time", "Median lead time", "lead_time_count"),
        (
            rate,
            "change_failure_rate",
            "change_failure_rate",
            "Change failure rate",
            "deployment_attempts",
        ),
        (recovery, "recovery_median_hours", "recovery", "Median recovery time", "recovery_count"),
    )
    basis = {
        "lead_time_count": "changes",
        "deployment_attempts": "deployments",
        "recovery_count": "recoveries",
    }
    for axis, column, metric, title, counted in panels:
        values = table[column].astype(float)
        divisor, unit = (1.0, "") if metric == "change_failure_rate" else duration_unit(values)
        scaled = values / divisor
        floor = 0.2 if metric == "change_failure_rate" else 0.0
        top = float(np.nanmax(np.r_[scaled.to_numpy(), floor])) * 1.22 or 1.0
        _bands(axis, BENCHMARKS[benchmarks][metric].bounds, divisor, top)
        _line(axis, when, scaled)
        _counts(axis, when, scaled, table[counted], small)
        axis.set_ylim(0, top)
        named = f"{title} ({unit})" if unit else title
        axis.set_title(f"{named} · n = {basis[counted]}")
    rate.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))

    for axis in (rate, recovery):
        axis.xaxis.set_major_formatter(_date_format(period))
    figure.tight_layout(h_pad=2.0, w_pad=3.0)
    return _svg(figure, "trends")


def _date_format(period: str) -> matplotlib.dates.DateFormatter:
    pattern = "%d %b" if period == "week" else "%b %Y"
    return matplotlib.dates.DateFormatter(pattern)  # type: ignore[no-untyped-call]  # untyped upstream


def _line(axis: Axes, when: pd.Series, values: pd.Series) -> None:
    """A line that breaks where a period has no value, with a dot on every value."""
    axis.plot(when, values, color=PRIMARY, linewidth=2)
    axis.plot(when, values, "o", color=PRIMARY, markersize=3.5)


def _counts(axis: Axes, when: pd.Series, values: pd.Series, counts: pd.Series, size: int) -> None:
    """The number each point rests on, just above the point: a point of 3 changes reads
    differently from one of 300."""
    for moment, value, count in zip(when, values, counts, strict=True):
        amount = fmt_count(count)
        if amount is None or np.isnan(value):
            continue
        axis.annotate(
            amount,
            (_x(moment), value),
            xytext=(0, 4),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=size,
            color=MUTED,
        )


def _x(moment: Any) -> float:
    """A timestamp as matplotlib's date number (where an annotation is anchored)."""
    return float(matplotlib.dates.date2num(moment))  # type: ignore[no-untyped-call]  # untyped upstream


def fmt_count(value: Any) -> str | None:
    """A count as text, or None where it is missing."""
    if value is None or pd.isna(value):
        return None
    return f"{int(value):,}"


def _bands(axis: Axes, bounds: tuple[float, float, float], divisor: float, top: float) -> None:
    """Faint cluster bands for a lower-is-better metric: elite below the first bound, then
    high, medium, and low above the last; clipped to ``top`` so they never stretch the axis."""
    edges = [0.0, *(bound / divisor for bound in bounds), np.inf]
    labels_at = axis.get_yaxis_transform()  # x in axis fraction, y in data
    for cluster, low, high in zip(CLUSTER_COLOURS, edges, edges[1:], strict=False):
        if low >= top:
            continue
        colour = CLUSTER_COLOURS[cluster]
        shown_top = min(high, top)
        axis.axhspan(low, shown_top, color=colour, alpha=0.08, lw=0)
        if low > 0:
            axis.axhline(low, color=colour, alpha=0.5, lw=0.8, ls=(0, (4, 3)))
        if shown_top - low > 0.08 * top:  # name the band where there is room
            axis.text(
                0.995,
                (low + shown_top) / 2,
                cluster,
                transform=labels_at,
                ha="right",
                va="center",
                fontsize=8,
                color=colour,
            )


@_drawn_as_text
def lead_time_breakdown(rows: pd.DataFrame) -> str:
    """Stacked horizontal bars: the median of each stage per row (``label`` plus one column per
    stage, in hours). Medians of stages do not add up to the median lead time; the page says
    so."""
    stages = list(STAGE_COLOURS)
    values = rows[stages].astype(float).fillna(0.0)
    divisor, unit = duration_unit(values.sum(axis=1))
    height = 1.2 + 0.42 * len(rows)
    figure, axis = _figure(10.5, height)
    axis.grid(axis="y", visible=False)
    axis.grid(axis="x", color=GRID, linewidth=0.8)
    positions = np.arange(len(rows))[::-1]
    left = np.zeros(len(rows))
    for stage in stages:
        widths = values[stage].to_numpy() / divisor
        axis.barh(
            positions,
            widths,
            left=left,
            height=0.62,
            color=STAGE_COLOURS[stage],
            label=STAGE_LABELS[stage],
        )
        left += widths
    suffix = " h" if unit == "hours" else " d"
    for position, total in zip(positions, left, strict=True):
        axis.text(
            total,
            position,
            f"  {total:.1f}{suffix}",
            va="center",
            ha="left",
            color=MUTED,
            fontsize=9,
        )
    axis.set_yticks(positions, [str(label) for label in rows["label"]])
    axis.tick_params(axis="y", labelsize=10, labelcolor=INK)
    axis.set_xlabel(f"median {unit} in each stage")
    axis.set_xlim(0, float(left.max()) * 1.12 if left.max() > 0 else 1)
    axis.legend(
        loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=4, fontsize=9, handlelength=1.2
    )
    figure.tight_layout()
    return _svg(figure, "lead-time-breakdown")


@_drawn_as_text
def failure_rates(
    groups: pd.DataFrame, name: str, colours: Sequence[str] | None = None, xlabel: str = ""
) -> str:
    """Change failure rate per group with its Wilson 95 % interval as an error bar, and the
    failures and deployments written on each bar."""
    return _rate_panels([("", groups, colours)], name, xlabel)


@_drawn_as_text
def failure_rate_panels(
    panels: Sequence[tuple[str, pd.DataFrame, Sequence[str] | None]], name: str, xlabel: str = ""
) -> str:
    """Several failure-rate bar charts side by side on one scale, each with its title (e.g.
    like with like first, then every repo pooled)."""
    return _rate_panels(panels, name, xlabel)


def _rate_panels(
    panels: Sequence[tuple[str, pd.DataFrame, Sequence[str] | None]], name: str, xlabel: str
) -> str:
    widths = [max(4.2, 1.3 + 1.3 * len(groups)) for _, groups, _ in panels]
    figure, axes = _figure(sum(widths), 3.6 if len(panels) > 1 else 3.4, ncols=len(panels))
    axes_list = list(np.atleast_1d(axes).ravel())
    ceiling = max(
        float(np.nanmax(np.r_[groups["cfr_high"].astype(float), 0.1])) for _, groups, _ in panels
    )
    for index, (axis, (title, groups, colours)) in enumerate(zip(axes_list, panels, strict=True)):
        _rate_bars(axis, groups, colours, ceiling)
        if title:
            axis.set_title(title, fontsize=10)
        if index == 0:
            axis.set_ylabel("change failure rate")
        if xlabel:
            axis.set_xlabel(xlabel)
    figure.tight_layout(w_pad=3.0)
    return _svg(figure, name)


def _rate_bars(
    axis: Axes, groups: pd.DataFrame, colours: Sequence[str] | None, ceiling: float
) -> None:
    rates = groups["change_failure_rate"].astype(float).to_numpy()
    low = groups["cfr_low"].astype(float).to_numpy()
    high = groups["cfr_high"].astype(float).to_numpy()
    positions = np.arange(len(groups))
    fill = list(colours) if colours is not None else [PRIMARY] * len(groups)
    axis.bar(positions, np.nan_to_num(rates), width=0.6, color=fill, alpha=0.85)
    errors = np.vstack([np.clip(rates - low, 0, None), np.clip(high - rates, 0, None)])
    axis.errorbar(
        positions, rates, yerr=np.nan_to_num(errors), fmt="none", ecolor=INK, capsize=5, lw=1.2
    )
    lift = ceiling * 0.03  # keep labels clear of the caps
    for position, rate, failures, total, top in zip(
        positions, rates, groups["failures"], groups["deployments"], high, strict=True
    ):
        above = float(np.nanmax([top, rate, 0.0])) + lift
        text = "no data" if np.isnan(rate) else f"{rate:.0%}\n{int(failures)} of {int(total)}"
        axis.text(
            float(position),
            above,
            text,
            va="bottom",
            ha="center",
            fontsize=9,
            color=INK,
            linespacing=1.3,
        )
    axis.set_xticks(positions, [str(label) for label in groups["group"]])
    axis.tick_params(axis="x", labelsize=10, labelcolor=INK)
    axis.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    axis.set_ylim(0, ceiling * 1.3)
    axis.set_xlim(-0.6, len(groups) - 0.4)


@_drawn_as_text
def control_rates(controls: pd.DataFrame) -> str:
    """Per control (rows of ``Analysis.controls``, in the order given), the failure rate of
    deployments with it and without it side by side, each with its Wilson 95 % interval and
    its failures and deployments written on the bar."""
    labels = [
        "\n".join(textwrap.wrap(str(text), 18))
        for text in controls["label"].fillna(controls["control"])
    ]
    figure, axis = _figure(max(6.0, 1.6 + 1.9 * len(controls)), 3.6)
    positions = np.arange(len(controls), dtype=float)
    sides = (("with", "with it", PRIMARY, -0.2), ("without", "without it", GATED, 0.2))
    ceiling = max(
        float(np.nanmax(np.r_[pd.to_numeric(controls[f"{side}_rate_high"]), 0.1]))
        for side, *_ in sides
    )
    for side, name, colour, shift in sides:
        rates = pd.to_numeric(controls[f"{side}_rate"]).astype(float).to_numpy()
        low = pd.to_numeric(controls[f"{side}_rate_low"]).astype(float).to_numpy()
        high = pd.to_numeric(controls[f"{side}_rate_high"]).astype(float).to_numpy()
        failures = pd.to_numeric(controls[f"{side}_failures"]).fillna(0).astype(int)
        totals = pd.to_numeric(controls[f"{side}_deployments"]).fillna(0).astype(int)
        where = positions + shift
        axis.bar(where, np.nan_to_num(rates), width=0.36, color=colour, alpha=0.85, label=name)
        errors = np.vstack([np.clip(rates - low, 0, None), np.clip(high - rates, 0, None)])
        axis.errorbar(
            where, rates, yerr=np.nan_to_num(errors), fmt="none", ecolor=INK, capsize=4, lw=1.1
        )
        for x, rate, top, failed, total in zip(where, rates, high, failures, totals, strict=True):
            text = "none" if not total else f"{failed} of {total}"
            above = float(np.nanmax([top, rate, 0.0])) + ceiling * 0.03
            axis.text(x, above, text, ha="center", va="bottom", fontsize=8, color=MUTED)
    axis.set_xticks(positions, labels)
    axis.tick_params(axis="x", labelsize=9, labelcolor=INK)
    axis.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    axis.set_ylabel("change failure rate")
    axis.set_ylim(0, ceiling * 1.3)
    axis.set_xlim(-0.6, len(controls) - 0.4)
    axis.legend(loc="upper right", fontsize=9, handlelength=1.2)
    figure.tight_layout()
    return _svg(figure, "controls")


__all__ = [
    "CLUSTER_COLOURS",
    "GATED",
    "PRIMARY",
    "STAGE_COLOURS",
    "STAGE_LABELS",
    "control_rates",
    "duration_unit",
    "failure_rate_panels",
    "failure_rates",
    "lead_time_breakdown",
    "trends",
]
