"""Initial schema: collections, documents, chunks (pgvector + tsvector), access,
interactions, feedback, corrections, curated examples, adapters, jobs, audit.

The embedding dimension is fixed per database: it is read from the Alembic
config attribute ``embedding_dim`` (set by ``ragbot db upgrade`` from the
configured embedder) and recorded in ``ragbot_meta``.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from alembic import context, op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _dim() -> int:
    dim = context.config.attributes.get("embedding_dim") or context.get_x_argument(as_dictionary=True).get(
        "embedding_dim", 384
    )
    return int(dim)


def upgrade() -> None:
    dim = _dim()
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("CREATE TABLE ragbot_meta (key text PRIMARY KEY, value text NOT NULL)")
    op.execute(f"INSERT INTO ragbot_meta (key, value) VALUES ('embedding_dim', '{dim}')")
    op.execute(
        """
        CREATE TABLE collections (
            id serial PRIMARY KEY,
            name text NOT NULL UNIQUE,
            visibility text NOT NULL DEFAULT 'public' CHECK (visibility IN ('public', 'private')),
            allow_training boolean NOT NULL,
            embedding_model text,
            embedding_backend text,
            created_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE documents (
            id bigserial PRIMARY KEY,
            collection_id integer NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
            source_uri text NOT NULL,
            title text NOT NULL,
            content_hash text NOT NULL,
            metadata jsonb NOT NULL DEFAULT '{}',
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (collection_id, source_uri)
        )
        """
    )
    op.execute(
        f"""
        CREATE TABLE chunks (
            id bigserial PRIMARY KEY,
            document_id bigint NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
            collection_id integer NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
            ordinal integer NOT NULL,
            heading_path text NOT NULL DEFAULT '',
            context text NOT NULL DEFAULT '',
            text text NOT NULL,
            text_hash text NOT NULL,
            token_count integer NOT NULL,
            embedding vector({dim}),
            tsv tsvector GENERATED ALWAYS AS (
                setweight(to_tsvector('english', context), 'A') || setweight(to_tsvector('english', text), 'B')
            ) STORED,
            UNIQUE (document_id, ordinal)
        )
        """
    )
    op.execute("CREATE INDEX chunks_embedding_hnsw ON chunks USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)")
    op.execute("CREATE INDEX chunks_tsv_gin ON chunks USING gin (tsv)")
    op.execute("CREATE INDEX chunks_collection ON chunks (collection_id)")
    op.execute("CREATE INDEX chunks_text_hash ON chunks (text_hash)")
    op.execute(
        """
        CREATE TABLE collection_access (
            id bigserial PRIMARY KEY,
            platform text NOT NULL,
            workspace_id text NOT NULL,
            channel_id text NOT NULL,
            collection_id integer NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
            access text NOT NULL CHECK (access IN ('grant', 'exclude')),
            created_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (platform, workspace_id, channel_id, collection_id)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE interactions (
            id bigserial PRIMARY KEY,
            created_at timestamptz NOT NULL DEFAULT now(),
            platform text NOT NULL,
            workspace_id text NOT NULL DEFAULT '',
            channel_id text NOT NULL DEFAULT '',
            thread_id text,
            user_key text NOT NULL,
            question text NOT NULL,
            collection_ids integer[] NOT NULL DEFAULT '{}',
            retrieved jsonb NOT NULL DEFAULT '[]',
            passages jsonb NOT NULL DEFAULT '[]',
            prompt_version text,
            generator text,
            adapter_version text,
            answer text NOT NULL DEFAULT '',
            citations jsonb NOT NULL DEFAULT '[]',
            status text NOT NULL,
            fallback_reason text,
            flags jsonb NOT NULL DEFAULT '[]',
            timings jsonb NOT NULL DEFAULT '{}'
        )
        """
    )
    op.execute("CREATE INDEX interactions_thread ON interactions (platform, channel_id, thread_id)")
    op.execute("CREATE INDEX interactions_created ON interactions (created_at)")
    op.execute(
        """
        CREATE TABLE feedback (
            id bigserial PRIMARY KEY,
            interaction_id bigint NOT NULL REFERENCES interactions(id) ON DELETE CASCADE,
            user_key text NOT NULL,
            vote smallint NOT NULL CHECK (vote IN (-1, 1)),
            reason text,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            UNIQUE (interaction_id, user_key)
        )
        """
    )
    op.execute(
        """
        CREATE TABLE corrections (
            id bigserial PRIMARY KEY,
            interaction_id bigint NOT NULL REFERENCES interactions(id) ON DELETE CASCADE,
            user_key text NOT NULL,
            text text NOT NULL,
            is_admin boolean NOT NULL DEFAULT false,
            created_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE curated_examples (
            id bigserial PRIMARY KEY,
            question text NOT NULL,
            answer text NOT NULL,
            source text,
            collection_id integer REFERENCES collections(id) ON DELETE CASCADE,
            content_hash text NOT NULL UNIQUE,
            created_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        """
        CREATE TABLE adapters (
            id serial PRIMARY KEY,
            version text NOT NULL UNIQUE,
            method text NOT NULL,
            base_model text NOT NULL,
            path text NOT NULL,
            data_snapshot jsonb NOT NULL DEFAULT '{}',
            metrics jsonb NOT NULL DEFAULT '{}',
            status text NOT NULL CHECK (status IN ('candidate', 'active', 'rejected', 'retired')),
            previous_version text,
            created_at timestamptz NOT NULL DEFAULT now(),
            activated_at timestamptz
        )
        """
    )
    op.execute("CREATE UNIQUE INDEX adapters_one_active ON adapters ((true)) WHERE status = 'active'")
    op.execute(
        """
        CREATE TABLE jobs (
            id bigserial PRIMARY KEY,
            kind text NOT NULL,
            payload jsonb NOT NULL DEFAULT '{}',
            status text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'done', 'failed')),
            requested_by text,
            worker_id text,
            attempts integer NOT NULL DEFAULT 0,
            heartbeat_at timestamptz,
            created_at timestamptz NOT NULL DEFAULT now(),
            started_at timestamptz,
            finished_at timestamptz,
            result jsonb,
            error text
        )
        """
    )
    # at most one retrain queued or running at a time
    op.execute("CREATE UNIQUE INDEX jobs_one_open_retrain ON jobs (kind) WHERE kind = 'retrain' AND status IN ('queued', 'running')")
    op.execute("CREATE INDEX jobs_claim ON jobs (status, created_at)")
    op.execute(
        """
        CREATE TABLE audit_log (
            id bigserial PRIMARY KEY,
            at timestamptz NOT NULL DEFAULT now(),
            platform text NOT NULL,
            actor text NOT NULL,
            action text NOT NULL,
            args jsonb NOT NULL DEFAULT '{}',
            ok boolean NOT NULL,
            result text
        )
        """
    )
    op.execute("CREATE TABLE processed_events (event_key text PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now())")


def downgrade() -> None:
    for table in (
        "processed_events",
        "audit_log",
        "jobs",
        "adapters",
        "curated_examples",
        "corrections",
        "feedback",
        "interactions",
        "collection_access",
        "chunks",
        "documents",
        "collections",
        "ragbot_meta",
    ):
        op.execute(f"DROP TABLE IF EXISTS {table} CASCADE")
