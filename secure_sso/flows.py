"""The sign-in, callback, provider step-up and sign-out sequences, as plain functions
views and tests call.

Each step that can fail raises an :class:`~secure_sso.exceptions.SSOError`; the views
turn it into an error page. Signals are sent here, after state has changed.

A provider step-up (:func:`begin_step_up`) is a sign-in of the account already signed
in, asked with ``prompt=login``, ``max_age=0`` and ``acr_values``; it comes back through
the same callback, whose pending entry says which of the two it is.
"""

from __future__ import annotations

import hmac
import logging
import math
import secrets
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth import authenticate, login
from django.contrib.auth import logout as django_logout
from django.http import HttpRequest
from django.urls import reverse

from secure_sso import client, session_index, sessions, state, stepup, store, tokens
from secure_sso.adapter import get_adapter
from secure_sso.claims import merge_userinfo
from secure_sso.conf import sso_settings
from secure_sso.constants import (
    SESSION_AUTH_TIME_KEY,
    SESSION_ISSUER_KEY,
    SESSION_LOGOUT_STATE_KEY,
    SESSION_SUBJECT_KEY,
    SESSION_VALIDATED_KEY,
)
from secure_sso.exceptions import (
    CallbackTampered,
    InvalidLogoutToken,
    ProviderDenied,
    SignInNotRecorded,
    SSOError,
    StepUpNotProven,
    StepUpUnavailable,
    StepUpWrongAccount,
    UserRefused,
)
from secure_sso.id_token import verify_id_token
from secure_sso.logout_token import LogoutRequest, verify_logout_token
from secure_sso.redirects import safe_next_url
from secure_sso.signals import (
    backchannel_logout as backchannel_logout_signal,
)
from secure_sso.signals import (
    backchannel_logout_refused,
    session_revalidated,
    sso_logged_out,
    sso_login_failed,
    sso_login_succeeded,
    sso_step_up_failed,
    sso_step_up_succeeded,
)

logger = logging.getLogger("secure_sso")
BACKEND_PATH = "secure_sso.backends.SSOBackend"
MAX_CODE_LENGTH = 2048
#: OAuth error codes shown on the error page; anything else is reported as "error".
KNOWN_PROVIDER_ERRORS = frozenset(
    {"access_denied", "login_required", "consent_required", "interaction_required",
     "account_selection_required", "invalid_request", "unauthorized_client",
     "unsupported_response_type", "invalid_scope", "server_error", "temporarily_unavailable"}
)
#: The step-up method recorded in the session and the audit trail for provider step-ups.
STEP_UP_METHOD_PROVIDER = "provider"


def redirect_uri(request: HttpRequest) -> str:
    """The callback URL registered at the provider (``REDIRECT_URI`` or this site's)."""
    return sso_settings.REDIRECT_URI or request.build_absolute_uri(reverse("secure_sso:callback"))


def _start(
    request: HttpRequest,
    next_url: Any,
    *,
    purpose: str = state.PURPOSE_LOGIN,
    identity: tuple[str, str] = ("", ""),
    extra: dict[str, str] | None = None,
) -> str:
    """Keep a new pending entry (state, nonce, PKCE verifier) in the session and return
    the provider URL that starts it: every trip to the authorization endpoint goes here."""
    metadata = client.get_metadata()
    pending = state.new_pending_login_at_time(
        redirect_uri=redirect_uri(request),
        next_url=safe_next_url(next_url, get_adapter().get_login_redirect_url(request)),
        now=time.time(),
        purpose=purpose,
        issuer=identity[0],
        subject=identity[1],
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
        extra=extra,
    )


def begin_login(request: HttpRequest, next_url: Any = None) -> str:
    """Start a sign-in: keep a pending state in the session, return the provider URL."""
    return _start(request, next_url)


def _provider_error(params: Mapping[str, str]) -> ProviderDenied:
    error = params.get("error", "")
    code = error if error in KNOWN_PROVIDER_ERRORS else "provider_error"
    exc = ProviderDenied(f"provider returned error={code}", code=code)
    if code in {"server_error", "temporarily_unavailable"}:
        exc.status = 502
    return exc


