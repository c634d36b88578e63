"""What every long-running bot process starts: logging, the engine, the bot core,
the adapter watcher (new adapters without restart), the health/metrics server and
housekeeping (expired delivery ids; see bot/lifecycle.py for the shutdown)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from app.configs import bot_config, engine_config
from app.health import HealthServer
from app.housekeeping import Housekeeping
from app.logging_setup import configure_logging
from app.settings import Settings
from bot.core import BotCore
from rag_engine.engine import RagEngine
from rag_engine.generation.base import AdapterSwitching
from rag_engine.training.watch import AdapterWatcher

log = logging.getLogger(__name__)


@dataclass
class BotRuntime:
    settings: Settings
    engine: RagEngine
    core: BotCore
    watcher: AdapterWatcher
    health: HealthServer | None
    housekeeping: Housekeeping

    @classmethod
    def start(cls, settings: Settings, engine: RagEngine | None = None) -> BotRuntime:
        configure_logging(settings)
        engine = engine or RagEngine(engine_config(settings))
        # load the model now, off the main thread, so the first question doesn't wait for it
        threading.Thread(target=lambda: engine.generator, name="ragbot-model-load", daemon=True).start()
        watcher = engine.adapter_watcher  # the engine loaded the active adapter; this follows later changes
        watcher.start()
        health = None
        if settings.health_port:
            health = HealthServer(port=settings.health_port, db=engine.db, host=settings.health_host,
                                  model_status=lambda: model_status(engine))
            health.start()
            log.info("health and metrics on port %s", health.port)
        housekeeping = Housekeeping(engine.db, settings)  # also without a worker, the table stays bounded
        housekeeping.start()
        return cls(settings, engine, BotCore(bot_config(settings), engine), watcher, health, housekeeping)

    def close(self, flush_timeout_s: float = 5.0) -> None:
        """Stop the background threads and give queued writes up to ``flush_timeout_s`` to land."""
        if self.health is not None:
            self.health.stop()
        self.housekeeping.stop()
        self.watcher.stop()
        self.core.close(flush_timeout_s)
        self.engine.close()


def model_status(engine: RagEngine) -> dict[str, Any]:
    """For /healthz: is the configured generator loaded, and which adapter does it serve."""
    if engine.config.generation.generator_backend == "extractive":
        return {"ok": True, "generator": "extractive", "adapter_version": None}
    if not engine.generator_built:
        return {"ok": False, "generator": "loading", "adapter_version": None}
    generator = engine.generator
    if generator is None:
        return {"ok": False, "generator": "extractive (fallback)", "error": engine.generator_error,
                "adapter_version": None}
    adapter = generator.active_adapter if isinstance(generator, AdapterSwitching) else None
    return {"ok": True, "generator": generator.name, "adapter_version": adapter}
