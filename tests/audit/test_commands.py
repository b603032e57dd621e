"""audit_verify, audit_export and audit_prune, run as management commands."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError, SystemCheckError
from django.db import DatabaseError
from django.db.models.query import QuerySet

from audit import chain, events, export, prune, record
from audit.exceptions import AuditWriteError
from audit.models import AuditEvent, Checkpoint
from tests.strategies_audit import clock, raw_delete, raw_update

pytestmark = pytest.mark.django_db
DAY = timedelta(days=1)
T0 = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)


def days(*offsets: float) -> list[datetime]:
    return [T0 + offset * DAY for offset in offsets]


def record_at(moments: list[datetime], event_type: str = "app.thing") -> list[AuditEvent]:
    with clock(*moments):
        return [record(event_type, n=n) for n in range(len(moments))]


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


class TestVerify:
    def test_ok(self) -> None:
        """An intact chain prints how many events were checked."""
        record_at(days(0, 1, 2))
        assert run("audit_verify")[0].strip() == "audit chain verified: 3 events"

    def test_edited_row(self) -> None:
        """A raw-SQL edit makes the command fail with exit code 1, naming the seq."""
        record_at(days(0, 1, 2))
        raw_update(2, "username", "mallory")
        with pytest.raises(CommandError, match=r"broken at seq 2: HMAC") as info:
            run("audit_verify")
        assert info.value.returncode == 1

    def test_deleted_tail(self) -> None:
        """Deleting the newest event is caught through the chain head."""
        record_at(days(0, 1, 2))
        raw_delete(3)
        with pytest.raises(CommandError, match=r"broken at seq 3"):
            run("audit_verify")


class TestExport:
    @pytest.fixture
    def stored(self) -> list[AuditEvent]:
        events_ = record_at(days(0, 1, 2, 3))
        with clock(T0 + 4 * DAY):
            events_.append(record("app.detail", token="s3cr3t", groups=["a", "b"],
                                  text="comma, \"quote\"\nline"))
        return events_

    def test_jsonl_range(self, stored: list[AuditEvent]) -> None:
        """--since is inclusive, --until exclusive, dates are UTC midnight; order is seq."""
        out, err = run("audit_export", "--since", "2024-01-02T12:00:00Z", "--until", "2024-01-04")
        rows = [json.loads(line) for line in out.splitlines()]
        assert [r["seq"] for r in rows] == [2, 3]
        assert err.strip() == "exported 2 audit events"

    def test_jsonl_every_field(self, stored: list[AuditEvent]) -> None:
        """Each line holds every stored field, mac and prev_hash included."""
        out, _ = run("audit_export")
        rows = [json.loads(line) for line in out.splitlines()]
        assert len(rows) == 5 and set(rows[0]) == set(export.FIELDS)
        event = stored[-1]
        assert rows[-1]["mac"] == event.mac and rows[-1]["prev_hash"] == event.prev_hash
        assert rows[-1]["details"] == {"token": "[redacted]", "groups": ["a", "b"],
                                       "text": "comma, \"quote\"\nline"}
        assert rows[-1]["created_at"] == "2024-01-05T12:00:00.000000Z"

    def test_offline_verification(self, stored: list[AuditEvent], settings: Any) -> None:
        """An exported file verifies away from the database; an edited line does not."""
        out, _ = run("audit_export")
        keys = {"k1": settings.SECURE_SSO_AUDIT["SIGNING_KEYS"]["k1"].encode()}
        assert chain.verify_events(export.load_jsonl(out.splitlines()), keys=keys).ok
        lines = out.splitlines()
        edited = json.loads(lines[2])
        edited["outcome"] = "failure"
        lines[2] = json.dumps(edited)
        result = chain.verify_events(export.load_jsonl(lines), keys=keys)
        assert (result.ok, result.first_bad_seq) == (False, 3)

    def test_csv(self, stored: list[AuditEvent], tmp_path: Any) -> None:
        """CSV to a file: a header, one row per event, details as a JSON string."""
        target = tmp_path / "audit.csv"
        run("audit_export", "--format", "csv", "--output", str(target), "--since", "2024-01-04")
        with target.open(newline="", encoding="utf-8") as stream:
            rows = list(csv.DictReader(stream))
        assert [int(r["seq"]) for r in rows] == [4, 5]
        assert tuple(rows[0]) == export.FIELDS
        assert json.loads(rows[1]["details"])["text"] == "comma, \"quote\"\nline"
        assert rows[1]["mac"] == stored[-1].mac and rows[1]["client_ip"] == ""

    @pytest.mark.parametrize("args", [["--since", "yesterday"],
                                      ["--since", "2024-01-03", "--until", "2024-01-02"],
                                      ["--format", "xml"]])
    def test_bad_arguments(self, args: list[str]) -> None:
        """Unparseable dates, an empty range or an unknown format are refused."""
        with pytest.raises(CommandError):
            run("audit_export", *args)

    def test_streams(self, stored: list[AuditEvent], monkeypatch: Any) -> None:
        """Rows come from QuerySet.iterator(chunk_size=2000); the result cache is never filled."""
        calls: list[int | None] = []
        original_iterator = QuerySet.iterator

        def spy_iterator(self: QuerySet, chunk_size: int | None = None) -> Any:
            calls.append(chunk_size)
            return original_iterator(self, chunk_size=chunk_size)

        def no_fetch_all(self: QuerySet) -> None:
            raise AssertionError("export loaded the whole queryset")

        monkeypatch.setattr(QuerySet, "iterator", spy_iterator)
        monkeypatch.setattr(QuerySet, "_fetch_all", no_fetch_all)
        lines = export.jsonl_lines(export.events())
        first = next(lines)
        assert json.loads(first)["seq"] == 1 and calls == [2000]
        assert len(list(lines)) == 4

    def test_constant_queries(
        self, stored: list[AuditEvent], django_assert_max_num_queries: Any
    ) -> None:
        """However many events, the export is one query."""
        with django_assert_max_num_queries(1):
            run("audit_export", "--format", "csv")


class TestPrune:
    def test_prune_keeps_chain_verifiable(self) -> None:
        """Pruning deletes the old prefix, writes a checkpoint, records audit.pruned, verifies."""
        record_at(days(0, 1, 2, 3, 4))
        out, _ = run("audit_prune", "--before", "2024-01-03", "--yes")
        assert "pruned 2 audit events" in out
        assert list(AuditEvent.objects.values_list("seq", flat=True)) == [3, 4, 5, 6]
        checkpoint = Checkpoint.objects.get()
        assert (checkpoint.after_seq, checkpoint.pruned_count) == (2, 2)
        assert checkpoint.pruned_before == datetime(2024, 1, 3, tzinfo=UTC)
        pruned = AuditEvent.objects.get(event_type=events.AUDIT_PRUNED)
        assert pruned.seq == 6
        assert pruned.details["pruned_count"] == 2
        assert pruned.details["checkpoint_after_seq"] == 2
        assert pruned.details["checkpoint_mac"] == checkpoint.mac
        assert run("audit_verify")[0].strip() == "audit chain verified: 4 events"

    def test_prune_twice(self) -> None:
        """A second prune continues from the checkpoint; verification still passes."""
        record_at(days(0, 1, 2, 3))
        run("audit_prune", "--before", "2024-01-02", "--yes")
        run("audit_prune", "--before", "2024-01-04", "--yes")
        assert Checkpoint.objects.order_by("-after_seq").first().after_seq == 3
        assert sorted(AuditEvent.objects.values_list("seq", flat=True)) == [4, 5, 6]
        assert chain.verify().ok

    def test_nothing_older(self) -> None:
        """Nothing before the date: nothing deleted, no checkpoint, no event."""
        record_at(days(5, 6))
        assert run("audit_prune", "--before", "2024-01-02", "--yes")[0].strip() == (
            "nothing to prune")
        assert (AuditEvent.objects.count(), Checkpoint.objects.count()) == (2, 0)

    def test_never_a_hole(self) -> None:
        """An out-of-order timestamp stops the prefix: nothing at or after DATE is deleted."""
        # seq 3 was written by a server whose clock is behind: older than seq 2.
        record_at(days(0, 3, 1, 4))
        run("audit_prune", "--before", "2024-01-03", "--yes")
        remaining = list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))
        assert remaining == [2, 3, 4, 5]
        assert Checkpoint.objects.get().after_seq == 1
        assert chain.verify().ok

    def test_refuses_tampered_prefix(self) -> None:
        """A prefix that does not verify is not pruned (the evidence stays)."""
        record_at(days(0, 1, 2))
        raw_update(1, "outcome", "failure")
        with pytest.raises(CommandError, match="refusing to prune.*seq 1"):
            run("audit_prune", "--before", "2024-01-03", "--yes")
        assert (AuditEvent.objects.count(), Checkpoint.objects.count()) == (3, 0)

    def test_refuses_prefix_with_hole(self) -> None:
        """A prefix already missing an event is not pruned."""
        record_at(days(0, 1, 2, 3))
        raw_delete(2)
        with pytest.raises(CommandError, match="refusing to prune"):
            run("audit_prune", "--before", "2024-01-04", "--yes")
        assert AuditEvent.objects.count() == 3

    def test_needs_confirmation(self, monkeypatch: Any) -> None:
        """Without --yes and without a terminal the command only says what it would do."""
        record_at(days(0, 1))
        monkeypatch.setattr("sys.stdin", io.StringIO(""))
        with pytest.raises(CommandError, match="would prune 1 audit events.*--yes"):
            run("audit_prune", "--before", "2024-01-02")
        assert AuditEvent.objects.count() == 2

    def test_no_key_refused_up_front(self, settings: Any) -> None:
        """Without a signing key nothing is pruned (audit.pruned could not be recorded)."""
        record_at(days(0, 1))
        settings.SECURE_SSO_AUDIT = {"SIGNING_KEYS": {}, "SIGNING_KEY_ID": "k1"}
        with pytest.raises(AuditWriteError, match="SIGNING_KEYS"):
            prune.prune(T0 + DAY)
        assert (AuditEvent.objects.count(), Checkpoint.objects.count()) == (2, 0)

    def test_failed_record_rolls_back(self, monkeypatch: Any) -> None:
        """If writing audit.pruned fails after the delete, the delete and checkpoint roll back."""
        record_at(days(0, 1))

        def broken_append(fields: dict[str, Any], **kwargs: Any) -> None:
            raise DatabaseError("disk full")

        monkeypatch.setattr(chain, "append", broken_append)
        with pytest.raises(AuditWriteError, match="audit.pruned"):
            prune.prune(T0 + DAY)
        monkeypatch.undo()
        assert (AuditEvent.objects.count(), Checkpoint.objects.count()) == (2, 0)
        assert chain.verify().ok

    def test_prune_everything(self) -> None:
        """Pruning every event leaves only audit.pruned, and the chain verifies."""
        record_at(days(0, 1))
        run("audit_prune", "--before", "2030-01-01", "--yes")
        assert list(AuditEvent.objects.values_list("event_type", flat=True)) == [
            events.AUDIT_PRUNED]
        assert chain.verify().ok


class TestReviewerMachine:
    """A reviewer's machine holds the audit settings and the database, not the provider's
    settings (client secret): the audit commands run only the audit app's checks."""

    @pytest.mark.parametrize("command", [
        ("audit_verify",), ("audit_export",), ("audit_prune", "--before", "2000-01-01", "--yes"),
    ])
    def test_audit_commands_run_without_provider_settings(
        self, settings: Any, command: tuple[str, ...]
    ) -> None:
        record("app.thing")
        settings.SECURE_SSO = {}
        with pytest.raises(SystemCheckError, match="secure_sso.E001"):
            call_command("check")  # the site itself would not start like this
        call_command(*command, skip_checks=False, stdout=io.StringIO(), stderr=io.StringIO())

    def test_audit_checks_still_run(self, settings: Any) -> None:
        """Without the audit key nothing can be verified: the command stops on its check."""
        settings.SECURE_SSO = {}
        settings.SECURE_SSO_AUDIT = {**settings.SECURE_SSO_AUDIT, "SIGNING_KEYS": {}}
        with pytest.raises(SystemCheckError, match="secure_sso_audit.E001"):
            call_command("audit_verify", skip_checks=False, stdout=io.StringIO())
