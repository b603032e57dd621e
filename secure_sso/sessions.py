"""Starting, rotating and ending guarded sessions: the stateful side of :mod:`binding`.

:func:`start` runs at every login (``user_logged_in``), password logins included, so
every authenticated session carries its timestamps and browser binding.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.http import HttpRequest

from secure_sso import binding
from secure_sso.conf import sso_settings
from secure_sso.constants import SESSION_ISSUER_KEY, SESSION_SUBJECT_KEY
from secure_sso.signals import session_ended

logger = logging.getLogger("secure_sso")

SESSION_CREATED_KEY = "_secure_sso_created"
SESSION_LAST_SEEN_KEY = "_secure_sso_seen"
SESSION_BINDING_KEY = "_secure_sso_binding"
SESSION_PRIVILEGE_KEY = "_secure_sso_priv"
#: Attribute on the request carrying a new binding secret to the middleware's response.
NEW_BINDING_ATTR = "_secure_sso_new_binding"


def sso_identity(session: Any) -> tuple[str, str] | None:
    """``(issuer, sub)`` a session signed in with through the provider, or ``None``."""
    issuer = session.get(SESSION_ISSUER_KEY)
    subject = session.get(SESSION_SUBJECT_KEY)
    if isinstance(issuer, str) and isinstance(subject, str) and issuer and subject:
        return issuer, subject
    return None


def fingerprint(request: HttpRequest) -> str:
    if not sso_settings.BINDING_FINGERPRINT:
        return ""
    # META, not request.headers: building that mapping costs more than the whole check.
    return binding.user_agent_family(request.META.get("HTTP_USER_AGENT", ""))


def privilege(user: Any) -> list[bool]:
    return [bool(getattr(user, "is_staff", False)), bool(getattr(user, "is_superuser", False))]


def bind(request: HttpRequest) -> None:
    """Give the session a fresh binding secret; the middleware sets its cookie on the way out."""
    secret = binding.new_binding_secret()
    request.session[SESSION_BINDING_KEY] = binding.binding_digest(secret, fingerprint(request))
    setattr(request, NEW_BINDING_ATTR, secret)


def start(request: HttpRequest, user: Any, *, now: float | None = None) -> None:
    """Stamp and bind a session that just signed in (``login()`` already rotated its key)."""
    now = time.time() if now is None else now
    request.session[SESSION_CREATED_KEY] = now
    request.session[SESSION_LAST_SEEN_KEY] = now
    request.session[SESSION_PRIVILEGE_KEY] = privilege(user)
    bind(request)


def rotate(request: HttpRequest) -> None:
    """New session key and new binding, keeping the data: call at every privilege change."""
    from secure_sso import session_index

    old_key = request.session.session_key
    request.session.cycle_key()
    session_index.rekey(old_key, request.session.session_key)
    bind(request)
    user = getattr(request, "user", None)
    if user is not None:
        request.session[SESSION_PRIVILEGE_KEY] = privilege(user)


def end(request: HttpRequest, *, event: str, reason: str) -> None:
    """Flush the session and tell observers (the audit app) why."""
    user = getattr(request, "user", None)
    username = user.get_username() if user is not None and user.is_authenticated else None
    from secure_sso import session_index

    session_index.forget(request.session.session_key)
    request.session.flush()
    if user is not None:
        from django.contrib.auth.models import AnonymousUser

        request.user = AnonymousUser()
    try:
        session_ended.send(
            sender=end, request=request, event=event, reason=reason, username=username, user=user
        )
    except Exception:  # noqa: BLE001  the session is ended either way: fail closed
        logger.critical("session_ended receiver failed for %s", event, exc_info=True)
