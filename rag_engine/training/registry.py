"""The adapter registry: the rules for which adapter is active (the rows: ``store.lora_adapters``).

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
from pathlib import Path
from typing import Any

from rag_engine.config import GenerationConfig
from rag_engine.store.database import Database
from rag_engine.store.lora_adapters import NOTIFY_CHANNEL, AdapterRecord, LoraAdapterRepo

__all__ = [
    "NOTIFY_CHANNEL", "STATUSES", "Activation", "AdapterNotFound", "AdapterRecord", "NothingToRollBack", "activate",
    "active", "base_model_id", "deactivate", "get", "list_adapters", "next_version", "register", "rollback",
    "set_outcome",
]

STATUSES = ("candidate", "active", "rejected", "retired")


class AdapterNotFound(LookupError):
    pass


class NothingToRollBack(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class Activation:
    version: str | None  # now active (None = the base model)
    previous: str | None  # was active before


def next_version(db: Database) -> str:
    """A fresh version name ``v<N>``; N is taken from the table's id sequence, so it is never reused
    (and :func:`register` gives the row that id)."""
    return f"v{LoraAdapterRepo(db).reserve_id()}"


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
    return LoraAdapterRepo(db).insert(
        adapter_id=int(reserved.group(1)) if reserved else None, version=version, method=method,
        base_model=base_model, path=path, data_snapshot=data_snapshot, metrics=metrics or {}, status=status,
    )


def get(db: Database, version: str) -> AdapterRecord | None:
    return LoraAdapterRepo(db).get(version)


def active(db: Database) -> AdapterRecord | None:
    return LoraAdapterRepo(db).active()


def list_adapters(db: Database) -> list[AdapterRecord]:
    """All adapters, newest first."""
    return LoraAdapterRepo(db).list()


def set_outcome(db: Database, version: str, *, status: str, metrics: dict[str, Any]) -> None:
    """Record the gate's numbers and verdict (``rejected`` or still ``candidate``)."""
    if status not in ("candidate", "rejected"):
        raise ValueError("use activate() to make an adapter active")
    LoraAdapterRepo(db).set_outcome(version, status=status, metrics=metrics)


def activate(db: Database, version: str, *, base_model: str | None = None) -> Activation:
    """Make ``version`` the active adapter; the one it replaces is retired.

    ``base_model``, when given, must match the adapter's: an adapter only fits
    the weights it was trained on.
    """
    with LoraAdapterRepo(db).transaction() as tx:
        target = tx.get(version, lock=True)
        if target is None:
            raise AdapterNotFound(f"no adapter {version!r} (see `ragbot lora list`)")
        if base_model is not None and target.base_model != base_model:
            raise ValueError(
                f"adapter {version} was trained on {target.base_model!r}, but the configured generator model "
                f"is {base_model!r}"
            )
        if not (target.path / "adapter_config.json").is_file():
            raise ValueError(f"adapter {version}'s files are missing from {target.path}")
        current = tx.active(lock=True)
        if current is not None and current.version == version:
            return Activation(version=version, previous=current.previous_version)
        previous = current.version if current is not None else None
        if current is not None:
            tx.retire(current.id)
        tx.activate(target.id, previous_version=previous)
        tx.notify(version)
    return Activation(version=version, previous=previous)


def rollback(db: Database) -> Activation:
    """Retire the active adapter and restore the one it replaced (or the base model).

    Raises ``NothingToRollBack`` when the base model is already answering.
    """
    with LoraAdapterRepo(db).transaction() as tx:
        current = tx.active(lock=True)
        if current is None:
            raise NothingToRollBack("nothing to roll back: no adapter is active (the base model is answering)")
        restore = tx.get(current.previous_version, lock=True) if current.previous_version else None
        if restore is not None and not (restore.path / "adapter_config.json").is_file():
            raise ValueError(f"cannot roll back to {restore.version}: its files are missing from {restore.path}")
        tx.retire(current.id)
        if restore is not None:
            tx.reactivate(restore.id)  # its previous_version stays: rolling back again walks further back
        tx.notify(restore.version if restore else "")
    return Activation(version=restore.version if restore else None, previous=current.version)


def deactivate(db: Database) -> Activation:
    """Answer with the base model (the active adapter is retired)."""
    with LoraAdapterRepo(db).transaction() as tx:
        current = tx.active(lock=True)
        if current is None:
            return Activation(None, None)
        tx.retire(current.id)
        tx.notify("")
    return Activation(None, current.version)


def base_model_id(config: GenerationConfig) -> str:
    """How adapters name the base model they fit: the configured ``generator_model``."""
    return str(config.generator_model)
