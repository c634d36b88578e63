"""The one redaction function: credentials out of every stored or logged free text.

Exception texts, model errors and pasted questions can carry a credential: a
URL with a password or an ``api-key`` query parameter, an ``Authorization``
header, a Slack or Discord token. :func:`redact_secrets` masks those shapes and,
given the configured secrets (:func:`secret_values`), each exact value. The
interaction log, the job table, the audit trail, log lines and chat replies all
go through it. It lives at the lowest layer that needs it (the engine stores
fallback reasons and job errors); the bot's log formatter and sanitizer call it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from functools import lru_cache
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import BaseModel, SecretStr

MASK = "***"
_MIN_SECRET_LEN = 4  # shorter "secrets" would mask ordinary words all over the logs
# query-string keys whose values are credentials (api-key, access_token, sig, X-Amz-Signature, ...)
# (bounded repeats: a long run of word characters after "?" costs linear time, not quadratic)
_SECRET_PARAM = r"[\w.-]{0,40}(?:key|token|secret|passw(?:or)?d|pwd|auth|sig(?:nature)?|credential)[\w.-]{0,40}"

# Shapes of credentials that may reach a log line or a stored text without having come from
# settings (an error echoing a request, a token pasted into a question, a URL in a traceback).
SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?:xox[a-z]|xapp)-[A-Za-z0-9-]{6,}"), MASK),  # Slack tokens, also when glued to a word
    (re.compile(r"\b(Bot|Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{8,}"), rf"\1 {MASK}"),  # Authorization values
    # (?<!…) instead of \b: a match may only start where a run of token characters starts, so a long
    # run (a 1 MB message) is scanned once instead of once per position (quadratic time)
    (re.compile(r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{24,}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,}"), MASK),  # Discord, JWTs
    (re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"), MASK),  # OpenAI-style API keys
    (re.compile(r"((?<![a-z0-9+.-])[a-z][a-z0-9+.-]*://[^:/?#\s@]*):([^@\s/]+)@", re.IGNORECASE),
     rf"\1:{MASK}@"),  # URL passwords (user:password@)
    (re.compile(rf"([?&;]{_SECRET_PARAM}=)[^&#\s'\"<>]+", re.IGNORECASE), rf"\1{MASK}"),  # ?api-key=… &token=…
    (re.compile(r"\b(password\s*=\s*)[^\s&;'\"]+", re.IGNORECASE), rf"\1{MASK}"),  # libpq key=value DSNs
)


class Redactor:
    """Masks the given secrets (verbatim, URL- and JSON-escaped) and known credential shapes."""

    def __init__(self, secrets: Iterable[str]) -> None:
        variants: set[str] = set()
        for secret in secrets:
            if not secret or len(secret) < _MIN_SECRET_LEN:
                continue
            for form in (secret, unquote(secret)):  # as configured, and percent-decoded (URL passwords)
                variants.update({form, json.dumps(form)[1:-1]})  # and as it appears inside JSON
        ordered = sorted((v for v in variants if len(v) >= _MIN_SECRET_LEN), key=len, reverse=True)
        self._literal = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    @classmethod
    def for_config(cls, config: BaseModel) -> Redactor:
        """The (cached) redactor of every secret in ``config`` (see ``secret_values``)."""
        return _redactor(tuple(secret_values(config)))

    def __call__(self, text: str) -> str:
        if self._literal is not None:
            text = self._literal.sub(MASK, text)
        for pattern, replacement in SECRET_PATTERNS:
            text = pattern.sub(replacement, text)
        return text


@lru_cache(maxsize=32)
def _redactor(secrets: tuple[str, ...]) -> Redactor:
    return Redactor(secrets)


def redact_secrets(text: str, secrets: Iterable[str] | BaseModel = ()) -> str:
    """``text`` with credential shapes masked, and each configured secret: pass the secrets (the
    store config's ``secrets``, or a config holding them) wherever they are at hand."""
    if isinstance(secrets, BaseModel):
        secrets = secret_values(secrets)
    return _redactor(tuple(s for s in secrets if s))(text)


def secret_values(config: BaseModel) -> list[str]:
    """Every ``SecretStr`` value in ``config`` (the settings, or a config; nested ones too), and the
    credentials inside its URL fields.

    A URL setting (``openai_base_url``, ``slack_api_url``, a ``database_url``) may embed a
    password or an ``api-key=`` query parameter: those parts are secrets too.
    """
    found: list[str] = []
    for name in type(config).model_fields:
        value = getattr(config, name, None)
        if isinstance(value, BaseModel):
            found.extend(secret_values(value))
        elif isinstance(value, SecretStr):
            raw = value.get_secret_value()
            if raw:
                found.append(raw)
                found.extend(_url_credentials(raw))
        elif isinstance(value, str):
            found.extend(_url_credentials(value))
    return found


def _url_credentials(value: str) -> list[str]:
    if "://" not in value:
        return []
    try:
        parts = urlsplit(value)
        password = parts.password
    except ValueError:
        return []
    found = [password] if password else []
    found += [v for k, v in parse_qsl(parts.query) if v and re.fullmatch(_SECRET_PARAM, k, re.IGNORECASE)]
    return found
