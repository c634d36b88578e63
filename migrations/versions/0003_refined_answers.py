"""Answer-first replies: the quoted answer a model's answer replaced.

interactions: ``first_answer`` (the quoted, extractive answer that was shown first,
when the model's answer later replaced it; ``answer`` then holds the model's) and
``refined_at`` (when that replacement happened). Both stay NULL for answers that
were never replaced: final-mode answers, and quoted answers whose refinement
failed or was rejected (``fallback_reason`` says why).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE interactions ADD COLUMN first_answer text, ADD COLUMN refined_at timestamptz")


def downgrade() -> None:
    op.execute("ALTER TABLE interactions DROP COLUMN refined_at, DROP COLUMN first_answer")
