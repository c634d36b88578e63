"""SQLAlchemy Core view of the tables that ``migrations/`` creates.

The schema itself changes only through Alembic migrations; these definitions
are what queries are written against. ``embedding`` is declared without a
dimension here because the dimension is fixed per database at migration time.
"""

from __future__ import annotations

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    SmallInteger,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR

metadata = MetaData()

meta = Table(
    "ragbot_meta",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
)

collections = Table(
    "collections",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("visibility", Text, nullable=False, server_default="public"),  # public | private
    Column("allow_training", Boolean, nullable=False),
    Column("embedding_model", Text),
    Column("embedding_backend", Text),
    Column("created_at", DateTime(timezone=True), server_default=func.now()),
)

documents = Table(
    "documents",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("collection_id", Integer, ForeignKey("collections.id", ondelete="CASCADE"), nullable=False),
    Column("source_uri", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("content_hash", Text, nullable=False),
    Column("metadata", JSONB, nullable=False, server_default="{}"),
    Column("created_at", DateTime(timezone=True), server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), server_default=func.now()),
)

chunks = Table(
    "chunks",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("document_id", BigInteger, ForeignKey("documents.id", ondelete="CASCADE"), nullable=False),
    Column("collection_id", Integer, nullable=False),
    Column("ordinal", Integer, nullable=False),
    Column("heading_path", Text, nullable=False, server_default=""),
    Column("context", Text, nullable=False, server_default=""),  # title + heading path, weighted higher
    Column("text", Text, nullable=False),
    Column("text_hash", Text, nullable=False),
    Column("token_count", Integer, nullable=False),
    Column("embedding", Vector()),
    Column("tsv", TSVECTOR),  # generated column
)

collection_access = Table(
    "collection_access",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("platform", Text, nullable=False),  # slack | discord | cli | *
    Column("workspace_id", Text, nullable=False),  # team / guild id, or * ; "dm" for direct messages
    Column("channel_id", Text, nullable=False),  # channel id or *
    Column("collection_id", Integer, ForeignKey("collections.id", ondelete="CASCADE"), nullable=False),
    Column("access", Text, nullable=False),  # grant | exclude
    Column("created_at", DateTime(timezone=True), server_default=func.now()),
)

interactions = Table(
    "interactions",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("created_at", DateTime(timezone=True), server_default=func.now()),
    Column("platform", Text, nullable=False),
    Column("workspace_id", Text, nullable=False, server_default=""),
    Column("channel_id", Text, nullable=False, server_default=""),
    Column("thread_id", Text),
    Column("user_key", Text, nullable=False),
    Column("question", Text, nullable=False),
    Column("collection_ids", ARRAY(Integer), nullable=False, server_default="{}"),
    Column("retrieved", JSONB, nullable=False, server_default="[]"),  # [{chunk_id, score, collection_id}]
    Column("passages", JSONB, nullable=False, server_default="[]"),  # passage texts as shown
    Column("prompt_version", Text),
    Column("generator", Text),
    Column("adapter_version", Text),
    Column("answer", Text, nullable=False, server_default=""),
    Column("citations", JSONB, nullable=False, server_default="[]"),
    Column("status", Text, nullable=False),
    Column("fallback_reason", Text),
    Column("flags", JSONB, nullable=False, server_default="[]"),
    Column("timings", JSONB, nullable=False, server_default="{}"),
    Column("ephemeral", Boolean, nullable=False, server_default="false"),  # only the asker saw the answer
    Column("history_ids", ARRAY(BigInteger), nullable=False, server_default="{}"),  # earlier turns it was shown
    # every collection that history drew on, transitively (its turns' retrieved and history collections)
    Column("history_collection_ids", ARRAY(Integer), nullable=False, server_default="{}"),
    Column("search_query", Text),  # what retrieval searched, when a follow-up was rewritten
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("interaction_id", BigInteger, ForeignKey("interactions.id", ondelete="CASCADE"), nullable=False),
    Column("user_key", Text, nullable=False),
    Column("vote", SmallInteger, nullable=False),  # +1 / -1
    Column("reason", Text),
    Column("created_at", DateTime(timezone=True), server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), server_default=func.now()),
)

corrections = Table(
    "corrections",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("interaction_id", BigInteger, ForeignKey("interactions.id", ondelete="CASCADE"), nullable=False),
    Column("user_key", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("is_admin", Boolean, nullable=False, server_default="false"),
    Column("created_at", DateTime(timezone=True), server_default=func.now()),
    Column("status", Text, nullable=False, server_default="pending"),  # pending | approved | rejected
    Column("reviewed_by", Text),  # user key of the approving / rejecting admin (the author, for an admin's own)
    Column("reviewed_at", DateTime(timezone=True)),
)

curated_examples = Table(
    "curated_examples",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("question", Text, nullable=False),
    Column("answer", Text, nullable=False),
    Column("source", Text),
    Column("collection_id", Integer, ForeignKey("collections.id", ondelete="CASCADE")),
    Column("content_hash", Text, nullable=False, unique=True),
    Column("created_at", DateTime(timezone=True), server_default=func.now()),
)

adapters = Table(
    "adapters",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Text, nullable=False, unique=True),
    Column("method", Text, nullable=False),  # lora | prefix | ia3
    Column("base_model", Text, nullable=False),
    Column("path", Text, nullable=False),
    Column("data_snapshot", JSONB, nullable=False, server_default="{}"),
    Column("metrics", JSONB, nullable=False, server_default="{}"),
    Column("status", Text, nullable=False),  # candidate | active | rejected | retired
    Column("previous_version", Text),
    Column("created_at", DateTime(timezone=True), server_default=func.now()),
    Column("activated_at", DateTime(timezone=True)),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("payload", JSONB, nullable=False, server_default="{}"),
    Column("status", Text, nullable=False, server_default="queued"),  # queued | running | done | failed
    Column("requested_by", Text),
    Column("worker_id", Text),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("heartbeat_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), server_default=func.now()),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("result", JSONB),
    Column("error", Text),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("at", DateTime(timezone=True), server_default=func.now()),
    Column("platform", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("args", JSONB, nullable=False, server_default="{}"),
    Column("ok", Boolean, nullable=False),
    Column("result", Text),
)

processed_events = Table(
    "processed_events",
    metadata,
    Column("event_key", Text, primary_key=True),  # platform:event id, for at-most-once answers
    Column("created_at", DateTime(timezone=True), server_default=func.now()),
)

__all__ = [
    "adapters",
    "audit_log",
    "chunks",
    "collection_access",
    "collections",
    "corrections",
    "curated_examples",
    "documents",
    "feedback",
    "interactions",
    "jobs",
    "meta",
    "metadata",
    "processed_events",
]
