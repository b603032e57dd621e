"""Append-only audit events, the chain head that serialises writers, and prune checkpoints."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from audit.exceptions import ImmutableAuditEvent


class AppendOnlyQuerySet(models.QuerySet):
    """Bulk writes would bypass the chain; bulk changes would break it."""

    def update(self, **kwargs: Any) -> int:
        # The one change allowed: a deleted user's unsigned foreign key becomes NULL
        # (on_delete=SET_NULL); the signed user_ref and username snapshot stay.
        if set(kwargs) <= {"user", "user_id"} and all(v is None for v in kwargs.values()):
            return super().update(**kwargs)
        raise ImmutableAuditEvent("audit events cannot be updated")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise ImmutableAuditEvent("audit events cannot be deleted (use audit_prune)")

    def bulk_create(self, *args: Any, **kwargs: Any) -> list[Any]:
        raise ImmutableAuditEvent("audit events are appended one by one with audit.record()")

    def bulk_update(self, *args: Any, **kwargs: Any) -> int:
        raise ImmutableAuditEvent("audit events cannot be updated")


class AuditEvent(models.Model):
    """One event; ``mac`` is the HMAC of its canonical form, ``prev_hash`` the previous ``mac``."""

    seq = models.BigIntegerField(_("sequence"), unique=True, editable=False)
    created_at = models.DateTimeField(_("time (UTC)"), editable=False, db_index=True)
    event_type = models.CharField(_("event"), max_length=64, db_index=True, editable=False)
    outcome = models.CharField(_("outcome"), max_length=16, editable=False)
    reason = models.CharField(_("reason"), max_length=128, blank=True, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_constraint=False,
        related_name="+",
        editable=False,
    )
    #: The user's id at the time; the foreign key is nulled if the user is deleted.
    user_ref = models.CharField(_("user id"), max_length=64, blank=True, editable=False)
    username = models.CharField(_("username"), max_length=150, blank=True, editable=False)
    issuer = models.CharField(_("issuer"), max_length=255, blank=True, editable=False)
    subject = models.CharField(_("subject"), max_length=255, blank=True, db_index=True,
                               editable=False)
    client_ip = models.GenericIPAddressField(_("client IP"), null=True, blank=True, editable=False)
    user_agent = models.CharField(_("user agent"), max_length=512, blank=True, editable=False)
    request_id = models.CharField(_("request id"), max_length=64, blank=True, db_index=True,
                                  editable=False)
    session_hash = models.CharField(_("session (keyed hash)"), max_length=64, blank=True,
                                    editable=False)
    details = models.JSONField(_("details"), default=dict, blank=True, editable=False)
    prev_hash = models.CharField(_("previous hash"), max_length=64, editable=False)
    key_id = models.CharField(_("key id"), max_length=32, editable=False)
    mac = models.CharField(_("HMAC"), max_length=64, editable=False)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        db_table = "secure_sso_audit_event"
        ordering = ["seq"]
        # Related-object access goes through the refusing queryset too.
        base_manager_name = "objects"
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")

    def __str__(self) -> str:
        return f"#{self.seq} {self.event_type} {self.outcome}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        # SECURITY: only audit.chain.append() inserts (it sets _appending); nothing updates.
        if not getattr(self, "_appending", False) or self.pk is not None:
            raise ImmutableAuditEvent("audit events are append-only; use audit.record()")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise ImmutableAuditEvent("audit events cannot be deleted (use audit_prune)")


class ChainHead(models.Model):
    """A single row: the last sequence number and hash. Locking it serialises appends."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.BigIntegerField(default=0)
    mac = models.CharField(max_length=64, default="")
    #: HMAC of (seq, mac): moving the head back to hide deleted tail events needs the key.
    sig = models.CharField(max_length=64, default="")

    class Meta:
        db_table = "secure_sso_audit_head"

    def __str__(self) -> str:
        return f"head at #{self.seq}"


class Checkpoint(models.Model):
    """Where the verified chain starts after ``audit_prune``: the last pruned event's hash."""

    after_seq = models.BigIntegerField(unique=True)
    mac = models.CharField(max_length=64)
    pruned_before = models.DateTimeField()
    pruned_count = models.BigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)
    key_id = models.CharField(max_length=32, default="")
    #: HMAC of (after_seq, mac), set on save: a forged checkpoint cannot hide a deleted prefix.
    sig = models.CharField(max_length=64, default="")

    class Meta:
        db_table = "secure_sso_audit_checkpoint"
        ordering = ["-after_seq"]

    def __str__(self) -> str:
        return f"checkpoint after #{self.after_seq}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        from audit.chain import sign_link

        self.key_id, self.sig = sign_link("checkpoint", self.after_seq, self.mac)
        super().save(*args, **kwargs)
