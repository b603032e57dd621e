"""The link between a Django user and a provider identity, keyed on (issuer, subject);
the recovery codes used for step-up."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from django_otp.models import Device, ThrottlingMixin, TimestampMixin


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


class RecoveryCodeDevice(TimestampMixin, ThrottlingMixin, Device):
    """A user's set of single-use recovery codes, as one django-otp device.

    Only keyed hashes are stored (:class:`RecoveryCode`); the codes themselves are shown
    once, when made. :func:`django_otp.devices_for_user` lists this device with the user's
    authenticators. Verification goes through :mod:`secure_sso.totp`.
    """

    #: Seconds of the first lockout after a wrong code; doubles at each further failure.
    throttle_factor = 1

    class Meta(Device.Meta):
        verbose_name = _("recovery codes")
        verbose_name_plural = _("recovery codes")

    def get_throttle_factor(self) -> int:
        return self.throttle_factor

    def verify_token(self, token: Any) -> bool:
        """Use one unused code; throttled like every django-otp device. See ``totp``."""
        from secure_sso import totp

        return totp.use_recovery_code(self, token)

    def remaining(self) -> int:
        return self.codes.filter(used_at__isnull=True).count()


class RecoveryCode(models.Model):
    """One recovery code, stored as an HMAC-SHA256 keyed by ``SECRET_KEY``; used once."""

    device = models.ForeignKey(RecoveryCodeDevice, on_delete=models.CASCADE, related_name="codes")
    code_hash = models.CharField(_("code (keyed hash)"), max_length=64, db_index=True)
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)

    class Meta:
        verbose_name = _("recovery code")
        verbose_name_plural = _("recovery codes")

    def __str__(self) -> str:
        return f"{self.device_id}: {'used' if self.used_at else 'unused'}"


class SSOSession(models.Model):
    """Which Django session belongs to which provider session (``sid``) and account.

    Back-channel logout names a provider session or a subject; this index finds the
    Django sessions to end, whatever the session engine. Rows are written at sign-in,
    re-keyed when the session key rotates and removed at logout.

    The session's tokens live here too, encrypted (:mod:`secure_sso.tokens`), not in the
    session dict: every request saves that dict whole, so a request that began before
    a refresh would write the spent refresh token back over the rotated one.
    """

    session_key = models.CharField(_("session key"), max_length=64, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sso_sessions"
    )
    issuer = models.CharField(_("issuer"), max_length=255)
    subject = models.CharField(_("subject"), max_length=255)
    sid = models.CharField(_("provider session id"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("signed in at"), auto_now_add=True, db_index=True)
    tokens = models.TextField(_("tokens (encrypted)"), blank=True, editable=False)

    class Meta:
        verbose_name = _("SSO session")
        verbose_name_plural = _("SSO sessions")
        indexes = [
            models.Index(fields=["issuer", "sid"], name="secure_sso_session_sid"),
            models.Index(fields=["issuer", "subject"], name="secure_sso_session_sub"),
        ]

    def __str__(self) -> str:
        return f"{self.subject} @ {self.issuer}"


class SingleUseValue(models.Model):
    """A value claimed once (a ``state``, a logout token's ``jti``), by keyed digest.

    The primary key makes the claim atomic on every database: a second insert of
    the same digest fails, whichever worker or host tries it.
    """

    digest = models.CharField(max_length=64, primary_key=True)
    expires_at = models.FloatField(db_index=True)

    class Meta:
        verbose_name = _("single-use value")
        verbose_name_plural = _("single-use values")

    def __str__(self) -> str:
        return self.digest[:12]
