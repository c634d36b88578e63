"""Who is an admin: one place for every platform.

An actor is an admin if their user id is in ``admin_user_ids``, one of their
role ids is in ``admin_role_ids``, or the adapter vouches for a platform admin
(Discord: Manage Server; Slack: workspace admin/owner when
``slack_workspace_admins_are_admins`` is on).

``admin_user_ids`` entries are ``platform:user_id`` (exact) or a bare user id
(Slack ids ``U…`` and Discord snowflakes do not collide). Empty ids and blank
entries never match, so a misconfigured list cannot make everyone an admin.
"""

from __future__ import annotations

from bot.types import Actor
from rag_engine.settings import Settings


def admin_grounds(actor: Actor, settings: Settings) -> str | None:
    """Why ``actor`` is an admin (``user id``, ``role``, ``platform admin``), or None if not one."""
    if not actor.user_id or not actor.platform:
        return None
    ids = {i.strip() for i in settings.admin_user_ids if i and i.strip()}
    if actor.user_key in ids or actor.user_id in ids:
        return "user id"
    roles = {r.strip() for r in settings.admin_role_ids if r and r.strip()}
    if roles & {r for r in actor.role_ids if r}:
        return "role"
    if actor.is_platform_admin and (actor.platform != "slack" or settings.slack_workspace_admins_are_admins):
        return "platform admin"
    return None


def is_admin(actor: Actor, settings: Settings) -> bool:
    return admin_grounds(actor, settings) is not None
