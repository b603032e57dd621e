"""Structured audit log lines through structlog, always redacted first.

:func:`emit` is how :mod:`audit.recording` writes the log twin of every stored event.
The rest sets a project up to log the same way: :func:`configure_structlog` once at
start-up (JSON in production, readable console lines when ``DEBUG``) and
:func:`logging_config` as ``LOGGING``, so the ``audit``, ``secure_sso`` and
``django.security`` loggers (structlog's and the standard library's alike) leave
through one formatter, with the request context and without secrets::

    # settings.py
    from audit.logs import logging_config
    LOGGING = logging_config(json=not DEBUG)

    # e.g. in your AppConfig.ready() or wsgi.py / asgi.py
    from audit.logs import configure_structlog
    configure_structlog()

Nothing here runs at import time.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import structlog
import structlog.tracebacks

from audit.redaction import OPAQUE_FIELDS, redact

logger = structlog.get_logger("audit")

#: Loggers :func:`logging_config` routes through structlog's formatter.
LOGGER_NAMES = ("audit", "secure_sso", "django.security")
#: Keys that structlog (or its processors) give a meaning of their own: a detail with one
#: of these names is logged as ``detail_<name>`` so it neither breaks nor steers the call.
RESERVED_KEYS = frozenset(
    {"event", "level", "logger", "timestamp", "exc_info", "stack_info", "exception",
     "_record", "_from_structlog"}
)


def emit(event: str, fields: dict[str, Any]) -> dict[str, Any]:
    """Log one audit event as one structured line (redacted); return what was logged."""
    safe = {
        (f"detail_{name}" if name in RESERVED_KEYS else name): value
        for name, value in redact(fields, opaque=OPAQUE_FIELDS).items()
    }
    logger.info(event, **safe)
    return safe


#: Bookkeeping that redaction must not reshape (a tuple ``exc_info`` would become a list).
_PASS_THROUGH = ("_record", "_from_structlog", "exc_info")


def redact_event_dict(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: secret-named keys and token-shaped values replaced.

    The standard library's bookkeeping keys (the ``LogRecord`` and friends) pass through;
    identifiers such as ``request_id`` and ``subject`` keep long runs (``OPAQUE_FIELDS``).
    """
    private = {k: event_dict[k] for k in _PASS_THROUGH if k in event_dict}
    public = {k: v for k, v in event_dict.items() if k not in private}
    return {**redact(public, opaque=OPAQUE_FIELDS), **private}


def structlog_processors(json: bool) -> list[Any]:
    """The processors every line goes through before it is rendered.

    Context variables (bound by :class:`audit.middleware.AuditContextMiddleware`), level,
    logger name, an ISO-8601 UTC timestamp, exceptions (as structured data for JSON, as
    plain traceback text for the console), then redaction last, so nothing added above
    escapes it: an exception's message is scrubbed like any other text. Also the
    ``foreign_pre_chain`` for standard-library records in :func:`logging_config`.
    """
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    if json:
        # Frames without their local variables: locals are where tokens and codes live.
        processors.append(
            structlog.processors.ExceptionRenderer(
                structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
            )
        )
    else:
        # SECURITY: the console renderer would format exc_info itself, after redaction (the
        # message unscrubbed; with rich installed, local variables too). Formatted here it
        # is plain traceback text that redaction sees.
        processors.append(structlog.processors.format_exc_info)
    processors.append(redact_event_dict)
    return processors


def renderer(json: bool) -> Any:
    """``JSONRenderer`` for machines, ``ConsoleRenderer`` for people."""
    if json:
        return structlog.processors.JSONRenderer()
    return structlog.dev.ConsoleRenderer()


def _default_json() -> bool:
    from django.conf import settings

    return not settings.DEBUG


def configure_structlog(*, json: bool | None = None) -> None:
    """Configure structlog to hand its events to the standard library's logging.

    Rendering happens in the formatter of :func:`logging_config` (so ``LOGGING`` decides
    handlers and levels). ``json`` defaults to ``not settings.DEBUG``; it only changes how
    exceptions are prepared. Loggers are not cached on first use, so
    ``structlog.testing.capture_logs`` keeps working in test suites.
    """
    if json is None:
        json = _default_json()
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *structlog_processors(json),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        context_class=dict,
        cache_logger_on_first_use=False,
    )


def logging_config(json: bool, *, level: str = "INFO") -> dict[str, Any]:
    """A complete ``LOGGING`` dict: ``audit``, ``secure_sso`` and ``django.security`` to stderr.

    One line per event through structlog's ``ProcessorFormatter``: JSON when ``json``,
    the console renderer otherwise. Other loggers keep Django's defaults.
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structlog": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    renderer(json),
                ],
                "foreign_pre_chain": structlog_processors(json),
            }
        },
        "handlers": {
            "structlog": {"class": "logging.StreamHandler", "formatter": "structlog"}
        },
        "loggers": {
            name: {"handlers": ["structlog"], "level": level, "propagate": False}
            for name in LOGGER_NAMES
        },
    }
