"""Generate ``.env.example`` and ``docs/configuration.md`` from ``Settings``.

    python scripts/gen_env_example.py           # rewrite both files
    python scripts/gen_env_example.py --check   # exit 1 if either is out of date

Every field of ``app.settings.Settings`` is listed, grouped by the
``# --- section ---`` comments of settings.py. A field's comment is its
``Field(description=...)``, else its trailing ``# comment`` in settings.py,
else the note below; a new field with none of them still gets listed (type
and default), so the files never miss a setting.
"""

from __future__ import annotations

import argparse
import inspect
import io
import re
import sys
import tokenize
import types
import typing
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr
from pydantic_core import PydanticUndefined

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.settings import Settings  # noqa: E402 - importable only once ROOT is on sys.path

ENV_EXAMPLE = ROOT / ".env.example"
CONFIG_DOC = ROOT / "docs" / "configuration.md"
PREFIX = "RAGBOT_"

# Variables read by `docker compose` itself (interpolated into docker-compose.yml), not by ragbot.
COMPOSE_VARIABLES: list[tuple[str, str, str]] = [
    ("COMPOSE_PROFILES", "slack,discord,worker",
     "Processes to run: slack, discord, worker (CPU retraining) or gpu (GPU retraining), vllm."),
    ("POSTGRES_PASSWORD", "change-me",
     "Password of the `ragbot` role in the db service. URL-safe characters only (it goes into a URL)."),
    ("BOT_IMAGE", "ragbot:latest", "Image built (or pulled) for the CPU services."),
    ("BOT_GPU_IMAGE", "ragbot:cuda", "Image for worker-gpu, built with CUDA torch."),
    ("TORCH_CUDA_VARIANT", "cu128", "PyTorch wheel index for the CUDA image (cu126, cu128, ...)."),
    ("GPU_COUNT", "1", "GPUs reserved by worker-gpu and vllm each."),
    ("PGVECTOR_IMAGE", "pgvector/pgvector:pg18", "The Postgres + pgvector image."),
    ("SLACK_HEALTH_PORT", "9101", "Host port (127.0.0.1 only) for the Slack bot's /healthz and /metrics."),
    ("DISCORD_HEALTH_PORT", "9102", "Host port (127.0.0.1 only) for the Discord bot's /healthz and /metrics."),
    ("WORKER_HEALTH_PORT", "9103", "Host port (127.0.0.1 only) for the worker's /healthz and /metrics."),
    ("VLLM_IMAGE", "vllm/vllm-openai:latest", "vLLM's OpenAI-compatible server image (vllm profile)."),
    ("VLLM_MODEL", "HuggingFaceTB/SmolLM2-135M-Instruct",
     "Base model vLLM serves: the one the adapters were trained on (RAGBOT_GENERATOR_MODEL)."),
    ("VLLM_MAX_LORAS", "8", "Adapters vLLM keeps on the GPU at once."),
    ("VLLM_MAX_LORA_RANK", "16", "Largest LoRA rank vLLM accepts; at least RAGBOT_LORA_R."),
    ("VLLM_GPU_MEMORY_UTILIZATION", "0.9", "Share of GPU memory vLLM takes; lower it if worker-gpu shares the GPU."),
    ("HF_TOKEN", "", "Hugging Face token, only if VLLM_MODEL is gated."),
]

