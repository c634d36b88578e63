"""An empty ``CollectionScope`` finds nothing, without embedding the question or running SQL."""

from __future__ import annotations

from typing import Any

from app.configs import engine_config
from app.settings import Settings
from rag_engine.retrieval import Retriever
from rag_engine.scope import CollectionScope


class _Untouchable:
    """Fails on any use: the empty scope must not reach the embedder or the database."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"{name} used for an empty scope")


def test_an_empty_scope_finds_nothing_and_touches_nothing() -> None:
    # stand-ins that fail on any use: the test is that an empty scope never reaches the repo or the embedder
    untouchable: Any = _Untouchable()
    retriever = Retriever(untouchable, untouchable, engine_config(Settings(_env_file=None)).retrieval)
    assert retriever.search("When does the office open?", CollectionScope.nothing(), 5, "hybrid") == []


def test_a_scope_is_exactly_its_ids() -> None:
    scope = CollectionScope.of([3, 1, 3])
    assert scope.ids() == [1, 3] and not scope.is_empty
    assert scope.allows(1) and not scope.allows(2)
    assert scope.covers([1, 3]) and not scope.covers([1, 2])
    assert CollectionScope.nothing().is_empty and CollectionScope.nothing().covers([])
