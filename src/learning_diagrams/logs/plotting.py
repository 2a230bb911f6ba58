"""Plotting a :class:`~learning_diagrams.logs.History`: one subplot per stage, values against step.

The figure is built on matplotlib's object API with an Agg canvas of its own, so
the global backend and :mod:`matplotlib.pyplot` are never touched; matplotlib
is imported only when a figure is drawn.

>>> _legend_shape(["total", "x·f ≤ y"])[:2]
(2, 1)
>>> _line_style(11)
{'color': 'C1', 'linestyle': '--'}
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from .history import History

__all__ = ["figure"]


def _legend_shape(names: Iterable[str], per_column: int = 8, most_columns: int = 4) -> tuple[int, int, float]:
    """(rows, columns, width in inches) of a small-font legend of ``names``.

    One column up to ``per_column`` names, then up to ``most_columns``; the width
    allows the line sample and about 0.06 in a character of the longest name.
    """
    names = list(names)
    columns = max(1, min(most_columns, math.ceil(len(names) / per_column)))
    longest = max((len(n) for n in names), default=0)
    return math.ceil(len(names) / columns), columns, columns * (0.7 + 0.065 * longest)


def _line_style(index: int) -> dict[str, str]:
    """The colour and dash of the ``index``-th name: the same in every subplot of a figure."""
    return {"color": f"C{index % 10}", "linestyle": ("-", "--", ":", "-.")[index // 10 % 4]}


def figure(history: History, split: str = "train", stages: Mapping[int, str] | None = None) -> Figure:
    """The figure of :meth:`History.figure <learning_diagrams.logs.History.figure>` (see there)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    by_stage = history.series(split)
    # Legends sit below their subplots; long ones wrap into columns and the figure grows
    # by a row of text per legend row, so constrained layout can always place them.
    shapes = [_legend_shape(curves) for curves in by_stage.values()]
    width = sum(max(5.2, w) for _, _, w in shapes)
    rows = max((r for r, _, _ in shapes), default=0)
    fig = Figure(figsize=(max(6.4, width), max(5.6, 4.4 + 0.2 * rows)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, max(1, len(by_stage)), squeeze=False)[0]
    fig.suptitle(f"{split} values by stage" if by_stage else f"{split} values")
    if not by_stage:
        axes[0].text(0.5, 0.5, f"no {split} records", ha="center", va="center", transform=axes[0].transAxes)
        axes[0].set_axis_off()
    styles = {name: _line_style(i) for i, name in enumerate(history.names(split))}
    named = dict(stages or {})
    for ax, stage in zip(axes, by_stage):
        _plot_stage(ax, by_stage[stage], named.get(stage, f"stage {stage}"), styles)
    return fig


def _plot_stage(
    ax: Any, curves: Mapping[str, tuple[list[int], list[float]]], title: str, styles: dict[str, dict[str, str]]
) -> None:
    """Draw the ``curves`` (name → steps, values) of one stage on ``ax``, each name in its style, legend below."""
    # Non-finite values leave gaps.
    series = {
        name: (steps, [v if math.isfinite(v) else math.nan for v in values]) for name, (steps, values) in curves.items()
    }
    finite = [v for _, values in series.values() for v in values if math.isfinite(v)]
    log = bool(finite) and min(finite) > 0
    for name in (n for n in styles if n in series):
        steps, values = series[name]
        marker = "o" if len(steps) <= 50 else None
        ax.plot(steps, values, label=name, marker=marker, markersize=3, linewidth=1.2, **styles[name])
    if log:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.set_xlabel("step")
    ax.set_ylabel("value (log scale)" if log else "value")
    ax.grid(True, alpha=0.3)
    ax.legend(
        loc="upper center",
        bbox_to_anchor=(0.5, -0.15),
        fontsize="small",
        frameon=False,
        ncols=_legend_shape(series)[1],
    )
