"""The one interface every connector implements, and the values it hands the sync service.

A connector knows its source (a git repository, a web site, a chat workspace) and nothing of
the database: given the cursor of the last committed sync it says what changed since (items
to fetch, ids deleted, the cursor to commit afterwards), and fetches one item. The sync
service (``rag_engine.sync``) ingests, deletes and commits; a connector never writes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path


class ConnectorError(RuntimeError):
    """The source could not be read (unreachable, bad configuration, missing credential)."""


@dataclass(frozen=True, slots=True)
class Placement:
    """A collection of its own for an item that not everyone who reads the source's collection may
    read (a private chat channel's thread): private, created on first sync, and readable only at the
    chat locations ``grants`` names, each (platform, workspace, channel). An item that moves to another
    collection needs a new external id (a document is unique per source and external id): the old
    one is then deleted like any other."""

    collection: str
    grants: tuple[tuple[str, str, str], ...]


@dataclass(frozen=True, slots=True)
class ItemRef:
    """One item of a source: its stable id there, the path readers see, and its web address.
    ``placement`` None: the source's own collection."""

    external_id: str
    display_path: str
    url: str | None = None
    placement: Placement | None = None


@dataclass(frozen=True, slots=True)
class ChangeSet:
    """What changed since a cursor.

    ``full``: ``changed`` lists every item the source has now (a first sync, or history that
    no longer reaches the old cursor), and anything else the source owned is gone; the sync
    service works the deletions out itself. Otherwise ``deleted`` names the ids removed (a
    rename is a deletion of the old id plus a change of the new one).
    """

    changed: list[ItemRef]
    deleted: list[str]
    cursor: str  # commit it with the documents; the next sync starts from it
    full: bool = False


@dataclass(frozen=True, slots=True)
class Fetched:
    """One item's content: a local file the ingestion reads (in its time-limited parser child)."""

    path: Path


class Connector(ABC):
    """A source, read incrementally. ``changes`` then ``fetch`` for each changed item."""

    kind: str

    @abstractmethod
    def changes(self, cursor: str | None) -> ChangeSet:
        """Items changed and deleted since ``cursor`` (None: never synced) and the next cursor."""

    @abstractmethod
    def fetch(self, item: ItemRef) -> Fetched:
        """The content of ``item`` as of the cursor ``changes`` returned."""

    def secrets(self) -> list[str]:
        """Credential values this connector read, to mask in errors it may raise."""
        return []
