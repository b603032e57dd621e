"""Structured audit log lines through structlog, always redacted first."""

from __future__ import annotations

from typing import Any

import structlog

from audit.redaction import redact

logger = structlog.get_logger("audit")


def emit(event: str, fields: dict[str, Any]) -> dict[str, Any]:
    safe = redact(fields)
    logger.info(event, **safe)
    return safe
