"""``ragbot report``: one self-contained HTML page on feedback, adapters, retrieval versions and which served.

Charts are matplotlib PNGs embedded as base64 (the page needs no server and no
network); figures are built with ``matplotlib.figure.Figure`` directly, so no
GUI backend or global pyplot state is involved.
"""

from __future__ import annotations

import base64
import html
import io
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from app.configs import engine_config
from app.settings import Settings
from bot.admin_ops import AdminStatus, status
from rag_engine.store.collections import CollectionRepo
from rag_engine.store.database import Database
from rag_engine.store.report import ReportRepo, VersionCounts
from rag_engine.training import registry, retrieval_registry
from rag_engine.training.registry import AdapterRecord
from rag_engine.training.retrieval_registry import QueryAdapterRecord

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass(frozen=True, slots=True)
class DailyFeedback:
    day: date
    up: int
    down: int
    corrections: int
    interactions: int


def feedback_by_day(db: Database) -> list[DailyFeedback]:
    """Votes (by their latest change), corrections and interactions per UTC day."""
    counts = ReportRepo(db).daily_counts()
    days: dict[date, list[int]] = {}
    for d, up, down in counts.votes:
        days.setdefault(d, [0, 0, 0, 0])[:2] = [up, down]
    for d, n in counts.corrections:
        days.setdefault(d, [0, 0, 0, 0])[2] = n
    for d, n in counts.questions:
        days.setdefault(d, [0, 0, 0, 0])[3] = n
    return [DailyFeedback(d, *days[d]) for d in sorted(days)]


def build_report(db: Database, settings: Settings) -> str:
    """The report page as HTML text."""
    daily = feedback_by_day(db)
    adapters = list(reversed(registry.list_adapters(db)))  # oldest first, for the chart
    state = status(db, engine_config(settings))
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>ragbot report</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:960px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;width:100%;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;"
        "text-align:left;font-size:14px}th{background:#f3f3f3}img{max-width:100%}</style></head><body>",
        f"<h1>ragbot report</h1><p>Generated {datetime.now(UTC):%Y-%m-%d %H:%M UTC}.</p>",
        "<h2>Status</h2><ul>" + "".join(f"<li>{html.escape(line)}</li>" for line in state.to_lines()) + "</ul>",
        "<h2>Feedback over time</h2>",
        _img(_feedback_chart(daily)) if daily else "<p>No interactions or feedback yet.</p>",
        _feedback_table(daily),
        "<h2>Adapters</h2>",
        _img(_adapter_chart(adapters)) if any(_nll(a, "candidate") is not None for a in adapters)
        else "<p>No evaluated adapters yet.</p>",
        _adapter_table(adapters, state),
        "<p>Promotion rule: a candidate goes live when its held-out NLL per answer token is at most "
        f"(1 &minus; {settings.promotion_margin:g}) &times; the active adapter's (or the base model's when none is "
        "active) and below the base model's.</p>",
        "<h2>Retrieval versions</h2>",
        _retrieval_table(retrieval_registry.list_versions(db),
                         {str(c.id): c.name for c in CollectionRepo(db).list_all()}),
        "<p>Promotion rule: a retrieval version goes live when its held-out nDCG@10 is at least "
        f"{settings.retrieval_promotion_margin:g} above raw query embeddings' (and the active version's), its "
        "hit@5 is not lower, and the extractive answers its rankings give score no lower token-F1 against the "
        "reviewed answers.</p>",
        "<h2>Answers by version</h2>",
        _version_table(ReportRepo(db).answers_by_version()),
        "</body></html>",
    ]
    return "\n".join(parts)


