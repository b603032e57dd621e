from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from secure_sso.decorators import step_up_required


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
