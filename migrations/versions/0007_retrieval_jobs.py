"""Retrieval versions on the job queue and in the interaction log.

interactions: ``retriever_version``, the query adapter version (``query_adapters.version``)
whose transform the answer's vector search used; NULL when it searched raw query
embeddings (none active, one that does not fit the embedder, or lexical search only).
It sits next to ``adapter_version``, the generator's, so an answer names both.

jobs: ``jobs_one_open_retrieval_retrain``, at most one ``retrieval_retrain`` queued or
running (as ``jobs_one_open_retrain`` for the generator's ``retrain``), so the worker's
automatic scheduling and an admin's request never queue a second one.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE interactions ADD COLUMN retriever_version text")
    op.execute("CREATE UNIQUE INDEX jobs_one_open_retrieval_retrain ON jobs (kind) "
               "WHERE kind = 'retrieval_retrain' AND status IN ('queued', 'running')")


def downgrade() -> None:
    op.execute("DROP INDEX jobs_one_open_retrieval_retrain")
    op.execute("ALTER TABLE interactions DROP COLUMN retriever_version")
