"""issue #4's acceptance journey against the real provider: each event once, in every output.

A sign-in, a failed sign-in, a claim change at the provider and a sign-out each appear
exactly once in the table (as the admin shows it), the structured log and the export, and
the chain verifies.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client
from structlog.testing import capture_logs

from audit.chain import verify
from audit.models import AuditEvent
from secure_sso.testing import force_login
from tests.e2e.test_signin_flow import sign_in, start

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

EXPECTED = Counter(
    {"auth.login.success": 2, "auth.login.failure": 1, "auth.claims.changed": 1, "auth.logout": 1}
)


def test_journey_recorded_once_everywhere(sso_live, live_server) -> None:
    """Sign-in, failure, claim change and sign-out: once each in table, log and export."""
    sso_live.set_account("quinn", {"groups": ["staff"], "given_name": "Quinn"})
    with capture_logs() as logs:
        sign_in(live_server, "quinn")
        # A failed sign-in: the provider reports access_denied for a real pending state.
        browser = requests.Session()
        state = parse_qs(urlsplit(start(browser, live_server)).query)["state"][0]
        denied = browser.get(
            f"{live_server.url}/sso/callback/",
            params={"error": "access_denied", "state": state, "iss": sso_live.issuer},
        )
        assert denied.status_code == 403
        # The provider changes the person's groups and name; the next sign-in shows the diff.
        sso_live.set_account("quinn", {"groups": ["admins"], "given_name": "Quincy"})
        session, _, _ = sign_in(live_server, "quinn")
        session.get(f"{live_server.url}/sso/logout/")
        out = session.post(
            f"{live_server.url}/sso/logout/",
            data={"csrfmiddlewaretoken": session.cookies["csrftoken"]},
            headers={"Referer": f"{live_server.url}/sso/logout/"},
            allow_redirects=False,
        )
        assert out.status_code == 302

    stored = list(AuditEvent.objects.order_by("seq"))
    assert Counter(e.event_type for e in stored) == EXPECTED
    logged = Counter(e["event"] for e in logs if e["event"] in EXPECTED)
    assert logged == EXPECTED

    [change] = [e for e in stored if e.event_type == "auth.claims.changed"]
    assert change.subject == "quinn" and change.issuer == sso_live.issuer
    assert change.details["changed"]["groups"] == {"added": ["admins"], "removed": ["staff"]}
    assert change.details["changed"]["given_name"] == {"from": "Quinn", "to": "Quincy"}
    [failure] = [e for e in stored if e.event_type == "auth.login.failure"]
    assert (failure.outcome, failure.reason) == ("failure", "access_denied")
    for event in stored:
        assert event.request_id and event.client_ip == "127.0.0.1"
        assert "python-requests" in event.user_agent

    exported = io.StringIO()
    call_command("audit_export", format="jsonl", stdout=exported)
    rows = [json.loads(line) for line in exported.getvalue().splitlines()]
    assert Counter(r["event_type"] for r in rows) == EXPECTED
    assert [r["seq"] for r in rows] == [e.seq for e in stored]

    admin = get_user_model().objects.create_superuser("reviewer", "r@example.test", "pw")
    reviewer = Client(SERVER_NAME="localhost")
    force_login(reviewer, admin)
    listing = reviewer.get("/admin/secure_sso_audit/auditevent/")
    assert listing.status_code == 200
    shown = Counter(e.event_type for e in listing.context["cl"].result_list)
    assert shown == EXPECTED
    assert f'<a href="/admin/secure_sso_audit/auditevent/{change.pk}/change/' in listing.text
    detail = reviewer.get(f"/admin/secure_sso_audit/auditevent/{change.pk}/change/")
    assert detail.status_code == 200 and "Quincy" in detail.text

    assert verify().ok
