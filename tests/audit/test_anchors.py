"""Anchors: an insider with SQL but no key cannot quietly remove what happened.

Each attack of the review is played here as that insider would, with raw SQL on the real
tables: delete the newest events and the head, wipe everything, put an older signed head
back, cut an export short. ``audit_verify`` must name each; a fresh install still verifies.
Reviewers verify an export with the public key alone.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from audit import anchors, chain, export, prune, record
from audit.models import AuditEvent, ChainHead, Checkpoint
from tests.strategies_audit import clock, raw_delete, raw_swap, raw_update, rolled_back

pytestmark = pytest.mark.django_db

HEAD = ChainHead._meta.db_table
CHECKPOINTS = Checkpoint._meta.db_table


@pytest.fixture
def key_pem() -> str:
    return anchors.new_private_pem()


@pytest.fixture
def anchor_file(tmp_path: Path) -> Path:
    return tmp_path / "anchors" / "audit-anchors.jsonl"


@pytest.fixture
def anchored(settings: Any, key_pem: str, anchor_file: Path) -> Path:
    """Anchoring on: a file sink and the structlog sink, one anchor every 3 events."""
    settings.SECURE_SSO_AUDIT = {
        **settings.SECURE_SSO_AUDIT,
        "ANCHOR_SINKS": [{"CLASS": "audit.anchors.FileSink", "PATH": str(anchor_file)},
                         "audit.anchors.LogSink"],
        "ANCHOR_KEY": key_pem,
        "ANCHOR_EVERY_EVENTS": 3,
    }
    anchors._remember(None)
    anchors._last.seq = -1
    yield anchor_file
    anchors._last.seq = -1


def events(count: int, start: int = 0) -> list[AuditEvent]:
    return [record("app.thing", n=start + n) for n in range(count)]


def sql(statement: str, params: list[Any] | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params or [])


def verify_command(*args: str) -> str:
    out = io.StringIO()
    call_command("audit_verify", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def refused(*args: str) -> str:
    with pytest.raises(CommandError) as caught:
        verify_command(*args)
    return str(caught.value)


def public_key_file(tmp_path: Path, pem: str, name: str = "anchor-key.pub") -> Path:
    path = tmp_path / name
    path.write_text(anchors.public_pem(anchors.load_private_key(pem).public_key()))
    return path


def export_file(tmp_path: Path, name: str = "export.jsonl") -> Path:
    path = tmp_path / name
    with path.open("w") as stream:
        export.export(stream)
    return path


# -- the chain alone ----------------------------------------------------------------------


class TestHeadRow:
    def test_newest_events_and_head_deleted_is_not_verified(self) -> None:
        """The review's first attack: without the head row the chain is not "intact"."""
        events(8)
        raw_delete(8)
        raw_delete(7)
        sql(f"DELETE FROM {HEAD}")  # noqa: S608
        result = chain.verify()
        assert not result.ok
        assert "head row is missing" in result.problem
        assert "head row is missing" in refused()

    def test_fresh_install_verifies(self) -> None:
        """No events, no head, no checkpoint, no anchors: an empty chain, verified."""
        assert verify_command().strip() == "audit chain verified: 0 events"


# -- anchors against the database -----------------------------------------------------------


