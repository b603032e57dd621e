"""Every way a sign-in can fail, each with a stable ``code``, an HTTP status and safe text.

Views catch :class:`SSOError` and render ``secure_sso/error.html`` with the
``public_message`` only: the exception's own ``str()`` may carry details for
logs (never secrets) and is never shown to the browser.
Tampering errors also subclass :class:`~django.core.exceptions.SuspiciousOperation`
so Django's ``django.security.*`` loggers see them.
"""

from __future__ import annotations

from django.core.exceptions import SuspiciousOperation
from django.utils.translation import gettext_lazy as _


class SSOError(Exception):
    """Base class: a sign-in, callback or logout step that must not proceed."""

    code = "sso_error"
    status = 400
    public_message = _("Sign-in could not be completed.")

    def __init__(self, detail: str = "", *, code: str | None = None) -> None:
        super().__init__(detail or self.code)
        self.detail = detail
        if code:
            self.code = code


class ConfigurationError(SSOError):
    """The relying party is not configured; ``manage.py check`` explains what is missing."""

    code = "not_configured"
    status = 503
    public_message = _("Single sign-on is not configured on this site.")


class ProviderUnavailable(SSOError):
    """The provider could not be reached or answered with something unusable."""

    code = "provider_unavailable"
    status = 502
    public_message = _("The identity provider could not be reached. Please try again shortly.")


class ProviderMetadataError(ProviderUnavailable):
    """The discovery document or JWKS failed validation against the pinned configuration."""

    code = "provider_metadata_invalid"
    public_message = _("The identity provider's configuration was rejected by this site.")


class ProviderDenied(SSOError):
    """The provider reported an OAuth error (``error=access_denied`` and friends)."""

    code = "access_denied"
    status = 403
    public_message = _("The identity provider did not allow the sign-in.")


class CallbackTampered(SSOError, SuspiciousOperation):
    """The callback does not belong to a sign-in this browser started (state, iss, replay)."""

    code = "invalid_state"
    status = 400
    public_message = _(
        "This sign-in link is not valid any more: it was already used, expired, "
        "or was not started in this browser."
    )


class TokenExchangeFailed(SSOError):
    """The token endpoint refused the authorization code (reused, expired, wrong client)."""

    code = "token_exchange_failed"
    status = 400
    public_message = _("The identity provider refused to complete the sign-in.")


class InvalidIDToken(SSOError, SuspiciousOperation):
    """The ID token failed a check; one opaque error for every reason, reason kept in ``code``."""

    code = "invalid_id_token"
    status = 400
    public_message = _("The identity provider's answer failed verification.")


class UserRefused(SSOError):
    """The verified identity may not sign in here (inactive user, creation disabled...)."""

    code = "user_refused"
    status = 403
    public_message = _("Your account is not allowed to sign in to this site.")


class SignInNotRecorded(SSOError):
    """The sign-in was verified but could not be recorded (audit write failed): refused."""

    code = "audit_unavailable"
    status = 503
    public_message = _(
        "Sign-in is temporarily unavailable because it could not be recorded. Please try again."
    )
