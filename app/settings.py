"""The one settings object (env prefix ``RAGBOT_``, ``.env`` supported), read only in ``app/``.

Everything configurable lives here; no module reads ``os.environ`` itself. The
composition root turns a ``Settings`` into the per-component configs
(``app/configs.py``): the engine, the bot core and each platform get only theirs.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

import platformdirs
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from rag_engine.config import DEFAULT_EMBEDDING_MODEL, DEFAULT_GENERATOR_MODEL

CommaList = Annotated[list[str], NoDecode]



class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RAGBOT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    # --- storage -------------------------------------------------------------
    database_url: SecretStr | None = Field(
        default=None, description="Postgres URL with pgvector; unset = embedded pgserver."
    )
    data_dir: Path = Field(default_factory=lambda: Path(platformdirs.user_data_dir("ragbot")))
    db_pool_size: int = 5
    db_max_overflow: int = 10
    db_connect_timeout_s: float = 5.0
    db_statement_timeout_ms: int = 30_000
    db_retry_attempts: int = 3
    db_prepared_statements: bool = Field(
        default=True,
        description="Let psycopg prepare repeated queries; false behind PgBouncer < 1.21 in transaction mode."
    )

    # --- embeddings ----------------------------------------------------------
    embedding_model: str = DEFAULT_EMBEDDING_MODEL
    embedding_backend: Literal["torch", "onnx-int8"] = "torch"
    embedding_batch_size: int = 32
    embedding_device: str = "cpu"

    # --- chunking ------------------------------------------------------------
    chunk_tokens: int = 200
    chunk_overlap: int = 40
    max_file_mb: int = 20
    ingest_file_timeout_s: float = Field(
        default=60.0, gt=0.0, description="Seconds reading and parsing one file may take; a slower file is skipped "
        "and named in the ingest report (the rest is ingested).")
    source_url_base: CommaList = Field(
        default_factory=list, description="collection=https://base/ pairs: a cited document of that collection "
        "links to the base followed by its path relative to the folder it was ingested from.")

    # --- retrieval -----------------------------------------------------------
    search_mode: Literal["vector", "lexical", "hybrid"] = "hybrid"
    search_k: int = 5
    hnsw_ef_search: int = 100
    candidate_depth: int = 100  # per side; 50 -> 100 gained +0.003 nDCG@10 on msmarco-5k (docs/retrieval.md)
    vector_candidate_depth: int | None = Field(
        default=None, description="Candidates from the vector side (hybrid); unset = candidate_depth.")
    lexical_candidate_depth: int | None = Field(
        default=None, description="Candidates from the lexical side (hybrid); unset = candidate_depth.")
    # measured on msmarco-5k and two handbooks (docs/retrieval.md): plain RRF averages in the weaker lexical
    # ranking; fixed convex 0.7/0.3 beats both single modes on every set; the per-query weight (adaptive) does
    # not beat it on average out-of-fold, so it stays opt-in
    fusion: Literal["rrf", "convex", "adaptive"] = Field(
        default="convex", description="hybrid: convex (fixed RAGBOT_VECTOR_WEIGHT / RAGBOT_LEXICAL_WEIGHT), rrf, "
        "or adaptive (convex with the vector weight decided per query from the best cosine and the lexical "
        "candidates found; fitted for the default embedder; docs/retrieval.md).")
    rrf_k: int = 60
    lexical_rank_normalization: int = 0  # ts_rank_cd normalization bit mask (lexical_scoring=ts_rank_cd)
    lexical_scoring: Literal["bm25", "ts_rank_cd"] = "bm25"
    bm25_k1: float = 0.9
    bm25_b: float = 0.4
    bm25_term_cap: int = Field(
        default=5000, ge=0, description="BM25: postings read per query term, best (impact) first, before the "
        "candidates are scored exactly; 0 reads every posting (the exhaustive query, slow on common words).")
    context_weight: float = Field(default=2.0,
                                  description="BM25: an occurrence in the title/heading path counts this much.")
    vector_weight: float = Field(default=0.7, description="convex / rrf fusion: weight of the vector side.")
    lexical_weight: float = Field(default=0.3, description="convex / rrf fusion: weight of the lexical side.")
    reranker_model: str | None = None
    rerank_depth: int = 20
    min_relevance: float = Field(
        default=0.30, description="With RAGBOT_ABSTENTION_RULE=min_relevance: cosine similarity the best chunk "
        "must reach, else 'not in the documents'."
    )
    abstention_rule: Literal["min_relevance", "calibrated"] = Field(
        default="min_relevance", description="When to answer 'not in the documents': min_relevance (the best "
        "cosine below RAGBOT_MIN_RELEVANCE) or calibrated (a logistic model of the best cosine, its gap to the "
        "other hits, the share of the question's words in the top hits and whether the lexical search found the "
        "best hit; fitted for the default embedder; docs/retrieval.md).")

    # --- generation ----------------------------------------------------------
    generator_backend: Literal["transformers", "openai", "extractive"] = "transformers"
    generator_model: str = DEFAULT_GENERATOR_MODEL
    generator_device: Literal["auto", "cpu", "cuda"] = "auto"
    generator_dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    generator_quantize: Literal["none", "int8"] = Field(
        default="none", description="int8: dynamic int8 weights for the base model's linear layers (CPU only).")
    max_input_tokens: int = 2048
    max_new_tokens: int = Field(default=96, description="Most tokens a generated answer may have.")
    generation_passages: int = Field(
        default=3, ge=0, description="Top-ranked passages shown to the generator (0 = every hit).")
    passage_max_tokens: int = Field(
        default=120, ge=0, description="Each passage shown is cut to its sentences most relevant to the question "
        "within this many tokens (0 = whole).")
    decoding: Literal["greedy", "beam", "sample"] = "greedy"
    num_beams: int = 4
    temperature: float = 0.7
    top_p: float = 0.9
    repetition_penalty: float = Field(default=1.0, description="Penalty on repeated tokens (1.0 = off).")
    no_repeat_ngram_size: int = Field(default=4, description="Never repeat an n-gram of this size (0 = off).")
    generation_concurrency: int = 1
    generation_queue_timeout_s: float = 60.0
    history_turns: int = 4
    min_grounded_fraction: float = Field(
        default=0.3, description="Share of a generated answer's sentences that must paraphrase a passage, "
        "else the extractive answer is given instead (0 = no check). 0.3 with the describes-the-passages, "
        "restated-question, unknown-link and invented-term rules: 40 % wrong rejects, 5 % wrong keeps on 156 "
        "hand-labelled generated answers (benchmarks/grounding_generated.py; the rejected 'supported' ones score "
        "far below the extract that replaces them).")
    openai_base_url: str | None = None
    openai_api_key: SecretStr | None = None
    openai_model: str = "ragbot-base"
    openai_timeout_s: float = 60.0
    openai_max_retries: int = 3
    openai_register_adapters: bool = Field(
        default=False,
        description="POST new adapters to the server's /load_lora_adapter (vLLM with runtime LoRA updating).",
    )

    # --- training / adapters -------------------------------------------------
    adapter_dir: Path | None = Field(default=None, description="Adapter store; default <data_dir>/adapters.")
    peft_method: Literal["lora", "prefix", "ia3"] = "lora"
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.05
    lora_target_modules: CommaList = Field(default_factory=list)
    train_learning_rate: float = 2e-4
    train_epochs: int = 3
    train_max_steps: int = 0
    train_batch_size: int = 4
    train_seed: int = 13
    train_max_tokens: int = 768
    promotion_margin: float = 0.02
    adapter_poll_s: float = 10.0
    worker_heartbeat_s: float = 5.0
    worker_stale_after_s: float = 60.0
    train_heldout_fraction: float = Field(default=0.2, ge=0.0, lt=1.0,
                                          description="Share of the training set held out for the gate (by hash).")
    train_negative_share: float = Field(
        default=0.15, ge=0.0, lt=1.0, description="Share of training examples that are negatives: a question shown "
        "another question's passages, taught to say the documents do not say.")
    prefix_virtual_tokens: int = Field(default=16, description="Learned prefix length (peft_method=prefix).")
    train_checkpoint_steps: int = Field(
        default=50, description="Checkpoint training every this many steps (0 = only when interrupted)."
    )
    eval_generate_max: int = Field(default=32, description="Held-out examples generated per model for F1/ROUGE-L and "
                                   "for the delivered-F1 promotion rule (a candidate must not make what users receive "
                                   "worse).")
    retrieval_promotion_margin: float = Field(
        default=0.01, ge=0.0, description="A retrieval version goes live only when its held-out nDCG@10 beats raw "
        "queries (and the active version) by at least this much, its hit@5 is not lower, and the token-F1 of the "
        "extractive answers from its rankings (against the reviewed answers) does not fall.")
    retrieval_adapter_rank: int = Field(
        default=8, ge=0, description="Rank of a query adapter's learned change (0 = a full dim x dim matrix).")
    retrieval_train_epochs: int = Field(default=30, ge=1, description="Passes over the retrieval training pairs.")
    retrieval_hard_negatives: int = Field(
        default=4, ge=0, description="Hard negatives per question, mined from the index (top vector hits that are "
        "not positives).")
    retrieval_retrain_new_pairs: int = Field(
        default=20, ge=0, description="The worker queues a retrieval retrain by itself once feedback holds this many "
        "retrieval training pairs more than the last retrieval retrain saw (0 = only on request).")

    # --- bot core ------------------------------------------------------------
    admin_user_ids: CommaList = Field(default_factory=list)
    admin_role_ids: CommaList = Field(default_factory=list)
    slack_workspace_admins_are_admins: bool = False
    rate_limit_user_per_min: float = 6.0
    rate_limit_user_burst: int = 3
    rate_limit_channel_per_min: float = 30.0
    rate_limit_channel_burst: int = 10
    max_question_chars: int = 2000
    max_answer_chars: int = 3500
    answer_ephemeral: bool = False
    reply_mode: Literal["answer_first", "stream", "final"] = Field(
        default="answer_first", description="answer_first: post the quoted answer as soon as retrieval is done, then "
        "replace it with the model's answer if that passes the grounding check. final: post only the final answer. "
        "stream: show the model's text as it is written (Slack chat streams, Discord message edits), then the same "
        "grounding check; text that fails it is replaced by the quoted answer with a note. For a trusted model.")
    write_queue_size: int = 10_000
    accept_reaction: str = Field(
        default="white_check_mark", max_length=100, description="The reaction that marks a human answer in a "
        "Slack/Discord thread as accepted (Slack emoji name, without colons; on Discord its emoji, e.g. ✅, or a "
        "custom emoji's name): the thread becomes a document of the channel's answered-threads collection and a "
        "curated training example (docs/sources.md). Empty = off.")
    accept_by: Literal["asker_or_admin", "asker", "admin"] = Field(
        default="asker_or_admin", description="Whose accept reaction counts: the thread's asker, a ragbot admin "
        "(global, or an admin of that workspace/server), or either.")
    answered_collection: str = Field(
        default="answered-threads", min_length=1, max_length=60, description="Collection of accepted threads from "
        "public channels (created public if missing: readable and trainable like any public collection). A private "
        "channel's threads go to a private collection of their own, `<this>-<platform>-<channel id>`, granted to "
        "that channel only and not trained on unless an admin allows it.")
    ask_threads: int = Field(
        default=32, ge=1, description="Asks one bot process works on at once (threads). Generations among them are "
        "still limited by RAGBOT_GENERATION_CONCURRENCY; an ask waiting longer than RAGBOT_GENERATION_QUEUE_TIMEOUT_S "
        "for a generation gets the extractive answer.")
    ingest_roots: CommaList = Field(
        default_factory=list, description="Folders `/ragbot-admin ingest` may read (absolute paths; no symbolic "
        "links or `..` below them). Empty = ingesting from chat is off; `ragbot ingest` on the host is not limited.")
    answer_code_key: SecretStr | None = Field(
        default=None, description="Key of the short answer codes users see and quote (e.g. 7KQM2D) instead of "
                                  "interaction ids. Any string; keep it stable, since changing it changes every "
                                  "code. Unset: a built-in key (codes look opaque, but the source can decode them).")

    # --- slack ---------------------------------------------------------------
    slack_bot_token: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    slack_team_ids: CommaList = Field(
        default_factory=list, description="Slack workspaces (team ids, or an Enterprise Grid org id) this "
        "deployment serves; anywhere else the bot only says it is not enabled. Empty = not bound (a warning).")

    # --- discord -------------------------------------------------------------
    discord_token: SecretStr | None = None
    discord_reply_in_thread: bool = False
    discord_api_base: str | None = None
    discord_guild_ids: CommaList = Field(
        default_factory=list, description="Discord servers (guild ids) this deployment serves; in any other "
        "server the bot only says it is not enabled. Empty = not bound (a warning). DMs are always answered.")
    discord_leave_unlisted_guilds: bool = Field(
        default=False,
        description="Leave a server not in RAGBOT_DISCORD_GUILD_IDS when invited or at start-up.")

    # --- operations ----------------------------------------------------------
    health_port: int = 0
    health_host: str = Field(default="127.0.0.1",
                             description="Address /healthz and /metrics bind to (0.0.0.0 in containers).")
    log_json: bool | None = None
    log_level: str = "INFO"
    shutdown_grace_s: float = Field(
        default=20.0, ge=0.0, description="On SIGTERM/SIGINT: seconds a bot waits for the asks it is answering and "
        "for writes queued during a database outage; what is left is logged and counted. Keep it below the "
        "container's stop timeout (stop_grace_period: 30s in docker-compose.yml).")
    processed_events_retention_s: float = Field(
        default=86_400.0, gt=0.0, description="Delivery ids kept to recognise a platform's re-delivery (Slack retries "
        "within minutes, a Discord gateway replays within a session); older ones are deleted.")
    housekeeping_interval_s: float = Field(
        default=600.0, gt=0.0, description="How often the worker and the bots delete expired delivery ids.")

    # --- admin console (`ragbot console`) ----------------------------------------
    console_secret: SecretStr | None = Field(
        default=None, description="Key that signs the sign-in links of `/ragbot-admin console` (at least 16 "
        "characters; the bots and `ragbot console` need the same one). Unset: the console link command is off.")
    console_url: str = Field(
        default="http://127.0.0.1:8765", description="Where admins' browsers reach `ragbot console` (the links "
        "point there); an https URL also marks the session cookie Secure (see docs/console.md for a reverse proxy).")
    console_link_ttl_s: float = Field(
        default=300.0, gt=0.0, le=3600.0, description="Seconds a console sign-in link stays valid (it is also "
        "single use).")
    console_session_ttl_s: float = Field(
        default=3600.0, gt=0.0, le=86_400.0, description="Seconds a console session lasts after sign-in; then the "
        "admin asks the bot for a new link.")

    @field_validator("lora_target_modules", "admin_user_ids", "admin_role_ids", "slack_team_ids",
                     "discord_guild_ids", "ingest_roots", "source_url_base", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("source_url_base")
    @classmethod
    def _check_url_bases(cls, value: list[str]) -> list[str]:
        for pair in value:
            name, _, base = pair.partition("=")
            if not name.strip() or not base.strip().startswith(("https://", "http://")):
                raise ValueError(f"{pair!r} is not collection=https://base/ (RAGBOT_SOURCE_URL_BASE)")
        return value

    @property
    def source_url_bases(self) -> dict[str, str]:
        """``source_url_base`` as {collection name: base URL}."""
        return {name.strip(): base.strip() for name, _, base in (p.partition("=") for p in self.source_url_base)}

    @property
    def adapter_store(self) -> Path:
        return self.adapter_dir or self.data_dir / "adapters"

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