class TestAnchorsAgainstTheDatabase:
    @pytest.mark.django_db(transaction=True)
    def test_published_every_n_events_and_verified(self, anchored: Path) -> None:
        events(7)  # record() publishes when due, once each event is committed
        stored = anchors.read_anchor_file(anchored)
        assert [(a.start_seq, a.seq) for a in stored] == [(1, 3), (4, 6)]
        assert verify_command().strip() == "audit chain verified: 7 events; 2 of 2 anchors matched"

    def test_fresh_install_with_anchors_configured_verifies(self, anchored: Path) -> None:
        assert "verified: 0 events" in verify_command()

    def test_newest_events_and_head_deleted(self, anchored: Path) -> None:
        events(6)
        anchors.publish()
        for seq in (6, 5, 4):
            raw_delete(seq)
        sql(f"UPDATE {HEAD} SET seq = 3, mac = %s", [AuditEvent.objects.get(seq=3).mac])  # noqa: S608
        message = refused()
        assert "chain head does not verify" in message or "missing" in message

    def test_everything_wiped(self, anchored: Path) -> None:
        """Events, head and checkpoints deleted: "verified: 0 events" no more."""
        events(5)
        anchors.publish()
        sql(f"DELETE FROM {AuditEvent._meta.db_table}")  # noqa: S608
        sql(f"DELETE FROM {HEAD}")  # noqa: S608
        sql(f"DELETE FROM {CHECKPOINTS}")  # noqa: S608
        message = refused()
        assert "events 1..5 are missing" in message

    def test_older_signed_head_put_back(self, anchored: Path) -> None:
        """A backup of the head row (validly signed), events after it deleted, the row put
        back: the head verifies, the anchors do not."""
        events(3)
        old_head = ChainHead.objects.values_list("seq", "mac", "sig").get()
        events(3, start=3)
        anchors.publish()
        for seq in (6, 5, 4):
            raw_delete(seq)
        sql(f"UPDATE {HEAD} SET seq = %s, mac = %s, sig = %s", list(old_head))  # noqa: S608
        assert chain.verify().ok  # the HMAC chain alone cannot tell
        message = refused()
        assert "events 4..6 are missing" in message

    def test_an_anchored_event_edited_is_named(self, anchored: Path) -> None:
        events(4)
        anchors.publish()
        raw_update(2, "reason", "edited")
        assert "HMAC does not match" in refused()

    def test_events_appended_after_the_last_anchor_verify(self, anchored: Path) -> None:
        events(3)
        anchors.publish()
        events(2, start=3)
        assert "verified: 5 events; 1 of 1 anchors matched" in verify_command()

    def test_a_removed_anchor_file_is_a_finding(self, anchored: Path) -> None:
        """The insider also deletes the anchor file: a long unanchored tail is reported
        (more than twice ANCHOR_EVERY_EVENTS, 3 here), a short one is normal."""
        events(6)
        assert "verified: 6 events" in verify_command()
        events(1, start=6)
        anchors.publish()
        anchored.unlink()
        assert "events 1..7 are not anchored" in refused()

    def test_tampered_events_are_never_anchored(self, anchored: Path) -> None:
        events(3)
        raw_update(2, "reason", "edited")
        with pytest.raises(anchors.AnchorError, match="refusing to anchor"):
            anchors.publish()
        assert anchors.read_anchor_file(anchored) == []

    def test_nothing_new_publishes_nothing(self, anchored: Path) -> None:
        events(2)
        assert anchors.publish() is not None
        assert anchors.publish() is None
        assert len(anchors.read_anchor_file(anchored)) == 1

    def test_log_sink_carries_every_anchor(self, anchored: Path) -> None:
        from structlog.testing import capture_logs

        events(2)
        with capture_logs() as logs:
            anchor = anchors.publish()
        [line] = [entry for entry in logs if entry["event"] == "audit.anchor"]
        assert line["range_hash"] == anchor.range_hash
        assert line["sig"] == anchor.sig


class TestPruning:
    """Pruning keeps every remaining anchor checkable: it prunes whole anchored ranges,
    and anchors the prefix first when it reaches past the last anchor."""

    T0 = datetime(2024, 1, 1, tzinfo=UTC)

    def at_days(self, *days: int) -> list[AuditEvent]:
        with clock(*(self.T0 + timedelta(days=d) for d in days)):
            return [record("app.thing", n=d) for d in days]

    def test_prune_stops_at_an_anchor_end(self, anchored: Path) -> None:
        self.at_days(0, 1, 2)
        anchors.publish()
        self.at_days(3, 4, 5)
        anchors.publish()
        checkpoint = prune.prune(self.T0 + timedelta(days=4, hours=12))
        assert checkpoint.after_seq == 3  # not 5: that would cut anchor #2 in two
        assert "1 of 2 anchors matched" in verify_command()

    def test_prune_past_the_last_anchor_anchors_first(self, anchored: Path) -> None:
        self.at_days(0, 1, 2)
        anchors.publish()
        self.at_days(3, 4)
        checkpoint = prune.prune(self.T0 + timedelta(days=10))
        assert checkpoint.after_seq == 5
        stored = anchors.read_anchor_file(anchored)
        assert [(a.start_seq, a.seq, a.reason) for a in stored] == [
            (1, 3, "manual"), (4, 5, "prune")]
        anchors.publish()  # the audit.pruned event, after the checkpoint
        assert "verified: 1 events; 1 of 3 anchors matched" in verify_command()


class TestAnchorFile:
    def test_a_removed_anchor_breaks_the_anchor_chain(self, anchored: Path) -> None:
        for batch in range(3):
            events(2, start=batch * 2)
            anchors.publish()
        lines = anchored.read_text().splitlines()
        anchored.write_text("\n".join([lines[0], lines[2]]) + "\n")
        message = refused()
        assert "does not link" in message

    def test_an_edited_anchor_does_not_verify(self, anchored: Path) -> None:
        events(2)
        anchors.publish()
        data = json.loads(anchored.read_text())
        data["seq"] = 1
        anchored.write_text(json.dumps(data) + "\n")
        assert "signature does not verify" in refused()

    def test_anchors_forged_with_another_key_are_refused(
        self, anchored: Path, settings: Any, key_pem: str
    ) -> None:
        """The insider rewrites the anchor file with a key of their own."""
        events(2)
        anchors.publish()
        anchored.unlink()
        settings.SECURE_SSO_AUDIT = {**settings.SECURE_SSO_AUDIT,
                                     "ANCHOR_KEY": anchors.new_private_pem()}
        anchors.publish()
        settings.SECURE_SSO_AUDIT = {**settings.SECURE_SSO_AUDIT, "ANCHOR_KEY": key_pem}
        assert "signed by unknown key" in refused()

    def test_key_rotation(self, anchored: Path, settings: Any, key_pem: str) -> None:
        """Anchors of a retired key verify while its public key is kept; not after."""
        events(2)
        anchors.publish()
        old_public = anchors.public_pem(anchors.load_private_key(key_pem).public_key())
        settings.SECURE_SSO_AUDIT = {**settings.SECURE_SSO_AUDIT,
                                     "ANCHOR_KEY": anchors.new_private_pem(),
                                     "ANCHOR_PUBLIC_KEYS": [old_public]}
        events(2, start=2)
        second = anchors.publish()
        first = anchors.read_anchor_file(anchored)[0]
        assert first.key_id != second.key_id
        assert "2 of 2 anchors matched" in verify_command()
        settings.SECURE_SSO_AUDIT = {**settings.SECURE_SSO_AUDIT, "ANCHOR_PUBLIC_KEYS": []}
        assert f"signed by unknown key {first.key_id}" in refused()


