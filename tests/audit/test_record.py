"""record(): what it stores from the request, how it redacts, and when it refuses to go on."""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.test import RequestFactory
from structlog.testing import capture_logs

from audit import chain, events, record
from audit.exceptions import AuditConfigurationError, AuditWriteError
from audit.models import AuditEvent
from audit.redaction import REDACTED
from tests.secure_sso.test_conformance import sign_in

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple 42"  # noqa: S105
JWT = (
    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
    "c2lnbmF0dXJlLXNpZ25hdHVyZQ"
)
NO_KEYS: dict[str, Any] = {"SIGNING_KEYS": {}, "SIGNING_KEY_ID": "k1"}


@pytest.fixture
def idp(forge: Any, configure: Any) -> Any:
    """The forged provider with SECURE_SSO pointing at it."""
    return forge


def audit_settings(settings: Any, **overrides: Any) -> None:
    settings.SECURE_SSO_AUDIT = {**settings.SECURE_SSO_AUDIT, **overrides}


def rows(event_type: str | None = None) -> list[AuditEvent]:
    queryset = AuditEvent.objects.order_by("seq")
    return list(queryset.filter(event_type=event_type) if event_type else queryset)


class TestRequestContext:
    def test_remote_addr_and_user_agent(self, rf: RequestFactory) -> None:
        """The client IP is REMOTE_ADDR and the user agent is kept."""
        request = rf.get("/", REMOTE_ADDR="203.0.113.7", HTTP_USER_AGENT="Firefox/1")
        event = record("app.thing", request=request)
        assert (event.client_ip, event.user_agent) == ("203.0.113.7", "Firefox/1")
        assert len(event.request_id) == 32 and event.request_id == request.audit_request_id

    def test_forwarded_for_ignored_by_default(self, rf: RequestFactory) -> None:
        """A client's own X-Forwarded-For does not replace REMOTE_ADDR."""
        request = rf.get("/", REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR="198.51.100.1")
        assert record("app.thing", request=request).client_ip == "203.0.113.7"

    @pytest.mark.parametrize(
        ("hops", "header", "expected"),
        [
            (1, "6.6.6.6, 198.51.100.1", "198.51.100.1"),
            (2, "6.6.6.6, 198.51.100.1, 10.0.0.2", "198.51.100.1"),
            (2, "198.51.100.1", "203.0.113.7"),  # fewer hops than proxies: not trusted
        ],
    )
    def test_trusted_proxy_hop(
        self, settings: Any, rf: RequestFactory, hops: int, header: str, expected: str
    ) -> None:
        """With a proxy header and count, the hop just before our proxies is the client."""
        audit_settings(settings, CLIENT_IP_HEADER="HTTP_X_FORWARDED_FOR",
                       TRUSTED_PROXY_COUNT=hops)
        request = rf.get("/", REMOTE_ADDR="203.0.113.7", HTTP_X_FORWARDED_FOR=header)
        assert record("app.thing", request=request).client_ip == expected

    @pytest.mark.parametrize("remote", ["not-an-ip", "", "1.2.3.4.5", "999.1.1.1"])
    def test_invalid_ip_is_none(self, rf: RequestFactory, remote: str) -> None:
        """An address that does not parse is stored as NULL, not as text."""
        assert record("app.thing", request=rf.get("/", REMOTE_ADDR=remote)).client_ip is None

    def test_request_id_header(self, settings: Any, rf: RequestFactory) -> None:
        """A configured request-id header is taken, cleaned of unsafe characters."""
        audit_settings(settings, REQUEST_ID_HEADER="HTTP_X_REQUEST_ID")
        request = rf.get("/", HTTP_X_REQUEST_ID="abc-123<script>")
        assert record("app.thing", request=request).request_id == "abc-123script"


class TestUser:
    def test_username_survives_user_deletion(self, django_user_model: Any) -> None:
        """Deleting the user nulls the foreign key; the id and username snapshot remain."""
        user = django_user_model.objects.create_user("alice", password=PASSWORD)
        event = record("app.thing", user=user)
        user_pk = user.pk
        user.delete()
        stored = AuditEvent.objects.get(pk=event.pk)
        assert (stored.user_id, stored.user_ref, stored.username) == (None, str(user_pk), "alice")
        assert chain.verify().ok

    def test_user_from_request(self, rf: RequestFactory, django_user_model: Any) -> None:
        """Without user=, an authenticated request.user is recorded."""
        request = rf.get("/")
        request.user = django_user_model.objects.create_user("bob")
        assert record("app.thing", request=request).username == "bob"


