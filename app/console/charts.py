"""The console's charts as server-rendered SVG (matplotlib, no GUI backend, nothing fetched by the browser).

The adapters chart puts held-out NLL per answer token (candidate and base model) and token F1 side by
side per LoRA adapter version; the feedback chart is ``ragbot report``'s, drawn from the same numbers.
"""

from __future__ import annotations

import io
import math
from typing import TYPE_CHECKING, Any

from app.report import DailyFeedback
from rag_engine.training.registry import AdapterRecord

if TYPE_CHECKING:
    from matplotlib.figure import Figure

STATUS_COLORS = {"active": "#2a9d4b", "rejected": "#d1495b", "retired": "#888888", "candidate": "#3066be"}


def metric(adapter: AdapterRecord, who: str, name: str) -> float | None:
    """One gate number of an adapter (``who``: candidate | active | base; ``name``: nll | token_f1)."""
    value: Any = (adapter.metrics.get(who) or {}).get(name)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def adapters_svg(adapters: list[AdapterRecord]) -> bytes:
    """NLL (left axis, lower is better) and F1 (right axis) per version, oldest first."""
    from matplotlib.figure import Figure  # lazy: matplotlib loads only when a chart is drawn

    shown = [a for a in adapters if metric(a, "candidate", "nll") is not None]
    fig = Figure(figsize=(9, 3.8))
    ax = fig.add_subplot()
    if not shown:
        ax.text(0.5, 0.5, "no evaluated LoRA adapters yet", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return _svg(fig)
    x = list(range(len(shown)))
    nan = float("nan")  # a gap where a number was not recorded
    candidate = [metric(a, "candidate", "nll") or nan for a in shown]
    ax.plot(x, [metric(a, "base", "nll") or nan for a in shown], linestyle="--", color="#555555",
            label="base model NLL")
    ax.plot(x, candidate, color="#3066be", label="adapter NLL")
    ax.scatter(x, candidate, c=[STATUS_COLORS.get(a.status, "#3066be") for a in shown], zorder=3, s=50)
    ax.set_ylabel("held-out NLL / token")
    ax.set_xticks(x, [f"{a.version}\n{a.status}" for a in shown], fontsize=8)
    f1 = [metric(a, "candidate", "token_f1") for a in shown]
    if any(v is not None for v in f1):
        right = ax.twinx()
        right.plot(x, [v if v is not None else nan for v in f1], color="#e09f3e", marker="s", label="adapter F1")
        right.set_ylabel("token F1 (higher is better)")
        right.set_ylim(0, 1)
        handles, labels = (a + b for a, b in zip(ax.get_legend_handles_labels(), right.get_legend_handles_labels(),
                                                 strict=True))
    else:
        handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.93))  # the legend sits above the axes, clear of the lines
    return _svg(fig)


def feedback_svg(daily: list[DailyFeedback]) -> bytes:
    """Votes, corrections and questions per day."""
    import numpy as np  # lazy, as matplotlib: only when a chart is drawn
    from matplotlib.figure import Figure  # lazy: matplotlib loads only when a chart is drawn

    fig = Figure(figsize=(9, 3.6))
    ax = fig.add_subplot()
    if not daily:
        ax.text(0.5, 0.5, "no interactions or feedback yet", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return _svg(fig)
    days = np.array([d.day for d in daily], dtype="datetime64[D]")  # matplotlib's date axis reads datetime64
    ax.bar(days, [d.interactions for d in daily], alpha=0.15, color="#555555", label="questions")
    ax.plot(days, [d.up for d in daily], marker="o", label="up votes", color="#2a9d4b")
    ax.plot(days, [d.down for d in daily], marker="o", label="down votes", color="#d1495b")
    ax.plot(days, [d.corrections for d in daily], marker="o", label="corrections", color="#3066be")
    ax.set_ylabel("per day")
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    return _svg(fig)


def _svg(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="svg")
    return buf.getvalue()
