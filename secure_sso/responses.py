"""The pages a refused or ended request gets, shared by views and middleware; never cached."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponseRedirect
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.utils.cache import add_never_cache_headers
from django.utils.http import urlencode

from secure_sso.conf import sso_settings
from secure_sso.exceptions import SSOError

SAFE_METHODS = frozenset({"GET", "HEAD"})


def error_page(request: HttpRequest, error: SSOError) -> HttpResponseBase:
    """``secure_sso/error.html`` for ``error``: its public message and code, nothing more."""
    response = render(
        request,
        "secure_sso/error.html",
        {"error_code": error.code, "message": error.public_message},
        status=error.status,
    )
    add_never_cache_headers(response)
    return response


def signed_out(request: HttpRequest) -> HttpResponseBase:
    """After a session was ended: sign in again (GET, HEAD), or a "session ended" page."""
    if request.method in SAFE_METHODS:
        response: HttpResponseBase = HttpResponseRedirect(
            f"{sso_settings.login_url}?{urlencode({'next': request.get_full_path()})}"
        )
    else:
        response = render(request, "secure_sso/session_ended.html", status=403)
    add_never_cache_headers(response)
    return response