class TestSessionHash:
    def session_request(self, rf: RequestFactory) -> Any:
        request = rf.get("/")
        request.session = SessionStore()
        request.session["x"] = 1
        request.session.save()
        return request

    def test_keyed_hash_not_the_key(self, settings: Any, rf: RequestFactory) -> None:
        """session_hash is HMAC(key, session key): stable per session, never the key itself."""
        request = self.session_request(rf)
        key = request.session.session_key
        first = record("app.thing", request=request).session_hash
        assert first == record("app.other", request=request).session_hash
        assert key not in first and len(first) == 64
        secret = settings.SECURE_SSO_AUDIT["SIGNING_KEYS"]["k1"].encode()
        assert first == hmac.new(secret, b"session:" + key.encode(), hashlib.sha256).hexdigest()
        assert first != hashlib.sha256(key.encode()).hexdigest()

    def test_other_key_other_hash(self, settings: Any, rf: RequestFactory) -> None:
        """The same session hashes differently under another signing key."""
        request = self.session_request(rf)
        first = record("app.thing", request=request).session_hash
        settings.SECURE_SSO_AUDIT = {"SIGNING_KEYS": {"k2": "another-key-" + "x" * 32},
                                     "SIGNING_KEY_ID": "k2"}
        assert record("app.thing", request=request).session_hash not in {first, ""}


class TestDetails:
    @pytest.mark.parametrize("name", ["token", "access_token", "Code", "client_secret",
                                      "PASSWORD", "id-token", "HTTP_AUTHORIZATION"])
    def test_secret_names_redacted(self, name: str) -> None:
        """A value under any secret-looking name is stored as [redacted], at any depth."""
        event = record("app.thing", **{name: "s3cr3t", "nested": {name: ["s3cr3t"]}})
        assert event.details == {name: REDACTED, "nested": {name: REDACTED}}
        assert "s3cr3t" not in str(AuditEvent.objects.get(pk=event.pk).details)

    def test_jwt_values_redacted(self) -> None:
        """A JWT-shaped value is redacted whatever its key; dotted names stay readable."""
        event = record("app.thing", note=JWT, items=[JWT, "secure_sso.backends.SSOBackend"])
        assert event.details == {"note": REDACTED,
                                 "items": [REDACTED, "secure_sso.backends.SSOBackend"]}

    def test_made_storable(self) -> None:
        """NUL characters, NaN and integers beyond 64 bits are stored in a verifiable form."""
        event = record("app.thing", text="a\x00b", nan=math.nan, inf=-math.inf, big=2**70,
                       **{"k\x00ey": 1})
        stored = AuditEvent.objects.get(pk=event.pk).details
        assert stored == {"text": "ab", "nan": "nan", "inf": "-inf", "big": str(2**70), "key": 1}
        assert chain.verify().ok

    def test_reserved_log_names_do_not_break_record(self) -> None:
        """A detail named like a structlog key (event, level) is stored and logged, no crash."""
        with capture_logs() as logs:
            event = record("app.thing", event="custom", level="high")
        assert event.details == {"event": "custom", "level": "high"}
        [line] = logs
        assert (line["event"], line["detail_event"], line["detail_level"]) == (
            "app.thing", "custom", "high")


class TestFailurePolicy:
    def test_security_event_raises(self, settings: Any, caplog: Any) -> None:
        """Without a signing key a security event raises AuditWriteError and logs critical."""
        settings.SECURE_SSO_AUDIT = NO_KEYS
        with caplog.at_level(logging.CRITICAL, logger="audit"), pytest.raises(
            AuditConfigurationError
        ) as info:
            record(events.LOGIN_SUCCESS)
        assert isinstance(info.value, AuditWriteError)
        assert [r.levelno for r in caplog.records if r.name == "audit"] == [logging.CRITICAL]
        assert "auth.login.success" in caplog.text
        assert AuditEvent.objects.count() == 0

    def test_fail_open_event_returns_none(self, settings: Any, caplog: Any) -> None:
        """A non-security event listed in FAIL_OPEN_EVENTS is dropped (None), loudly."""
        settings.SECURE_SSO_AUDIT = {**NO_KEYS, "FAIL_OPEN_EVENTS": ["app.page_viewed"]}
        with caplog.at_level(logging.CRITICAL, logger="audit"), capture_logs() as logs:
            assert record("app.page_viewed", page="/x") is None
        assert "app.page_viewed" in caplog.text
        assert logs[-1]["audit_write_failed"] is True

    def test_unlisted_event_raises(self, settings: Any) -> None:
        """A non-security event not listed in FAIL_OPEN_EVENTS fails closed."""
        settings.SECURE_SSO_AUDIT = NO_KEYS
        with pytest.raises(AuditWriteError):
            record("app.page_viewed")

    @pytest.mark.parametrize("event_type", [events.LOGIN_FAILURE, events.SESSION_EXPIRED,
                                            events.MFA_FAILURE, events.BACKCHANNEL_LOGOUT])
    def test_security_event_listed_still_raises(self, settings: Any, event_type: str) -> None:
        """auth.*/session.*/mfa.*/sso.* in FAIL_OPEN_EVENTS still fail closed."""
        settings.SECURE_SSO_AUDIT = {**NO_KEYS, "FAIL_OPEN_EVENTS": [event_type]}
        with pytest.raises(AuditWriteError):
            record(event_type)


