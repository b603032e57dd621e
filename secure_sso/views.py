"""Thin HTTP views over :mod:`secure_sso.flows`; every refusal renders ``secure_sso/error.html``."""

from __future__ import annotations

import logging

from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from secure_sso import flows
from secure_sso.exceptions import SSOError

logger = logging.getLogger("secure_sso")
security_logger = logging.getLogger("django.security.secure_sso")


def error_response(request: HttpRequest, error: SSOError) -> HttpResponse:
    """The page a person sees when a sign-in step is refused: what happened and a way on."""
    log = security_logger if error.status == 400 else logger
    # Only the error's code and class: details may name URLs but never values.
    log.warning("secure_sso refused: code=%s class=%s", error.code, type(error).__name__)
    flows.report_failure(request, error)
    response = render(
        request,
        "secure_sso/error.html",
        {"error_code": error.code, "message": error.public_message},
        status=error.status,
    )
    add_never_cache_headers(response)
    return response


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
