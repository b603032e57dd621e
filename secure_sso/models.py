"""The link between a Django user and a provider identity, keyed on (issuer, subject)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class SSOIdentity(models.Model):
    """One provider account (issuer + ``sub``) linked to one Django user.

    Email is never a key: providers let users change it, and some do not verify it.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sso_identities"
    )
    issuer = models.CharField(_("issuer"), max_length=255)
    subject = models.CharField(_("subject"), max_length=255)
    claims = models.JSONField(_("last verified claims"), default=dict, blank=True)
    created_at = models.DateTimeField(_("linked at"), auto_now_add=True)
    last_login_at = models.DateTimeField(_("last sign-in"), null=True, blank=True)

    class Meta:
        verbose_name = _("SSO identity")
        verbose_name_plural = _("SSO identities")
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="secure_sso_unique_identity")
        ]

    def __str__(self) -> str:
        return f"{self.subject} @ {self.issuer}"
