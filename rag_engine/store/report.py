"""The report's read-only queries: feedback and questions per UTC day, and answers per model version."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, case, func, select

from rag_engine.store import schema as t
from rag_engine.store.database import Database


@dataclass(frozen=True, slots=True)
class DailyCounts:
    votes: list[tuple[date, int, int]]  # day, up, down (a vote counts on the day of its latest change)
    corrections: list[tuple[date, int]]
    questions: list[tuple[date, int]]


@dataclass(frozen=True, slots=True)
class VersionCounts:
    """Answers written with one generator adapter and one retrieval version (None: base model / raw queries)."""

    adapter_version: str | None
    retriever_version: str | None
    answers: int
    up: int  # votes on those answers
    down: int


def _day(col: Any) -> ColumnElement[date]:
    return func.date(func.timezone("UTC", col))


class ReportRepo:
    """Aggregates for ``ragbot report``, read in one connection."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def daily_counts(self) -> DailyCounts:
        f, c, i = t.feedback.c, t.corrections.c, t.interactions.c
        with self.db.connect() as conn:
            votes = conn.execute(
                select(_day(f.updated_at).label("d"), func.count(case((f.vote > 0, 1))),
                       func.count(case((f.vote < 0, 1)))).group_by("d")
            ).all()
            corrections = conn.execute(select(_day(c.created_at).label("d"), func.count()).group_by("d")).all()
            asked = conn.execute(select(_day(i.created_at).label("d"), func.count()).group_by("d")).all()
        return DailyCounts(votes=[(d, int(up), int(down)) for d, up, down in votes],
                           corrections=[(d, int(n)) for d, n in corrections],
                           questions=[(d, int(n)) for d, n in asked])

    def answers_by_version(self) -> list[VersionCounts]:
        """Logged answers (failed asks left out) and their votes per (adapter, retriever) version, most answers
        first."""
        i, f = t.interactions.c, t.feedback.c
        stmt = (select(i.adapter_version, i.retriever_version, func.count(func.distinct(i.id)),
                       func.count(case((f.vote > 0, 1))), func.count(case((f.vote < 0, 1))))
                .select_from(t.interactions.outerjoin(t.feedback, f.interaction_id == i.id))
                .where(i.status != "error")
                .group_by(i.adapter_version, i.retriever_version)
                .order_by(func.count(func.distinct(i.id)).desc(), i.adapter_version, i.retriever_version))
        with self.db.connect() as conn:
            rows = conn.execute(stmt).all()
        return [VersionCounts(a, r, int(n), int(up), int(down)) for a, r, n, up, down in rows]
