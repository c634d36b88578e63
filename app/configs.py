"""The only place ``Settings`` becomes component configs: the engine's, the bot core's, each platform's.

Every config's field names match the settings', so one generic ``pick`` copies
them; a field no config takes is read by ``app/`` itself (``APP_ONLY``).
``tests/unit/app/test_configs.py`` checks that every setting lands somewhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from app.settings import Settings
from bot.config import BotConfig
from rag_engine.config import (
    EmbeddingConfig,
    EngineConfig,
    GenerationConfig,
    IngestConfig,
    RetrievalConfig,
    StoreConfig,
    TrainingConfig,
)
from rag_engine.redact import secret_values

if TYPE_CHECKING:  # imported where built: importing a platform's package loads its SDK (slow for every CLI call)
    from adapters.discord.config import DiscordConfig
    from adapters.slack.config import SlackConfig

C = TypeVar("C", bound=BaseModel)

# settings only the composition root reads (health server, logging, worker loop, housekeeping)
APP_ONLY = frozenset({
    "health_port", "health_host", "log_json", "log_level", "worker_heartbeat_s", "worker_stale_after_s",
    "processed_events_retention_s", "housekeeping_interval_s", "console_session_ttl_s",
})


def pick(cls: type[C], settings: Settings, **given: Any) -> C:
    """A ``cls`` with each of its fields copied from the same-named setting, except those ``given``."""
    copied = {name: getattr(settings, name) for name in cls.model_fields if name not in given}
    return cls(**copied, **given)


def store_config(settings: Settings) -> StoreConfig:
    # every secret of the deployment, platform tokens too: the engine masks them in what it stores
    return pick(StoreConfig, settings, secrets=tuple(secret_values(settings)))


def engine_config(settings: Settings) -> EngineConfig:
    return EngineConfig(
        store=store_config(settings),
        embedding=pick(EmbeddingConfig, settings),
        ingest=pick(IngestConfig, settings),
        retrieval=pick(RetrievalConfig, settings),
        generation=pick(GenerationConfig, settings),
        training=pick(TrainingConfig, settings),
    )


def bot_config(settings: Settings) -> BotConfig:
    return pick(BotConfig, settings)


def slack_config(settings: Settings) -> SlackConfig:
    from adapters.slack.config import SlackConfig  # lazy: see the TYPE_CHECKING import

    return pick(SlackConfig, settings)


def discord_config(settings: Settings) -> DiscordConfig:
    from adapters.discord.config import DiscordConfig  # lazy: see the TYPE_CHECKING import

    return pick(DiscordConfig, settings)