def _verified_callback(
    request: HttpRequest,
    params: Mapping[str, str],
    pending: state.PendingLogin,
    metadata: client.ProviderMetadata,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The callback checks both purposes share: ``iss``, error, code, exchange, ID token."""
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
    if pending.for_signed_in_account:
        # Before the code is spent: this session must still be the one that asked.
        _check_step_up_session(request, pending)

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
    return token, claims


def complete_login(request: HttpRequest, params: Mapping[str, str]) -> str:
    """Finish a sign-in (or a provider step-up) from the callback's query parameters;
    return where to go next.

    Order matters: the pending state is consumed first (so any callback, good or
    bad, burns it), the ``iss`` parameter is checked before the code is spent, and
    the user is logged in only after every token check passed.
    """
    pending = state.consume(
        request.session, params.get("state"), ttl=sso_settings.PENDING_LOGIN_TTL
    )
    # SECURITY: the session entry is gone, but another worker may hold the same session
    # loaded: the shared store makes the state single-use across all of them.
    if not store.use_once("state", pending.state, ttl=sso_settings.PENDING_LOGIN_TTL):
        raise CallbackTampered("state already used", code="state_replayed")
    if pending.is_step_up:
        with _reported_as_step_up():
            return _complete_step_up(request, params, pending)
    if pending.is_revalidation:
        return _complete_revalidation(request, params, pending)
    metadata = client.get_metadata()
    token, claims = _verified_callback(request, params, pending, metadata)
    if sso_settings.FETCH_USERINFO and metadata.userinfo_endpoint:
        claims = merge_userinfo(claims, client.fetch_userinfo(metadata, token["access_token"]))

    user = authenticate(request, sso_issuer=metadata.issuer, sso_claims=claims)
    if user is None:
        raise UserRefused("no backend accepted the identity", code="backend_refused")
    # login() rotates the session key, so a fixated pre-login session id is useless.
    login(request, user, backend=BACKEND_PATH)
    now = time.time()
    request.session[SESSION_ISSUER_KEY] = metadata.issuer
    request.session[SESSION_SUBJECT_KEY] = claims["sub"]
    request.session[SESSION_AUTH_TIME_KEY] = int(now)
    request.session[SESSION_VALIDATED_KEY] = int(now)
    sid = claims.get("sid")
    # Tokens stay on the server, encrypted, beside the index back-channel logout reads.
    session_index.record(
        request.session.session_key,
        user=user,
        issuer=metadata.issuer,
        subject=claims["sub"],
        sid=sid if isinstance(sid, str) and 0 < len(sid) <= 255 else None,
        tokens=tokens.seal(
            tokens.token_fields(token, now=now), issuer=metadata.issuer, subject=claims["sub"]
        ),
    )
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


# --- Provider step-up -------------------------------------------------------------


@contextmanager
def _reported_as_step_up() -> Iterator[None]:
    """Mark any :class:`SSOError` leaving the block as a step-up failure for
    :func:`report_failure` (``sso_step_up_failed`` instead of ``sso_login_failed``)."""
    try:
        yield
    except SSOError as exc:
        exc.step_up = True  # type: ignore[attr-defined]
        raise


def _session_identity(request: HttpRequest) -> tuple[str, str] | None:
    """``(issuer, sub)`` of the signed-in SSO session, or ``None``."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    return sessions.sso_identity(request.session)


def begin_step_up(request: HttpRequest, next_url: Any = None) -> str:
    """Start a provider step-up for the account signed in here; return the provider URL.

    The provider is asked to authenticate again whatever its session (``prompt=login``,
    ``max_age=0``) and, when ``STEP_UP_ACR_VALUES`` is set, for one of those ``acr``.

    Raises:
        StepUpUnavailable: nobody is signed in, or not through the configured provider.
    """
    with _reported_as_step_up():
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            raise StepUpUnavailable("nobody is signed in", code="step_up_not_signed_in")
        identity = _session_identity(request)
        if identity is None:
            raise StepUpUnavailable("the session did not sign in through the provider")
        issuer, _subject = identity
        if issuer != client.get_metadata().issuer:
            raise StepUpUnavailable("the session signed in with another issuer")
        extra = {"prompt": "login", "max_age": "0"}
        if sso_settings.STEP_UP_ACR_VALUES:
            extra["acr_values"] = " ".join(sso_settings.STEP_UP_ACR_VALUES)
        return _start(
            request, next_url, purpose=state.PURPOSE_STEP_UP, identity=identity, extra=extra
        )


def _check_step_up_session(request: HttpRequest, pending: state.PendingLogin) -> None:
    """This session is still signed in as the account that started the step-up."""
    if _session_identity(request) != (pending.issuer, pending.subject):
        raise StepUpWrongAccount(
            "the session is not the one that started the step-up", code="step_up_session_changed"
        )


def step_up_factor_proven(
    claims: Mapping[str, Any], *, acr_values: Any, amr_values: Any
) -> bool:
    """Whether the ID token proves a second factor: its ``acr`` is one of ``acr_values``
    or its ``amr`` list names one of ``amr_values``. Empty settings prove nothing."""
    acr = claims.get("acr")
    if isinstance(acr, str) and acr and acr in acr_values:
        return True
    amr = claims.get("amr")
    return isinstance(amr, list) and any(
        isinstance(method, str) and method in amr_values for method in amr
    )


def check_step_up_claims_at_time(
    claims: Mapping[str, Any], pending: state.PendingLogin, *, now: float
) -> None:
    """The verified ID token of a step-up: same account, fresh authentication, a factor.

    Raises:
        StepUpWrongAccount: another issuer or ``sub`` than the session's
            (``step_up_wrong_account``): a different account cannot step this one up.
        StepUpNotProven: ``auth_time`` missing, malformed, before the step-up started
            or in the future (``step_up_not_fresh``), or no accepted ``acr``/``amr``
            (``step_up_not_proven``).
    """
    if claims.get("iss") != pending.issuer or claims.get("sub") != pending.subject:
        raise StepUpWrongAccount("step-up answered for another account")
    auth_time = claims.get("auth_time")
    skew = sso_settings.CLOCK_SKEW
    if (
        isinstance(auth_time, bool)
        or not isinstance(auth_time, int | float)
        or not math.isfinite(auth_time)
    ):
        raise StepUpNotProven("auth_time missing or not a number", code="step_up_not_fresh")
    # SECURITY: the provider must have authenticated the person after the step-up began;
    # an older authentication (a provider session reused despite max_age=0) proves nothing.
    if auth_time < pending.created_at - skew or auth_time > now + skew:
        raise StepUpNotProven("auth_time outside the step-up", code="step_up_not_fresh")
    if not step_up_factor_proven(
        claims,
        acr_values=sso_settings.STEP_UP_ACR_VALUES,
        amr_values=sso_settings.STEP_UP_AMR,
    ):
        raise StepUpNotProven("no accepted acr or amr in the ID token")


def _complete_step_up(
    request: HttpRequest, params: Mapping[str, str], pending: state.PendingLogin
) -> str:
    metadata = client.get_metadata()
    token, claims = _verified_callback(request, params, pending, metadata)
    check_step_up_claims_at_time(claims, pending, now=time.time())
    # The session may have changed while the provider was asked (another tab).
    _check_step_up_session(request, pending)
    # No authenticate()/login(): the account is already signed in and stays the same.
    stepup.mark_step_up(request, STEP_UP_METHOD_PROVIDER)
    try:
        sso_step_up_succeeded.send(
            sender=complete_login,
            request=request,
            user=request.user,
            claims=claims,
            method=STEP_UP_METHOD_PROVIDER,
        )
    except Exception:  # noqa: BLE001  any receiver failure (the audit write) refuses
        # SECURITY: fail closed. A step-up that could not be recorded does not count.
        logger.critical("step-up not recorded; refusing it", exc_info=True)
        stepup.clear_step_up(request)
        raise SignInNotRecorded("a sso_step_up_succeeded receiver failed") from None
    # The newer tokens (and ID token, the better id_token_hint at logout) are kept.
    kept = tokens.load(request) or {}
    kept.update(tokens.token_fields(token, now=time.time()))
    tokens.save(request, kept)
    return pending.next_url


# --- Re-validation ----------------------------------------------------------------


#: Provider answers to ``prompt=none`` meaning the person is no longer signed in there.
REVALIDATION_ENDED = frozenset(
    {"login_required", "consent_required", "interaction_required",
     "account_selection_required", "access_denied"}
)


def begin_revalidation(request: HttpRequest, next_url: Any = None) -> str:
    """Start a silent check (``prompt=none``) that this session's account is still signed in
    and allowed at the provider; return the provider URL.

    Raises:
        StepUpUnavailable: the session did not sign in through the provider.
    """
    identity = _session_identity(request)
    if identity is None:
        raise StepUpUnavailable("the session did not sign in through the provider")
    return _start(
        request, next_url, purpose=state.PURPOSE_REVALIDATE, identity=identity,
        extra={"prompt": "none"},
    )


def _complete_revalidation(
    request: HttpRequest, params: Mapping[str, str], pending: state.PendingLogin
) -> str:
    """The provider's answer to ``prompt=none``: still the same account, or the end."""

    if params.get("error") in REVALIDATION_ENDED and params.get("iss", pending.issuer) == (
        pending.issuer
    ):
        _check_step_up_session(request, pending)
        sessions.end(request, event="session.revalidation_failed", reason=params["error"])
        return f"{sso_settings.login_url}?{urlencode({'next': pending.next_url})}"
    metadata = client.get_metadata()
    token, claims = _verified_callback(request, params, pending, metadata)
    if claims.get("iss") != pending.issuer or claims.get("sub") != pending.subject:
        sessions.end(request, event="session.revalidation_failed", reason="account_changed")
        raise StepUpWrongAccount("re-validation answered for another account")
    request.session[SESSION_VALIDATED_KEY] = int(time.time())
    kept = tokens.load(request) or {}
    kept.update(tokens.token_fields(token, now=time.time()))
    tokens.save(request, kept)
    session_revalidated.send(
        sender=complete_login, request=request, user=request.user, method="prompt_none"
    )
    return pending.next_url


def report_failure(request: HttpRequest, error: SSOError) -> None:
    """Tell observers (the audit app) that a sign-in step was refused.

    The step is refused whatever happens here; a receiver failure is only logged.
    A refused provider step-up is reported as ``sso_step_up_failed``.
    """
    try:
        if getattr(error, "step_up", False):
            sso_step_up_failed.send(
                sender=complete_login,
                request=request,
                code=error.code,
                status=error.status,
                method=STEP_UP_METHOD_PROVIDER,
            )
        else:
            sso_login_failed.send(
                sender=complete_login, request=request, code=error.code, status=error.status
            )
    except Exception:  # noqa: BLE001
        logger.critical("sign-in failure receiver failed for %s", error.code, exc_info=True)


def post_logout_redirect_uri(request: HttpRequest) -> str:
    """Where the provider sends the browser after its sign-out (registered there)."""
    return sso_settings.POST_LOGOUT_REDIRECT_URI or request.build_absolute_uri(
        reverse("secure_sso:logout_complete")
    )


def logout(request: HttpRequest) -> str:
    """End the local session, then return the provider's end-session URL or the landing page.

    The provider is sent ``id_token_hint``, ``post_logout_redirect_uri`` and a fresh
    ``state``, kept in the (new, empty) session and checked by :func:`complete_logout`.
    """
    adapter = get_adapter()
    landing = adapter.get_logout_redirect_url(request)
    was_sso = SESSION_ISSUER_KEY in request.session
    id_token = tokens.id_token_hint(request) if was_sso else None
    user = getattr(request, "user", None)
    django_logout(request)
    target = None
    if was_sso and sso_settings.PROVIDER_LOGOUT and sso_settings.is_configured:
        logout_state = secrets.token_urlsafe(32)
        target = client.end_session_url(
            id_token_hint=id_token,
            post_logout_redirect_uri=post_logout_redirect_uri(request),
            state=logout_state,
            fallback_return_to=request.build_absolute_uri(landing),
        )
        if target:
            request.session[SESSION_LOGOUT_STATE_KEY] = {
                "state": logout_state, "next": landing, "created_at": time.time()
            }
    if was_sso:
        # A password session logged out here is reported by Django's user_logged_out alone.
        try:
            sso_logged_out.send(
                sender=logout, request=request, user=user, provider_logout=target is not None
            )
        except Exception:  # noqa: BLE001  the user is logged out either way
            logger.critical("sso_logged_out receiver failed", exc_info=True)
    return target or landing


def complete_logout(request: HttpRequest, params: Mapping[str, str]) -> str:
    """The provider's redirect after its sign-out: where to land.

    The person is signed out whatever arrives here. A matching ``state`` (single use,
    within ``PENDING_LOGIN_TTL``) restores the landing page chosen at logout; a missing
    or foreign one lands on ``LOGOUT_REDIRECT_URL`` and is logged.
    """
    default = get_adapter().get_logout_redirect_url(request)
    entry = request.session.pop(SESSION_LOGOUT_STATE_KEY, None)
    given = params.get("state")
    if (
        isinstance(entry, dict)
        and isinstance(given, str)
        and given.isascii()
        and isinstance(entry.get("state"), str)
        and hmac.compare_digest(entry["state"].encode(), given.encode())
        and time.time() - float(entry.get("created_at", 0)) < sso_settings.PENDING_LOGIN_TTL
    ):
        return safe_next_url(entry.get("next"), default)
    logger.warning("post-logout redirect without the expected state")
    return default


def backchannel_logout(request: HttpRequest, logout_token: Any) -> int:
    """Verify a back-channel logout token and end the Django sessions it names.

    Returns how many sessions were ended (zero is a success: the session may have
    ended already). Observers get ``backchannel_logout`` or ``backchannel_logout_refused``.

    The ``jti`` is spent in one transaction with what the logout does: the ``SSOSession``
    rows, the Django sessions of a database engine and the ``backchannel_logout`` signal
    (the audit event). If any of it fails, all of it rolls back and the cache claim of
    ``STATE_STORE = "cache"`` is deleted: the token stays usable, so the provider's retry
    is accepted and recorded. Sessions in a cache or files cannot be un-ended; the retry
    ends them again (harmless) and is recorded like the first try would have been.

    Raises:
        InvalidLogoutToken: any failed check, a replayed ``jti`` included.
        ProviderUnavailable / StoreUnavailable: the keys or the store could not be read.
        Anything a database or an observer raises (the audit's ``AuditWriteError``):
            nothing was spent.
    """
    try:
        metadata = client.get_metadata()
        logout = verify_logout_token(
            logout_token,
            get_key_set=client.get_key_set,
            algorithms=sso_settings.ID_TOKEN_ALGORITHMS,
            issuer=metadata.issuer,
            client_id=sso_settings.CLIENT_ID,
            leeway=sso_settings.CLOCK_SKEW,
            max_age=sso_settings.LOGOUT_TOKEN_MAX_AGE,
        )
        ttl = sso_settings.LOGOUT_TOKEN_MAX_AGE + 2 * sso_settings.CLOCK_SKEW
        # SECURITY: a logout token is used once (OIDC Back-Channel Logout 2.6, step 10),
        # and it is used only if its logout is done and recorded (issue #10): the claim
        # commits with the sessions it ends and their audit event, or not at all.
        try:
            with store.use_once_in_transaction(
                "jti", f"{logout.issuer}\0{logout.jti}", ttl=ttl
            ) as first_use:
                if not first_use:
                    raise InvalidLogoutToken("jti already used", code="logout_token_replayed")
                return _end_provider_sessions(request, logout)
        except SSOError:
            raise
        except Exception:
            # SECURITY: not recorded, so nothing is spent and the provider may retry; but
            # access ends now (fail closed). The index rows stay, so the retry finds the
            # sessions again and records how many it ended.
            _end_access_only(logout)
            raise
    except SSOError as exc:
        # Outside the rolled-back transaction: the refusal itself is recorded.
        report_backchannel_refusal(request, exc)
        raise


def report_backchannel_refusal(request: HttpRequest, error: SSOError) -> None:
    """Tell observers (the audit app) a logout token was refused; never raises."""
    try:
        backchannel_logout_refused.send(sender=backchannel_logout, request=request, code=error.code)
    except Exception:  # noqa: BLE001  the token is refused either way
        logger.critical("backchannel_logout_refused receiver failed", exc_info=True)


def _end_access_only(logout: LogoutRequest) -> None:
    """Best effort, after a failed logout: end the Django sessions, keep their index rows."""
    try:
        session_index.end_sessions(
            session_index.find(logout.issuer, sid=logout.sid, subject=logout.subject)
        )
    except Exception as exc:  # noqa: BLE001  the database may be what failed
        logger.critical("back-channel logout: sessions not ended either: %s",
                        exc.__class__.__name__)


def _end_provider_sessions(request: HttpRequest, logout: LogoutRequest) -> int:
    rows = session_index.find(logout.issuer, sid=logout.sid, subject=logout.subject)
    ended = [(row.user, row.session_key) for row in rows]
    count = session_index.end(rows)
    backchannel_logout_signal.send(
        sender=backchannel_logout,
        request=request,
        issuer=logout.issuer,
        subject=logout.subject,
        sid=logout.sid,
        sessions=ended,
    )
    return count


def verify_refreshed_id_token(id_token: str, *, issuer: str, subject: str) -> dict[str, Any]:
    """An ID token from a refresh: verified like any, without nonce, for the same ``sub``
    (OpenID Connect Core 12.2).

    Raises:
        InvalidIDToken: a failed check, or another ``sub`` (``id_token_sub_changed``).
    """
    claims = verify_id_token(
        id_token,
        get_key_set=client.get_key_set,
        algorithms=sso_settings.ID_TOKEN_ALGORITHMS,
        issuer=issuer,
        client_id=sso_settings.CLIENT_ID,
        nonce=None,
        leeway=sso_settings.CLOCK_SKEW,
        max_age=sso_settings.ID_TOKEN_MAX_AGE,
    )
    if claims.get("sub") != subject:
        from secure_sso.exceptions import InvalidIDToken

        raise InvalidIDToken("refreshed ID token for another sub", code="id_token_sub_changed")
    return claims
