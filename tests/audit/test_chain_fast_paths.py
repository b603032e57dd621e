"""The hash chain's fast paths give exactly what their plain versions give (issue #8).

``append`` writes with the connection's cursor instead of the ORM, ``verify`` reads with
a raw cursor and puts the canonical JSON together itself, and hashes with precomputed
HMAC states: each is checked here against the reference it replaces, on arbitrary input.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.db.models.sql import InsertQuery
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from audit import chain, reader, record
from audit.models import AuditEvent
from tests.strategies import json_values
from tests.strategies_audit import record_calls, rolled_back

DB_EXAMPLES = hypothesis_settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

moments = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 30),  # noqa: DTZ001
    timezones=st.sampled_from([UTC, None]),
)
texts = st.text(max_size=40)
#: Values a tampered or hand-made row may hold where a string belongs.
odd_values = st.one_of(st.none(), st.integers(), st.floats(), st.booleans(), texts)


@st.composite
def rows(draw: st.DrawFn, *, odd: bool = False) -> tuple[Any, ...]:
    """A ``ROW_FIELDS`` tuple: as stored, or (``odd``) with any value in any column."""
    strings = odd_values if odd else texts
    values: dict[str, Any] = {name: draw(strings) for name in chain.SIGNED_FIELDS}
    values["seq"] = draw(st.integers(0, 2**62) | (odd_values if odd else st.nothing()))
    values["created_at"] = draw(moments | (odd_values if odd else st.nothing()))
    values["client_ip"] = draw(st.none() | st.just("") | st.ip_addresses().map(str) | strings)
    values["details"] = draw(
        st.dictionaries(texts, json_values | st.floats(), max_size=5)
        | (odd_values if odd else st.nothing())
    )
    return (*(values[name] for name in chain.SIGNED_FIELDS), "f" * 64)


def reference(row: tuple[Any, ...]) -> bytes | type[Exception]:
    """What the general encoder makes of ``row`` (or the class of what it raises)."""
    try:
        return chain.canonical(dict(zip(chain.SIGNED_FIELDS, row, strict=False)))
    except Exception as exc:  # noqa: BLE001  compared with the fast path's below
        return type(exc)


def fast(row: tuple[Any, ...]) -> bytes | type[Exception]:
    try:
        return chain._row_canonical(row)
    except Exception as exc:  # noqa: BLE001  compared with the reference's above
        return type(exc)


class TestCanonicalRow:
    @given(row=rows())
    def test_stored_rows_match_the_encoder(self, row: tuple[Any, ...]) -> None:
        """For rows of stored types the assembled JSON is byte for byte the encoder's."""
        assert fast(row) == reference(row)

    @given(row=rows(odd=True))
    def test_any_row_matches_the_encoder(self, row: tuple[Any, ...]) -> None:
        """Any value in any column serialises, or fails, exactly as with the encoder."""
        assert fast(row) == reference(row)

    def test_cycle_falls_back(self) -> None:
        """A self-containing details dict fails as the encoder fails, with ValueError."""
        details: dict[str, Any] = {}
        details["self"] = details
        row = (1, datetime.now(UTC), *[""] * 11, details, "", "k1", "")
        with pytest.raises(ValueError, match="Circular"):
            chain._row_canonical(row)


class TestPrecomputedHmac:
    @given(key=st.binary(max_size=200), message=st.binary(max_size=600))
    def test_equals_hmac_module(self, key: bytes, message: bytes) -> None:
        """Any key (longer than a block included) and message: hmac.new's hexdigest."""
        expected = hmac.new(key, message, hashlib.sha256).hexdigest()
        assert chain._Sha256Hmac(key).hexdigest(message) == expected


class TestTimestamp:
    @given(moment=moments)
    def test_same_text_as_strftime(self, moment: datetime) -> None:
        """The %-formatted time equals strftime's for every year, naive or aware."""
        utc = moment.astimezone(UTC)
        assert chain._timestamp(moment) == utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.mark.django_db
