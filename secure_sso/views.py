"""Thin HTTP views over :mod:`secure_sso.flows`; every refusal renders ``secure_sso/error.html``."""

from __future__ import annotations

import logging

from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.views import redirect_to_login
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods

from secure_sso import flows
from secure_sso.conf import sso_settings
from secure_sso.exceptions import InvalidLogoutToken, SSOError
from secure_sso.responses import error_page

logger = logging.getLogger("secure_sso")
security_logger = logging.getLogger("django.security.secure_sso")


def error_response(request: HttpRequest, error: SSOError) -> HttpResponse:
    """The page a person sees when a sign-in step is refused: what happened and a way on."""
    log = security_logger if error.status == 400 else logger
    # Only the error's code and class: details may name URLs but never values.
    log.warning("secure_sso refused: code=%s class=%s", error.code, type(error).__name__)
    flows.report_failure(request, error)
    return error_page(request, error)


def _redirect(url: str) -> HttpResponse:
    response = HttpResponseRedirect(url)
    add_never_cache_headers(response)
    return response


@require_GET
def login_view(request: HttpRequest) -> HttpResponse:
    """Start a sign-in; ``?next=`` is kept only if it is a same-site path."""
    try:
        return _redirect(flows.begin_login(request, request.GET.get(REDIRECT_FIELD_NAME)))
    except SSOError as exc:
        return error_response(request, exc)


@require_GET
def callback_view(request: HttpRequest) -> HttpResponse:
    """The provider's redirect back (``redirect_uri``)."""
    try:
        return _redirect(flows.complete_login(request, request.GET.dict()))
    except SSOError as exc:
        return error_response(request, exc)


@require_GET
def step_up_provider_view(request: HttpRequest) -> HttpResponse:
    """Start a provider step-up (``STEP_UP_METHOD = "provider"``) for the signed-in account;
    ``?next=`` is kept only if it is a same-site path. Anonymous visitors sign in first."""
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    try:
        return _redirect(flows.begin_step_up(request, request.GET.get(REDIRECT_FIELD_NAME)))
    except SSOError as exc:
        return error_response(request, exc)


@never_cache
@require_http_methods(["GET", "POST"])
def logout_view(request: HttpRequest) -> HttpResponse:
    """GET asks for confirmation (so a link or image cannot sign people out); POST signs out."""
    if request.method == "GET":
        return render(request, "secure_sso/logout.html")
    return _redirect(flows.logout(request))


@never_cache
@require_GET
def logout_complete_view(request: HttpRequest) -> HttpResponse:
    """The provider's ``post_logout_redirect_uri``: check ``state``, land signed out."""
    return _redirect(flows.complete_logout(request, request.GET.dict()))


# SECURITY: no CSRF token can come from the provider's server; the logout token's
# signature, audience, freshness and single use are what authenticate this request.
# Never inside ATOMIC_REQUESTS' transaction: the jti's claim commits with the logout in
# the flow's own transaction, whose failure is a 503 the provider retries (not a 500).
@transaction.non_atomic_requests
@csrf_exempt
@require_http_methods(["POST"])
def backchannel_logout_view(request: HttpRequest) -> HttpResponse:
    """OpenID Connect Back-Channel Logout 1.0: the provider POSTs ``logout_token``.

    200 when the token is valid (whether or not a session matched), 400 with an
    OAuth-style JSON error otherwise, 503 when keys or the store cannot be read, or the
    logout could not be stored or audited (nothing spent: the provider's retry of the
    same token is accepted); always ``Cache-Control: no-store``.
    """
    if not sso_settings.BACKCHANNEL_LOGOUT:
        raise Http404("back-channel logout is off")
    token = request.POST.get("logout_token")
    try:
        if not isinstance(token, str) or len(request.POST.getlist("logout_token")) != 1:
            raise InvalidLogoutToken("logout_token missing", code="logout_token_missing")
        flows.backchannel_logout(request, token)
        response = HttpResponse(status=200)
    except SSOError as exc:
        log = security_logger if exc.status == 400 else logger
        log.warning("back-channel logout refused: code=%s", exc.code)
        if exc.code == "logout_token_missing":
            flows.report_backchannel_refusal(request, exc)
        body = {"error": "invalid_request", "error_description": exc.code}
        if exc.status != 400:
            body["error"] = "temporarily_unavailable"
        response = JsonResponse(body, status=400 if exc.status == 400 else 503)
    except Exception:  # noqa: BLE001  a database or audit failure: the provider may retry
        logger.critical("back-channel logout failed", exc_info=True)
        response = JsonResponse(
            {"error": "temporarily_unavailable", "error_description": "server_error"}, status=503
        )
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    return response
