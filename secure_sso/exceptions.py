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


class StepUpNotProven(SSOError):
    """A provider step-up came back without proof of a fresh second factor.

    ``step_up_not_proven``: neither an ``acr`` from ``STEP_UP_ACR_VALUES`` nor an
    ``amr`` from ``STEP_UP_AMR``; ``step_up_not_fresh``: ``auth_time`` missing or older
    than the step-up.
    """

    code = "step_up_not_proven"
    status = 403
    public_message = _(
        "The identity provider did not confirm a new sign-in with a second factor, "
        "so this page stays locked. You are still signed in; try again and use your "
        "second factor at the provider."
    )


class StepUpWrongAccount(SSOError):
    """A provider step-up does not belong to the account signed in here.

    ``step_up_wrong_account``: the provider authenticated another ``sub`` (or issuer);
    ``step_up_session_changed``: this session is no longer the one that started it.
    """

    code = "step_up_wrong_account"
    status = 403
    public_message = _(
        "The confirmation at the identity provider was not made with the account that "
        "is signed in here, so it was refused."
    )


class StepUpUnavailable(SSOError):
    """A provider step-up cannot start: nobody is signed in through the provider here.

    ``step_up_unavailable``: a password session, or one from another issuer;
    ``step_up_not_signed_in``: no session at all.
    """

    code = "step_up_unavailable"
    status = 403
    public_message = _(
        "This account did not sign in through the identity provider, so it cannot "
        "confirm a step-up there."
    )


class StoreUnavailable(SSOError):
    """The shared single-use store (database or cache) could not be asked: refused."""

    code = "store_unavailable"
    status = 503
    public_message = _("Sign-in is temporarily unavailable. Please try again shortly.")


class InvalidLogoutToken(SSOError, SuspiciousOperation):
    """A back-channel logout token failed a check; ``code`` says which."""

    code = "logout_token_invalid"
    status = 400
    public_message = _("The logout request was not valid.")


class ReauthenticationRequired(SSOError):
    """The session's tokens are gone or refused by the provider: the person signs in again.

    Raised by :func:`secure_sso.tokens.get_access_token`; ``SessionGuardMiddleware``
    turns it into a redirect to the sign-in page.
    """

    code = "reauthentication_required"
    status = 401
    public_message = _("Your session with the identity provider has ended. Please sign in again.")


class TokenRefreshRefused(SSOError):
    """The provider refused the refresh token (revoked, expired, reused): the session ends."""

    code = "refresh_refused"
    status = 401
    public_message = ReauthenticationRequired.public_message
