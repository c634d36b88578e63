"""The report's read-only queries: feedback and questions per UTC day."""

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
