"""Anonymous failure floods are counted, not appended one by one (issue #10, item 5).

Unit tests drive :class:`audit.coalesce.Coalescer` with an explicit clock (``now=``);
the view tests send junk callbacks and garbage logout tokens through Django's test client
and then flush with a clock past the window. Only committed events use up a window's
``COALESCE_AFTER``, so these tests commit (``transaction=True``); in the rest of the
suite every test's events roll back and nothing is ever coalesced across tests.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from structlog.testing import capture_logs

from audit import chain, coalesce, events, record
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db(transaction=True)

AFTER = 5
WINDOW = 60.0
T0 = 1_000_000.0


@pytest.fixture(autouse=True)
def _fresh_coalescer(settings: Any) -> Iterator[None]:
    """Every test starts with no open window, and leaves none (nothing flushed at exit)."""
    settings.SECURE_SSO_AUDIT = {
        **settings.SECURE_SSO_AUDIT, "COALESCE_WINDOW": WINDOW, "COALESCE_AFTER": AFTER,
    }
    coalesce.reset()
    yield
    coalesce.reset()


def stored(event_type: str | None = None, **filters: Any) -> list[AuditEvent]:
    queryset = AuditEvent.objects.order_by("seq").filter(**filters)
    return list(queryset.filter(event_type=event_type) if event_type else queryset)


def summaries(**filters: Any) -> list[AuditEvent]:
    return [e for e in stored(**filters) if "coalesced_count" in e.details]


def flush_later() -> int:
    """Flush every open window as if the clock had moved past it."""
    import time

    return coalesce.flush(now=time.time() + 10 * WINDOW)


# --- The coalescer alone, with a clock ------------------------------------------------


def key(ip: str | None = "203.0.113.7", event_type: str = "auth.login.failure",
        reason: str = "state_mismatch") -> tuple[str | None, str, str]:
    return (ip, event_type, reason)


class TestCoalescer:
    def make(self, *, max_keys: int = 100) -> coalesce.Coalescer:
        return coalesce.Coalescer()

    def admit(self, c: coalesce.Coalescer, k: Any, now: float, *, after: int = AFTER,
              max_keys: int = 100) -> tuple[str, list[coalesce.Summary]]:
        """Admit one event; a recorded one is stored (committed) at once."""
        decision, ready, window = c.admit(k, now=now, window=WINDOW, after=after,
                                          max_keys=max_keys)
        if decision == coalesce.RECORD:
            assert window is not None
            c.stored(window)
        return decision, ready

    def test_only_committed_events_use_up_the_window(self) -> None:
        """An admitted event never stored (rolled back) leaves its place to the next one."""
        c = self.make()
        for _ in range(AFTER + 3):
            decision, _, window = c.admit(key(), now=T0, window=WINDOW, after=AFTER,
                                          max_keys=100)
            assert decision == coalesce.RECORD
        assert self.admit(c, key(), T0)[0] == coalesce.RECORD

    def test_first_ones_recorded_then_counted(self) -> None:
        """The first AFTER of a key are recorded, the next announced once, the rest counted."""
        c = self.make()
        decisions = [self.admit(c, key(), T0 + i)[0] for i in range(AFTER + 3)]
        assert decisions == [coalesce.RECORD] * AFTER + [coalesce.ANNOUNCE] + [coalesce.COUNT] * 2

    def test_next_event_after_the_window_flushes_the_count(self) -> None:
        """The same key after its window: one summary with the exact count, then a fresh window."""
        c = self.make()
        for i in range(AFTER + 10):
            self.admit(c, key(), T0 + i)
        decision, due = self.admit(c, key(), T0 + WINDOW)
        assert decision == coalesce.RECORD
        [summary] = due
        assert (summary.key, summary.count, summary.start, summary.end) == (
            key(), 10, T0, T0 + WINDOW)
        assert not summary.many_addresses

    def test_window_end_is_exclusive_start_inclusive(self) -> None:
        """An event just before the end still counts in the window."""
        c = self.make()
        for _ in range(AFTER):
            self.admit(c, key(), T0)
        assert self.admit(c, key(), T0 + WINDOW - 0.001) == (coalesce.ANNOUNCE, [])

    def test_keys_are_separate(self) -> None:
        """Another IP, event type or reason has its own window and its own first AFTER."""
        c = self.make()
        for _ in range(AFTER):
            self.admit(c, key(), T0)
        for other in (key(ip="198.51.100.1"), key(event_type="sso.backchannel_logout"),
                      key(reason="logout_token_missing"), key(ip=None)):
            assert self.admit(c, other, T0)[0] == coalesce.RECORD, other
        assert self.admit(c, key(), T0)[0] == coalesce.ANNOUNCE

    def test_window_without_counts_leaves_nothing_to_flush(self) -> None:
        """A key that never went past AFTER gives no summary."""
        c = self.make()
        for _ in range(AFTER):
            self.admit(c, key(), T0)
        assert self.admit(c, key(), T0 + WINDOW) == (coalesce.RECORD, [])
        assert c.take(now=T0 + 10 * WINDOW) == []

    def test_other_keys_flush_expired_windows(self) -> None:
        """Any admitted event hands over every expired window's count, whatever its key."""
        c = self.make()
        for _ in range(AFTER + 4):
            self.admit(c, key(), T0)
        _, due = self.admit(c, key(ip="198.51.100.1"), T0 + WINDOW + 1)
        assert [(s.key, s.count) for s in due] == [(key(), 4)]
        assert c.take(now=T0 + 10 * WINDOW) == []

    def test_take_is_bounded_and_due_only(self) -> None:
        """take() hands over expired windows only, at most ``limit`` of them, oldest first."""
        c = self.make()
        for n, ip in enumerate(["192.0.2.1", "192.0.2.2", "192.0.2.3"]):
            for _ in range(AFTER + n + 1):
                self.admit(c, key(ip=ip), T0 + n)
        assert c.take(now=T0 + WINDOW - 1) == []
        assert c.due(T0 + WINDOW - 1) is False and c.due(T0 + WINDOW) is True
        [first] = c.take(now=T0 + WINDOW + 5, limit=1)
        assert (first.key[0], first.count) == ("192.0.2.1", 1)
        rest = c.take(now=T0 + WINDOW + 5)
        assert [(s.key[0], s.count) for s in rest] == [("192.0.2.2", 2), ("192.0.2.3", 3)]
        assert c.due(T0 + 100 * WINDOW) is False

    def test_take_everything(self) -> None:
        """take(now=None) hands over every window with a count, open or not (process exit)."""
        c = self.make()
        for _ in range(AFTER + 2):
            self.admit(c, key(), T0)
        assert [(s.key, s.count, s.end) for s in c.take(now=None)] == [(key(), 2, T0 + WINDOW)]
        assert c.take(now=None) == []

    def test_too_many_addresses_share_one_count(self) -> None:
        """Past max_keys open windows, a new address is counted in one window per (type,
        reason) with no address and nothing recorded: rotating addresses buys nothing."""
        c = self.make()
        for i in range(3):
            assert self.admit(c, key(ip=f"192.0.2.{i}"), T0, max_keys=3)[0] == coalesce.RECORD
        results = [self.admit(c, key(ip=f"198.51.100.{i}"), T0 + 1, max_keys=3)[0]
                   for i in range(50)]
        assert results == [coalesce.ANNOUNCE] + [coalesce.COUNT] * 49
        # Keys already open keep their own window.
        assert self.admit(c, key(ip="192.0.2.0"), T0 + 2, max_keys=3)[0] == coalesce.RECORD
        [overflow] = [s for s in c.take(now=None) if s.many_addresses]
        assert (overflow.key, overflow.count) == ((None, "auth.login.failure", "state_mismatch"),
                                                  50)

    def test_memory_is_bounded(self) -> None:
        """A million distinct addresses keep at most max_keys windows (plus one overflow)."""
        c = self.make()
        for i in range(20_000):
            self.admit(c, key(ip=f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"), T0, max_keys=500)
        assert len(c) <= 501

    @pytest.mark.parametrize(("address", "client"), [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        (None, None),
    ])
    def test_client_key(self, address: str | None, client: str | None) -> None:
        """IPv4 by address, IPv6 by /64 (one subscriber's), IPv4-mapped as IPv4."""
        assert coalesce.client_key(address) == client

    def test_after_zero_counts_everything(self) -> None:
        c = self.make()
        assert self.admit(c, key(), T0, after=0)[0] == coalesce.ANNOUNCE
        assert self.admit(c, key(), T0, after=0)[0] == coalesce.COUNT


# --- Through record() -----------------------------------------------------------------


def anonymous_request(ip: str = "203.0.113.7") -> Any:
    from django.contrib.auth.models import AnonymousUser
    from django.test import RequestFactory

    request = RequestFactory().get("/sso/callback/", REMOTE_ADDR=ip)
    request.user = AnonymousUser()
    return request


class TestRecord:
    def test_coalesced_call_returns_none_and_stores_nothing(self) -> None:
        for _ in range(AFTER):
            assert record(events.LOGIN_FAILURE, request=anonymous_request(), outcome="failure",
                          reason="state_mismatch") is not None
        assert record(events.LOGIN_FAILURE, request=anonymous_request(), outcome="failure",
                      reason="state_mismatch") is None
        assert len(stored()) == AFTER

    def test_summary_is_a_chained_event_of_the_same_type(self) -> None:
        """The summary: same type, outcome, reason and client IP; count and window in details."""
        for _ in range(AFTER + 7):
            record(events.LOGIN_FAILURE, request=anonymous_request(), outcome="failure",
                   reason="state_mismatch", method="sso")
        assert flush_later() == 1
        [summary] = summaries()
        assert (summary.event_type, summary.outcome, summary.reason, summary.client_ip) == (
            events.LOGIN_FAILURE, "failure", "state_mismatch", "203.0.113.7")
        assert summary.details["coalesced_count"] == 7
        assert summary.details["window_start"] < summary.details["window_end"]
        assert (summary.username, summary.request_id, summary.session_hash) == ("", "", "")
        assert chain.verify().ok

    def test_one_ipv6_64_is_one_client(self) -> None:
        """Addresses of one /64 share a window; the summary names the network."""
        for i in range(AFTER + 20):
            record(events.LOGIN_FAILURE, request=anonymous_request(f"2001:db8:0:7::{i + 1:x}"),
                   outcome="failure", reason="state_mismatch")
        record(events.LOGIN_FAILURE, request=anonymous_request("2001:db8:0:8::1"),
               outcome="failure", reason="state_mismatch")
        assert len(stored()) == AFTER + 1
        flush_later()
        [summary] = summaries()
        assert (summary.client_ip, summary.details["client_network"]) == (
            "2001:db8:0:7::1", "2001:db8:0:7::/64")
        assert summary.details["coalesced_count"] == 20

    def test_rotating_addresses_share_one_count(self, settings: Any) -> None:
        """Past COALESCE_MAX_KEYS clients, new ones are counted together, none stored."""
        settings.SECURE_SSO_AUDIT = {**settings.SECURE_SSO_AUDIT, "COALESCE_MAX_KEYS": 3}
        for i in range(40):
            record(events.LOGIN_FAILURE, request=anonymous_request(f"192.0.2.{i + 1}"),
                   outcome="failure", reason="state_mismatch")
        assert [e.client_ip for e in stored()] == ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
        flush_later()
        [summary] = summaries()
        assert summary.client_ip is None and summary.details["many_addresses"] is True
        assert summary.details["coalesced_count"] == 37
        assert chain.verify().ok

    def test_no_request_is_never_coalesced(self) -> None:
        """Without a request there is no client to flood from: every call is stored."""
        for _ in range(AFTER + 5):
            record(events.LOGIN_FAILURE, outcome="failure", reason="x")
        assert len(stored()) == AFTER + 5

    def test_explicit_anonymous_user_is_coalesced(self, django_user_model: Any) -> None:
        from django.contrib.auth.models import AnonymousUser

        for _ in range(AFTER + 5):
            record(events.LOGIN_FAILURE, request=anonymous_request(), user=AnonymousUser(),
                   outcome="failure", reason="x")
        assert len(stored()) == AFTER

    def test_authenticated_failures_and_successes_always_stored(
        self, django_user_model: Any
    ) -> None:
        """A signed-in user's failures, and every success, are stored one by one."""
        user = django_user_model.objects.create_user("ann")
        request = anonymous_request()
        request.user = user
        for _ in range(AFTER + 5):
            record(events.MFA_FAILURE, request=request, outcome="failure", reason="bad_code")
            record(events.LOGIN_FAILURE, request=anonymous_request(), user=user,
                   outcome="failure", reason="state_mismatch")
            record("app.anonymous_thing", request=anonymous_request(), reason="state_mismatch")
        assert len(stored(events.MFA_FAILURE)) == AFTER + 5
        assert len(stored(events.LOGIN_FAILURE)) == AFTER + 5
        assert len(stored("app.anonymous_thing")) == AFTER + 5
        assert summaries() == []

    def test_switched_off(self, settings: Any) -> None:
        """COALESCE_WINDOW = 0: every anonymous failure is stored, as before."""
        settings.SECURE_SSO_AUDIT = {**settings.SECURE_SSO_AUDIT, "COALESCE_WINDOW": 0}
        for _ in range(AFTER + 5):
            record(events.LOGIN_FAILURE, request=anonymous_request(), outcome="failure",
                   reason="x")
        assert len(stored()) == AFTER + 5

    def test_logs_the_first_ones_the_announcement_and_the_summary(self) -> None:
        """A flood does not flood the log: AFTER lines, one 'coalescing' line, one summary."""
        with capture_logs() as logs:
            for _ in range(AFTER + 50):
                record(events.LOGIN_FAILURE, request=anonymous_request(), outcome="failure",
                       reason="state_mismatch")
            flush_later()
        lines = [line for line in logs if line["event"] == events.LOGIN_FAILURE]
        assert len(lines) == AFTER + 2
        assert all("seq" in line for line in lines[:AFTER])
        announce, summary = lines[AFTER:]
        assert announce["coalescing"] is True and "seq" not in announce
        assert announce["client_ip"] == "203.0.113.7"
        assert summary["coalesced_count"] == 50 and summary["seq"]

    def test_a_due_summary_is_written_by_the_next_event_of_any_kind(
        self, monkeypatch: Any
    ) -> None:
        """After the window, the next record() of any event writes (at most) one summary."""
        import time

        now = [T0]
        monkeypatch.setattr(time, "time", lambda: now[0])
        for _ in range(AFTER + 3):
            record(events.LOGIN_FAILURE, request=anonymous_request(), outcome="failure",
                   reason="state_mismatch")
        record("app.thing")
        assert summaries() == []
        now[0] = T0 + WINDOW + 1
        record("app.thing")
        [summary] = summaries()
        assert summary.details["coalesced_count"] == 3
        assert [e.event_type for e in stored()][-2:] == [events.LOGIN_FAILURE, "app.thing"]
        assert chain.verify().ok

    def test_a_rolled_back_event_is_not_counted_as_stored(self) -> None:
        """Events recorded in a transaction that rolls back do not fill the window."""
        from django.db import transaction

        class Rollback(Exception):
            pass

        with pytest.raises(Rollback), transaction.atomic():
            for _ in range(AFTER + 5):
                assert record(events.LOGIN_FAILURE, request=anonymous_request(),
                              outcome="failure", reason="state_mismatch") is not None
            raise Rollback
        assert stored() == []
        for _ in range(AFTER):
            assert record(events.LOGIN_FAILURE, request=anonymous_request(),
                          outcome="failure", reason="state_mismatch") is not None
        assert record(events.LOGIN_FAILURE, request=anonymous_request(),
                      outcome="failure", reason="state_mismatch") is None

    def test_open_windows_are_written_at_process_exit(self) -> None:
        """The atexit hook closes every window, open or not, and writes its count."""
        for _ in range(AFTER + 4):
            record(events.BACKCHANNEL_LOGOUT, request=anonymous_request(), outcome="failure",
                   reason="logout_token_missing")
        coalesce._flush_at_exit()
        [summary] = summaries()
        assert summary.details["coalesced_count"] == 4
        assert not coalesce.COALESCER.pending

    def test_a_forked_child_starts_empty(self) -> None:
        """A worker forked with counts in memory leaves them to its parent to write."""
        c = coalesce.Coalescer()
        for _ in range(AFTER + 4):
            c.admit(key(), now=T0, window=WINDOW, after=0, max_keys=10)
        c._after_fork_in_child()
        assert not c.pending and len(c) == 0 and c.take(now=None) == []

    def test_summary_write_failure_is_logged_not_raised(
        self, monkeypatch: Any, caplog: Any
    ) -> None:
        """A summary that cannot be stored is logged critical with its count; no one raises."""
        for _ in range(AFTER + 2):
            record(events.LOGIN_FAILURE, request=anonymous_request(), outcome="failure",
                   reason="state_mismatch")

        def broken(fields: Any) -> Any:
            from django.db import DatabaseError

            raise DatabaseError("disk full")

        monkeypatch.setattr(chain, "append", broken)
        with caplog.at_level(logging.CRITICAL, logger="audit"), capture_logs() as logs:
            assert flush_later() == 0
        assert "auth.login.failure" in caplog.text
        [line] = [line for line in logs if line.get("coalesced_count")]
        assert line["coalesced_count"] == 2 and line["audit_write_failed"] is True


# --- The attack, through the real views ---------------------------------------------------


@pytest.mark.usefixtures("configure")
class TestFlood:
    def test_200_junk_callbacks_store_at_most_after_plus_one(self, client: Client) -> None:
        """200 junk ``state`` values from one address: AFTER rows, then one summary of 195."""
        for i in range(200):
            response = client.get("/sso/callback/", {"state": f"junk-{i}", "code": "x"})
            assert response.status_code == 400
        assert len(stored()) == AFTER
        flush_later()
        rows = stored()
        assert len(rows) <= AFTER + 1
        assert [e.reason for e in rows] == ["state_mismatch"] * (AFTER + 1)
        [summary] = summaries()
        assert summary.details["coalesced_count"] == 200 - AFTER
        assert summary.client_ip == "127.0.0.1"
        assert chain.verify().ok

    def test_garbage_logout_tokens(self, forge: Any) -> None:
        """Back-channel logout refusals are anonymous failures: counted per reason."""
        provider = Client(SERVER_NAME="localhost")
        for _ in range(30):
            assert provider.post("/sso/backchannel-logout/",
                                 {"logout_token": "a.b.c"}).status_code == 400
            assert provider.post("/sso/backchannel-logout/", {}).status_code == 400
        flush_later()
        by_reason: dict[str, int] = {}
        for event in stored(events.BACKCHANNEL_LOGOUT):
            by_reason[event.reason] = by_reason.get(event.reason, 0) + event.details.get(
                "coalesced_count", 1)
        assert by_reason == {"logout_token_signature_invalid": 30, "logout_token_missing": 30}
        assert len(stored()) == 2 * (AFTER + 1)
        assert chain.verify().ok

    def test_addresses_and_reasons_are_counted_separately(self, client: Client) -> None:
        """Two addresses and two reasons: four windows, each count exact."""
        for ip in ("192.0.2.1", "192.0.2.2"):
            for _ in range(20):
                client.get("/sso/callback/", {"state": "junk", "code": "x"}, REMOTE_ADDR=ip)
                client.get("/sso/callback/", {"error": "access_denied"}, REMOTE_ADDR=ip)
        flush_later()
        totals: dict[tuple[str, str], int] = {}
        for event in stored(events.LOGIN_FAILURE):
            k = (event.client_ip, event.reason)
            totals[k] = totals.get(k, 0) + event.details.get("coalesced_count", 1)
        assert len(totals) == 4 and set(totals.values()) == {20}
        assert len(summaries()) == 4
        assert chain.verify().ok

    def test_a_sign_in_during_the_flood_is_stored(self, client: Client, forge: Any) -> None:
        """Junk callbacks before and after: the real sign-in and its success are stored."""
        from tests.forged_signin import sign_in

        for _ in range(50):
            client.get("/sso/callback/", {"state": "junk", "code": "x"})
        sign_in(client, forge)
        for _ in range(50):
            Client(SERVER_NAME="localhost").get("/sso/callback/", {"state": "junk", "code": "x"})
        [success] = stored(events.LOGIN_SUCCESS)
        assert success.username
        flush_later()
        assert sum(e.details.get("coalesced_count", 1) for e in stored(events.LOGIN_FAILURE)) == 100
        assert chain.verify().ok

    def test_signed_in_users_failures_are_never_coalesced(
        self, client: Client, forge: Any
    ) -> None:
        """A signed-in browser's refused callbacks are its own: every one is stored."""
        from tests.forged_signin import sign_in

        sign_in(client, forge)
        for _ in range(AFTER + 10):
            client.get("/sso/callback/", {"state": "junk", "code": "x"})
        failures = stored(events.LOGIN_FAILURE)
        assert len(failures) == AFTER + 10 and all(e.username for e in failures)
        assert summaries() == []
