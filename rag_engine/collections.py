"""Collections: the rules for named document sets (names, visibility, training default, the
embedder their vectors were made with). Their rows are read and written by
``rag_engine.store.collections.CollectionRepo``."""

from __future__ import annotations

from rag_engine.store.collections import Collection, CollectionNotFound, CollectionRepo, Visibility

__all__ = ["Collection", "CollectionNotFound", "EmbedderMismatch", "Visibility", "bind_embedder", "check_embedder",
           "create", "get_or_create", "require"]

MAX_NAMES_SHOWN = 50  # collections named in a "no such collection" message


class EmbedderMismatch(RuntimeError):
    """A collection's vectors were made by another model or backend than the configured one."""


def create(
    repo: CollectionRepo, name: str, *, visibility: Visibility = "public", allow_training: bool | None = None
) -> Collection:
    """Create a collection (training defaults: on for public, off for private)."""
    name = name.strip()
    if not name or len(name) > 100:
        raise ValueError("collection name must be 1-100 characters")
    if visibility not in ("public", "private"):
        raise ValueError("visibility must be public or private")
    allow = (visibility == "public") if allow_training is None else allow_training
    created = repo.insert(name, visibility=visibility, allow_training=allow)
    if created is None:
        raise ValueError(f"collection {name!r} already exists")
    return created


def get_or_create(repo: CollectionRepo, name: str, *, visibility: Visibility = "public") -> Collection:
    return repo.get(name) or create(repo, name, visibility=visibility)


def require(repo: CollectionRepo, name: str) -> Collection:
    """The collection ``name``; an unknown name raises ``CollectionNotFound`` naming the existing ones."""
    found = repo.get(name)
    if found is None:
        names = repo.names()
        shown = ", ".join(names[:MAX_NAMES_SHOWN]) + (f" and {len(names) - MAX_NAMES_SHOWN} more"
                                                       if len(names) > MAX_NAMES_SHOWN else "")
        raise CollectionNotFound(f"there is no collection named {name!r}; existing collections: {shown or 'none'}")
    return found


def bind_embedder(repo: CollectionRepo, collection: Collection, model: str, backend: str) -> None:
    """Record the embedder on first use; refuse a different one later."""
    if collection.embedding_model is None:
        if repo.set_embedder_if_unset(collection.id, model, backend):
            return
        # another ingestion recorded one first: it must be ours too
        collection = repo.get(collection.name) or collection
    check_embedder(collection, model, backend)


def check_embedder(collection: Collection, model: str, backend: str) -> None:
    if collection.embedding_model is None:
        return
    if (collection.embedding_model, collection.embedding_backend) != (model, backend):
        raise EmbedderMismatch(
            f"collection {collection.name!r} was embedded with {collection.embedding_model} "
            f"({collection.embedding_backend}), but the configured embedder is {model} ({backend}); "
            "queries and documents must use the same one: change RAGBOT_EMBEDDING_MODEL / "
            "RAGBOT_EMBEDDING_BACKEND back, or re-ingest into a new collection"
        )