# -- offline, with the public key only ----------------------------------------------------


class TestOfflineVerification:
    def offline(self, tmp_path: Path, anchor_file: Path, key_pem: str, exported: Path) -> str:
        return verify_command("--export", str(exported), "--anchors", str(anchor_file),
                              "--public-key", str(public_key_file(tmp_path, key_pem)))

    def test_a_whole_export_verifies_without_the_hmac_key(
        self, anchored: Path, tmp_path: Path, key_pem: str, settings: Any
    ) -> None:
        events(5)
        anchors.publish()
        exported = export_file(tmp_path)
        # The reviewer's machine: no HMAC key, no anchor key, no anchors configured.
        settings.SECURE_SSO_AUDIT = {"SIGNING_KEYS": {}, "SIGNING_KEY_ID": ""}
        assert "export verified: 1 of 1 anchors matched" in self.offline(
            tmp_path, anchored, key_pem, exported)

    def test_an_export_cut_short_at_the_end(self, anchored: Path, tmp_path: Path, key_pem: str
                                            ) -> None:
        events(6)
        anchors.publish()
        exported = export_file(tmp_path)
        lines = exported.read_text().splitlines(keepends=True)
        exported.write_text("".join(lines[:4]))
        with pytest.raises(CommandError, match="events 5..6 are missing"):
            self.offline(tmp_path, anchored, key_pem, exported)

    def test_an_edited_event_in_the_export(self, anchored: Path, tmp_path: Path, key_pem: str
                                           ) -> None:
        events(4)
        anchors.publish()
        exported = export_file(tmp_path)
        rows = [json.loads(line) for line in exported.read_text().splitlines()]
        rows[1]["reason"] = "edited"
        exported.write_text("".join(json.dumps(r) + "\n" for r in rows))
        with pytest.raises(CommandError, match="differ from anchor #1"):
            self.offline(tmp_path, anchored, key_pem, exported)

    def test_the_wrong_public_key(self, anchored: Path, tmp_path: Path) -> None:
        events(2)
        anchors.publish()
        exported = export_file(tmp_path)
        with pytest.raises(CommandError, match="unknown key"):
            self.offline(tmp_path, anchored, anchors.new_private_pem(), exported)

    def test_needs_anchors_and_a_public_key(self, tmp_path: Path) -> None:
        with pytest.raises(CommandError, match="needs --anchors and --public-key"):
            verify_command("--export", str(tmp_path / "x.jsonl"))


EXAMPLES = hypothesis_settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


class TestProperties:
    @EXAMPLES
    @given(count=st.integers(2, 9), cut=st.data())
    def test_any_export_cut_inside_the_anchored_part_is_refused(
        self, anchored: Path, count: int, cut: st.DataObject
    ) -> None:
        """However many events, an export that stops before the last anchored one fails;
        the whole export passes."""
        with rolled_back():
            anchored.unlink(missing_ok=True)
            anchors._last.seq = -1
            events(count)
            anchors.publish()
            rows = list(AuditEvent.objects.order_by("seq"))
            stored = anchors.read_anchor_file(anchored)
            keys = anchors.configured_public_keys()
            assert anchors.verify_export(rows, stored, keys).ok
            keep = cut.draw(st.integers(0, count - 1))
            assert not anchors.verify_export(rows[:keep], stored, keys).ok

    @EXAMPLES
    @given(count=st.integers(2, 7), data=st.data())
    def test_any_removed_or_swapped_event_is_refused(
        self, anchored: Path, count: int, data: st.DataObject
    ) -> None:
        with rolled_back():
            anchored.unlink(missing_ok=True)
            events(count)
            anchors.publish()
            seq = data.draw(st.integers(1, count - 1))
            if data.draw(st.booleans()):
                raw_delete(seq)
            else:
                raw_swap(seq, seq + 1)
            result, report = anchors.verify_database()
            assert not (result.ok and report.ok)
