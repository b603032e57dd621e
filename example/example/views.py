from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe

from secure_sso.decorators import step_up_required

#: Browsers ask every site for /favicon.ico; a small SVG answers instead of a 404.
FAVICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">'
    '<rect width="16" height="16" rx="3" fill="#1a4d8f"/>'
    '<path d="M8 3 4 4.5V8c0 2.5 1.7 4.3 4 5 2.3-.7 4-2.5 4-5V4.5z" fill="#fff"/></svg>'
)


@require_safe
@cache_control(max_age=86_400, public=True)
def favicon(request: HttpRequest) -> HttpResponse:
    return HttpResponse(FAVICON, content_type="image/svg+xml")


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "example/home.html")


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    identity = request.user.sso_identities.first()
    return render(request, "example/dashboard.html", {"identity": identity})


@login_required
@step_up_required
def account_security(request: HttpRequest) -> HttpResponse:
    """A sensitive page: opens only after a recent step-up (TOTP by default)."""
    from django_otp import devices_for_user

    devices = list(devices_for_user(request.user, confirmed=True))
    return render(request, "example/account_security.html", {"devices": devices})
