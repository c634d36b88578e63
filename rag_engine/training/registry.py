"""The adapter registry: the ``adapters`` table and the rules for which one is active.

Statuses: ``candidate`` (trained, not yet judged), ``active`` (at most one, by a
partial unique index), ``rejected`` (lost the evaluation gate; kept with its
numbers), ``retired`` (was active, replaced or rolled back). Activating records
the adapter it replaces in ``previous_version``, which is what rollback restores
(no previous version: back to the base model). Every change sends
``NOTIFY ragbot_adapters`` so running bots can switch without waiting for a poll.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, select, text

from rag_engine.store import schema as t
from rag_engine.store.database import Database

NOTIFY_CHANNEL = "ragbot_adapters"
STATUSES = ("candidate", "active", "rejected", "retired")


class AdapterNotFound(LookupError):
    pass


class NothingToRollBack(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class AdapterRecord:
    id: int
    version: str
    method: str
    base_model: str
    path: Path
    data_snapshot: dict[str, Any]
    metrics: dict[str, Any]
    status: str
    previous_version: str | None
    created_at: datetime
    activated_at: datetime | None


@dataclass(frozen=True, slots=True)
class Activation:
    version: str | None  # now active (None = the base model)
    previous: str | None  # was active before


def next_version(db: Database) -> str:
    """A fresh version name ``v<N>``; N is taken from the table's id sequence, so it is never reused
    (and :func:`register` gives the row that id)."""
    with db.begin() as conn:
        n = conn.execute(text("SELECT nextval(pg_get_serial_sequence('adapters', 'id'))")).scalar_one()
    return f"v{n}"


def register(
    db: Database,
    *,
    version: str,
    method: str,
    base_model: str,
    path: Path,
    data_snapshot: dict[str, Any],
    metrics: dict[str, Any] | None = None,
    status: str = "candidate",
) -> AdapterRecord:
    if status not in ("candidate", "rejected"):
        raise ValueError("a new adapter is registered as candidate or rejected; activate it with activate()")
    reserved = re.fullmatch(r"v(\d+)", version)
    ids = {"id": int(reserved.group(1))} if reserved else {}
    with db.begin() as conn:
        row = conn.execute(
            t.adapters.insert()
            .values(**ids, version=version, method=method, base_model=base_model, path=str(path),
                    data_snapshot=data_snapshot, metrics=metrics or {}, status=status)
            .returning(*t.adapters.c)
        ).one()
    return _record(row)


def get(db: Database, version: str) -> AdapterRecord | None:
    with db.connect() as conn:
        return _get(conn, version)


def active(db: Database) -> AdapterRecord | None:
    with db.connect() as conn:
        row = conn.execute(select(t.adapters).where(t.adapters.c.status == "active")).first()
    return _record(row) if row is not None else None


def list_adapters(db: Database) -> list[AdapterRecord]:
    """All adapters, newest first."""
    with db.connect() as conn:
        rows = conn.execute(select(t.adapters).order_by(t.adapters.c.created_at.desc(), t.adapters.c.id.desc()))
        return [_record(r) for r in rows]


def set_outcome(db: Database, version: str, *, status: str, metrics: dict[str, Any]) -> None:
    """Record the gate's numbers and verdict (``rejected`` or still ``candidate``)."""
    if status not in ("candidate", "rejected"):
        raise ValueError("use activate() to make an adapter active")
    with db.begin() as conn:
        conn.execute(t.adapters.update().where(t.adapters.c.version == version).values(status=status, metrics=metrics))


def activate(db: Database, version: str, *, base_model: str | None = None) -> Activation:
    """Make ``version`` the active adapter; the one it replaces is retired.

    ``base_model``, when given, must match the adapter's: an adapter only fits
    the weights it was trained on.
    """
    with db.begin() as conn:
        target = _get(conn, version, lock=True)
        if target is None:
            raise AdapterNotFound(f"no adapter {version!r} (see `ragbot adapters list`)")
        if base_model is not None and target.base_model != base_model:
            raise ValueError(
                f"adapter {version} was trained on {target.base_model!r}, but the configured generator model "
                f"is {base_model!r}"
            )
        if not (target.path / "adapter_config.json").is_file():
            raise ValueError(f"adapter {version}'s files are missing from {target.path}")
        current = _active(conn, lock=True)
        if current is not None and current.version == version:
            return Activation(version=version, previous=current.previous_version)
        previous = current.version if current is not None else None
        if current is not None:
            conn.execute(t.adapters.update().where(t.adapters.c.id == current.id).values(status="retired"))
        conn.execute(
            t.adapters.update()
            .where(t.adapters.c.id == target.id)
            .values(status="active", previous_version=previous, activated_at=func.now())
        )
        _notify(conn, version)
    return Activation(version=version, previous=previous)


def rollback(db: Database) -> Activation:
    """Retire the active adapter and restore the one it replaced (or the base model).

    Raises ``NothingToRollBack`` when the base model is already answering.
    """
    with db.begin() as conn:
        current = _active(conn, lock=True)
        if current is None:
            raise NothingToRollBack("nothing to roll back: no adapter is active (the base model is answering)")
        restore = _get(conn, current.previous_version, lock=True) if current.previous_version else None
        if restore is not None and not (restore.path / "adapter_config.json").is_file():
            raise ValueError(f"cannot roll back to {restore.version}: its files are missing from {restore.path}")
        conn.execute(t.adapters.update().where(t.adapters.c.id == current.id).values(status="retired"))
        if restore is not None:
            # previous_version stays: rolling back again walks further back
            conn.execute(t.adapters.update().where(t.adapters.c.id == restore.id)
                         .values(status="active", activated_at=func.now()))
        _notify(conn, restore.version if restore else "")
    return Activation(version=restore.version if restore else None, previous=current.version)


def deactivate(db: Database) -> Activation:
    """Answer with the base model (the active adapter is retired)."""
    with db.begin() as conn:
        current = _active(conn, lock=True)
        if current is None:
            return Activation(None, None)
        conn.execute(t.adapters.update().where(t.adapters.c.id == current.id).values(status="retired"))
        _notify(conn, "")
    return Activation(None, current.version)


def _active(conn: Connection, *, lock: bool = False) -> AdapterRecord | None:
    query = select(t.adapters).where(t.adapters.c.status == "active")
    row = conn.execute(query.with_for_update() if lock else query).first()
    return _record(row) if row is not None else None


def _get(conn: Connection, version: str, *, lock: bool = False) -> AdapterRecord | None:
    query = select(t.adapters).where(t.adapters.c.version == version)
    row = conn.execute(query.with_for_update() if lock else query).first()
    return _record(row) if row is not None else None


def _notify(conn: Connection, version: str) -> None:
    conn.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": NOTIFY_CHANNEL, "payload": version})


def _record(row: Any) -> AdapterRecord:
    return AdapterRecord(
        id=int(row.id), version=row.version, method=row.method, base_model=row.base_model, path=Path(row.path),
        data_snapshot=dict(row.data_snapshot or {}), metrics=dict(row.metrics or {}), status=row.status,
        previous_version=row.previous_version, created_at=row.created_at, activated_at=row.activated_at,
    )


def base_model_id(settings: Any) -> str:
    """How adapters name the base model they fit: the configured ``generator_model``."""
    return str(settings.generator_model)
