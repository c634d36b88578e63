"""Import rules (issue 16): imports sit at module level, except those that keep a heavy dependency
lazy, each saying why in a comment; and the CLI starts without loading the heavy libraries."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ("app", "bot", "adapters", "rag_engine")
# loaded only by the commands that need them: `ragbot --help` must not pay for them
HEAVY = ("torch", "transformers", "sentence_transformers", "peft", "matplotlib", "discord", "slack_bolt",
         "onnxruntime")


def uncommented_function_imports(source: str) -> list[tuple[int, str]]:
    """(line, text) of each import inside a function with no comment on its line or the line above."""
    lines = source.splitlines()
    found: set[tuple[int, str]] = set()
    for fn in ast.walk(ast.parse(source)):
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.Import | ast.ImportFrom):
                line = lines[node.lineno - 1]
                above = lines[node.lineno - 2] if node.lineno > 1 else ""
                if "#" not in line and not above.strip().startswith("#"):
                    found.add((node.lineno, line.strip()))
    return sorted(found)


def test_the_rule_finds_an_uncommented_import_and_accepts_commented_ones() -> None:
    source = (
        "import os\n"
        "def f():\n"
        "    import json\n"
        "    import torch  # lazy: pulls torch\n"
        "    # lazy: the reason, on the line above\n"
        "    import numpy\n"
        "    class C:\n"
        "        def g(self):\n"
        "            from a import b\n"
    )
    assert uncommented_function_imports(source) == [(3, "import json"), (9, "from a import b")]


@pytest.mark.parametrize("package", PACKAGES)
def test_function_level_imports_say_why(package: str) -> None:
    offenders = [f"{path.relative_to(ROOT)}:{lineno}: {text}"
                 for path in sorted((ROOT / package).rglob("*.py"))
                 for lineno, text in uncommented_function_imports(path.read_text(encoding="utf-8"))]
    assert not offenders, ("function-level imports need a comment saying why they are lazy "
                           "(e.g. `# lazy: pulls torch`), or move them to module level:\n" + "\n".join(offenders))


def test_the_cli_imports_no_heavy_library() -> None:
    probe = f"import sys, app.cli; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True,
                         timeout=120)
    assert out.stdout.split() == [], f"`import app.cli` loaded {out.stdout.strip()}: keep them lazy in the commands"
