"""Sources: where documents come from (a git repository today; web, Slack, Discord, Confluence later).

sources: one row per configured source — its kind, its configuration (JSON without secrets:
a token is named by ``token_env`` / ``token_file`` and read at sync time), the collection it
writes into, its schedule (``schedule_s``, NULL = synced only on request) and its sync state:
``cursor`` (where the last committed sync got to, e.g. a commit id), last attempt and
success, last error, ``error_count`` and ``backoff_until`` (exponential back-off after
failures), ``sync_lease_until`` (one sync at a time per source, without session-level locks
so PgBouncer transaction pooling still works) and the last sync's counts.

documents: ``source_id`` (ON DELETE CASCADE: a source owns its documents; removing it must not
leave content behind that no sync can ever delete again — ``ragbot sources remove
--keep-documents`` detaches them first), ``external_id`` (the item's id in its source, e.g.
the path in the repository; unique per source) and ``url`` (the web address citations link to).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE sources (
            id serial PRIMARY KEY,
            name text NOT NULL UNIQUE,
            kind text NOT NULL,
            config jsonb NOT NULL DEFAULT '{}',
            collection_id integer NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
            schedule_s integer CHECK (schedule_s IS NULL OR schedule_s > 0),
            cursor text,
            last_attempt_at timestamptz,
            last_success_at timestamptz,
            last_error text,
            error_count integer NOT NULL DEFAULT 0,
            backoff_until timestamptz,
            sync_lease_until timestamptz,
            last_counts jsonb NOT NULL DEFAULT '{}',
            created_at timestamptz NOT NULL DEFAULT now()
        )
        """
    )
    op.execute(
        "ALTER TABLE documents ADD COLUMN source_id integer REFERENCES sources(id) ON DELETE CASCADE, "
        "ADD COLUMN external_id text, ADD COLUMN url text"
    )
    op.execute("CREATE UNIQUE INDEX documents_source_external ON documents (source_id, external_id)")
    op.execute("CREATE INDEX documents_url ON documents (url)")


def downgrade() -> None:
    op.execute("DROP INDEX documents_url")
    op.execute("DROP INDEX documents_source_external")
    op.execute("ALTER TABLE documents DROP COLUMN url, DROP COLUMN external_id, DROP COLUMN source_id")
    op.execute("DROP TABLE sources")