# Notes for fields that carry no description in settings.py.
NOTES: dict[str, str] = {
    "data_dir": "Where the embedded database, model cache and adapter store live (default: the user data dir).",
    "db_pool_size": "Connections kept open per process (one pool per process, shared by all threads).",
    "db_max_overflow": "Extra connections a process may open above the pool size under load.",
    "db_connect_timeout_s": "Give up connecting (and waiting for a free pooled connection) after this long.",
    "db_statement_timeout_ms": "Server cancels any query running longer; 0 sends none (use the role's default, "
                               "e.g. behind PgBouncer).",
    "db_retry_attempts": "Attempts for a queued write (interactions, feedback) while the database is down.",
    "embedding_model": "Sentence-transformers model; `default` = all-MiniLM-L6-v2 shipped as a package.",
    "embedding_backend": "torch, or onnx-int8 (quantized, faster on CPU). Collections remember which they used.",
    "embedding_batch_size": "Chunks embedded per batch during ingestion.",
    "embedding_device": "Device for the embedder (cpu, cuda).",
    "chunk_tokens": "Target chunk size in tokens.",
    "chunk_overlap": "Tokens repeated between neighbouring chunks.",
    "max_file_mb": "Larger files are skipped at ingestion (reported, not fatal).",
    "search_mode": "Retrieval: vector, lexical (Postgres full text) or hybrid (both, fused).",
    "search_k": "Chunks given to the generator and cited.",
    "hnsw_ef_search": "HNSW search breadth (SET LOCAL per query): higher = better recall, slower.",
    "candidate_depth": "Candidates each retriever returns before fusion.",
    "fusion": "How vector and lexical results are fused: rrf (reciprocal rank) or convex (weighted scores).",
    "rrf_k": "RRF constant k in w / (k + rank).",
    "lexical_rank_normalization": "ts_rank_cd normalization bit mask (0 = none).",
    "lexical_scoring": "Lexical ranking: bm25, or Postgres' ts_rank_cd.",
    "bm25_k1": "BM25 term-frequency saturation (k1).",
    "bm25_b": "BM25 document-length normalization (b).",
    "vector_weight": "Weight of the vector ranking in fusion.",
    "lexical_weight": "Weight of the lexical ranking in fusion.",
    "reranker_model": "Cross-encoder to rerank the fused candidates (unset = no reranking).",
    "rerank_depth": "Candidates passed to the reranker.",
    "generator_backend": "transformers (local model + LoRA), openai (any OpenAI-compatible server, e.g. vLLM) "
                         "or extractive (no model: quotes the best passages).",
    "generator_model": "Base model for the transformers backend; `default` = SmolLM2-135M-Instruct shipped "
                       "as a package.",
    "generator_device": "auto picks CUDA when available.",
    "generator_dtype": "auto = bfloat16 on GPU, float32 on CPU.",
    "max_input_tokens": "Prompt budget: passages are trimmed to fit.",
    "max_new_tokens": "Longest answer generated.",
    "decoding": "greedy, beam or sample.",
    "num_beams": "Beams for decoding=beam.",
    "temperature": "Sampling temperature for decoding=sample.",
    "top_p": "Nucleus sampling for decoding=sample.",
    "generation_concurrency": "Answers generated at once per process; the rest wait in line.",
    "generation_queue_timeout_s": "A question waiting longer than this for the generator gets the extractive answer.",
    "history_turns": "Earlier turns of a thread given to the model for follow-ups.",
    "openai_base_url": "OpenAI-compatible API base including /v1 (e.g. http://vllm:8000/v1).",
    "openai_api_key": "API key for that server, if it wants one.",
    "openai_model": "Model name to request when no adapter is active (vLLM's --served-model-name).",
    "openai_timeout_s": "Per-request timeout.",
    "openai_max_retries": "Retries on connection errors and 429/5xx.",
    "peft_method": "Adapter type trained by the worker: lora, prefix or ia3.",
    "lora_r": "LoRA rank.",
    "lora_alpha": "LoRA scaling (alpha).",
    "lora_dropout": "LoRA dropout.",
    "lora_target_modules": "Comma-separated module names to adapt (empty = the model family's default).",
    "train_learning_rate": "Learning rate for retraining.",
    "train_epochs": "Epochs over the training set.",
    "train_max_steps": "Stop after this many steps (0 = no limit).",
    "train_batch_size": "Examples per training step.",
    "train_seed": "Seed for shuffling, the held-out split and initialization.",
    "train_max_tokens": "Longest training example (prompt + answer) in tokens.",
    "promotion_margin": "A new adapter must cut the active one's held-out loss by this share to be promoted.",
    "adapter_poll_s": "How often a bot checks for a newly activated adapter (NOTIFY wakes it sooner).",
    "worker_heartbeat_s": "How often a running job reports it is alive.",
    "worker_stale_after_s": "A job silent this long is re-queued for another worker.",
    "admin_user_ids": "Comma-separated platform user ids allowed to run admin commands.",
    "admin_role_ids": "Comma-separated Discord role ids whose members are admins.",
    "slack_workspace_admins_are_admins": "Slack workspace admins and owners are ragbot admins too.",
    "rate_limit_user_per_min": "Questions per minute per user (token bucket refill).",
    "rate_limit_user_burst": "Questions a user may ask at once before the per-minute rate applies.",
    "rate_limit_channel_per_min": "Questions per minute per channel.",
    "rate_limit_channel_burst": "Burst per channel.",
    "max_question_chars": "Longer questions are refused with a message.",
    "max_answer_chars": "Longer answers are cut (and split where the platform needs it).",
    "answer_ephemeral": "Answer slash commands visibly only to the asker.",
    "write_queue_size": "Writes held in memory while the database is unreachable.",
    "slack_bot_token": "Slack bot token (xoxb-...). See docs/slack.md.",
    "slack_app_token": "Slack app-level token (xapp-...) for Socket Mode.",
    "slack_signing_secret": "Slack signing secret, for the HTTP (Events API) mode.",
    "slack_api_url": "Slack Web API base (tests point it at a local double).",
    "discord_token": "Discord bot token. See docs/discord.md.",
    "discord_reply_in_thread": "Answer mentions in a new thread instead of a reply.",
    "discord_api_base": "Discord API base (tests point it at a local double).",
    "health_port": "Port for /healthz and /metrics in long-running processes (0 = no health server).",
    "log_json": "JSON log lines (unset = JSON when stderr is not a terminal).",
    "log_level": "DEBUG, INFO, WARNING, ERROR or CRITICAL.",
}


