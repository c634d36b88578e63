"""Slack request signatures, checked without ever logging a rejected request's body.

Bolt's own check logs the whole body of a badly signed request (question text,
``response_url``) at INFO. This middleware takes its place (``build_app`` turns
Bolt's off and runs this one at the same point, before authorization): it
refuses with the same 401, logs only the fact and the timestamp's age (a
skewed clock or a wrong signing secret are the usual causes), and counts the
rejection in ``ragbot_rejected_requests`` on ``/metrics``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from slack_bolt.middleware.async_middleware import AsyncMiddleware
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.signature import SignatureVerifier

from bot import metrics

log = logging.getLogger(__name__)


class QuietRequestVerification(AsyncMiddleware):
    def __init__(self, signing_secret: str) -> None:
        self.verifier = SignatureVerifier(signing_secret)

    async def async_process(self, *, req: AsyncBoltRequest, resp: BoltResponse,
                            next: Callable[[], Awaitable[BoltResponse]]) -> BoltResponse:  # noqa: A002 - Bolt passes `next` by keyword
        if req.mode == "socket_mode":  # arrives over the authenticated WebSocket, unsigned
            return await next()
        timestamp = _header(req, "x-slack-request-timestamp")
        if self._is_valid(req.raw_body, timestamp, _header(req, "x-slack-signature")):
            return await next()
        metrics.observe_rejected_request("slack", "signature")
        log.warning("rejected a Slack request with a bad or expired signature (timestamp %s; body not logged)",
                    _age(timestamp))
        return BoltResponse(status=401, body={"error": "invalid request"})

    def _is_valid(self, body: str, timestamp: str, signature: str) -> bool:
        try:
            return self.verifier.is_valid(body, timestamp, signature)
        except ValueError:  # a timestamp that is not a number
            return False


def _header(req: AsyncBoltRequest, name: str) -> str:
    return (req.headers.get(name) or [""])[0]


def _age(timestamp: str) -> str:
    try:
        return f"{time.time() - int(timestamp):+.0f} s old"
    except ValueError:
        return "missing or not a number"
