"""The hash chain: whatever is recorded verifies; whatever is changed behind it is named."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection, connections
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from audit import chain, record
from audit.exceptions import ImmutableAuditEvent
from audit.models import AuditEvent, ChainHead
from tests.strategies_audit import (
    raw_delete,
    raw_row,
    raw_swap,
    raw_update,
    record_calls,
    rolled_back,
    tampered_value,
)

pytestmark = pytest.mark.django_db
DB_EXAMPLES = hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
KEY = "k1-key-for-tests-only-not-secret-at-all"


def fresh_chain(calls: list[dict[str, Any]]) -> list[AuditEvent]:
    return [record(**call) for call in calls]


class TestRecordedChainsVerify:
    @DB_EXAMPLES
    @given(calls=st.lists(record_calls(), min_size=1, max_size=6))
    def test_any_sequence_verifies(self, calls: list[dict[str, Any]]) -> None:
        """Any sequence of record() calls forms one contiguous chain that verifies."""
        with rolled_back():
            stored = fresh_chain(calls)
            result = chain.verify()
            assert result.ok, result
            assert result.checked == len(calls)
            assert [e.seq for e in stored] == list(range(1, len(calls) + 1))
            reread = list(AuditEvent.objects.order_by("seq"))
            assert all(chain.event_verifies(e) for e in reread)

    def test_empty_chain_verifies(self) -> None:
        """No events at all is a valid (empty) chain."""
        assert chain.verify().ok


class TestTamperingIsNamed:
    @DB_EXAMPLES
    @given(
        calls=st.lists(record_calls(), min_size=1, max_size=5),
        data=st.data(),
    )
    def test_single_field_change(self, calls: list[dict[str, Any]], data: Any) -> None:
        """Changing any signed column (or the mac) of any row is reported at that row's seq."""
        with rolled_back():
            fresh_chain(calls)
            seq = data.draw(st.integers(1, len(calls)), label="seq")
            column = data.draw(
                st.sampled_from([*chain.SIGNED_FIELDS, "mac"]), label="column"
            )
            value = raw_row(seq)[column]
            raw_update(seq, column, tampered_value(column, value))
            result = chain.verify()
            assert not result.ok
            assert result.first_bad_seq == seq, result

    @DB_EXAMPLES
    @given(calls=st.lists(record_calls(), min_size=1, max_size=5), data=st.data())
    def test_deleted_row(self, calls: list[dict[str, Any]], data: Any) -> None:
        """Deleting any row (first, middle or last) is reported at its seq."""
        with rolled_back():
            fresh_chain(calls)
            seq = data.draw(st.integers(1, len(calls)), label="seq")
            raw_delete(seq)
            result = chain.verify()
            assert (result.ok, result.first_bad_seq) == (False, seq), result

    @DB_EXAMPLES
    @given(calls=st.lists(record_calls(), min_size=2, max_size=5), data=st.data())
    def test_swapped_rows(self, calls: list[dict[str, Any]], data: Any) -> None:
        """Swapping two rows' seq is reported at the lower of the two."""
        with rolled_back():
            fresh_chain(calls)
            first = data.draw(st.integers(1, len(calls) - 1), label="first")
            second = data.draw(st.integers(first + 1, len(calls)), label="second")
            raw_swap(first, second)
            result = chain.verify()
            assert (result.ok, result.first_bad_seq) == (False, first), result

    @pytest.mark.parametrize("key", [b"attacker-guess", None])
    def test_forged_row_appended(self, key: bytes | None) -> None:
        """A row inserted after the head, linked correctly but signed without the key, fails."""
        stored = fresh_chain([{"event_type": "app.one"}, {"event_type": "app.two"}])
        last = stored[-1]
        forged = AuditEvent(
            seq=3, created_at=last.created_at, event_type="auth.login.success",
            outcome="success", username="admin", details={}, prev_hash=last.mac,
            key_id="k1" if key else "kX",
        )
        forged.mac = chain.compute_mac(chain._event_fields(forged), key or b"x")
        forged._appending = True  # as chain.append does; the attacker controls the code path
        forged.save(force_insert=True)
        result = chain.verify()
        assert (result.ok, result.first_bad_seq) == (False, 3), result

    def test_forged_row_moves_head(self) -> None:
        """Moving the head along with a forged row does not help the forger either."""
        stored = fresh_chain([{"event_type": "app.one"}])
        forged = AuditEvent(
            seq=2, created_at=stored[0].created_at, event_type="app.forged", outcome="success",
            details={}, prev_hash=stored[0].mac, key_id="k1", mac="0" * 64,
        )
        forged._appending = True
        forged.save(force_insert=True)
        ChainHead.objects.filter(pk=1).update(seq=2, mac=forged.mac)
        result = chain.verify()
        assert (result.ok, result.first_bad_seq) == (False, 2), result

    def test_unknown_key_id(self) -> None:
        """An event whose key id is not configured is reported, naming the id."""
        fresh_chain([{"event_type": "app.one"}, {"event_type": "app.two"}])
        raw_update(2, "key_id", "zz")
        result = chain.verify()
        assert (result.ok, result.first_bad_seq) == (False, 2)
        assert "unknown key id 'zz'" in result.problem


