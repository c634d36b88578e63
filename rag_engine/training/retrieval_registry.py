"""Retrieval versions (query adapters): the rules for which one is active (the rows: ``store.query_adapters``).

The generator's adapter rules, for the retriever: statuses ``candidate``,
``active`` (at most one), ``rejected`` (lost the gate; kept with its numbers) and
``retired``. Activating records the version it replaces in ``previous_version``,
which rollback restores (none: raw query embeddings). The search path reads the
active version per question (``rag_engine.query_transform``), so a change here
applies from the next question on, in every running process, without a
notification.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rag_engine.query_transform import QueryAdapter
from rag_engine.store.database import Database
from rag_engine.store.query_adapters import QueryAdapterRecord, QueryAdapterRepo

__all__ = ["Activation", "NothingToRollBack", "QueryAdapterRecord", "VersionNotFound", "activate", "active",
           "deactivate", "get", "list_versions", "load", "next_version", "register", "rollback"]


class VersionNotFound(LookupError):
    pass


class NothingToRollBack(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class Activation:
    version: str | None  # now active (None = raw query embeddings)
    previous: str | None


def next_version(db: Database) -> str:
    """``q<N>``, N from the table's id sequence: never reused (and :func:`register` gives the row that id)."""
    return f"q{QueryAdapterRepo(db).reserve_id()}"


def register(db: Database, *, version: str, adapter: QueryAdapter, embedding_model: str,
             data_snapshot: dict[str, Any], metrics: dict[str, Any], status: str) -> QueryAdapterRecord:
    if status not in ("candidate", "rejected"):
        raise ValueError("a new retrieval version is registered as candidate or rejected; activate it with activate()")
    reserved = re.fullmatch(r"q(\d+)", version)
    return QueryAdapterRepo(db).insert(
        adapter_id=int(reserved.group(1)) if reserved else None, version=version, embedding_model=embedding_model,
        dim=adapter.dim, rank=adapter.rank, weights=adapter.to_bytes(), data_snapshot=data_snapshot,
        metrics=metrics, status=status,
    )


def get(db: Database, version: str) -> QueryAdapterRecord | None:
    return QueryAdapterRepo(db).get(version)


def active(db: Database) -> QueryAdapterRecord | None:
    return QueryAdapterRepo(db).active()


def load(db: Database, version: str) -> QueryAdapter:
    found = QueryAdapterRepo(db).weights(version)
    if found is None:
        raise VersionNotFound(f"no retrieval version {version!r} (see `ragbot retrieval list`)")
    return QueryAdapter.from_bytes(found[2])


def list_versions(db: Database) -> list[QueryAdapterRecord]:
    """All versions, newest first."""
    return QueryAdapterRepo(db).list()


def activate(db: Database, version: str, *, embedding_model: str | None = None) -> Activation:
    """Make ``version`` active (a rejected one too: the operator decides); the one it replaces is retired.

    ``embedding_model``, when given, must be the version's: a query adapter only fits the embedder whose
    query vectors it was trained on.
    """
    with QueryAdapterRepo(db).transaction() as tx:
        target = tx.get(version, lock=True)
        if target is None:
            raise VersionNotFound(f"no retrieval version {version!r} (see `ragbot retrieval list`)")
        if embedding_model is not None and target.embedding_model != embedding_model:
            raise ValueError(f"retrieval version {version} was trained for embedder {target.embedding_model!r}, "
                             f"but the configured one is {embedding_model!r}")
        current = tx.active(lock=True)
        if current is not None and current.version == version:
            return Activation(version, current.previous_version)
        previous = current.version if current is not None else None
        if current is not None:
            tx.retire(current.id)
        tx.activate(target.id, previous_version=previous)
    return Activation(version, previous)


def rollback(db: Database) -> Activation:
    """Retire the active version and restore the one it replaced (or raw query embeddings)."""
    with QueryAdapterRepo(db).transaction() as tx:
        current = tx.active(lock=True)
        if current is None:
            raise NothingToRollBack("nothing to roll back: no retrieval version is active (raw query embeddings)")
        restore = tx.get(current.previous_version, lock=True) if current.previous_version else None
        tx.retire(current.id)
        if restore is not None:
            tx.reactivate(restore.id)
    return Activation(restore.version if restore else None, current.version)


def deactivate(db: Database) -> Activation:
    """Search raw query embeddings (the active version is retired)."""
    with QueryAdapterRepo(db).transaction() as tx:
        current = tx.active(lock=True)
        if current is None:
            return Activation(None, None)
        tx.retire(current.id)
    return Activation(None, current.version)


def describe_weights(record: QueryAdapterRecord, names: Mapping[str, str]) -> str:
    """The fusion weights a version learned, by collection name (``names``: collection id -> name)."""
    learned = record.metrics.get("vector_weights") or {}
    return ", ".join(f"{names.get(c, '#' + c)} {w:.2f}" for c, w in learned.items())