def write_report(db: Database, settings: Settings, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(build_report(db, settings), encoding="utf-8")
    return out


# -- charts ------------------------------------------------------------------------
def _feedback_chart(daily: list[DailyFeedback]) -> bytes:
    from matplotlib.figure import Figure  # lazy: matplotlib loads only when a chart is drawn

    fig = Figure(figsize=(9, 3.6))
    ax = fig.add_subplot()
    days = np.array([d.day for d in daily], dtype="datetime64[D]")  # matplotlib's date axis reads datetime64
    ax.plot(days, [d.up for d in daily], marker="o", label="up votes", color="#2a9d4b")
    ax.plot(days, [d.down for d in daily], marker="o", label="down votes", color="#d1495b")
    ax.plot(days, [d.corrections for d in daily], marker="o", label="corrections", color="#3066be")
    ax.bar(days, [d.interactions for d in daily], alpha=0.15, color="#555", label="questions")
    ax.set_ylabel("per day")
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    return _png(fig)


def _adapter_chart(adapters: list[AdapterRecord]) -> bytes:
    from matplotlib.figure import Figure  # lazy: matplotlib loads only when a chart is drawn

    shown = [a for a in adapters if _nll(a, "candidate") is not None]
    fig = Figure(figsize=(9, 3.6))
    ax = fig.add_subplot()
    x = list(range(len(shown)))
    colors = {"active": "#2a9d4b", "rejected": "#d1495b", "retired": "#999", "candidate": "#3066be"}
    base = [_nll_or_nan(a, "base") for a in shown]  # NaN: a gap in the line where no score was recorded
    candidate = [_nll_or_nan(a, "candidate") for a in shown]
    ax.plot(x, base, linestyle="--", color="#555", label="base model")
    ax.plot(x, candidate, color="#3066be", label="candidate")
    ax.scatter(x, candidate, c=[colors.get(a.status, "#3066be") for a in shown],
               zorder=3, s=40)
    ax.set_xticks(x, [f"{a.version}\n{a.status}" for a in shown], fontsize=8)
    ax.set_ylabel("held-out NLL / token (lower is better)")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return _png(fig)


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def _img(png: bytes) -> str:
    return f"<img alt='chart' src='data:image/png;base64,{base64.b64encode(png).decode()}'>"


# -- tables ------------------------------------------------------------------------
def _feedback_table(daily: list[DailyFeedback]) -> str:
    if not daily:
        return ""
    rows = "".join(f"<tr><td>{d.day}</td><td>{d.interactions}</td><td>{d.up}</td><td>{d.down}</td>"
                   f"<td>{d.corrections}</td></tr>" for d in daily[-30:])
    return ("<table><tr><th>day</th><th>questions</th><th>👍</th><th>👎</th><th>corrections</th></tr>"
            f"{rows}</table>")


def _adapter_table(adapters: list[AdapterRecord], state: AdminStatus) -> str:
    if not adapters:
        return "<p>No adapters trained yet.</p>"
    rows = []
    for a in reversed(adapters):
        m = a.metrics
        cand = m.get("candidate") or {}
        rows.append(
            "<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in (
                a.version, a.status, a.method, a.created_at.strftime("%Y-%m-%d %H:%M"),
                a.data_snapshot.get("train", ""), a.data_snapshot.get("heldout", ""),
                _fmt(cand.get("nll")), _fmt(_nll(a, "active")), _fmt(_nll(a, "base")),
                _fmt(cand.get("token_f1")), _fmt(cand.get("rouge_l")), m.get("reason", ""),
            )) + "</tr>"
        )
    head = "".join(f"<th>{h}</th>" for h in ("version", "status", "method", "created", "train", "held-out",
                                             "NLL", "active NLL", "base NLL", "F1", "ROUGE-L", "gate"))
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _retrieval_table(versions: list[QueryAdapterRecord], names: dict[str, str]) -> str:
    """Query adapters, newest first, with their held-out numbers and raw queries' on the same questions, and the
    fusion weights each learned (``names``: collection id -> name)."""
    if not versions:
        return "<p>No retrieval versions trained yet (<code>ragbot retrieval train</code>).</p>"
    rows = []
    for v in versions:
        cand, base = (v.metrics.get(k) or {} for k in ("candidate", "baseline"))
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in (
            v.version, v.status, v.created_at.strftime("%Y-%m-%d %H:%M"), v.data_snapshot.get("train", ""),
            v.data_snapshot.get("heldout", ""), _fmt(cand.get("ndcg10")), _fmt(base.get("ndcg10")),
            _fmt(cand.get("hit5")), _fmt(base.get("hit5")), _fmt(cand.get("hit1")),
            retrieval_registry.describe_weights(v, names), v.metrics.get("reason", ""),
        )) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("version", "status", "created", "train", "held-out", "nDCG@10",
                                             "raw nDCG@10", "hit@5", "raw hit@5", "hit@1", "fusion weight", "gate"))
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _version_table(counts: list[VersionCounts]) -> str:
    """Which generator adapter and which retrieval version served the logged answers, with their votes."""
    if not counts:
        return "<p>No answers logged yet.</p>"
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(str(x))}</td>" for x in (
        c.adapter_version or "base model", c.retriever_version or "raw queries", c.answers, c.up, c.down)) + "</tr>"
                   for c in counts)
    head = "".join(f"<th>{h}</th>" for h in ("generator adapter", "retrieval version", "answers", "👍", "👎"))
    return f"<table><tr>{head}</tr>{rows}</table>"


def _nll(adapter: AdapterRecord, which: str) -> float | None:
    scores = adapter.metrics.get(which) or {}
    value = scores.get("nll") if isinstance(scores, dict) else None
    return float(value) if value is not None else None


def _nll_or_nan(adapter: AdapterRecord, which: str) -> float:
    value = _nll(adapter, which)
    return math.nan if value is None else value


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"
