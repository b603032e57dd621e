"""Turn secure_sso's signals into audit events."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from audit import events, record
from secure_sso.signals import (
    session_ended,
    sso_logged_out,
    sso_login_failed,
    sso_login_succeeded,
)


def _client(request: Any) -> dict[str, Any]:
    if request is None:
        return {}
    return {"path": request.path, "user_agent": request.headers.get("User-Agent", "")[:256]}


@receiver(sso_login_succeeded, dispatch_uid="audit.login_succeeded")
def on_login(sender: Any, request: Any, user: Any, identity: Any, claims: dict[str, Any],
             created: bool, **kwargs: Any) -> None:
    record(
        events.LOGIN_SUCCESS,
        outcome="success",
        user=user.get_username(),
        issuer=getattr(identity, "issuer", None),
        subject=claims.get("sub"),
        created=created,
        **_client(request),
    )


@receiver(sso_login_failed, dispatch_uid="audit.login_failed")
def on_failure(sender: Any, request: Any, code: str, status: int, **kwargs: Any) -> None:
    record(events.LOGIN_FAILURE, outcome="failure", reason=code, status=status, **_client(request))


@receiver(sso_logged_out, dispatch_uid="audit.logged_out")
def on_logout(sender: Any, request: Any, user: Any, provider_logout: bool, **kwargs: Any) -> None:
    name = user.get_username() if user is not None and user.is_authenticated else None
    record(events.LOGOUT, outcome="success", user=name, provider_logout=provider_logout,
           **_client(request))


@receiver(session_ended, dispatch_uid="audit.session_ended")
def on_session_ended(sender: Any, request: Any, event: str, reason: str, username: str | None,
                     **kwargs: Any) -> None:
    name = {
        "session.binding_mismatch": events.SESSION_BINDING_MISMATCH,
        "session.expired": events.SESSION_EXPIRED,
    }.get(event, event)
    record(name, outcome="failure", reason=reason, user=username, **_client(request))
