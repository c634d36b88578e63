"""A LoRA adapter made elsewhere enters the registry once, activates only when asked, and must fit the base model."""

from __future__ import annotations

import json

import pytest

from app.configs import engine_config
from rag_engine.testing.tiny_models import make_lora_adapter
from rag_engine.training import registry
from rag_engine.training.shipped import MADE_BY, import_adapter
from tests.support.training import tiny_model, tiny_settings

__all__ = ["tiny_model"]  # the session fixture


@pytest.fixture()
def config(scratch_dir, tiny_model, tmp_path):
    return engine_config(tiny_settings(scratch_dir, tiny_model, tmp_path / "store"))


@pytest.fixture()
def shipped(tiny_model, tmp_path):
    folder = make_lora_adapter(tiny_model, tmp_path / "shipped")
    (folder / MADE_BY).write_text(json.dumps({"made_with": "ragbot lora bootstrap", "pairs": 12}))
    return folder


def test_import_copies_registers_and_activates_once(db, config, shipped):
    first = import_adapter(db, config.generation, config.training, shipped)
    assert first.status == "candidate" and registry.active(db) is None  # not active unless asked
    assert first.path.parent == config.training.adapter_store and (first.path / "adapter_model.safetensors").is_file()
    assert first.metrics == {"made_with": "ragbot lora bootstrap", "pairs": 12}
    again = import_adapter(db, config.generation, config.training, shipped, activate=True)
    assert again.version == first.version and again.status == "active"
    assert [a.version for a in registry.list_adapters(db)] == [first.version]


def test_changed_files_are_a_new_version(db, config, shipped, tiny_model, tmp_path):
    first = import_adapter(db, config.generation, config.training, shipped)
    other = make_lora_adapter(tiny_model, tmp_path / "other", seed=2)
    assert import_adapter(db, config.generation, config.training, other).version != first.version


def test_an_adapter_for_another_base_model_or_no_adapter_is_refused(db, config, shipped, tmp_path):
    (shipped / MADE_BY).write_text(json.dumps({"base_model": "some/other-model"}))
    with pytest.raises(ValueError, match="made for 'some/other-model'"):
        import_adapter(db, config.generation, config.training, shipped)
    with pytest.raises(FileNotFoundError, match=r"adapter_config\.json"):
        import_adapter(db, config.generation, config.training, tmp_path)
    assert registry.list_adapters(db) == []


def test_the_cli_imports_and_activates(db, scratch_dir, tiny_model, shipped, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from app.cli import app

    for key, value in tiny_settings(scratch_dir, tiny_model, tmp_path / "store").model_dump(mode="json").items():
        if value is not None and not isinstance(value, (list, dict)):
            monkeypatch.setenv(f"RAGBOT_{key.upper()}", str(value))
    result = CliRunner().invoke(app, ["lora", "import", str(shipped), "--activate"])
    assert result.exit_code == 0, result.output
    active = registry.active(db)
    assert active is not None and active.version in result.output and "(active)" in result.output
