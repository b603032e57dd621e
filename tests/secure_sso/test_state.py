"""Pending sign-ins: single-use, expiring, bounded, session-bound state."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secure_sso.constants import SESSION_PENDING_KEY
from secure_sso.exceptions import CallbackTampered
from secure_sso.state import (
    MAX_STATE_LENGTH,
    PendingLogin,
    consume_at_time,
    new_pending_login_at_time,
    store_at_time,
)

NOW = 1_700_000_000.0
TTL = 600
LIMIT = 5
URLSAFE = re.compile(r"^[A-Za-z0-9_-]+$")


def make(now: float = NOW, next_url: str = "/next/") -> PendingLogin:
    return new_pending_login_at_time(
        redirect_uri="https://site.test/sso/callback/", next_url=next_url, now=now
    )


def stored(session: dict, now: float = NOW, next_url: str = "/next/") -> PendingLogin:
    pending = make(now, next_url)
    store_at_time(session, pending, now=now, ttl=TTL, limit=LIMIT)
    return pending


def consume_code(session: dict, state: object, now: float = NOW + 1) -> str:
    with pytest.raises(CallbackTampered) as info:
        consume_at_time(session, state, now=now, ttl=TTL)
    return info.value.code


class TestNewPendingLogin:
    def test_values_random_and_long(self) -> None:
        """State, nonce and verifier are url-safe, at least 43 characters and never repeat."""
        logins = [make() for _ in range(50)]
        for field in ("state", "nonce", "code_verifier"):
            values = [getattr(p, field) for p in logins]
            assert len(set(values)) == len(values)
            for value in values:
                assert len(value) >= 43
                assert URLSAFE.match(value)
        for p in logins:
            assert len({p.state, p.nonce, p.code_verifier}) == 3

    def test_code_verifier_within_rfc7636_bounds(self) -> None:
        """The PKCE verifier is 43 to 128 characters (RFC 7636 4.1)."""
        assert 43 <= len(make().code_verifier) <= 128

    def test_keeps_redirect_uri_next_and_time(self) -> None:
        """The pending login records where it returns to and when it started."""
        p = make(next_url="/somewhere/")
        assert (p.redirect_uri, p.next_url, p.created_at) == (
            "https://site.test/sso/callback/", "/somewhere/", NOW,
        )


class TestStoreAndConsume:
    def test_round_trip(self) -> None:
        """A stored pending login comes back unchanged when its state is presented."""
        session: dict = {}
        pending = stored(session)
        assert consume_at_time(session, pending.state, now=NOW + 1, ttl=TTL) == pending

    def test_single_use(self) -> None:
        """Consuming the same state twice fails the second time with state_mismatch."""
        session: dict = {}
        pending = stored(session)
        consume_at_time(session, pending.state, now=NOW + 1, ttl=TTL)
        assert consume_code(session, pending.state) == "state_mismatch"

    def test_expired(self) -> None:
        """A pending login older than the TTL fails with state_expired."""
        session: dict = {}
        pending = stored(session)
        assert consume_code(session, pending.state, now=NOW + TTL) == "state_expired"

    def test_just_before_expiry_accepted(self) -> None:
        """A pending login just inside the TTL is accepted."""
        session: dict = {}
        pending = stored(session)
        assert consume_at_time(session, pending.state, now=NOW + TTL - 1, ttl=TTL) == pending

    def test_expired_entry_is_removed(self) -> None:
        """An expired pending login cannot be retried later either."""
        session: dict = {}
        pending = stored(session)
        consume_code(session, pending.state, now=NOW + TTL + 5)
        assert consume_code(session, pending.state, now=NOW + 1) == "state_mismatch"

    def test_created_in_future_refused(self) -> None:
        """An entry stamped far in the future (clock trickery) is treated as expired."""
        session: dict = {}
        pending = stored(session, now=NOW + 3600)
        assert consume_code(session, pending.state, now=NOW) == "state_expired"

    def test_unknown_state(self) -> None:
        """A state that was never stored fails with state_mismatch."""
        session: dict = {}
        stored(session)
        assert consume_code(session, "x" * 43) == "state_mismatch"

    def test_empty_session(self) -> None:
        """With nothing pending, any state fails."""
        assert consume_code({}, "x" * 43) == "state_mismatch"

    @pytest.mark.parametrize(
        "state", [None, "", 42, b"abc", ["s"], "s" * (MAX_STATE_LENGTH + 1), "\x80", "état"]
    )
    def test_missing_or_malformed_state(self, state: object) -> None:
        """Missing, empty, non-string, non-ASCII or oversized states fail before any lookup."""
        session: dict = {}
        stored(session)
        assert consume_code(session, state) == "state_missing"

    def test_prefix_of_state_refused(self) -> None:
        """Only the exact state matches, not a prefix or an extension of it."""
        session: dict = {}
        pending = stored(session)
        assert consume_code(session, pending.state[:-1]) == "state_mismatch"
        assert consume_code(session, pending.state + "A") == "state_mismatch"
        assert consume_at_time(session, pending.state, now=NOW + 1, ttl=TTL) == pending

    def test_several_tabs(self) -> None:
        """Several pending logins coexist and each is consumed independently."""
        session: dict = {}
        logins = [stored(session, now=NOW + i, next_url=f"/tab{i}/") for i in range(3)]
        for pending in (logins[1], logins[2], logins[0]):
            assert consume_at_time(session, pending.state, now=NOW + 10, ttl=TTL) == pending
        assert session[SESSION_PENDING_KEY] == []

    def test_bounded_oldest_dropped(self) -> None:
        """Beyond the limit the oldest pending logins are dropped."""
        session: dict = {}
        logins = [stored(session, now=NOW + i) for i in range(LIMIT + 2)]
        assert len(session[SESSION_PENDING_KEY]) == LIMIT
        for dropped in logins[:2]:
            assert consume_code(session, dropped.state, now=NOW + 10) == "state_mismatch"
        for kept in logins[2:]:
            assert consume_at_time(session, kept.state, now=NOW + 10, ttl=TTL) == kept

    def test_limit_never_below_one(self) -> None:
        """A limit of zero still keeps the newest pending login."""
        session: dict = {}
        pending = make()
        store_at_time(session, pending, now=NOW, ttl=TTL, limit=0)
        assert consume_at_time(session, pending.state, now=NOW + 1, ttl=TTL) == pending

    def test_store_drops_expired_entries(self) -> None:
        """Storing a new login prunes expired ones."""
        session: dict = {}
        old = stored(session, now=NOW)
        stored(session, now=NOW + TTL + 1)
        assert old.state not in [e["state"] for e in session[SESSION_PENDING_KEY]]

    def test_session_holds_only_plain_data(self) -> None:
        """The session stores JSON-serialisable dicts."""
        session: dict = {}
        stored(session)
        json.dumps(session)

    @pytest.mark.parametrize(
        "garbage", ["not a list", 5, None, [1, "x", None], [{"state": "s"}], {"state": "s"}]
    )
    def test_corrupt_session_value_never_crashes(self, garbage: object) -> None:
        """A corrupted session entry makes consume fail cleanly and store recover."""
        session: dict = {SESSION_PENDING_KEY: garbage}
        with pytest.raises(CallbackTampered):
            consume_at_time(session, "s", now=NOW, ttl=TTL)
        session = {SESSION_PENDING_KEY: garbage}
        pending = stored(session)
        assert consume_at_time(session, pending.state, now=NOW + 1, ttl=TTL) == pending

    def test_other_session_cannot_consume(self) -> None:
        """A state stored in one session is unknown in another (session binding)."""
        mine: dict = {}
        theirs: dict = {}
        pending = stored(mine)
        stored(theirs)
        assert consume_code(theirs, pending.state) == "state_mismatch"


class TestConsumeProperties:
    @settings(max_examples=300, deadline=None)
    @given(st.one_of(st.text(max_size=MAX_STATE_LENGTH + 10), st.none(), st.integers(),
                     st.binary(max_size=50)))
    def test_arbitrary_state_only_callback_tampered(self, state: object) -> None:
        """Arbitrary state text never raises anything but CallbackTampered nor finds a login."""
        session: dict = {}
        logins = [stored(session, now=NOW + i) for i in range(3)]
        if state in {p.state for p in logins}:
            return
        with pytest.raises(CallbackTampered):
            consume_at_time(session, state, now=NOW + 5, ttl=TTL)
        # Nothing stored was consumed by the failed attempt.
        for pending in logins:
            assert consume_at_time(session, pending.state, now=NOW + 5, ttl=TTL) == pending