@dataclass(frozen=True)
class Entry:
    name: str
    env: str
    section: str
    note: str
    kind: str
    default: str  # as written in a .env file; "" = unset
    secret: bool


def source_sections_and_comments(settings_class: type = Settings) -> tuple[dict[str, str], dict[str, str]]:
    """Field name -> the section it is declared in, and -> its trailing comment (subclasses win)."""
    sections: dict[str, str] = {}
    comments: dict[str, str] = {}
    for klass in reversed(settings_class.__mro__):
        if issubclass(klass, Settings):
            own_sections, own_comments = _parse_class_source(inspect.getsource(klass))
            sections.update(own_sections)
            comments.update(own_comments)
    return sections, comments


def _parse_class_source(source: str) -> tuple[dict[str, str], dict[str, str]]:
    sections: dict[str, str] = {}
    comments: dict[str, str] = {}
    section = "general"
    field_on_line: dict[int, str] = {}
    for number, line in enumerate(source.splitlines(), start=1):
        header = re.match(r"\s*# --- ([\w /,&-]+?) -+\s*$", line)
        if header:
            section = header.group(1).strip()
            continue
        field = re.match(r"    ([a-z_][a-z0-9_]*)\s*:", line)
        if field:
            sections[field.group(1)] = section
            field_on_line[number] = field.group(1)
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT and token.start[0] in field_on_line and token.start[1] > 4:
            comments[field_on_line[token.start[0]]] = token.string.lstrip("#").strip()
    return sections, comments


