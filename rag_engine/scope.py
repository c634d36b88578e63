"""``CollectionScope``: the collections one question may read, decided once.

Access control produces it (``bot.access`` for chat, the CLI from the names an operator
typed); retrieval, history and logging only consume it. There is no "everything"
value: an empty scope finds nothing, and reading every collection means naming them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CollectionScope:
    """Collection ids, resolved in one query by whoever decides access; immutable and hashable."""

    collection_ids: frozenset[int]

    @classmethod
    def of(cls, ids: Iterable[int]) -> CollectionScope:
        return cls(frozenset(int(i) for i in ids))

    @classmethod
    def nothing(cls) -> CollectionScope:
        return cls(frozenset())

    @property
    def is_empty(self) -> bool:
        return not self.collection_ids

    def ids(self) -> list[int]:
        """Sorted ids, for SQL parameters and logs."""
        return sorted(self.collection_ids)

    def allows(self, collection_id: int) -> bool:
        return collection_id in self.collection_ids

    def covers(self, collection_ids: Iterable[int]) -> bool:
        """Whether every one of ``collection_ids`` is readable here (thread history uses this)."""
        return self.collection_ids.issuperset(collection_ids)
