"""URLs for the bench/*.py scripts: the package's URLs plus a few tiny views."""

from __future__ import annotations

from django.contrib.auth import authenticate, login
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.views.decorators.http import require_POST


def whoami(request: HttpRequest) -> HttpResponse:
    """The view every request benchmark hits: it reads ``request.user``."""
    return HttpResponse(f"user: {request.user.get_username()}")


@require_POST
def password_login(request: HttpRequest) -> HttpResponse:
    """A plain Django password sign-in (the sign-in benchmark's baseline)."""
    user = authenticate(
        request, username=request.POST.get("username"), password=request.POST.get("password")
    )
    if user is None:
        return HttpResponse("refused", status=403)
    login(request, user)
    response = HttpResponse(status=302)
    response["Location"] = "/whoami/"
    return response


urlpatterns = [
    path("whoami/", whoami, name="whoami"),
    path("password-login/", password_login, name="password-login"),
    path("sso/", include("secure_sso.urls")),
]


# --- A reference middleware for bench/request_overhead.py ------------------------------------

from csp.middleware import CSPMiddleware as _DjangoCSPMiddleware  # noqa: E402
from csp.middleware import PolicyParts  # noqa: E402
from csp.utils import default_config  # noqa: E402

_POLICY: dict | None = None


class DjangoCSPMiddleware(_DjangoCSPMiddleware):
    """django-csp's own middleware, given the package's directives the way
    ``CONTENT_SECURITY_POLICY = {"DIRECTIVES": ...}`` would (``default_config`` on every
    response, as django-csp does for a settings policy), without changing the settings
    the package's own stack sees."""

    def get_policy_parts(self, request, response, report_only=False) -> PolicyParts:
        global _POLICY
        parts = super().get_policy_parts(request, response, report_only)
        if not report_only and parts.config is None:
            if _POLICY is None:
                from secure_sso.csp import package_policy

                _POLICY = package_policy()
            parts.config = default_config(_POLICY)
        return parts
