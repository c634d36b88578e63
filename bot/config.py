"""``BotConfig``: what the platform-neutral bot core is configured with (built in ``app/configs.py``).

Access (admins, tenants), limits, answer codes, chat ingestion and shutdown. The
tenant allow-lists are here because the core enforces them for every platform;
the platforms' own credentials and endpoints are in their adapters' configs.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, SecretStr


class BotConfig(BaseModel):
    """Field names match ``app.settings.Settings`` (defaults, descriptions and validation live there)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    admin_user_ids: tuple[str, ...]
    admin_role_ids: tuple[str, ...]
    slack_workspace_admins_are_admins: bool
    slack_team_ids: tuple[str, ...]  # the Slack tenants served (empty = not bound)
    discord_guild_ids: tuple[str, ...]  # the Discord tenants served (empty = not bound)
    rate_limit_user_per_min: float
    rate_limit_user_burst: int
    rate_limit_channel_per_min: float
    rate_limit_channel_burst: int
    max_question_chars: int
    max_answer_chars: int
    answer_ephemeral: bool
    reply_mode: Literal["answer_first", "stream", "final"]  # answer-first: quoted answer now, the model's after
    write_queue_size: int
    accept_reaction: str  # answered threads (bot/answered_threads.py): the reaction that accepts an answer
    accept_by: Literal["asker_or_admin", "asker", "admin"]
    answered_collection: str
    ask_threads: int
    ingest_roots: tuple[str, ...]
    answer_code_key: SecretStr | None
    shutdown_grace_s: float
    console_secret: SecretStr | None  # signs `/ragbot-admin console` links (bot/console_link.py)
    console_url: str
    console_link_ttl_s: float
