"""Connectors: each source kind's reader, behind ``base.Connector``. Add a kind here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from rag_engine.connectors.base import ChangeSet, Connector, ConnectorError, Fetched, ItemRef
from rag_engine.connectors.confluence import ConfluenceConfig, ConfluenceConnector
from rag_engine.connectors.discord import DiscordConnector, DiscordSourceConfig
from rag_engine.connectors.git import GitConfig, GitConnector
from rag_engine.connectors.secrets import refuse_clear_secrets
from rag_engine.connectors.slack import SlackConnector, SlackSourceConfig
from rag_engine.connectors.web import WebConfig, WebConnector

KINDS: dict[str, type[BaseModel]] = {"git": GitConfig}
KINDS["slack"] = SlackSourceConfig
KINDS["discord"] = DiscordSourceConfig
KINDS["confluence"] = ConfluenceConfig
KINDS["web"] = WebConfig


def checked_config(kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """``config`` validated for ``kind`` (unknown keys and clear secrets refused), as stored."""
    if kind not in KINDS:
        raise ValueError(f"unknown source kind {kind!r} (known: {', '.join(sorted(KINDS))})")
    refuse_clear_secrets(config)
    try:
        model = KINDS[kind].model_validate(config)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or kind}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"bad {kind} source configuration: {problems}") from None
    return model.model_dump(exclude_defaults=True)


def build_connector(kind: str, config: dict[str, Any], cache_dir: Path) -> Connector:
    """The connector of a stored source; ``cache_dir`` is its own folder for local copies."""
    if kind == "git":
        return GitConnector(GitConfig.model_validate(config), cache_dir)
    if kind == "slack":
        return SlackConnector(SlackSourceConfig.model_validate(config), cache_dir)
    if kind == "discord":
        return DiscordConnector(DiscordSourceConfig.model_validate(config), cache_dir)
    if kind == "confluence":
        return ConfluenceConnector(ConfluenceConfig.model_validate(config), cache_dir)
    if kind == "web":
        return WebConnector(WebConfig.model_validate(config), cache_dir)
    raise ConnectorError(f"unknown source kind {kind!r}")


__all__ = ["KINDS", "ChangeSet", "Connector", "ConnectorError", "Fetched", "ItemRef", "build_connector",
           "checked_config"]
