"""Postgres + pgvector storage: the engine's only door to the database.

Every SQL statement of the project lives in this package, in a repository module named by
its table or concern. ``Store`` bundles the repositories over one ``Database``; the engine
owns it and hands it to the bot core, which never imports this package.
"""

from __future__ import annotations

from rag_engine.store.access_rules import AccessRuleRepo
from rag_engine.store.audit import AuditRepo
from rag_engine.store.chunks import ChunkRepo
from rag_engine.store.collections import CollectionRepo
from rag_engine.store.database import Database
from rag_engine.store.documents import DocumentRepo
from rag_engine.store.feedback import FeedbackRepo
from rag_engine.store.interaction_ids import InteractionIdRepo
from rag_engine.store.interactions import InteractionRepo
from rag_engine.store.jobs import JobRepo
from rag_engine.store.lora_adapters import LoraAdapterRepo
from rag_engine.store.processed_events import ProcessedEventRepo
from rag_engine.store.query_adapters import QueryAdapterRepo
from rag_engine.store.report import ReportRepo
from rag_engine.store.sources import SourceRepo
from rag_engine.store.training_examples import TrainingExampleRepo


class Store:
    """One repository per table or concern, all sharing one connection pool."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # repositories (one line each, alphabetical):
        self.access_rules = AccessRuleRepo(db)
        self.audit = AuditRepo(db)
        self.chunks = ChunkRepo(db)
        self.collections = CollectionRepo(db)
        self.documents = DocumentRepo(db)
        self.feedback = FeedbackRepo(db)
        self.interaction_ids = InteractionIdRepo(db)
        self.interactions = InteractionRepo(db)
        self.jobs = JobRepo(db)
        self.lora_adapters = LoraAdapterRepo(db)
        self.processed_events = ProcessedEventRepo(db)
        self.query_adapters = QueryAdapterRepo(db)
        self.report = ReportRepo(db)
        self.sources = SourceRepo(db)
        self.training_examples = TrainingExampleRepo(db)
