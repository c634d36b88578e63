"""Who is an admin: one place for every platform.

An actor is an admin if their user id is in ``admin_user_ids``, one of their
role ids is in ``admin_role_ids``, or the adapter vouches for a platform admin
(Discord: Manage Server; Slack: workspace admin/owner when
``slack_workspace_admins_are_admins`` is on).
"""

from __future__ import annotations

from bot.types import Actor
from rag_engine.settings import Settings


def is_admin(actor: Actor, settings: Settings) -> bool:
    ids = set(settings.admin_user_ids)
    if actor.user_id in ids or actor.user_key in ids:
        return True
    if set(actor.role_ids) & set(settings.admin_role_ids):
        return True
    if actor.is_platform_admin:
        return actor.platform != "slack" or settings.slack_workspace_admins_are_admins
    return False
