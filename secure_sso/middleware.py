"""The hardening middleware, in the order they go in ``MIDDLEWARE``.

``TransportMiddleware`` (first)
    https only (GET/HEAD redirected, other methods refused), HSTS, flags on every
    cookie, and the security headers.
``SessionGuardMiddleware`` (after ``AuthenticationMiddleware``)
    browser binding, idle and absolute lifetimes, key rotation on privilege change.
``StepUpMiddleware`` (after ``SessionGuardMiddleware``)
    a recent step-up for the URLs listed in ``STEP_UP_URLS`` (and optionally the admin).
``CSPMiddleware`` (anywhere; django-csp's, with the package's strict default policy)

Each follows Django's sync-and-async pattern. Settings come from :data:`sso_settings`,
parsed once and cached (and refreshed on ``setting_changed``, so ``override_settings``
works on a running server); the request path only reads attributes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from csp.constants import HEADER as CSP_HEADER
from csp.middleware import CheckableLazyObject, PolicyParts
from csp.middleware import CSPMiddleware as DjangoCSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.http import (
    HttpRequest,
    HttpResponseBase,
    HttpResponsePermanentRedirect,
    HttpResponseRedirect,
)
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers

from secure_sso import binding, responses, revalidation, sessions, stepup
from secure_sso.conf import is_loopback_url, sso_settings
from secure_sso.csp import report_only_policy_set
from secure_sso.exceptions import (
    ProviderUnavailable,
    ReauthenticationRequired,
    StoreUnavailable,
)

GetResponse = Callable[[HttpRequest], Any]
SAFE_METHODS = frozenset({"GET", "HEAD"})
#: Statuses django-csp leaves without a policy when DEBUG (its debug pages).
_CSP_DEBUG_EXEMPT = frozenset({500, 404})


class _Base:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        response = self.process_request(request)
        if response is None:
            response = self.get_response(request)
        return self.process_response(request, response)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        response = await self.aprocess_request(request)
        if response is None:
            response = await self.get_response(request)
        return self.process_response(request, response)

    def process_request(self, request: HttpRequest) -> HttpResponseBase | None:
        return None

    async def aprocess_request(self, request: HttpRequest) -> HttpResponseBase | None:
        return self.process_request(request)

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        return response


def _plain_http_allowed(request: HttpRequest) -> bool:
    """Only the development mode, only for a loopback host."""
    return sso_settings.DEVELOPMENT_MODE and is_loopback_url(f"http://{request.get_host()}/")


class TransportMiddleware(_Base):
    """https only, HSTS, hardened cookies and security headers on every response."""

    def process_request(self, request: HttpRequest) -> HttpResponseBase | None:
        # request.is_secure() honours SECURE_PROXY_SSL_HEADER and nothing else.
        if (
            not sso_settings.HTTPS_REDIRECT
            or request.is_secure()
            or _plain_http_allowed(request)
        ):
            return None
        if request.method in SAFE_METHODS:
            return HttpResponsePermanentRedirect(
                f"https://{request.get_host()}{request.get_full_path()}"
            )
        # SECURITY: a POST over http has already crossed the network in clear; refuse it
        # rather than redirect and invite the browser to send it again.
        return render(request, "secure_sso/https_required.html", status=403)

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        secure = request.is_secure()
        hsts = sso_settings.hsts_header
        if secure and hsts:
            response.headers.setdefault("Strict-Transport-Security", hsts)
        for name, value in sso_settings.security_headers:
            response.headers.setdefault(name, value)
        if (
            sso_settings.csp_fallback
            and "Content-Security-Policy" not in response.headers
            and not getattr(response, "_csp_exempt", False)
        ):
            # Answered before CSPMiddleware ran (the https and session-ended pages):
            # the same strict policy; without a nonce, inline styles stay blocked.
            response.headers["Content-Security-Policy"] = package_policy_header(
                getattr(request, "_csp_nonce", None)
            )
        if response.cookies:
            harden_cookies(response, secure=secure or not _plain_http_allowed(request))
        return response


def harden_cookies(response: HttpResponseBase, *, secure: bool) -> None:
    """Secure, HttpOnly (unless listed in ``JS_READABLE_COOKIES``) and a SameSite on every cookie.

    SECURITY: every cookie, whoever set it. ``secure`` is false only for plain http in
    development mode on loopback, where a browser would drop a Secure cookie.
    """
    js_readable = sso_settings.JS_READABLE_COOKIES
    samesite = sso_settings.COOKIE_SAMESITE
    for name, morsel in response.cookies.items():
        if secure:
            morsel["secure"] = True
        if name not in js_readable:
            morsel["httponly"] = True
        if not morsel["samesite"]:
            morsel["samesite"] = samesite


class SessionGuardMiddleware(_Base):
    """Binds each signed-in session to its browser and ends it when idle or too old."""

    @staticmethod
    def binding_cookie_name(request: HttpRequest) -> str:
        # __Host- keeps the cookie on this exact origin (no Domain, Path=/, Secure).
        name = sso_settings.BINDING_COOKIE_NAME
        return f"__Host-{name}" if request.is_secure() else name

    def process_request(self, request: HttpRequest) -> HttpResponseBase | None:
        if sso_settings.session_cookie_name not in request.COOKIES:
            return None  # no session: nothing to guard, and no session load
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        session = request.session
        now = time.time()
        if sessions.SESSION_CREATED_KEY not in session:
            # An authenticated session that never went through start(): created before
            # the package was installed, or by a path that bypassed login().
            return self.refuse(request, "session.binding_mismatch", "unbound_session")
        if sso_settings.SESSION_BINDING and not binding.binding_matches(
            session.get(sessions.SESSION_BINDING_KEY),
            request.COOKIES.get(self.binding_cookie_name(request)),
            sessions.fingerprint(request),
        ):
            return self.refuse(request, "session.binding_mismatch", "binding_mismatch")
        idle = sso_settings.SESSION_IDLE_TIMEOUT
        reason = binding.expiry_reason_at_time(
            created_at=session.get(sessions.SESSION_CREATED_KEY),
            last_seen=session.get(sessions.SESSION_LAST_SEEN_KEY),
            now=now,
            idle=idle,
            absolute=sso_settings.SESSION_ABSOLUTE_TIMEOUT,
        )
        if reason:
            sessions.end(request, event="session.expired", reason=reason)
            return None  # continue signed out; login_required views send them to sign in
        if session.get(sessions.SESSION_PRIVILEGE_KEY) != sessions.privilege(user):
            # Rights granted or removed since the last request: new key, new binding.
            sessions.rotate(request)
        # Writing the session costs a query; a tenth of the idle timeout (at most a
        # minute) is precise enough.
        touch_every = max(1, min(60, idle // 10)) if idle else 60
        if now - session.get(sessions.SESSION_LAST_SEEN_KEY, 0) >= touch_every:
            session[sessions.SESSION_LAST_SEEN_KEY] = now
        if sso_settings.REVALIDATE_AFTER:
            overdue = revalidation.overdue_at_time(session, now=now)
            if overdue:
                return revalidation.revalidate(request, now=now, overdue=overdue)
        return None

    def process_exception(
        self, request: HttpRequest, exception: Exception
    ) -> HttpResponseBase | None:
        """A view's ``tokens.get_access_token()`` failed: the session ended (sign in
        again), or the provider or store is unreachable (a clear page, never a 500)."""
        if isinstance(exception, ReauthenticationRequired):
            return responses.signed_out(request)
        if isinstance(exception, ProviderUnavailable | StoreUnavailable):
            return responses.error_page(request, exception)
        return None

    async def aprocess_request(self, request: HttpRequest) -> HttpResponseBase | None:
        if sso_settings.session_cookie_name not in request.COOKIES:
            return None
        return await sync_to_async(self.process_request)(request)

    def refuse(self, request: HttpRequest, event: str, reason: str) -> HttpResponseBase:
        """Flush, audit, and send the person to sign in again (GET) or refuse (others)."""
        sessions.end(request, event=event, reason=reason)
        return responses.signed_out(request)

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        secret = getattr(request, sessions.NEW_BINDING_ATTR, None)
        if secret:
            response.set_cookie(
                self.binding_cookie_name(request),
                secret,
                max_age=sso_settings.SESSION_ABSOLUTE_TIMEOUT or None,
                path="/",
                secure=request.is_secure(),
                httponly=True,
                samesite="Lax",
            )
        return response


class StepUpMiddleware(_Base):
    """Requires a recent step-up for the URLs in ``STEP_UP_URLS`` (and the admin with
    ``STEP_UP_ADMIN``), so an existing app is protected without touching its views.

    Matching happens in ``process_view``, where Django has already resolved the URL:
    nothing is resolved twice.
    """

    def __init__(self, get_response: GetResponse) -> None:
        super().__init__(get_response)
        if self.is_async and type(self).process_view is StepUpMiddleware.process_view:
            # Django wraps a sync process_view in sync_to_async under ASGI: a thread switch
            # per request, also on the common path where nothing needs a step-up. (Django
            # picks the wrapper by the handler's mode: async here means ASGI unless an
            # async-only middleware sits below, where this still works, through a loop.)
            self.process_view = self.aprocess_view  # type: ignore[method-assign]

    async def aprocess_view(
        self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: Any
    ) -> HttpResponseBase | None:
        """:meth:`process_view` for the async handler: the step-up look-up (session and
        devices) goes to a thread only for a protected URL and a signed-in user."""
        if not (sso_settings.step_up_patterns or sso_settings.STEP_UP_ADMIN):
            return None
        match = request.resolver_match
        if match is None or match.namespace == "secure_sso" or not self.protects(request, match):
            return None
        return await sync_to_async(type(self).process_view)(
            self, request, view_func, view_args, view_kwargs
        )

    def process_view(
        self, request: HttpRequest, view_func: Any, view_args: Any, view_kwargs: Any
    ) -> HttpResponseBase | None:
        if not (sso_settings.step_up_patterns or sso_settings.STEP_UP_ADMIN):
            return None
        match = request.resolver_match
        if match is None or match.namespace == "secure_sso" or not self.protects(request, match):
            return None
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None  # the view's own login_required (or the admin) asks for sign-in first
        if stepup.has_recent_step_up(request):
            return None
        response = HttpResponseRedirect(stepup.step_up_redirect_url(request))
        add_never_cache_headers(response)
        return response

    @staticmethod
    def protects(request: HttpRequest, match: Any) -> bool:
        if sso_settings.STEP_UP_ADMIN and match.app_name == "admin":
            return match.url_name not in {"login", "logout"}
        for kind, value in sso_settings.step_up_patterns:
            if kind == "prefix" and request.path_info.startswith(value):
                return True
            if kind == "name" and value in (match.view_name, match.url_name):
                return True
        return False


#: Response attributes through which django-csp's decorators change the policy of one view.
_CSP_VIEW_ATTRS = (
    "_csp_config", "_csp_update", "_csp_replace",
    "_csp_config_ro", "_csp_update_ro", "_csp_replace_ro",
)
_NONCE_MARK = "\x00secure-sso-nonce\x00"


class _PolicyCache:
    """The package policy's header value, built once per policy instead of per response.

    Keyed by the identity of ``sso_settings.csp_policy`` (a new object after every
    settings reload). The value with a nonce is kept split around the nonce, so each
    response only joins strings.
    """

    __slots__ = ("config", "without_nonce", "around_nonce")

    def __init__(self) -> None:
        self.config: Any = None
        self.without_nonce = ""
        self.around_nonce: list[str] = []

    def header(self, config: Any, nonce: str | None) -> str:
        if config is not self.config:
            # build_policy orders directives by iterating a set: stable within a process,
            # so a cached value equals what it would build for this response.
            around = build_policy(config=config, nonce=_NONCE_MARK).split(_NONCE_MARK)
            self.without_nonce = build_policy(config=config, nonce=None)
            self.around_nonce = around
            self.config = config
        if not nonce:
            return self.without_nonce
        return nonce.join(self.around_nonce)


_policy_cache = _PolicyCache()


def package_policy_header(nonce: str | None) -> str:
    """The ``Content-Security-Policy`` value of the package policy, with ``nonce`` if given."""
    return _policy_cache.header(sso_settings.csp_policy, nonce)


class CSPMiddleware(DjangoCSPMiddleware):
    """django-csp with the package's strict policy when the project sets none.

    With ``CONTENT_SECURITY_POLICY`` unset, the policy is :func:`secure_sso.csp.package_policy`
    (strict default plus ``SECURE_SSO["CSP"]``); per-view ``@csp_update``/``@csp_replace``
    decorators keep working.

    Responses that no decorator touched get the package policy's header from a per-policy
    cache (django-csp would copy and rebuild the policy for every response); anything
    else (a project policy, a report-only policy, a decorated view, a subclass changing
    :meth:`get_policy_parts`) goes through django-csp unchanged.
    """

    def __init__(self, get_response: GetResponse) -> None:
        super().__init__(get_response)
        cls = type(self)
        self._own_parts = cls.get_policy_parts is CSPMiddleware.get_policy_parts
        # django-csp's hooks only build strings (a lazy nonce, a header): under ASGI they run
        # inline instead of through sync_to_async (two thread switches per request, the
        # largest cost of this middleware there). A subclass overriding a hook may do I/O
        # and keeps django-csp's MiddlewareMixin path.
        self._inline = (
            self._own_parts
            and cls.process_request is DjangoCSPMiddleware.process_request
            and cls.process_response is CSPMiddleware.process_response
        )

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        # MiddlewareMixin.__call__ without its hasattr() look-ups: both hooks exist.
        response = self.process_request(request) or self.get_response(request)
        return self.process_response(request, response)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        if not self._inline:
            return await super().__acall__(request)  # type: ignore[no-any-return]
        response = self.process_request(request) or await self.get_response(request)
        return self.process_response(request, response)

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        config = sso_settings.csp_policy
        if (
            config is None
            or not self._own_parts
            or report_only_policy_set()
            or any(getattr(response, name, None) is not None for name in _CSP_VIEW_ATTRS)
        ):
            return super().process_response(request, response)
        if response.status_code in _CSP_DEBUG_EXEMPT and settings.DEBUG:
            return response
        nonce = getattr(request, "_csp_nonce", None)
        if CSP_HEADER not in response and getattr(response, "_csp_exempt", False) is False:
            response[CSP_HEADER] = _policy_cache.header(config, nonce)
        if nonce is None:
            # As django-csp: a nonce asked for after the header is written is an error.
            request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        if not report_only and parts.config is None:
            parts.config = sso_settings.csp_policy
        return parts


__all__ = ["CSPMiddleware", "SessionGuardMiddleware", "StepUpMiddleware", "TransportMiddleware"]
