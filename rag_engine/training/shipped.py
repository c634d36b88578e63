"""LoRA adapters trained elsewhere (a file shipped with the demo, one copied from another deployment).

An imported adapter enters the registry like a trained one: copied into the adapter store under a fresh
version, registered as a candidate with where it came from, and activated only when asked. Importing the
same files again finds the version already made from them (by a hash of the files) instead of adding one.
A ``ragbot-lora.json`` next to the weights says how they were made; its contents become the metrics shown
by ``ragbot lora list``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from rag_engine.config import GenerationConfig, TrainingConfig
from rag_engine.store.database import Database
from rag_engine.training import registry

MADE_BY = "ragbot-lora.json"  # how the shipped adapter was made (command, data, figures)
WEIGHT_FILES = ("adapter_config.json", "adapter_model.safetensors")


def files_hash(src: Path) -> str:
    """One hash over the adapter's config and weights: the same files always give the same hash."""
    digest = hashlib.sha256()
    for name in WEIGHT_FILES:
        digest.update(name.encode())
        digest.update((src / name).read_bytes())
    return digest.hexdigest()[:16]


def made_by(src: Path) -> dict[str, Any]:
    path = src / MADE_BY
    return dict(json.loads(path.read_text())) if path.is_file() else {}


def import_adapter(db: Database, generation: GenerationConfig, training: TrainingConfig, src: Path, *,
                   activate: bool = False) -> registry.AdapterRecord:
    """Register the adapter in folder ``src`` (once per distinct files) and optionally make it the active one.

    Raises ``FileNotFoundError`` when ``src`` lacks the adapter files and ``ValueError`` when the adapter was
    made for another base model than the configured generator (it would not fit its weights).
    """
    missing = [name for name in WEIGHT_FILES if not (src / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{src} is not a LoRA adapter folder: {', '.join(missing)} missing")
    info = made_by(src)
    base_model = registry.base_model_id(generation)
    if info.get("base_model") not in (None, base_model):
        raise ValueError(f"the adapter in {src} was made for {info['base_model']!r}, but the configured generator "
                         f"model is {base_model!r}")
    sha = files_hash(src)
    record = next((a for a in registry.list_adapters(db) if a.data_snapshot.get("imported_sha") == sha), None)
    if record is None:
        version = registry.next_version(db)
        dest = training.adapter_store / version
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(src, dest)
        record = registry.register(
            db, version=version, method=str(info.get("method", "lora")), base_model=base_model, path=dest,
            data_snapshot={"imported_from": str(src), "imported_sha": sha}, metrics=info,
        )
    if activate and record.status != "active":
        registry.activate(db, record.version, base_model=base_model)
        record = registry.get(db, record.version) or record
    return record