class TestSSOSignIn:
    def test_refused_when_audit_unavailable(self, client: Any, idp: Any, settings: Any) -> None:
        """A verified sign-in whose audit write fails is refused with 503 and no session."""
        settings.SECURE_SSO_AUDIT = NO_KEYS
        attempt = sign_in(client, idp)
        assert attempt.response.status_code == 503, attempt.response.content[:300]
        assert "audit_unavailable" in attempt.response.content.decode()
        assert "_auth_user_id" not in client.session
        assert AuditEvent.objects.count() == 0

    def test_success_recorded_once(self, client: Any, idp: Any) -> None:
        """A sign-in stores exactly one auth.login.success with issuer and subject."""
        attempt = sign_in(client, idp)
        assert attempt.response.status_code == 302
        [event] = rows(events.LOGIN_SUCCESS)
        assert (event.issuer, event.subject, event.outcome) == (idp.issuer, "forged-user",
                                                                "success")
        assert event.details == {"method": "sso", "created": True}
        assert event.username and event.user_id is not None and event.session_hash
        assert rows() == [event]

    def test_claims_changed_recorded(self, client: Any, idp: Any, settings: Any) -> None:
        """Changed userinfo gives exactly one auth.claims.changed; sensitive values are left out."""
        audit_settings(settings, SENSITIVE_CLAIMS=["email"])
        idp.userinfo = {"sub": "forged-user", "name": "Ann", "groups": ["staff", "users"],
                       "email": "ann@old.example"}
        assert sign_in(client, idp).response.status_code == 302
        assert rows(events.CLAIMS_CHANGED) == []
        idp.userinfo = {"sub": "forged-user", "name": "Ann B", "groups": ["users", "admins"],
                       "email": "ann@new.example", "locale": "fr"}
        assert sign_in(client, idp).response.status_code == 302
        [event] = rows(events.CLAIMS_CHANGED)
        assert (event.issuer, event.subject) == (idp.issuer, "forged-user")
        assert event.details == {
            "added": {"locale": "fr"},
            "changed": {
                "email": {"changed": True},
                "groups": {"added": ["admins"], "removed": ["staff"]},
                "name": {"from": "Ann", "to": "Ann B"},
            },
        }
        assert "ann@" not in str(event.details)
        assert len(rows(events.LOGIN_SUCCESS)) == 2
        assert chain.verify().ok

    def test_same_claims_no_change_event(self, client: Any, idp: Any) -> None:
        """Signing in twice with the same claims records no claim change (iat etc. ignored)."""
        sign_in(client, idp)
        sign_in(client, idp)
        assert rows(events.CLAIMS_CHANGED) == []

    def test_sso_logout_recorded_once(self, client: Any, idp: Any) -> None:
        """An SSO session's logout records one auth.logout with method sso."""
        sign_in(client, idp)
        client.post("/sso/logout/")
        [event] = rows(events.LOGOUT)
        assert event.details["method"] == "sso" and event.username


class TestPasswordSignIn:
    @pytest.fixture
    def staff(self, django_user_model: Any) -> Any:
        return django_user_model.objects.create_user("staffer", password=PASSWORD, is_staff=True)

    def test_success(self, client: Any, staff: Any) -> None:
        """The admin's password form records auth.login.success with method password."""
        response = client.post("/admin/login/", {"username": "staffer", "password": PASSWORD})
        assert response.status_code == 302
        [event] = rows(events.LOGIN_SUCCESS)
        assert (event.details, event.username) == ({"method": "password"}, "staffer")

    def test_wrong_password(self, client: Any, staff: Any) -> None:
        """A wrong password records the attempted username, the reason, and never the password."""
        wrong = "wrong-" + PASSWORD
        with capture_logs() as logs:
            response = client.post("/admin/login/", {"username": "staffer", "password": wrong})
        assert response.status_code == 200
        [event] = rows()
        assert (event.event_type, event.outcome, event.reason) == (
            events.LOGIN_FAILURE, "failure", "invalid_credentials")
        assert event.details == {"method": "password", "attempted_username": "staffer"}
        assert wrong not in str(event.details) and wrong not in repr(logs)
        assert PASSWORD not in repr(logs)

    def test_refused_when_audit_unavailable(self, client: Any, staff: Any, settings: Any) -> None:
        """A password sign-in that cannot be recorded is refused (403) and leaves no session."""
        settings.SECURE_SSO_AUDIT = {}
        response = client.post("/admin/login/", {"username": "staffer", "password": PASSWORD})
        assert response.status_code == 403
        assert "_auth_user_id" not in client.session
        assert client.get("/dashboard/").status_code == 302

    def test_logout_once(self, client: Any, staff: Any) -> None:
        """Logging out of a password session records exactly one auth.logout."""
        client.post("/admin/login/", {"username": "staffer", "password": PASSWORD})
        client.post("/admin/logout/")
        [event] = rows(events.LOGOUT)
        assert (event.details["method"], event.username) == ("password", "staffer")

    def test_unknown_user(self, client: Any) -> None:
        """A username that does not exist is recorded as attempted, with no user."""
        client.post("/admin/login/", {"username": "ghost", "password": PASSWORD})
        [event] = rows(events.LOGIN_FAILURE)
        assert (event.user_id, event.username) == (None, "")
        assert event.details["attempted_username"] == "ghost"


def test_user_model_is_default() -> None:
    """These tests assume django.contrib.auth's User (username field)."""
    assert get_user_model().USERNAME_FIELD == "username"
