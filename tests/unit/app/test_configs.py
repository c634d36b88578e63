"""Settings become per-component configs at the composition root, and nothing is lost or leaked on the way."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr, ValidationError

from adapters.discord.config import DiscordConfig
from adapters.slack.config import SlackConfig
from app.configs import APP_ONLY, bot_config, discord_config, engine_config, pick, slack_config
from app.settings import Settings
from bot.config import BotConfig
from rag_engine.config import EngineConfig, RetrievalConfig, StoreConfig
from tests.conftest import make_settings

PLATFORM_CONFIGS: tuple[type[BaseModel], ...] = (BotConfig, SlackConfig, DiscordConfig)


def _engine_sections() -> list[type[BaseModel]]:
    sections = []
    for field in EngineConfig.model_fields.values():
        assert isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
        sections.append(field.annotation)
    return sections


def test_every_setting_lands_in_a_config_or_is_read_by_the_app_only() -> None:
    taken = {name for cls in (*_engine_sections(), *PLATFORM_CONFIGS) for name in cls.model_fields}
    missing = set(Settings.model_fields) - taken - APP_ONLY
    assert missing == set(), f"no config takes {sorted(missing)}: add them to one, or to APP_ONLY"
    assert set(Settings.model_fields) >= APP_ONLY  # no stale names on the list
    assert not APP_ONLY & taken  # "app only" means it


def test_config_fields_are_settings_except_the_derived_secrets() -> None:
    for cls in (*_engine_sections(), *PLATFORM_CONFIGS):
        extra = set(cls.model_fields) - set(Settings.model_fields)
        assert extra == ({"secrets"} if cls is StoreConfig else set()), cls.__name__


def test_the_engine_config_has_no_platform_field() -> None:
    for cls in _engine_sections():
        platform = [n for n in cls.model_fields if n.startswith(("slack_", "discord_"))]
        assert platform == [], cls.__name__


def test_a_value_from_the_environment_reaches_the_retrieval_config(monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path: Path) -> None:
    monkeypatch.setenv("RAGBOT_SEARCH_K", "17")
    monkeypatch.setenv("RAGBOT_SOURCE_URL_BASE", "hr=https://wiki.example/hr/")
    config = engine_config(Settings(_env_file=None, data_dir=tmp_path))
    assert config.retrieval.search_k == 17
    assert config.retrieval.source_url_bases == {"hr": "https://wiki.example/hr/"}


def test_each_builder_copies_its_fields(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, search_k=9, chunk_tokens=123, lora_r=4, max_new_tokens=33,
                             admin_user_ids="slack:U1, slack:U2", slack_team_ids=["T1"], discord_guild_ids=["G1"],
                             slack_bot_token="xoxb-1", discord_token="d.t.k", discord_reply_in_thread=True)
    engine = engine_config(settings)
    assert (engine.retrieval.search_k, engine.ingest.chunk_tokens, engine.training.lora_r,
            engine.generation.max_new_tokens) == (9, 123, 4, 33)
    assert engine.training.adapter_store == tmp_path / "adapters" and engine.embedding.cache_dir == tmp_path / "cache"
    bot = bot_config(settings)
    assert bot.admin_user_ids == ("slack:U1", "slack:U2")
    assert (bot.slack_team_ids, bot.discord_guild_ids) == (("T1",), ("G1",))
    assert slack_config(settings).slack_bot_token == SecretStr("xoxb-1")
    assert discord_config(settings).discord_reply_in_thread is True


def test_the_engine_masks_every_secret_of_the_deployment_platform_tokens_too(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, slack_bot_token="xoxb-secret-1", discord_token="discord-secret-2",
                             openai_api_key="sk-secret-3", database_url="postgresql://u:pw-secret-4@h/db")
    secrets = set(engine_config(settings).store.secrets)
    assert {"xoxb-secret-1", "discord-secret-2", "sk-secret-3", "pw-secret-4"} <= secrets


def test_configs_are_frozen_and_closed(tmp_path: Path) -> None:
    config = pick(RetrievalConfig, make_settings(tmp_path))
    with pytest.raises(ValidationError):
        config.search_k = 3  # type: ignore[misc]  # frozen: the assignment is what is tested
    with pytest.raises(ValidationError, match="serach_k"):
        RetrievalConfig(**config.model_dump(), serach_k=3)
