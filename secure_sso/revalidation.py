"""Re-checking a signed-in account with the provider every ``REVALIDATE_AFTER`` seconds.

A person disabled or signed out at the provider keeps a Django session until it
expires; with re-validation on, they lose it within ``REVALIDATE_AFTER`` seconds of
their next request. The check is a refresh-token round trip when the session has one
(any request, no browser hop), otherwise a silent ``prompt=none`` sign-in on the next
GET page navigation, as mozilla-django-oidc's ``SessionRefresh`` does. Requests that
cannot be redirected (forms, ``fetch``) get one more period of grace, then a 401 page.

The two prove different things: a refresh shows the account is enabled and the grant
not revoked, while many providers keep ``offline_access`` grants after the person
signs out there; ``prompt=none`` shows the provider session itself is alive. Sign-out
at the provider is what back-channel logout is for.
"""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers

from secure_sso import responses
from secure_sso.conf import sso_settings
from secure_sso.constants import SESSION_ISSUER_KEY, SESSION_VALIDATED_KEY
from secure_sso.exceptions import ProviderUnavailable, ReauthenticationRequired, SSOError

logger = logging.getLogger("secure_sso")


def overdue_at_time(session: Any, *, now: float) -> float:
    """Seconds past due (> 0 means re-validate now); 0 when off or not an SSO session."""
    period = sso_settings.REVALIDATE_AFTER
    if not period or SESSION_ISSUER_KEY not in session:
        return 0
    validated = session.get(SESSION_VALIDATED_KEY)
    if not isinstance(validated, int | float):
        return period  # an SSO session from before re-validation was on: due now
    return max(0.0, now - validated - period + 1) if now - validated >= period else 0


def is_page_navigation(request: HttpRequest) -> bool:
    """A GET the browser shows as a page, which can be sent through the provider."""
    if request.method != "GET":
        return False
    mode = request.headers.get("Sec-Fetch-Mode")
    if mode is not None:
        return mode == "navigate"
    return "text/html" in request.headers.get("Accept", "")


def revalidate(request: HttpRequest, *, now: float, overdue: float) -> HttpResponseBase | None:
    """Re-validate an overdue session; ``None`` lets the request through."""
    from secure_sso import flows, tokens
    from secure_sso.signals import session_revalidated

    if request.path in sso_settings.sso_paths:
        return None  # the callback, login and logout themselves are never interrupted
    if sso_settings.REFRESH_TOKENS:
        kept = tokens.load(request)
        if kept and isinstance(kept.get("refresh_token"), str):
            try:
                tokens.refresh(request, force=True)
            except ReauthenticationRequired:
                return responses.signed_out(request)
            except ProviderUnavailable:
                logger.warning("re-validation: provider unavailable; retried next request")
                return _grace_or_refuse(request, overdue)
            request.session[SESSION_VALIDATED_KEY] = int(now)
            session_revalidated.send(
                sender=revalidate, request=request, user=request.user, method="refresh"
            )
            return None
    if is_page_navigation(request):
        try:
            url = flows.begin_revalidation(request, request.get_full_path())
        except SSOError as exc:
            logger.warning("re-validation could not start: code=%s", exc.code)
            return _grace_or_refuse(request, overdue)
        response = HttpResponseRedirect(url)
        add_never_cache_headers(response)
        return response
    return _grace_or_refuse(request, overdue)


def _grace_or_refuse(request: HttpRequest, overdue: float) -> HttpResponseBase | None:
    if overdue < sso_settings.REVALIDATE_AFTER:
        return None
    response = render(request, "secure_sso/revalidate.html", status=401)
    add_never_cache_headers(response)
    return response
