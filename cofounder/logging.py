"""structlog set-up shared by the API, the worker and the CLI (structlog's production recipe).

JSON lines when stderr is not a terminal (containers, log shippers), a readable console on a TTY.
Context bound with `structlog.contextvars` (the request's correlation id, a build id) is merged
into every line, and standard-library records (uvicorn, temporalio, alembic) get the same format.
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from collections.abc import Iterable
from typing import Any

import structlog
from pydantic import BaseModel, SecretStr
from structlog.typing import EventDict, Processor, WrappedLogger

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's id is echoed into logs and headers, so only tame values are accepted.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

MASK = "[redacted]"
# The shapes of the vendors' secrets, masked wherever they appear in a log line.
SECRET_SHAPES = re.compile(
    "|".join(
        (
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)",
            r"sk-ant-[A-Za-z0-9_-]{8,}",  # Anthropic
            r"\be2b_[A-Za-z0-9]{8,}",  # E2B
            r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{8,}",  # Stripe (and Clerk) secret keys
            r"\bwhsec_[A-Za-z0-9+/=_-]{8,}",  # Stripe webhook secrets
            r"\bgh[opusr]_[A-Za-z0-9]{16,}",  # GitHub tokens
            r"\bgithub_pat_[A-Za-z0-9_]{16,}",
        )
    )
)
# A configured secret shorter than this is not masked by value (it would mask common words).
MIN_SECRET_LENGTH = 6
_secrets: set[str] = set()
_exact: re.Pattern[str] | None = None


def configure_logging(json: bool | None = None, level: int = logging.INFO) -> None:
    """Route structlog and the standard library to one renderer; JSON unless stderr is a TTY."""
    if json is None:
        json = not sys.stderr.isatty()
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    renderer: Processor
    # Exceptions become text or dicts here, before redaction, so their messages are masked too.
    if json:
        shared.append(structlog.processors.dict_tracebacks)
        renderer = structlog.processors.JSONRenderer()
    else:
        shared.append(structlog.processors.format_exc_info)
        renderer = structlog.dev.ConsoleRenderer()
    shared.append(redact_secrets)

    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    # The API logs one line per request itself (with its correlation id and duration), and a
    # line per outgoing HTTP call (every model call) is noise at INFO.
    for chatty in ("uvicorn.access", "httpx"):
        logging.getLogger(chatty).setLevel(max(level, logging.WARNING))


def request_id(sent: str | None) -> str:
    """The caller's correlation id when it is a sane token, otherwise a fresh one."""
    if sent and _REQUEST_ID.fullmatch(sent):
        return sent
    return uuid.uuid4().hex


def register_secrets(settings: BaseModel) -> None:
    """Mask the values of the settings' `SecretStr` fields in every later log line."""
    register_secret_values(
        value.get_secret_value()
        for name in type(settings).model_fields
        if isinstance(value := getattr(settings, name), SecretStr)
    )


def register_secret_values(values: Iterable[str]) -> None:
    """Mask these exact values (and their escaped forms, as a repr shows them) from now on."""
    global _exact
    for value in values:
        if len(value) >= MIN_SECRET_LENGTH:
            _secrets.update({value, value.encode("unicode_escape").decode()})
    if _secrets:
        # Longest first, so a secret containing another is masked whole.
        ordered = sorted(_secrets, key=len, reverse=True)
        _exact = re.compile("|".join(map(re.escape, ordered)))


def redact(text: str) -> str:
    """`text` with every registered secret and every secret-shaped token masked."""
    if _exact is not None:
        text = _exact.sub(MASK, text)
    return SECRET_SHAPES.sub(MASK, text)


def redact_secrets(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: masks secrets in every string of the event, however deeply nested."""
    for key, value in event_dict.items():
        if not key.startswith("_"):  # structlog's own entries, such as the stdlib record
            event_dict[key] = _redacted(value)
    return event_dict


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_redacted(item) for item in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    # Anything else is rendered with str() or repr() later: mask that text if it holds a secret.
    shown = repr(value)
    masked = redact(shown)
    return value if masked == shown else masked
