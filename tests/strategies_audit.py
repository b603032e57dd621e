"""Hypothesis strategies and raw-SQL helpers for the audit tests.

The strategies model what callers hand to :func:`audit.record`: any event name, any
outcome, any JSON-ish details (secret-named keys included). The helpers change stored
rows behind the ORM's back, as an attacker with database access would.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from hypothesis import strategies as st

from audit import events
from audit.models import AuditEvent
from tests.strategies import json_values

#: record()'s own keyword names: a detail cannot use them.
RECORD_PARAMETERS = frozenset(
    {"event_type", "request", "user", "outcome", "reason", "issuer", "subject"}
)

event_types = st.one_of(
    st.sampled_from(events.ALL),
    st.from_regex(r"\A[a-z]{1,8}(\.[a-z_]{1,10}){1,3}\Z"),
)
outcomes = st.sampled_from(["success", "failure"]) | st.text(max_size=20)
reasons = st.sampled_from(["", "invalid_credentials", "state_mismatch"]) | st.text(max_size=40)
#: Detail names: ordinary ones, ones structlog reserves, secret ones, and anything else.
detail_names = st.one_of(
    st.sampled_from(["method", "status", "created", "groups", "event", "level", "timestamp",
                     "token", "password", "code", "client_ip", "seq"]),
    st.text(max_size=12),
).filter(lambda name: name not in RECORD_PARAMETERS)
details = st.dictionaries(
    detail_names,
    json_values | st.floats() | st.integers() | st.text().map(lambda s: s + "\x00"),
    max_size=6,
)


@st.composite
def record_calls(draw: st.DrawFn) -> dict[str, Any]:
    """Keyword arguments for one ``audit.record`` call."""
    return {
        "event_type": draw(event_types),
        "outcome": draw(outcomes),
        "reason": draw(reasons),
        "issuer": draw(st.none() | st.text(max_size=30)),
        "subject": draw(st.none() | st.text(max_size=30)),
        **draw(details),
    }


# -- tampering, as someone with write access to the database -----------------------------

TABLE = AuditEvent._meta.db_table


def raw_row(seq: int) -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {TABLE} WHERE seq = %s", [seq])  # noqa: S608
        names = [column[0] for column in cursor.description]
        return dict(zip(names, cursor.fetchone(), strict=True))


def raw_update(seq: int, column: str, value: Any) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET {column} = %s WHERE seq = %s", [value, seq])  # noqa: S608
        assert cursor.rowcount == 1


def raw_delete(seq: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE seq = %s", [seq])  # noqa: S608
        assert cursor.rowcount == 1


def raw_swap(seq_a: int, seq_b: int) -> None:
    raw_update(seq_a, "seq", -1)
    raw_update(seq_b, "seq", seq_a)
    raw_update(-1, "seq", seq_b)


def _flip_hex(value: str) -> str:
    return ("1" if value[0] != "1" else "2") + value[1:]


def tampered_value(column: str, value: Any) -> Any:
    """A different, well-formed value for ``column`` (as stored by SQLite)."""
    if column == "created_at":
        moment = datetime.fromisoformat(str(value))
        return (moment + timedelta(seconds=1)).isoformat(sep=" ")
    if column == "details":
        replacement = json.dumps({"tampered": True})
        return replacement if value != replacement else json.dumps({"tampered": False})
    if column == "client_ip":
        return "192.0.2.1" if value != "192.0.2.1" else "192.0.2.2"
    if column in {"prev_hash", "mac"}:
        return _flip_hex(value)
    if column == "seq":
        return value + 1000
    return f"{value}x"


@contextmanager
def rolled_back() -> Iterator[None]:
    """Run one Hypothesis example in a transaction that is always rolled back."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


@contextmanager
def clock(*moments: datetime) -> Iterator[None]:
    """Make :func:`audit.chain.append` stamp events with ``moments``, in order."""
    import audit.chain

    times = iter(moments)

    class Clock(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
            return next(times).astimezone(tz or UTC)

    original = audit.chain.datetime
    audit.chain.datetime = Clock  # type: ignore[misc]
    try:
        yield
    finally:
        audit.chain.datetime = original  # type: ignore[misc]
