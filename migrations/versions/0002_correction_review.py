"""Correction review and the provenance of thread history.

corrections: ``status`` (pending | approved | rejected), ``reviewed_by``,
``reviewed_at``. Only approved corrections are training data. Existing admin
corrections become approved (reviewed by their author when they were written);
every other existing correction becomes pending, because nobody reviewed it.

interactions: ``ephemeral`` (an answer only its asker saw: never shared
history), ``history_ids`` (the earlier interactions shown to the generator as
thread history) and ``history_collection_ids`` (every collection that history
drew on, its own history included) and ``search_query`` (what retrieval
searched when a thread follow-up was rewritten into a standalone question). Before this revision nothing recorded what
history a turn was shown, so each existing threaded interaction gets the
collections of *every* earlier turn of its thread: a superset, so the access
and training checks err on the safe side.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE corrections
            ADD COLUMN status text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'approved', 'rejected')),
            ADD COLUMN reviewed_by text,
            ADD COLUMN reviewed_at timestamptz
        """
    )
    op.execute("UPDATE corrections SET status = 'approved', reviewed_by = user_key, reviewed_at = created_at "
               "WHERE is_admin")
    op.execute("CREATE INDEX corrections_pending ON corrections (created_at) WHERE status = 'pending'")
    op.execute(
        """
        ALTER TABLE interactions
            ADD COLUMN ephemeral boolean NOT NULL DEFAULT false,
            ADD COLUMN history_ids bigint[] NOT NULL DEFAULT '{}',
            ADD COLUMN history_collection_ids integer[] NOT NULL DEFAULT '{}',
            ADD COLUMN search_query text
        """
    )
    op.execute(
        """
        UPDATE interactions AS i SET history_collection_ids = earlier.ids
        FROM (
            SELECT later.id, array_agg(DISTINCT (r.value ->> 'collection_id')::int) AS ids
            FROM interactions AS later
            JOIN interactions AS p
              ON p.platform = later.platform AND p.channel_id = later.channel_id
             AND p.thread_id = later.thread_id AND p.id < later.id AND p.status <> 'error'
            CROSS JOIN LATERAL jsonb_array_elements(p.retrieved) AS r
            WHERE later.thread_id IS NOT NULL
            GROUP BY later.id
        ) AS earlier
        WHERE i.id = earlier.id
        """
    )


def downgrade() -> None:
    op.execute("ALTER TABLE interactions DROP COLUMN search_query, DROP COLUMN history_collection_ids, "
               "DROP COLUMN history_ids, DROP COLUMN ephemeral")
    op.execute("DROP INDEX IF EXISTS corrections_pending")
    op.execute("ALTER TABLE corrections DROP COLUMN reviewed_at, DROP COLUMN reviewed_by, DROP COLUMN status")
