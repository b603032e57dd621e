"""Stream stored audit events out as JSON Lines or CSV, for archives and offline checks.

Every stored field is written, including ``seq``, ``prev_hash``, ``key_id`` and ``mac``,
and ``created_at`` in the exact form the HMAC covers, so an exported file can be
verified away from the database with :func:`load_jsonl` and
:func:`audit.chain.verify_events` (given the signing keys). Rows are read in ``seq``
order with ``QuerySet.iterator()``: memory stays constant whatever the table size.

JSON Lines is the exact form (what was stored, byte for byte, so it verifies). CSV is for
people with a spreadsheet, which reads a cell starting with ``=``, ``+``, ``-`` or ``@`` as
a formula (``=HYPERLINK(...)`` in a User-Agent would be a live link): every cell is quoted
and a cell that could start a formula gets a leading ``'`` (:func:`csv_cell`), as OWASP's
"CSV Injection" page recommends. Such a CSV cell no longer equals the stored value; verify
with the JSON Lines export.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, time
from typing import IO, Any

from django.db import router
from django.utils.dateparse import parse_date, parse_datetime

from audit.chain import _timestamp
from audit.models import AuditEvent

#: Column order of both formats: every stored field (``user_id`` is the nullable FK).
FIELDS = (
    "seq", "created_at", "event_type", "outcome", "reason", "user_id", "user_ref", "username",
    "issuer", "subject", "client_ip", "user_agent", "request_id", "session_hash", "details",
    "prev_hash", "key_id", "mac",
)
FORMATS = ("jsonl", "csv")
#: The characters OWASP's "CSV Injection" page lists (its current text: ``= + - @``, tab,
#: carriage return, line feed): no cell may start with one of them.
FORMULA_TRIGGERS = frozenset("=+-@\t\r\n")
CHUNK_SIZE = 2000


def parse_moment(value: str) -> datetime:
    """An ISO date (midnight UTC) or datetime (UTC unless it names its offset).

    Raises:
        ValueError: neither.
    """
    text = value.strip()
    moment = parse_datetime(text)
    if moment is None:
        day = parse_date(text)
        if day is None:
            raise ValueError(f"not an ISO date or datetime: {value!r}")
        moment = datetime.combine(day, time.min)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def events(
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    using: str | None = None,
) -> Iterator[AuditEvent]:
    """Stored events with ``since <= created_at < until``, in ``seq`` order, streamed."""
    queryset = AuditEvent.objects.using(using or router.db_for_read(AuditEvent))
    if since is not None:
        queryset = queryset.filter(created_at__gte=since)
    if until is not None:
        queryset = queryset.filter(created_at__lt=until)
    return queryset.order_by("seq").iterator(chunk_size=CHUNK_SIZE)


def row(event: AuditEvent) -> dict[str, Any]:
    """One event as plain JSON values, ``created_at`` as the HMAC covers it."""
    data = {name: getattr(event, name) for name in FIELDS}
    data["created_at"] = _timestamp(event.created_at)
    return data


def jsonl_lines(items: Iterable[AuditEvent]) -> Iterator[str]:
    for event in items:
        yield json.dumps(row(event), ensure_ascii=False, sort_keys=False) + "\n"


def write_jsonl(items: Iterable[AuditEvent], stream: IO[str]) -> int:
    count = 0
    for line in jsonl_lines(items):
        stream.write(line)
        count += 1
    return count


def csv_cell(value: Any) -> str:
    """``value`` as a CSV cell a spreadsheet shows as text, never runs as a formula.

    OWASP's rule (no cell may start with ``= + - @``, tab, CR or LF; prefix ``'``), and one
    step further: also when those follow leading blanks (`` =1+1``), which some importers
    trim. ``None`` is an empty cell.
    """
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    if text[:1] in FORMULA_TRIGGERS or text.lstrip()[:1] in FORMULA_TRIGGERS:
        return "'" + text
    return text


def write_csv(items: Iterable[AuditEvent], stream: IO[str]) -> int:
    """CSV with a header row; ``details`` as a JSON string, a missing IP or user as empty.

    Every cell is quoted (so a ``;`` or ``,`` inside one cannot start a new cell in a
    spreadsheet that splits on it) and passed through :func:`csv_cell`.
    """
    writer = csv.writer(stream, lineterminator="\n", quoting=csv.QUOTE_ALL)
    writer.writerow(FIELDS)
    count = 0
    for event in items:
        data = row(event)
        data["details"] = json.dumps(data["details"], ensure_ascii=False, sort_keys=True)
        writer.writerow([csv_cell(data[name]) for name in FIELDS])
        count += 1
    return count


def export(
    stream: IO[str],
    *,
    fmt: str = "jsonl",
    since: datetime | None = None,
    until: datetime | None = None,
    using: str | None = None,
) -> int:
    """Write the selected events to ``stream``; return how many were written."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    items = events(since=since, until=until, using=using)
    return write_jsonl(items, stream) if fmt == "jsonl" else write_csv(items, stream)


def load_jsonl(lines: Iterable[str]) -> Iterator[AuditEvent]:
    """Unsaved :class:`AuditEvent` objects from an export, for ``chain.verify_events``."""
    for line in lines:
        if not line.strip():
            continue
        data = json.loads(line)
        created = datetime.strptime(data.pop("created_at"), "%Y-%m-%dT%H:%M:%S.%fZ")
        yield AuditEvent(created_at=created.replace(tzinfo=UTC), **data)

