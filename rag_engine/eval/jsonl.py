"""Reading JSON-lines evaluation files with line-numbered errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path


def read_jsonl(path: Path, error: type[Exception]) -> Iterator[tuple[int, object]]:
    """(line number, value) for each non-blank line; a line that is not JSON raises ``error``."""
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield n, json.loads(line)
            except json.JSONDecodeError as exc:
                raise error(f"{path.name} line {n}: not JSON ({exc.msg})") from None
