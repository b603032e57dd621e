"""The sign-in, callback and sign-out sequences, as plain functions views and tests call.

Each step that can fail raises an :class:`~secure_sso.exceptions.SSOError`; the views
turn it into an error page. Signals are sent here, after state has changed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from django.contrib.auth import authenticate, login
from django.contrib.auth import logout as django_logout
from django.http import HttpRequest
from django.urls import reverse

from secure_sso import client, state
from secure_sso.adapter import get_adapter
from secure_sso.claims import merge_userinfo
from secure_sso.conf import sso_settings
from secure_sso.constants import (
    SESSION_AUTH_TIME_KEY,
    SESSION_ID_TOKEN_KEY,
    SESSION_ISSUER_KEY,
    SESSION_SUBJECT_KEY,
)
from secure_sso.exceptions import (
    CallbackTampered,
    ProviderDenied,
    SignInNotRecorded,
    SSOError,
    UserRefused,
)
from secure_sso.id_token import verify_id_token
from secure_sso.redirects import safe_next_url
from secure_sso.signals import sso_logged_out, sso_login_failed, sso_login_succeeded

logger = logging.getLogger("secure_sso")
BACKEND_PATH = "secure_sso.backends.SSOBackend"
MAX_CODE_LENGTH = 2048
#: OAuth error codes shown on the error page; anything else is reported as "error".
KNOWN_PROVIDER_ERRORS = frozenset(
    {"access_denied", "login_required", "consent_required", "interaction_required",
     "account_selection_required", "invalid_request", "unauthorized_client",
     "unsupported_response_type", "invalid_scope", "server_error", "temporarily_unavailable"}
)


def redirect_uri(request: HttpRequest) -> str:
    """The callback URL registered at the provider (``REDIRECT_URI`` or this site's)."""
    return sso_settings.REDIRECT_URI or request.build_absolute_uri(reverse("secure_sso:callback"))


def begin_login(request: HttpRequest, next_url: Any = None) -> str:
    """Start a sign-in: keep a pending state in the session, return the provider URL."""
    metadata = client.get_metadata()
    adapter = get_adapter()
    pending = state.new_pending_login_at_time(
        redirect_uri=redirect_uri(request),
        next_url=safe_next_url(next_url, adapter.get_login_redirect_url(request)),
        now=time.time(),
    )
    state.store(
        request.session,
        pending,
        ttl=sso_settings.PENDING_LOGIN_TTL,
        limit=sso_settings.MAX_PENDING_LOGINS,
    )
    return client.authorization_url(
        metadata,
        redirect_uri=pending.redirect_uri,
        state=pending.state,
        nonce=pending.nonce,
        code_verifier=pending.code_verifier,
    )


def _provider_error(params: Mapping[str, str]) -> ProviderDenied:
    error = params.get("error", "")
    code = error if error in KNOWN_PROVIDER_ERRORS else "provider_error"
    exc = ProviderDenied(f"provider returned error={code}", code=code)
    if code in {"server_error", "temporarily_unavailable"}:
        exc.status = 502
    return exc


def complete_login(request: HttpRequest, params: Mapping[str, str]) -> str:
    """Finish a sign-in from the callback's query parameters; return where to go next.

    Order matters: the pending state is consumed first (so any callback, good or
    bad, burns it), the ``iss`` parameter is checked before the code is spent, and
    the user is logged in only after every token check passed.
    """
    pending = state.consume(
        request.session, params.get("state"), ttl=sso_settings.PENDING_LOGIN_TTL
    )
    metadata = client.get_metadata()
    # SECURITY: RFC 9207 mix-up defence. A present `iss` must match; a provider that
    # advertises the parameter must send it.
    if "iss" in params:
        if params.get("iss") != metadata.issuer:
            raise CallbackTampered("iss parameter does not match", code="iss_mismatch")
    elif metadata.iss_parameter_supported:
        raise CallbackTampered("iss parameter missing", code="iss_missing")
    if "error" in params:
        raise _provider_error(params)
    code = params.get("code")
    if not isinstance(code, str) or not code or len(code) > MAX_CODE_LENGTH:
        raise CallbackTampered("code missing or malformed", code="code_missing")

    token = client.exchange_code(
        metadata,
        code=code,
        code_verifier=pending.code_verifier,
        redirect_uri=pending.redirect_uri,
    )
    claims = verify_id_token(
        token["id_token"],
        get_key_set=client.get_key_set,
        algorithms=sso_settings.ID_TOKEN_ALGORITHMS,
        issuer=metadata.issuer,
        client_id=sso_settings.CLIENT_ID,
        nonce=pending.nonce,
        leeway=sso_settings.CLOCK_SKEW,
        max_age=sso_settings.ID_TOKEN_MAX_AGE,
    )
    if sso_settings.FETCH_USERINFO and metadata.userinfo_endpoint:
        claims = merge_userinfo(claims, client.fetch_userinfo(metadata, token["access_token"]))

    user = authenticate(request, sso_issuer=metadata.issuer, sso_claims=claims)
    if user is None:
        raise UserRefused("no backend accepted the identity", code="backend_refused")
    # login() rotates the session key, so a fixated pre-login session id is useless.
    login(request, user, backend=BACKEND_PATH)
    request.session[SESSION_ID_TOKEN_KEY] = token["id_token"]
    request.session[SESSION_ISSUER_KEY] = metadata.issuer
    request.session[SESSION_SUBJECT_KEY] = claims["sub"]
    request.session[SESSION_AUTH_TIME_KEY] = int(time.time())
    identity = getattr(user, "_secure_sso_identity", None)
    try:
        sso_login_succeeded.send(
            sender=complete_login,
            request=request,
            user=user,
            identity=identity,
            claims=claims,
            created=getattr(user, "_secure_sso_created", False),
            previous_claims=getattr(identity, "_previous_claims", None),
        )
    except Exception:  # noqa: BLE001  any receiver failure (the audit write) refuses
        # SECURITY: fail closed. A sign-in that could not be recorded does not happen.
        logger.critical("sign-in not recorded; refusing it", exc_info=True)
        django_logout(request)
        raise SignInNotRecorded("a sso_login_succeeded receiver failed") from None
    return pending.next_url


def report_failure(request: HttpRequest, error: SSOError) -> None:
    """Tell observers (the audit app) that a sign-in step was refused.

    The step is refused whatever happens here; a receiver failure is only logged.
    """
    try:
        sso_login_failed.send(
            sender=complete_login, request=request, code=error.code, status=error.status
        )
    except Exception:  # noqa: BLE001
        logger.critical("sso_login_failed receiver failed for %s", error.code, exc_info=True)


def logout(request: HttpRequest) -> str:
    """End the local session, then return the provider's end-session URL or the landing page."""
    adapter = get_adapter()
    landing = adapter.get_logout_redirect_url(request)
    id_token = request.session.get(SESSION_ID_TOKEN_KEY)
    was_sso = SESSION_ISSUER_KEY in request.session
    user = getattr(request, "user", None)
    django_logout(request)
    target = None
    if was_sso and sso_settings.PROVIDER_LOGOUT and sso_settings.is_configured:
        target = client.end_session_url(
            id_token_hint=id_token if isinstance(id_token, str) else None,
            post_logout_redirect_uri=request.build_absolute_uri(landing),
        )
    if was_sso:
        # A password session logged out here is reported by Django's user_logged_out alone.
        try:
            sso_logged_out.send(
                sender=logout, request=request, user=user, provider_logout=target is not None
            )
        except Exception:  # noqa: BLE001  the user is logged out either way
            logger.critical("sso_logged_out receiver failed", exc_info=True)
    return target or landing