class TestAppendWritesTheOrmRow:
    @DB_EXAMPLES
    @given(call=record_calls())
    def test_insert_parameters_equal_the_orms(self, call: dict[str, Any]) -> None:
        """The values append() sends are the ones the ORM's INSERT would send."""
        sent: list[list[Any]] = []

        def spy(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
            if sql.startswith("INSERT INTO"):
                sent.append(list(params))
            return execute(sql, params, many, context)

        with rolled_back(), connection.execute_wrapper(spy):
            event = record(**call)
        assert event is not None and event.pk is not None and not event._state.adding
        query = InsertQuery(AuditEvent)
        query.insert_values(
            [f for f in AuditEvent._meta.local_concrete_fields if not f.primary_key], [event]
        )
        ((_, orm_params),) = query.get_compiler(connection=connection).as_sql()
        assert sent == [list(orm_params)]

    def test_returned_event_is_the_stored_one(self, db: Any) -> None:
        """The returned instance has the stored row's id and verifies."""
        event = record("app.thing", n=1)
        stored = AuditEvent.objects.get(pk=event.pk)
        assert (stored.seq, stored.mac, stored.details) == (event.seq, event.mac, {"n": 1})
        assert chain.event_verifies(stored) and chain.event_verifies(event)


@pytest.mark.django_db
class TestStoredRows:
    @DB_EXAMPLES
    @given(calls=st.lists(record_calls(), min_size=1, max_size=5), start=st.integers(1, 6))
    def test_same_tuples_as_the_orm(self, calls: list[dict[str, Any]], start: int) -> None:
        """The raw reader yields what values_list(*ROW_FIELDS) yields, from any start."""
        with rolled_back():
            for call in calls:
                record(**call)
            expected = list(
                AuditEvent.objects.filter(seq__gte=start).order_by("seq")
                .values_list(*chain.ROW_FIELDS)
            )
            assert list(reader.stored_rows(connection, chain.ROW_FIELDS, start)) == expected

    def test_many_chunks(self, db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        """Rows spanning several fetches come out complete and in order."""
        monkeypatch.setattr(reader, "READ_CHUNK", 3)
        for n in range(10):
            record("app.thing", n=n)
        rows = reader.stored_rows(connection, chain.ROW_FIELDS)
        assert [row[0] for row in rows] == list(range(1, 11))
        assert chain.verify().checked == 10


class TestPrefetch:
    def test_yields_every_chunk_in_order(self) -> None:
        """All chunks arrive, in order, whatever the queue depth."""
        chunks = [[n] for n in range(50)]
        assert list(reader._prefetched(iter(chunks), depth=1)) == chunks

    def test_error_reaches_the_caller(self) -> None:
        """An error while fetching is raised in the caller's thread."""

        def failing() -> Any:
            yield [1]
            raise RuntimeError("connection lost")

        with pytest.raises(RuntimeError, match="connection lost"):
            list(reader._prefetched(failing()))

    def test_stopping_early_stops_the_worker(self) -> None:
        """A caller that stops (a break found) leaves no thread fetching behind."""
        fetched: list[int] = []

        def endless() -> Any:
            n = 0
            while True:
                fetched.append(n)
                yield [n]
                n += 1

        before = threading.active_count()
        stream = reader._prefetched(endless(), depth=2)
        assert next(stream) == [0]
        stream.close()
        assert threading.active_count() == before
        # The chunk taken, the two queued and the one the worker was waiting to queue.
        assert len(fetched) <= 4


class TestVerifyStillNamesBreaks:
    def test_tampered_time_named(self, db: Any) -> None:
        """A changed time (read by the raw reader and its converters) fails at its seq."""
        from tests.strategies_audit import raw_update

        for n in range(3):
            record("app.thing", n=n)
        stored = AuditEvent.objects.get(seq=2).created_at
        raw_update(2, "created_at", (stored + timedelta(microseconds=1)).replace(tzinfo=None))
        result = chain.verify()
        assert not result.ok and result.first_bad_seq == 2, result
