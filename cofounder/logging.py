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

import structlog
from structlog.typing import Processor

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's id is echoed into logs and headers, so only tame values are accepted.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


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
    if json:
        shared.append(structlog.processors.dict_tracebacks)
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer()

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
