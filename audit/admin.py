"""Read-only admin for the audit trail: list, search, filter and inspect; never change.

Nobody, superusers included, may add, change or delete an event here (the model refuses
too). The detail page shows whether the event's own HMAC verifies and whether its
``prev_hash`` matches the previous stored event; ``manage.py audit_verify`` checks the
whole chain.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from audit import chain, events
from audit.models import AuditEvent, Checkpoint

STORED_FIELDS = (
    "seq", "created_at", "event_type", "outcome", "reason", "user", "user_ref", "username",
    "issuer", "subject", "client_ip", "user_agent", "request_id", "session_hash",
)
CHAIN_FIELDS = ("prev_hash", "key_id", "mac")


class ReadOnlyAdmin(admin.ModelAdmin):
    """Viewable by superusers and staff with the view permission; nobody writes."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    # No get_actions() override needed: Django drops "delete_selected" because
    # has_delete_permission() is False.


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("seq", "created_at", "event_type", "outcome", "reason", "username",
                    "client_ip")
    list_display_links = ("seq", "created_at")
    list_filter = ("event_type", "outcome", "created_at")
    date_hierarchy = "created_at"
    search_fields = ("subject", "client_ip", "request_id", "username")
    ordering = ("-seq",)
    show_full_result_count = False  # no second COUNT(*) over a large table
    fieldsets = (
        (None, {"fields": STORED_FIELDS}),
        (_("Details"), {"fields": ("details_display", "claims_diff_display")}),
        (_("Integrity"), {"fields": (*CHAIN_FIELDS, "hmac_verifies", "previous_link")}),
    )
    readonly_fields = (
        *STORED_FIELDS, *CHAIN_FIELDS, "details_display", "claims_diff_display",
        "hmac_verifies", "previous_link",
    )

    @admin.display(description=_("details"))
    def details_display(self, obj: AuditEvent) -> SafeString:
        text = json.dumps(obj.details, indent=2, sort_keys=True, ensure_ascii=False)
        return format_html('<pre class="audit-details">{}</pre>', text)

    @admin.display(description=_("claim changes"))
    def claims_diff_display(self, obj: AuditEvent) -> str:
        if obj.event_type != events.CLAIMS_CHANGED or not isinstance(obj.details, dict):
            return "-"
        return render_to_string(
            "secure_sso_audit/admin/claims_diff.html", {"diff": claims_diff_rows(obj.details)}
        )

    @admin.display(description=_("HMAC verifies"))
    def hmac_verifies(self, obj: AuditEvent) -> str:
        return _("yes") if chain.event_verifies(obj) else _("no")

    @admin.display(description=_("previous hash link"))
    def previous_link(self, obj: AuditEvent) -> str:
        expected = previous_mac(obj)
        if expected is None:
            return _("previous event #%(seq)s not stored") % {"seq": obj.seq - 1}
        if expected == obj.prev_hash:
            return _("ok (matches #%(seq)s)") % {"seq": obj.seq - 1}
        return _("does not match #%(seq)s") % {"seq": obj.seq - 1}


def previous_mac(event: AuditEvent) -> str | None:
    """The ``mac`` this event's ``prev_hash`` should equal: the previous event's, the prune
    checkpoint's, or the genesis; ``None`` when none is stored."""
    if event.seq == 1:
        return chain.GENESIS
    using = event._state.db
    mac = (
        AuditEvent.objects.using(using).filter(seq=event.seq - 1)
        .values_list("mac", flat=True).first()
    )
    if mac is None:
        mac = (
            Checkpoint.objects.using(using).filter(after_seq=event.seq - 1)
            .values_list("mac", flat=True).first()
        )
    return mac


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def claims_diff_rows(details: dict[str, Any]) -> list[dict[str, Any]]:
    """``auth.claims.changed`` details as rows: claim, kind, and what was added or removed."""
    rows: list[dict[str, Any]] = []
    for kind in ("added", "removed"):
        for name, value in sorted((details.get(kind) or {}).items()):
            rows.append({"claim": name, "kind": kind, "value": _value(value)})
    for name, change in sorted((details.get("changed") or {}).items()):
        entry: dict[str, Any] = {"claim": name, "kind": "changed"}
        if isinstance(change, dict) and ("added" in change or "removed" in change):
            entry["members_added"] = [_value(v) for v in change.get("added") or []]
            entry["members_removed"] = [_value(v) for v in change.get("removed") or []]
        elif isinstance(change, dict) and "from" in change:
            entry["before"], entry["after"] = _value(change["from"]), _value(change.get("to"))
        else:
            entry["sensitive"] = True
        rows.append(entry)
    return rows


@admin.register(Checkpoint)
class CheckpointAdmin(ReadOnlyAdmin):
    list_display = ("after_seq", "pruned_before", "pruned_count", "created_at")
    ordering = ("-after_seq",)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in self.model._meta.fields]
