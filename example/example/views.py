from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "example/home.html")


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    identity = request.user.sso_identities.first()
    return render(request, "example/dashboard.html", {"identity": identity})