def describe_type(annotation: object) -> tuple[str, bool]:
    """A short human name for a field's type, and whether it holds a secret."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        return describe_type(args[0])
    if origin is typing.Literal:
        return " | ".join(str(a) for a in args), False
    if origin in (typing.Union, types.UnionType):
        parts = [a for a in args if a is not type(None)]
        name, secret = describe_type(parts[0]) if len(parts) == 1 else (" or ".join(describe_type(p)[0] for p in parts),
                                                                         False)
        return f"{name}, optional", secret
    if origin is list:
        return "comma-separated list", False
    if annotation is SecretStr:
        return "secret", True
    if annotation is bool:
        return "true | false", False
    return getattr(annotation, "__name__", str(annotation)), False


def env_default(field) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
        if isinstance(value, list):
            return ",".join(map(str, value))
        return ""  # computed per machine (data_dir): not fixed text
    value = field.default
    if value is None or value is PydanticUndefined:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, SecretStr):
        return ""
    return str(value)


def entries(settings_class: type = Settings) -> list[Entry]:
    sections, comments = source_sections_and_comments(settings_class)
    found = []
    for name, field in settings_class.model_fields.items():
        kind, secret = describe_type(field.annotation)
        note = field.description or comments.get(name) or NOTES.get(name) or ""
        found.append(Entry(name=name, env=PREFIX + name.upper(), section=sections.get(name, "other"), note=note,
                           kind=kind, default=env_default(field), secret=secret))
    return found


def grouped(items: list[Entry]) -> dict[str, list[Entry]]:
    groups: dict[str, list[Entry]] = {}
    for item in items:
        groups.setdefault(item.section, []).append(item)
    return groups


def render_env_example(items: list[Entry]) -> str:
    out = [
        "# ragbot settings: copy to .env and change what you need.",
        "# Generated by scripts/gen_env_example.py from app/settings.py; do not edit by hand.",
        "# Every ragbot setting is listed, commented out at its default. Reference: docs/configuration.md",
        "#",
        "# To start: set POSTGRES_PASSWORD and COMPOSE_PROFILES below, then uncomment and fill in",
        "#   Slack:   RAGBOT_SLACK_BOT_TOKEN and RAGBOT_SLACK_APP_TOKEN (docs/slack.md)",
        "#   Discord: RAGBOT_DISCORD_TOKEN (docs/discord.md)",
        "#   admins:  RAGBOT_ADMIN_USER_IDS",
        "# An empty value is not \"unset\": leave a setting commented out to keep its default.",
        "",
        "# === docker compose (read by `docker compose`, not by ragbot) ===",
    ]
    for name, value, note in COMPOSE_VARIABLES:
        out += [f"# {note}", f"{name}={value}"]
    for section, group in grouped(items).items():
        out += ["", f"# === {section} ==="]
        for item in group:
            detail = item.kind + (f"; default: {item.default}" if item.default else "")
            out += [f"# {item.note} ({detail})" if item.note else f"# ({detail})", f"# {item.env}={item.default}"]
    return "\n".join(out) + "\n"


def render_configuration_doc(items: list[Entry]) -> str:
    out = [
        "# Configuration reference",
        "",
        "<!-- Generated by scripts/gen_env_example.py from app/settings.py; do not edit by hand. -->",
        "",
        "Every setting is an environment variable with the `RAGBOT_` prefix, or a line in a",
        "`.env` file in the working directory (`.env.example` lists them all, commented out",
        "at their defaults). Secrets are never logged: see [operations](operations.md#logs).",
        "Lists are comma-separated (`RAGBOT_ADMIN_USER_IDS=U123,U456`); booleans are",
        "`true`/`false`; an empty value is not the same as unset, so leave unset settings out.",
        "",
    ]
    for section, group in grouped(items).items():
        out += [f"## {section.capitalize()}", "", "| Variable | Type | Default | Meaning |", "|---|---|---|---|"]
        for item in group:
            default = f"`{item.default}`" if item.default else ("(computed)" if item.name == "data_dir" else "unset")
            note = item.note.replace("|", "\\|")
            out.append(f"| `{item.env}` | {item.kind.replace('|', '/')} | {default} | {note} |")
        out.append("")
    out += ["## Docker Compose variables", "",
            "Read by `docker compose` from `.env` (see [operations](operations.md)); ragbot never reads them.", "",
            "| Variable | Example | Meaning |", "|---|---|---|"]
    for name, value, note in COMPOSE_VARIABLES:
        out.append(f"| `{name}` | `{value}` | {note} |" if value else f"| `{name}` | | {note} |")
    return "\n".join(out) + "\n"


def outputs() -> dict[Path, str]:
    items = entries()
    return {ENV_EXAMPLE: render_env_example(items), CONFIG_DOC: render_configuration_doc(items)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only report whether the files are up to date")
    args = parser.parse_args(argv)
    stale = []
    for path, text in outputs().items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    for path in stale:
        verb = "out of date" if args.check else "written"
        print(f"{path.relative_to(ROOT)}: {verb}")
    if args.check and stale:
        print("run: python scripts/gen_env_example.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
