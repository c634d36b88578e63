"""Who may run which admin command: one place for every platform.

An admin right has a **scope**:

* ``global``: the user id is in ``admin_user_ids`` or one of their role ids is
  in ``admin_role_ids``. Global admins may run every command.
* ``workspace``: the adapter vouches for a platform admin (Discord *Manage
  Server*; Slack workspace admin/owner when ``slack_workspace_admins_are_admins``
  is on) where the command is given, and that workspace is one the deployment
  serves (``bot.tenants``). Such an admin administers that workspace only:
  ``status``, ``collections list``, and grant/exclude/revoke of *public*
  collections for the workspace's own channels. A vouch from an unserved
  workspace, or from a DM without a workspace, counts for nothing.

Everything else (ingest, retrain, rollback, activate, collection create/delete,
DM rules, ``*`` workspace rules, rules on private collections, feedback review,
and any action this module does not know) needs a global admin: those act on
the whole deployment, and private content belongs to its owners.

Outsiders (``Actor.is_external``, e.g. Slack Connect guests) are never admins.
``admin_user_ids`` entries are ``platform:user_id`` (exact) or a bare user id
(Slack ids ``U…`` and Discord snowflakes do not collide). Empty ids and blank
entries never match, so a misconfigured list cannot make everyone an admin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.access import WILDCARD
from bot.config import BotConfig
from bot.messages import ADMIN_ONLY
from bot.tenants import tenant_allowed
from bot.types import Actor, Location

# what a workspace admin may run anywhere in their workspace
WORKSPACE_ACTIONS = frozenset({"status", "collections list"})
# ...and these, on public collections for their workspace's channels
RULE_ACTIONS = frozenset({"collections grant", "collections exclude", "collections revoke"})


@dataclass(frozen=True, slots=True)
class AdminScope:
    level: Literal["global", "workspace"]
    grounds: str  # "user id" | "role" | "platform admin"
    workspace_id: str = ""  # the workspace a "workspace" scope covers

    @property
    def is_global(self) -> bool:
        return self.level == "global"


def global_grounds(actor: Actor, config: BotConfig) -> str | None:
    """Why ``actor`` is a global admin (``user id`` or ``role``), or None."""
    if not actor.user_id or not actor.platform or actor.is_external:
        return None
    ids = {i.strip() for i in config.admin_user_ids if i and i.strip()}
    if actor.user_key in ids or actor.user_id in ids:
        return "user id"
    roles = {r.strip() for r in config.admin_role_ids if r and r.strip()}
    if roles & {r for r in actor.role_ids if r}:
        return "role"
    return None


def is_global_admin(actor: Actor, config: BotConfig) -> bool:
    return global_grounds(actor, config) is not None


def admin_scope(actor: Actor, location: Location, config: BotConfig) -> AdminScope | None:
    """The admin right ``actor`` holds at ``location``, or None."""
    grounds = global_grounds(actor, config)
    if grounds is not None:
        return AdminScope("global", grounds)
    vouched = actor.is_platform_admin and not actor.is_external and bool(actor.user_id) \
        and (actor.platform != "slack" or config.slack_workspace_admins_are_admins)
    if (vouched and actor.platform == location.platform and location.workspace_id
            and tenant_allowed(location, config)):
        return AdminScope("workspace", "platform admin", location.workspace_id)
    return None


def can_run(scope: AdminScope | None, action: str, *, workspace_id: str | None = None, private: bool = False,
            dm: bool = False) -> bool:
    """Whether ``scope`` allows ``action`` (``"status"``, ``"ingest"``, ``"collections grant"``,
    ``"feedback"``, …). For rule actions give the rule's ``workspace_id``, whether the
    collection is ``private`` and whether the rule is for ``dm``s."""
    if scope is None:
        return False
    if scope.is_global:
        return True
    if action in WORKSPACE_ACTIONS:
        return True
    if action in RULE_ACTIONS:
        return (not private and not dm and workspace_id == scope.workspace_id
                and workspace_id not in ("", WILDCARD))
    return False


def refusal_message(scope: AdminScope | None, action: str) -> str:
    """What to tell someone ``can_run`` refused."""
    if scope is None:
        return ADMIN_ONLY
    return (f"Sorry, `{action}` needs a global ragbot admin (RAGBOT_ADMIN_USER_IDS or RAGBOT_ADMIN_ROLE_IDS). "
            "As an admin of this workspace/server you may run `status`, `collections list`, and "
            "grant/exclude/revoke public collections for its own channels.")
