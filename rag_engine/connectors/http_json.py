"""A small JSON-over-HTTP client for the chat connectors: one ``httpx.Client``, bounded waits on
rate limits (``429`` + ``Retry-After``, as Slack and Discord both send), and errors that name the
call but never the token.

Plain HTTP on purpose: the Slack Web API and Discord's REST API are JSON over HTTPS, and the
engine stays free of the chat SDKs (``slack_sdk``, ``discord.py``) that the platform adapters use.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from rag_engine.connectors.base import ConnectorError

MAX_RETRIES = 5
MAX_WAIT_S = 120.0  # a longer Retry-After fails the sync (it backs off and runs again later)
TIMEOUT_S = 30.0


class JsonApi:
    """Calls one API base with one set of headers; ``sleep`` is injectable for tests."""

    def __init__(self, base_url: str, headers: Mapping[str, str], *,
                 sleep: Callable[[float], None] = time.sleep, timeout_s: float = TIMEOUT_S) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self._client = httpx.Client(headers=dict(headers), timeout=timeout_s, follow_redirects=False)
        self._sleep = sleep
        self.calls = 0

    def close(self) -> None:
        self._client.close()

    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                data: Mapping[str, Any] | None = None) -> tuple[int, Any]:
        """(status, decoded JSON body) of one call, waiting out rate limits."""
        url = self.base_url + path.lstrip("/")
        for attempt in range(MAX_RETRIES + 1):
            self.calls += 1
            try:
                response = self._client.request(method, url, params=_clean(params), data=_clean(data))
            except httpx.HTTPError as exc:
                raise ConnectorError(f"{method} {path}: {type(exc).__name__}: {exc}") from None
            if response.status_code == 429 and attempt < MAX_RETRIES:
                wait = _retry_after(response)
                if wait > MAX_WAIT_S:
                    raise ConnectorError(f"{method} {path}: rate limited for {wait:.0f} s")
                self._sleep(wait)
                continue
            try:
                body = response.json() if response.content else None
            except ValueError:
                raise ConnectorError(f"{method} {path}: HTTP {response.status_code}, not JSON") from None
            return response.status_code, body
        raise ConnectorError(f"{method} {path}: still rate limited after {MAX_RETRIES} retries")


def _clean(values: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if values is None:
        return None
    return {k: v for k, v in values.items() if v is not None}


def _retry_after(response: httpx.Response) -> float:
    """Seconds to wait: the ``Retry-After`` header, or Discord's ``retry_after`` body field, else 1."""
    header = response.headers.get("Retry-After")
    try:
        if header is not None:
            return max(0.0, float(header))
        body = response.json()
        return max(0.0, float(body.get("retry_after", 1.0)))
    except (ValueError, AttributeError, TypeError):
        return 1.0
