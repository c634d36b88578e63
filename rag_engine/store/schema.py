"""The one complete description of the database: what queries are written against,
what new migrations are written against, and what the drift test compares a
freshly migrated database with (``rag_engine/store/schema_drift.py``).

The schema itself changes only through Alembic migrations (``migrations/``); a
change here without a migration fails ``tests/integration/rag_engine/test_schema_drift.py``.
``embedding`` is declared without a dimension because the dimension is fixed per
database at migration time (recorded in ``ragbot_meta``); the drift check compares
the column with that recorded value instead. Constraint names are PostgreSQL's
defaults (what the initial raw-SQL migration got), so migrations can name them.
"""

from __future__ import annotations

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    REAL,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Computed,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR

# PostgreSQL's own default names, so that constraints declared here without a name match the database
NAMING_CONVENTION = {
    "pk": "%(table_name)s_pkey",
    "fk": "%(table_name)s_%(column_0_name)s_fkey",
    "uq": "%(table_name)s_%(column_0_N_name)s_key",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# chunks.tsv: the title/heading context weighs more than the body text
TSV_EXPRESSION = (
    "setweight(to_tsvector('english', context), 'A') || setweight(to_tsvector('english', text), 'B')"
)

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
    Column("visibility", Text, nullable=False, server_default="public"),
    Column("allow_training", Boolean, nullable=False),
    Column("embedding_model", Text),
    Column("embedding_backend", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("visibility IN ('public', 'private')", name="collections_visibility_check"),
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
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # where the document came from (migration 0004): its source, its id there and its web address
    Column("source_id", Integer, ForeignKey("sources.id", ondelete="CASCADE")),
    Column("external_id", Text),
    Column("url", Text),
    UniqueConstraint("collection_id", "source_uri"),
    Index("documents_source_external", "source_id", "external_id", unique=True),
    Index("documents_url", "url"),
)

sources = Table(
    "sources",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", Text, nullable=False, unique=True),
    Column("kind", Text, nullable=False),  # git (web, slack, discord, confluence to come)
    Column("config", JSONB, nullable=False, server_default="{}"),  # no secrets: token_env / token_file name them
    Column("collection_id", Integer, ForeignKey("collections.id", ondelete="CASCADE"), nullable=False),
    Column("schedule_s", Integer),  # NULL: synced only on request
    Column("cursor", Text),  # where the last committed sync got to (git: a commit id)
    Column("last_attempt_at", DateTime(timezone=True)),
    Column("last_success_at", DateTime(timezone=True)),
    Column("last_error", Text),
    Column("error_count", Integer, nullable=False, server_default="0"),
    Column("backoff_until", DateTime(timezone=True)),
    Column("sync_lease_until", DateTime(timezone=True)),  # a sync runs until then (one at a time)
    Column("last_counts", JSONB, nullable=False, server_default="{}"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("schedule_s IS NULL OR schedule_s > 0", name="sources_schedule_s_check"),
)

chunks = Table(
    "chunks",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("document_id", BigInteger, ForeignKey("documents.id", ondelete="CASCADE"), nullable=False),
    Column("collection_id", Integer, ForeignKey("collections.id", ondelete="CASCADE"), nullable=False),
    Column("ordinal", Integer, nullable=False),
    Column("heading_path", Text, nullable=False, server_default=""),
    Column("context", Text, nullable=False, server_default=""),  # title + heading path, weighted higher
    Column("text", Text, nullable=False),
    Column("text_hash", Text, nullable=False),
    Column("token_count", Integer, nullable=False),
    Column("embedding", Vector()),  # vector(<dim>): the dimension is chosen at migration time
    Column("tsv", TSVECTOR, Computed(TSV_EXPRESSION, persisted=True)),
    UniqueConstraint("document_id", "ordinal"),
    Index(
        "chunks_embedding_hnsw",
        "embedding",
        postgresql_using="hnsw",
        postgresql_with={"m": 16, "ef_construction": 64},
        postgresql_ops={"embedding": "vector_cosine_ops"},
    ),
    Index("chunks_tsv_gin", "tsv", postgresql_using="gin"),
    Index("chunks_collection", "collection_id"),
    Index("chunks_text_hash", "text_hash"),
)

# lexical postings and BM25 statistics (migration 0006): kept by triggers on ``chunks``, read by
# ``rag_engine.store.chunks``; ``impact`` orders a term's postings best first (the index), so a
# query reads only the top of a common term's list
chunk_terms = Table(
    "chunk_terms",
    metadata,
    Column("chunk_id", BigInteger, nullable=False),
    Column("term", Text, nullable=False),
    Column("collection_id", Integer, nullable=False),
    Column("tf_body", SmallInteger, nullable=False),
    Column("tf_context", SmallInteger, nullable=False),  # occurrences in the title/heading context
    Column("impact", REAL, nullable=False),  # BM25 tf factor under reference parameters: an order, not a score
    Column("doc_len", Integer, nullable=False),  # the chunk's token_count, so BM25's rescoring skips ``chunks``
    # covering key (migration 0008): the exact rescoring's probes are index-only scans
    PrimaryKeyConstraint("chunk_id", "term", name="chunk_terms_pkey",
                         postgresql_include=["tf_body", "tf_context", "doc_len"]),
    Index("chunk_terms_impact", "collection_id", "term", "impact", "chunk_id"),
)

lexical_terms = Table(
    "lexical_terms",
    metadata,
    Column("collection_id", Integer, primary_key=True),
    Column("term", Text, primary_key=True),
    Column("df", Integer, nullable=False),  # chunks of the collection holding the term
)

lexical_collections = Table(
    "lexical_collections",
    metadata,
    Column("collection_id", Integer, primary_key=True),
    Column("chunk_count", BigInteger, nullable=False),
    Column("token_total", BigInteger, nullable=False),  # sum of token_count: the average length's numerator
)

collection_access = Table(
    "collection_access",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("platform", Text, nullable=False),  # slack | discord | cli | *
    Column("workspace_id", Text, nullable=False),  # team / guild id, or * ; "dm" for direct messages
    Column("channel_id", Text, nullable=False),  # channel id or *
    Column("collection_id", Integer, ForeignKey("collections.id", ondelete="CASCADE"), nullable=False),
    Column("access", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # PostgreSQL truncated its default name to 63 characters
    UniqueConstraint(
        "platform", "workspace_id", "channel_id", "collection_id",
        name="collection_access_platform_workspace_id_channel_id_collecti_key",
    ),
    CheckConstraint("access IN ('grant', 'exclude')", name="collection_access_access_check"),
)

interactions = Table(
    "interactions",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
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
    Column("retriever_version", Text),  # the query adapter the vector search used (0007)
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
    Column("first_answer", Text),  # answer-first replies: the quoted answer shown before the model's replaced it
    Column("refined_at", DateTime(timezone=True)),  # when the model's answer replaced it
    Index("interactions_thread", "platform", "channel_id", "thread_id"),
    Index("interactions_created", "created_at"),
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("interaction_id", BigInteger, ForeignKey("interactions.id", ondelete="CASCADE"), nullable=False),
    Column("user_key", Text, nullable=False),
    Column("vote", SmallInteger, nullable=False),
    Column("reason", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    UniqueConstraint("interaction_id", "user_key"),
    CheckConstraint("vote IN (-1, 1)", name="feedback_vote_check"),
)

corrections = Table(
    "corrections",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("interaction_id", BigInteger, ForeignKey("interactions.id", ondelete="CASCADE"), nullable=False),
    Column("user_key", Text, nullable=False),
    Column("text", Text, nullable=False),
    Column("is_admin", Boolean, nullable=False, server_default="false"),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("status", Text, nullable=False, server_default="pending"),
    Column("reviewed_by", Text),  # user key of the approving / rejecting admin (the author, for an admin's own)
    Column("reviewed_at", DateTime(timezone=True)),
    CheckConstraint("status IN ('pending', 'approved', 'rejected')", name="corrections_status_check"),
    Index("corrections_pending", "created_at", postgresql_where=text("status = 'pending'")),
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
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
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
    Column("status", Text, nullable=False),
    Column("previous_version", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("activated_at", DateTime(timezone=True)),
    CheckConstraint("status IN ('candidate', 'active', 'rejected', 'retired')", name="adapters_status_check"),
    # at most one active adapter
    Index("adapters_one_active", text("(true)"), unique=True, postgresql_where=text("status = 'active'")),
)

# learned transforms of query embeddings (rag_engine.training.retrieval_registry): same statuses as adapters
query_adapters = Table(
    "query_adapters",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Text, nullable=False, unique=True),
    Column("embedding_model", Text, nullable=False),
    Column("dim", Integer, nullable=False),
    Column("rank", Integer, nullable=False),  # 0 = full matrix
    Column("weights", LargeBinary, nullable=False),  # .npz with W (dim x dim)
    Column("data_snapshot", JSONB, nullable=False, server_default="{}"),
    Column("metrics", JSONB, nullable=False, server_default="{}"),
    Column("status", Text, nullable=False),
    Column("previous_version", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("activated_at", DateTime(timezone=True)),
    CheckConstraint("status IN ('candidate', 'active', 'rejected', 'retired')", name="query_adapters_status_check"),
    Index("query_adapters_one_active", text("(true)"), unique=True, postgresql_where=text("status = 'active'")),
)

jobs = Table(
    "jobs",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("kind", Text, nullable=False),
    Column("payload", JSONB, nullable=False, server_default="{}"),
    Column("status", Text, nullable=False, server_default="queued"),
    Column("requested_by", Text),
    Column("worker_id", Text),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("heartbeat_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("started_at", DateTime(timezone=True)),
    Column("finished_at", DateTime(timezone=True)),
    Column("result", JSONB),
    Column("error", Text),
    CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name="jobs_status_check"),
    # at most one retrain queued or running at a time
    Index(
        "jobs_one_open_retrain",
        "kind",
        unique=True,
        postgresql_where=text("kind = 'retrain' AND status IN ('queued', 'running')"),
    ),
    Index(  # ... and at most one retrieval retrain (migration 0007)
        "jobs_one_open_retrieval_retrain",
        "kind",
        unique=True,
        postgresql_where=text("kind = 'retrieval_retrain' AND status IN ('queued', 'running')"),
    ),
    Index("jobs_claim", "status", "created_at"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
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
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
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
    "query_adapters",
    "sources",
]
