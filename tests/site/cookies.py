"""Views for the middleware tests: cookies and headers set by the project, not the package."""

from __future__ import annotations

import json

from csp.decorators import csp, csp_update
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token


def set_cookies(request: HttpRequest) -> HttpResponse:
    """Set the cookies described by ``?c=[[name, value, samesite-or-null], ...]``.

    ``?session=1`` also writes the session and ``?csrf=1`` asks for a CSRF token, so
    Django's own cookies leave with the response too.
    """
    response = HttpResponse("cookies")
    for name, value, samesite in json.loads(request.GET.get("c", "[]")):
        response.set_cookie(name, value, samesite=samesite)
    if request.GET.get("session"):
        request.session["visited"] = True
    if request.GET.get("csrf"):
        get_token(request)
    return response


def own_headers(request: HttpRequest) -> HttpResponse:
    """Set the headers named in the query string (``?Header-Name=value``) itself."""
    response = HttpResponse("own headers")
    for name, value in request.GET.items():
        response.headers[name] = value
    return response


@csp({"default-src": ["'self'", "https://view.example.test"]})
def own_policy(request: HttpRequest) -> HttpResponse:
    """A view with its own whole policy (django-csp's ``@csp``)."""
    return HttpResponse("own policy")


@csp_update({"img-src": "https://images.example.test"})
def extra_sources(request: HttpRequest) -> HttpResponse:
    """A view adding a source to the site's policy (django-csp's ``@csp_update``)."""
    return HttpResponse("extra sources")
