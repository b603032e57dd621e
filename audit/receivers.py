"""Signals to :func:`audit.record`: secure_sso's sign-in events and Django's own auth signals."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.core.exceptions import PermissionDenied
from django.dispatch import receiver

from audit import events, record
from audit.conf import audit_settings
from audit.diff import claims_diff
from audit.exceptions import AuditWriteError
from secure_sso.constants import SESSION_ISSUER_KEY
from secure_sso.signals import (
    backchannel_logout,
    backchannel_logout_refused,
    session_ended,
    session_revalidated,
    sso_logged_out,
    sso_login_failed,
    sso_login_succeeded,
    sso_step_up_failed,
    sso_step_up_succeeded,
)

SSO_BACKEND = "secure_sso.backends.SSOBackend"


@receiver(sso_login_succeeded, dispatch_uid="audit.login_succeeded")
def on_sso_login(sender: Any, request: Any, user: Any, identity: Any, claims: dict[str, Any],
                 created: bool, previous_claims: dict[str, Any] | None = None,
                 **kwargs: Any) -> None:
    issuer = getattr(identity, "issuer", None)
    subject = claims.get("sub")
    record(events.LOGIN_SUCCESS, request=request, user=user, issuer=issuer, subject=subject,
           method="sso", created=created)
    if previous_claims:
        diff = claims_diff(previous_claims, claims, sensitive=audit_settings.SENSITIVE_CLAIMS)
        if diff:
            record(events.CLAIMS_CHANGED, request=request, user=user, issuer=issuer,
                   subject=subject, **diff)


@receiver(sso_login_failed, dispatch_uid="audit.login_failed")
def on_sso_failure(sender: Any, request: Any, code: str, status: int, **kwargs: Any) -> None:
    record(events.LOGIN_FAILURE, request=request, outcome="failure", reason=code, method="sso",
           status=status)


@receiver(sso_step_up_succeeded, dispatch_uid="audit.step_up_succeeded")
def on_sso_step_up(sender: Any, request: Any, user: Any, claims: dict[str, Any], method: str,
                   **kwargs: Any) -> None:
    amr = claims.get("amr")
    record(events.MFA_SUCCESS, request=request, user=user, issuer=claims.get("iss"),
           subject=claims.get("sub"), method=method, acr=claims.get("acr"),
           amr=[m for m in amr if isinstance(m, str)] if isinstance(amr, list) else None)


@receiver(sso_step_up_failed, dispatch_uid="audit.step_up_failed")
def on_sso_step_up_failure(sender: Any, request: Any, code: str, status: int, method: str,
                           **kwargs: Any) -> None:
    record(events.MFA_FAILURE, request=request, outcome="failure", reason=code, method=method,
           status=status)


@receiver(sso_logged_out, dispatch_uid="audit.logged_out")
def on_sso_logout(sender: Any, request: Any, user: Any, provider_logout: bool,
                  **kwargs: Any) -> None:
    record(events.LOGOUT, request=request, user=user, method="sso",
           provider_logout=provider_logout)


@receiver(session_ended, dispatch_uid="audit.session_ended")
def on_session_ended(sender: Any, request: Any, event: str, reason: str,
                     user: Any = None, ended_by: str | None = None, **kwargs: Any) -> None:
    details = {"ended_by": ended_by} if ended_by else {}
    record(event, request=request, user=user, outcome="failure", reason=reason, **details)


@receiver(backchannel_logout, dispatch_uid="audit.backchannel_logout")
def on_backchannel_logout(sender: Any, request: Any, issuer: str, subject: str | None,
                          sid: str | None, sessions: list[Any], **kwargs: Any) -> None:
    """One event per account whose sessions the provider ended (or one saying none matched)."""
    by_user: dict[Any, list[Any]] = {}
    for user, _key in sessions:
        by_user.setdefault(user, []).append(_key)
    if not by_user:
        record(events.BACKCHANNEL_LOGOUT, request=request, issuer=issuer, subject=subject,
               sid_given=sid is not None, sessions_ended=0)
    for user, keys in by_user.items():
        record(events.BACKCHANNEL_LOGOUT, request=request, user=user, issuer=issuer,
               subject=subject, sid_given=sid is not None, sessions_ended=len(keys))


@receiver(backchannel_logout_refused, dispatch_uid="audit.backchannel_logout_refused")
def on_backchannel_logout_refused(sender: Any, request: Any, code: str, **kwargs: Any) -> None:
    record(events.BACKCHANNEL_LOGOUT, request=request, outcome="failure", reason=code)


@receiver(session_revalidated, dispatch_uid="audit.session_revalidated")
def on_session_revalidated(sender: Any, request: Any, user: Any, method: str,
                           **kwargs: Any) -> None:
    record(events.SESSION_REVALIDATED, request=request, user=user, method=method)


@receiver(user_logged_in, dispatch_uid="audit.django_login")
def on_django_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if getattr(user, "backend", None) == SSO_BACKEND:
        return  # recorded, with the identity, by on_sso_login
    try:
        record(events.LOGIN_SUCCESS, request=request, user=user, method="password")
    except AuditWriteError:
        # SECURITY: fail closed. The session login() just created is destroyed before the
        # refusal, so no response can carry it (Django saves sessions on 403s).
        if request is not None and hasattr(request, "session"):
            request.session.flush()
        raise PermissionDenied("sign-in could not be recorded") from None


@receiver(user_logged_out, dispatch_uid="audit.django_logout")
def on_django_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    session = getattr(request, "session", None)
    if session is not None and SESSION_ISSUER_KEY in session:
        return  # an SSO session: recorded by on_sso_logout with the provider outcome
    if user is not None:
        record(events.LOGOUT, request=request, user=user, method="password")


@receiver(user_login_failed, dispatch_uid="audit.django_login_failed")
def on_django_login_failed(sender: Any, credentials: dict[str, Any], request: Any = None,
                           **kwargs: Any) -> None:
    # Django already masks the password; only the attempted username is kept.
    attempted = str(credentials.get("username", ""))[:150]
    record(events.LOGIN_FAILURE, request=request, outcome="failure",
           reason="invalid_credentials", method="password", attempted_username=attempted)
