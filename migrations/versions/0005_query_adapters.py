"""Query adapters: learned transforms of query embeddings (retrieval that learns from feedback).

One row per trained version: the weights (an ``.npz`` of the full matrix ``W``, so
every process applies the same bytes without a shared filesystem), the embedder
it fits, the training data snapshot and the gate's numbers. Statuses and the
rollback chain are those of the generator's ``adapters``: at most one ``active``,
``previous_version`` is what a rollback restores (none: raw query embeddings).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE query_adapters (
            id serial PRIMARY KEY,
            version text NOT NULL UNIQUE,
            embedding_model text NOT NULL,
            dim integer NOT NULL,
            rank integer NOT NULL,
            weights bytea NOT NULL,
            data_snapshot jsonb NOT NULL DEFAULT '{}',
            metrics jsonb NOT NULL DEFAULT '{}',
            status text NOT NULL CHECK (status IN ('candidate', 'active', 'rejected', 'retired')),
            previous_version text,
            created_at timestamptz NOT NULL DEFAULT now(),
            activated_at timestamptz
        )
        """
    )
    op.execute("CREATE UNIQUE INDEX query_adapters_one_active ON query_adapters ((true)) WHERE status = 'active'")


def downgrade() -> None:
    op.execute("DROP TABLE query_adapters")
