"""Deployment files: docker-compose.yml, Dockerfile, .env.example, the configuration docs.

No docker engine runs here; the compose file is checked as data (and with
``docker compose config`` where a docker client with the compose plugin exists).
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Literal

import pytest
import yaml
from pydantic import Field, SecretStr

from app.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
BOTS = ("slack", "discord", "worker", "worker-gpu")
ENV_EXAMPLE = (ROOT / ".env.example").read_text()
DOCKERFILE = (ROOT / "Dockerfile").read_text()
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^${}]*))?\}")


def load_generator():
    spec = importlib.util.spec_from_file_location("gen_env_example", ROOT / "scripts" / "gen_env_example.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def with_defaults(value: str, env: dict[str, str] | None = None) -> str:
    """Compose interpolation of ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}`` (nested too)."""
    env = env or {}
    while (m := _VAR.search(value)) is not None:
        name, op, arg = m.groups()
        found = env.get(name)
        if op in (":-", "-") and not found:
            found = arg
        if op in (":?", "?") and not found:
            raise LookupError(f"{name} is required: {arg}")
        value = value[:m.start()] + (found or "") + value[m.end():]
    return value


def env_example_values() -> dict[str, str]:
    return dict(line.split("=", 1) for line in ENV_EXAMPLE.splitlines() if line and not line.startswith("#"))


def all_strings(node) -> list[str]:
    if isinstance(node, dict):
        return [s for k, v in node.items() for s in [str(k), *all_strings(v)]]
    if isinstance(node, list):
        return [s for v in node for s in all_strings(v)]
    return [node] if isinstance(node, str) else []


def test_services_and_volumes_are_all_there():
    assert set(SERVICES) == {"db", "migrate", "slack", "discord", "worker", "worker-gpu", "vllm"}
    assert {"pgdata", "ragbot-data"} <= set(COMPOSE["volumes"])


def test_db_is_pgvector_with_a_named_volume_and_a_health_check():
    db = SERVICES["db"]
    assert with_defaults(db["image"]).startswith("pgvector/pgvector:")
    assert any(v.split(":")[0] == "pgdata" for v in db["volumes"])
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])


def test_migrate_runs_once_after_the_database_is_healthy_and_gates_every_process():
    migrate = SERVICES["migrate"]
    assert migrate["command"] == ["db", "upgrade"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"] == {"db": {"condition": "service_healthy"}}
    for name in BOTS:
        assert SERVICES[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}


def test_each_long_running_process_runs_its_command_and_is_health_checked():
    assert ENTRYPOINT == ["tini", "--", "ragbot"]  # an init as PID 1 forwards SIGTERM and reaps zombies
    for name, command in [("slack", "slack"), ("discord", "discord"), ("worker", "worker"), ("worker-gpu", "worker")]:
        service = SERVICES[name]
        assert service["command"] == [command]
        assert service["healthcheck"]["test"] == ["CMD", "python", "-m", "app.health"]
        env = service["environment"]
        port = env["RAGBOT_HEALTH_PORT"]
        assert env["RAGBOT_HEALTH_HOST"] == "0.0.0.0"  # reachable from outside the container
        assert all(mapping.endswith(f":{port}") for mapping in service["ports"])
        assert with_defaults(env["RAGBOT_DATABASE_URL"], {"POSTGRES_PASSWORD": "pw"}).startswith(
            "postgresql://ragbot:pw@db:5432/")
    assert f"EXPOSE {SERVICES['slack']['environment']['RAGBOT_HEALTH_PORT']}" in DOCKERFILE


def test_the_database_password_is_required_not_defaulted():
    with pytest.raises(LookupError, match="POSTGRES_PASSWORD"):
        with_defaults(SERVICES["db"]["environment"]["POSTGRES_PASSWORD"])


def test_bots_are_opt_in_profiles_and_the_example_enables_real_ones():
    profiles = {p for s in SERVICES.values() for p in s.get("profiles", [])}
    assert profiles == {"slack", "discord", "worker", "gpu", "vllm"}
    assert "profiles" not in SERVICES["db"] and "profiles" not in SERVICES["migrate"]
    enabled = set(env_example_values()["COMPOSE_PROFILES"].split(","))
    assert enabled <= profiles and "slack" in enabled


def test_gpu_worker_reserves_an_nvidia_gpu_and_builds_cuda_torch():
    gpu = SERVICES["worker-gpu"]
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["capabilities"] == ["gpu"]
    assert with_defaults(gpu["build"]["args"]["TORCH_VARIANT"]).startswith("cu")
    assert SERVICES["worker"]["build"]["args"]["TORCH_VARIANT"] == "cpu"
    assert gpu["environment"]["RAGBOT_GENERATOR_DEVICE"] == "cuda"
    assert "deploy" not in SERVICES["worker"]
    assert re.search(r"^ARG TORCH_VARIANT=cpu$", DOCKERFILE, re.M)  # CPU unless asked


def test_vllm_serves_the_adapter_store_to_the_bots_through_the_openai_backend():
    vllm = SERVICES["vllm"]
    assert vllm["profiles"] == ["vllm"]
    args = dict(a.lstrip("-").split("=", 1) if "=" in a else (a.lstrip("-"), "") for a in vllm["command"])
    assert "enable-lora" in args
    assert vllm["environment"]["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
    assert int(with_defaults(args["max-lora-rank"])) >= Settings.model_fields["lora_r"].default
    assert with_defaults(args["served-model-name"]) == Settings.model_fields["openai_model"].default
    assert vllm["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"] == ["gpu"]
    # the shared volume must first be mounted by a ragbot container (it then belongs to the ragbot user)
    assert vllm["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}

    for name in ("slack", "discord"):
        env = SERVICES[name]["environment"]
        assert with_defaults(env["RAGBOT_OPENAI_BASE_URL"]) == f"http://vllm:{args['port']}/v1"
        assert with_defaults(env["RAGBOT_OPENAI_REGISTER_ADAPTERS"]) == "true"
        assert SERVICES[name]["depends_on"]["vllm"] == {"condition": "service_healthy", "required": False}
        # an adapter's path means the same file in the bot and in vLLM
        data_dir = env["RAGBOT_DATA_DIR"]
        assert f"ragbot-data:{data_dir}" in SERVICES[name]["volumes"]
        assert f"ragbot-data:{data_dir}:ro" in vllm["volumes"]


def test_every_ragbot_variable_in_compose_is_a_real_setting():
    fields = {"RAGBOT_" + name.upper() for name in Settings.model_fields}
    named = {s for s in all_strings(COMPOSE) if s.startswith("RAGBOT_")}
    named |= {m.group(1) for s in all_strings(COMPOSE) for m in _VAR.finditer(s) if m.group(1).startswith("RAGBOT_")}
    assert named, "expected RAGBOT_ settings in docker-compose.yml"
    assert named <= fields, sorted(named - fields)


def test_every_compose_variable_without_a_default_is_in_env_example():
    example = env_example_values()
    gen = load_generator()
    documented = {name for name, _, _ in gen.COMPOSE_VARIABLES}
    used = {m.group(1) for s in all_strings(COMPOSE) for m in _VAR.finditer(s)}
    required = {m.group(1) for s in all_strings(COMPOSE) for m in _VAR.finditer(s) if m.group(2) in (None, ":?", "?")}
    assert required <= set(example), sorted(required - set(example))
    non_ragbot = {v for v in used if not v.startswith("RAGBOT_")}
    assert non_ragbot <= documented, sorted(non_ragbot - documented)
    assert documented - {"COMPOSE_PROFILES"} <= used, sorted(documented - used)  # no stale variables
    for value in all_strings(COMPOSE):  # and the example resolves everything
        with_defaults(value, example)


def test_env_example_and_configuration_docs_list_every_setting():
    doc = (ROOT / "docs" / "configuration.md").read_text()
    example_lines = set(ENV_EXAMPLE.splitlines())
    missing_example, missing_doc = [], []
    for name in Settings.model_fields:
        env = "RAGBOT_" + name.upper()
        if not any(line.startswith(f"# {env}=") for line in example_lines):
            missing_example.append(env)
        if f"| `{env}` |" not in doc:
            missing_doc.append(env)
    fix = "run: python scripts/gen_env_example.py"
    assert missing_example == [], f"{missing_example} missing from .env.example; {fix}"
    assert missing_doc == [], f"{missing_doc} missing from docs/configuration.md; {fix}"


class ExampleSettings(Settings):
    # --- example section ------------------------------------------------------
    with_description: int = Field(default=3, description="Described in the Field.")
    with_comment: Literal["a", "b"] = "a"  # described by its trailing comment
    api_secret: SecretStr | None = None
    plain_list: list[str] = Field(default_factory=lambda: ["x", "y"])
    flag: bool | None = None


def test_the_generator_takes_sections_comments_types_and_defaults_from_the_source():
    gen = load_generator()
    entries = {e.name: e for e in gen.entries(ExampleSettings)}
    assert set(entries) == set(ExampleSettings.model_fields)
    described, commented = entries["with_description"], entries["with_comment"]
    assert (described.section, described.note, described.kind, described.default) == (
        "example section", "Described in the Field.", "int", "3")
    assert (commented.note, commented.kind, commented.default) == ("described by its trailing comment", "a | b", "a")
    assert entries["api_secret"].secret and entries["api_secret"].default == ""  # never a value in the example
    assert entries["plain_list"].default == "x,y"
    assert (entries["flag"].kind, entries["flag"].default) == ("true | false, optional", "")
    assert entries["database_url"].section == "storage"  # inherited fields keep their own section
    rendered = gen.render_env_example(list(entries.values()))
    assert "# Described in the Field. (int; default: 3)\n# RAGBOT_WITH_DESCRIPTION=3\n" in rendered
    assert "# RAGBOT_API_SECRET=\n" in rendered
    doc = gen.render_configuration_doc(list(entries.values()))
    assert "| `RAGBOT_WITH_COMMENT` | a / b | `a` | described by its trailing comment |" in doc


def test_every_setting_has_a_comment_for_the_example():
    gen = load_generator()
    undocumented = sorted(e.name for e in gen.entries() if not e.note)
    assert undocumented == [], (f"give {undocumented} a Field(description=...) in app/settings.py "
                                "(or a note in scripts/gen_env_example.py), then run python scripts/gen_env_example.py")


def test_the_image_installs_every_package_the_project_ships():
    include = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    for pattern in include:
        package = pattern.rstrip("*")
        assert re.search(rf"^COPY {package} \./{package}$", DOCKERFILE, re.M), f"Dockerfile does not copy {package}/"
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert ".env" in ignored and ".venv" in ignored and "README.md" not in ignored


ENTRYPOINT = yaml.safe_load(re.search(r"^ENTRYPOINT (.+)$", DOCKERFILE, re.M).group(1))


def _compose_client() -> str | None:
    if shutil.which("docker") is None:
        return None
    probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, timeout=60)
    return "docker" if probe.returncode == 0 else None


@pytest.mark.skipif(_compose_client() is None, reason="no docker client with the compose plugin here")
def test_docker_compose_config_accepts_the_file():
    profiles = "slack,discord,worker,gpu,vllm"
    result = subprocess.run(["docker", "compose", "--env-file", ".env.example", "config", "-q"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "COMPOSE_PROFILES": profiles})
    assert result.returncode == 0, result.stderr