class TestKeyRotation:
    def keys(self, settings: Any, current: str, ids: tuple[str, ...]) -> None:
        settings.SECURE_SSO_AUDIT = {
            "SIGNING_KEYS": {key_id: f"{key_id}-{KEY}" for key_id in ids},
            "SIGNING_KEY_ID": current,
        }

    def test_old_and_new_keys_verify(self, settings: Any) -> None:
        """Events signed with k0, k1 then k2 verify while all three keys are configured."""
        for current in ("k0", "k1", "k2"):
            self.keys(settings, current, ("k0", "k1", "k2"))
            fresh_chain([{"event_type": f"app.{current}"}] * 2)
        assert [e.key_id for e in AuditEvent.objects.order_by("seq")] == [
            "k0", "k0", "k1", "k1", "k2", "k2"
        ]
        assert chain.verify().ok

    def test_removed_key_fails_at_its_first_event(self, settings: Any) -> None:
        """Dropping k1 from SIGNING_KEYS fails verification at the first k1 event."""
        for current in ("k0", "k1", "k2"):
            self.keys(settings, current, ("k0", "k1", "k2"))
            fresh_chain([{"event_type": f"app.{current}"}] * 2)
        self.keys(settings, "k2", ("k0", "k2"))
        result = chain.verify()
        assert (result.ok, result.first_bad_seq) == (False, 3), result
        assert "unknown key id 'k1'" in result.problem

    def test_same_id_other_key_fails(self, settings: Any) -> None:
        """Replacing a key's value under the same id is caught at the first event it signed."""
        fresh_chain([{"event_type": "app.one"}])
        settings.SECURE_SSO_AUDIT = {"SIGNING_KEYS": {"k1": "another-" + KEY},
                                     "SIGNING_KEY_ID": "k1"}
        result = chain.verify()
        assert (result.ok, result.first_bad_seq) == (False, 1)


class TestOrmRefusals:
    @pytest.fixture
    def event(self) -> AuditEvent:
        return record("app.thing", note="x")

    def test_save_existing(self, event: AuditEvent) -> None:
        """Saving a stored event again is refused."""
        event.reason = "edited"
        with pytest.raises(ImmutableAuditEvent):
            event.save()

    def test_save_new_outside_append(self) -> None:
        """Inserting an event without chain.append is refused."""
        with pytest.raises(ImmutableAuditEvent):
            AuditEvent(seq=1, event_type="x", prev_hash="0", key_id="k1", mac="0").save()

    def test_queryset_update(self, event: AuditEvent) -> None:
        """QuerySet.update is refused."""
        with pytest.raises(ImmutableAuditEvent):
            AuditEvent.objects.filter(pk=event.pk).update(reason="edited")

    def test_queryset_delete(self, event: AuditEvent) -> None:
        """QuerySet.delete is refused."""
        with pytest.raises(ImmutableAuditEvent):
            AuditEvent.objects.all().delete()

    def test_instance_delete(self, event: AuditEvent) -> None:
        """Model.delete is refused."""
        with pytest.raises(ImmutableAuditEvent):
            event.delete()

    def test_bulk_create(self) -> None:
        """bulk_create is refused."""
        with pytest.raises(ImmutableAuditEvent):
            AuditEvent.objects.bulk_create([AuditEvent(seq=1)])

    def test_bulk_update(self, event: AuditEvent) -> None:
        """bulk_update is refused."""
        event.reason = "edited"
        with pytest.raises(ImmutableAuditEvent):
            AuditEvent.objects.bulk_update([event], ["reason"])

    def test_nothing_changed(self, event: AuditEvent) -> None:
        """After all the refused attempts the chain is intact."""
        for attempt in (
            lambda: AuditEvent.objects.update(reason="x"),
            lambda: AuditEvent.objects.all().delete(),
        ):
            with pytest.raises(ImmutableAuditEvent):
                attempt()
        assert AuditEvent.objects.get(pk=event.pk).reason == ""
        assert chain.verify().ok


@pytest.mark.django_db(transaction=True)
class TestConcurrency:
    THREADS = 8
    PER_THREAD = 50

    def test_threads_form_one_chain(self) -> None:
        """8 threads x 50 records on SQLite give exactly 400 events in one verified chain."""
        errors: list[BaseException] = []
        barrier = threading.Barrier(self.THREADS)

        def work(n: int) -> None:
            try:
                barrier.wait()
                for i in range(self.PER_THREAD):
                    record("app.concurrent", worker=n, i=i)
            except BaseException as exc:  # noqa: BLE001  reported below, never swallowed
                errors.append(exc)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=work, args=(n,)) for n in range(self.THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        total = self.THREADS * self.PER_THREAD
        assert AuditEvent.objects.count() == total
        result = chain.verify()
        assert result.ok and result.checked == total, result
        pairs = {(e.details["worker"], e.details["i"]) for e in AuditEvent.objects.all()}
        assert len(pairs) == total
        assert connection.vendor == "sqlite"


class TestVerifyDuringWrites:
    def test_events_appended_after_the_head_was_read_verify(self, db: Any) -> None:
        """A verification racing a write (head read, then one more event) still passes."""
        import audit
        from audit import chain
        from audit.models import ChainHead

        for n in range(3):
            audit.record("test.race", n=n)
        head = ChainHead.objects.filter(pk=1).values_list("seq", "mac", "sig").first()
        audit.record("test.race", n=3)  # lands between reading the head and the events
        rows = (
            chain.AuditEvent.objects.order_by("seq").values_list(*chain.ROW_FIELDS)
        )
        result = chain._verify_rows(
            rows, keys=chain.audit_settings.SIGNING_KEYS, start_seq=1,
            start_hash=chain.GENESIS, head=head,
        )
        assert result.ok and result.checked == 4
