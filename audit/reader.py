"""Streaming the stored chain out of the database for ``audit_verify``, fast.

The verifier's HMAC costs less per row than the ORM's row loading, so reading is the
bottleneck: rows come through the connection's cursor in chunks (a server-side cursor on
PostgreSQL, the next chunk prefetched by a thread), with only the converters the ORM
would apply. :mod:`audit.chain` checks what this reads.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from queue import Empty, Queue
from typing import Any

from django.db.models import JSONField

from audit.models import AuditEvent

#: Rows fetched per round trip by :func:`stored_rows` (larger chunks fall out of the CPU
#: caches and read slower).
READ_CHUNK = 2_000


def _use_native_timestamptz_loader(connection: Any, cursor: Any) -> None:
    """On psycopg 3, read ``timestamptz`` with psycopg's own (C) loader on this cursor.

    Django registers a Python subclass that re-labels every value with the connection's
    time zone: half of what reading a row costs. The canonical form converts the time to
    UTC anyway, so the zone label makes no difference; the instant is the same.
    """
    if connection.vendor != "postgresql" or connection.timezone is None:
        return
    adapters = getattr(cursor.cursor, "adapters", None)  # None: psycopg2
    if adapters is None:
        return
    from psycopg import adapters as psycopg_adapters
    from psycopg.pq import Format

    oid = adapters.types["timestamptz"].oid
    native = psycopg_adapters.get_loader(oid, Format.TEXT)
    if native is not None:
        adapters.register_loader(oid, native)


def stored_rows(
    connection: Any, fields: Sequence[str], start_seq: int = 1
) -> Iterator[tuple[Any, ...]]:
    """``fields`` tuples of the stored events from ``start_seq`` on, in ``seq`` order.

    What ``AuditEvent.objects.filter(seq__gte=start_seq).order_by("seq")
    .values_list(*fields).iterator()`` yields, read with the connection's cursor and
    ``fetchmany``: a server-side cursor where the ORM would use one (PostgreSQL, unless
    ``DISABLE_SERVER_SIDE_CURSORS``), and the same database converters, applied only to
    the columns that have any (the details JSON everywhere; the time on SQLite). The ORM
    spends more per row than the verifier's HMAC: 1M events are read in half the time.
    Call it inside a transaction on PostgreSQL (see :func:`audit.chain.verify`).
    """
    quote = connection.ops.quote_name
    meta = AuditEvent._meta
    columns = [meta.get_field(name).column for name in fields]
    seq = quote(meta.get_field("seq").column)
    sql = (
        f"SELECT {', '.join(quote(c) for c in columns)} FROM {quote(meta.db_table)} "  # noqa: S608
        f"WHERE {seq} >= %s ORDER BY {seq}"
    )
    converters = []
    for index, name in enumerate(fields):
        col = meta.get_field(name).get_col(meta.db_table)
        found = connection.ops.get_db_converters(col) + col.get_db_converters(connection)
        if found:
            converters.append((index, tuple(_quicker(f, col.target) for f in found), col))
    chunked = not connection.settings_dict.get("DISABLE_SERVER_SIDE_CURSORS")
    with connection.chunked_cursor() if chunked else connection.cursor() as cursor:
        _use_native_timestamptz_loader(connection, cursor)
        cursor.execute(sql, [start_seq])
        chunks: Iterator[list[tuple[Any, ...]]] = iter(
            lambda: cursor.fetchmany(READ_CHUNK), []
        )
        if connection.vendor == "postgresql":
            chunks = _prefetched(chunks)
        for rows in chunks:
            if not converters:
                yield from rows
                continue
            for row in rows:
                values = list(row)
                for index, functions, col in converters:
                    value = values[index]
                    for function in functions:
                        value = function(value, col, connection)
                    values[index] = value
                yield tuple(values)


def _quicker(converter: Any, field: Any) -> Any:
    """``converter``, or a quicker equivalent for the details column.

    ``JSONField.from_db_value`` without a custom decoder is ``json.loads`` behind three
    layers of Python (a third of reading a row); this calls the C scanner ``json.loads``
    ends in, and leaves every value it does not take whole (whitespace, a BOM, trailing
    data, invalid JSON, not a ``str``) to ``from_db_value`` itself.
    """
    make_scanner = json.scanner.c_make_scanner  # type: ignore[attr-defined]
    if (
        make_scanner is None
        or getattr(converter, "__func__", None) is not JSONField.from_db_value
        or getattr(field, "decoder", None) is not None
    ):
        return converter
    scan = make_scanner(json.JSONDecoder())

    def from_db_value(value: Any, expression: Any, connection: Any) -> Any:
        if type(value) is str:
            try:
                loaded, end = scan(value, 0)
            except (StopIteration, ValueError):
                pass
            else:
                if end == len(value):
                    return loaded
        return converter(value, expression, connection)

    return from_db_value


def _prefetched(chunks: Iterator[list[Any]], depth: int = 2) -> Iterator[list[Any]]:
    """``chunks``, with the next ones fetched by a thread while the caller works on this one.

    A server-side cursor's FETCH leaves the client idle while the server produces the rows
    (about a fifth of ``verify``'s time on PostgreSQL); psycopg releases the GIL while it
    waits, so the wait overlaps the verifier's hashing. At most ``depth`` chunks wait in
    memory. The cursor is used by one thread at a time: the worker until the caller stops,
    which waits for the worker before it returns (and before the cursor is closed).
    """
    queue: Queue[Any] = Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def fetch() -> None:
        try:
            while not stop.is_set():  # checked before each FETCH, not after
                chunk = next(chunks, done)
                queue.put(chunk)
                if chunk is done:
                    return
        except BaseException as exc:  # noqa: BLE001  re-raised in the caller's thread
            queue.put(_FetchFailed(exc))

    worker = threading.Thread(target=fetch, name="audit-verify-fetch", daemon=True)
    worker.start()
    try:
        while (item := queue.get()) is not done:
            if isinstance(item, _FetchFailed):
                raise item.error
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a worker waiting to put, then let it finish
            try:
                queue.get(timeout=0.05)
            except Empty:
                pass
        worker.join()


@dataclass(frozen=True)
class _FetchFailed:
    error: BaseException
