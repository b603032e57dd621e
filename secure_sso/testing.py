"""Helpers for projects' own test suites.

``django.test.Client.force_login`` creates a session without passing through the
middleware, so the session has no binding cookie and ``SessionGuardMiddleware`` would
end it on the next request. :func:`force_login` logs in and binds in one step.
"""

from __future__ import annotations

from typing import Any

from secure_sso import binding, sessions
from secure_sso.conf import sso_settings


def force_login(
    client: Any, user: Any, backend: str | None = None, *, user_agent: str = ""
) -> None:
    """Log ``user`` in on a Django test ``client`` with a session bound to that client.

    Args:
        client: a ``django.test.Client`` or ``AsyncClient``.
        user: the user to sign in.
        backend: as for ``Client.force_login``.
        user_agent: the User-Agent the client will send, when it sends one.
    """
    client.force_login(user, backend)
    session = client.session
    secret = binding.new_binding_secret()
    fingerprint = binding.user_agent_family(user_agent) if sso_settings.BINDING_FINGERPRINT else ""
    session[sessions.SESSION_BINDING_KEY] = binding.binding_digest(secret, fingerprint)
    session.save()
    name = sso_settings.BINDING_COOKIE_NAME
    client.cookies[name] = secret
    client.cookies[f"__Host-{name}"] = secret


def session_tokens(client: Any) -> dict[str, Any] | None:
    """The tokens kept for a test client's SSO session (decrypted), or ``None``."""
    from secure_sso import tokens
    from secure_sso.constants import SESSION_ISSUER_KEY, SESSION_SUBJECT_KEY
    from secure_sso.models import SSOSession

    session = client.session
    row = SSOSession.objects.filter(session_key=session.session_key).first()
    if row is None or not row.tokens:
        return None
    return tokens.unseal(
        row.tokens, issuer=session[SESSION_ISSUER_KEY], subject=session[SESSION_SUBJECT_KEY]
    )
