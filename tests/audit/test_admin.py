"""The audit admin: anyone allowed may look; nobody, superusers included, may write."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from audit import chain, events, record
from audit.models import AuditEvent, Checkpoint
from secure_sso.testing import force_login
from tests.strategies_audit import raw_update

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client: Any, django_user_model: Any) -> Any:
    user = django_user_model.objects.create_superuser("root", "root@x.example", "pw")
    force_login(client, user)
    return client


@pytest.fixture
def stored() -> list[AuditEvent]:
    return [
        record(events.LOGIN_SUCCESS, issuer="https://idp.example", subject="sub-1",
               method="sso"),
        record(events.CLAIMS_CHANGED, issuer="https://idp.example", subject="sub-1",
               added={"locale": "fr"},
               changed={"groups": {"added": ["admins"], "removed": ["staff"]},
                        "email": {"changed": True},
                        "name": {"from": "Ann", "to": "Ann <b>B</b>"}}),
        record(events.LOGIN_FAILURE, outcome="failure", reason="invalid_credentials"),
    ]


def url(name: str, *args: Any) -> str:
    return reverse(f"admin:secure_sso_audit_auditevent_{name}", args=args)


class TestViewing:
    def test_superuser_lists(self, admin_client: Any, stored: list[AuditEvent]) -> None:
        """The changelist shows every event with its columns, newest first."""
        response = admin_client.get(url("changelist"))
        assert response.status_code == 200
        page = response.content.decode()
        for name in ("auth.login.success", "auth.claims.changed", "invalid_credentials"):
            assert name in page
        assert [e.seq for e in response.context["cl"].result_list] == [3, 2, 1]

    def test_search_and_filter(self, admin_client: Any, stored: list[AuditEvent]) -> None:
        """Search by subject and filter by outcome narrow the list."""
        found = admin_client.get(url("changelist"), {"q": "sub-1"}).context["cl"].result_list
        assert {e.seq for e in found} == {1, 2}
        failed = admin_client.get(url("changelist"), {"outcome": "failure"})
        assert [e.seq for e in failed.context["cl"].result_list] == [3]

    def test_detail_read_only(self, admin_client: Any, stored: list[AuditEvent]) -> None:
        """The detail page is a view: no save button, every field shown read-only."""
        response = admin_client.get(url("change", stored[1].pk))
        assert response.status_code == 200
        page = response.content.decode()
        assert response.context["adminform"].form.fields == {}
        assert not response.context["has_change_permission"]
        assert 'name="_save"' not in page and 'name="_continue"' not in page
        for value in (stored[1].mac, stored[1].prev_hash, "sub-1", "https://idp.example"):
            assert value in page

    def test_detail_shows_diff_and_verifies(
        self, admin_client: Any, stored: list[AuditEvent]
    ) -> None:
        """A claim change shows members added/removed, escaped values, and 'verifies: yes'."""
        page = admin_client.get(url("change", stored[1].pk)).content.decode()
        assert "audit-claims-diff" in page
        assert "members added" in page and "<code>admins</code>" in page
        assert "members removed" in page and "<code>staff</code>" in page
        assert "sensitive claim: values not recorded" in page
        assert "Ann &lt;b&gt;B&lt;/b&gt;" in page and "<b>B</b>" not in page
        assert '<pre class="audit-details">' in page
        assert readonly(page, "HMAC verifies") == "yes"
        assert readonly(page, "Previous hash link").startswith("ok (matches #1)")

    def test_detail_shows_tampering(self, admin_client: Any, stored: list[AuditEvent]) -> None:
        """A tampered row shows 'no'; the next row's link no longer matches."""
        raw_update(2, "reason", "edited")
        assert readonly(admin_client.get(url("change", stored[1].pk)).content.decode(),
                        "HMAC verifies") == "no"
        raw_update(2, "mac", "f" * 64)
        page = admin_client.get(url("change", stored[2].pk)).content.decode()
        assert readonly(page, "Previous hash link").startswith("does not match #2")

    def test_staff_with_view_permission(
        self, client: Any, django_user_model: Any, stored: list[AuditEvent]
    ) -> None:
        """Staff with view_auditevent may look; staff without it may not."""
        user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
        force_login(client, user)
        assert client.get(url("changelist")).status_code == 403
        user.user_permissions.add(Permission.objects.get(codename="view_auditevent"))
        force_login(client, django_user_model.objects.get(pk=user.pk))
        assert client.get(url("changelist")).status_code == 200
        assert client.get(url("change", stored[0].pk)).status_code == 200


class TestNoWriting:
    def test_add_change_delete_forbidden(
        self, admin_client: Any, stored: list[AuditEvent]
    ) -> None:
        """Add and delete views answer 403, even for a superuser."""
        assert admin_client.get(url("add")).status_code == 403
        assert admin_client.post(url("add"), {"event_type": "x"}).status_code == 403
        assert admin_client.get(url("delete", stored[0].pk)).status_code == 403
        assert admin_client.post(url("delete", stored[0].pk), {"post": "yes"}).status_code == 403
        assert AuditEvent.objects.count() == 3

    def test_post_to_change_changes_nothing(
        self, admin_client: Any, stored: list[AuditEvent]
    ) -> None:
        """POSTing a form to the change view is refused and the row is unchanged."""
        response = admin_client.post(url("change", stored[0].pk),
                                     {"reason": "edited", "outcome": "failure"})
        assert response.status_code == 403
        assert AuditEvent.objects.get(pk=stored[0].pk).reason == ""
        assert chain.verify().ok

    def test_no_delete_action(self, admin_client: Any, stored: list[AuditEvent]) -> None:
        """The changelist offers no delete action, and posting it deletes nothing."""
        response = admin_client.get(url("changelist"))
        assert "delete_selected" not in response.content.decode()
        admin_client.post(url("changelist"), {"action": "delete_selected",
                                              "_selected_action": [stored[0].pk], "post": "yes"})
        assert AuditEvent.objects.count() == 3

    def test_checkpoint_admin_read_only(self, admin_client: Any) -> None:
        """Prune checkpoints are viewable and not writable."""
        base = "admin:secure_sso_audit_checkpoint_"
        assert admin_client.get(reverse(base + "changelist")).status_code == 200
        assert admin_client.get(reverse(base + "add")).status_code == 403
        assert Checkpoint.objects.count() == 0


def readonly(page: str, label: str) -> str:
    """The text of the read-only field labelled ``label`` on an admin change page."""
    import re

    match = re.search(
        rf"<label>{re.escape(label)}:</label>\s*<div class=\"readonly\">(.*?)</div>", page, re.S
    )
    assert match, f"no read-only field {label!r}"
    return match.group(1).strip()
