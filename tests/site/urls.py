from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.urls import include, path

from tests.site import cookies


def home(request):
    who = request.user.get_username() if request.user.is_authenticated else "anonymous"
    return HttpResponse(f"home: {who}")


@login_required
def dashboard(request):
    return HttpResponse(f"dashboard: {request.user.get_username()}")


urlpatterns = [
    path("", home, name="home"),
    path("dashboard/", dashboard, name="dashboard"),
    path("sso/", include("secure_sso.urls")),
    path("admin/", admin.site.urls),
    path("test/cookies/", cookies.set_cookies, name="test-cookies"),
    path("test/headers/", cookies.own_headers, name="test-headers"),
    path("test/csp/own/", cookies.own_policy, name="test-csp-own"),
    path("test/csp/extra/", cookies.extra_sources, name="test-csp-extra"),
]
