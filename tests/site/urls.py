import hashlib

from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.urls import include, path
from django.views import View

from secure_sso.decorators import step_up_required
from secure_sso.mixins import StepUpRequiredMixin
from tests.site import cookies


def home(request):
    who = request.user.get_username() if request.user.is_authenticated else "anonymous"
    return HttpResponse(f"home: {who}")


@login_required
def dashboard(request):
    return HttpResponse(f"dashboard: {request.user.get_username()}")


@step_up_required
def provider_stepped_up(request):
    return HttpResponse(f"stepped up: {request.user.get_username()}")


@login_required
@step_up_required
def sensitive(request):
    if request.method == "POST":
        return HttpResponse(f"changed: {request.POST.get('value', '')}")
    return HttpResponse(f"sensitive: {request.user.get_username()}")


class SensitiveView(StepUpRequiredMixin, View):
    def get(self, request):
        return HttpResponse("sensitive-cbv")


@step_up_required(max_age=60)
async def sensitive_async(request):
    return HttpResponse("sensitive-async")


@login_required
def access_token(request):
    """A hash of the session's access token (never the token itself), refreshed if due."""
    from secure_sso.tokens import get_access_token

    return HttpResponse(hashlib.sha256(get_access_token(request).encode()).hexdigest())


@login_required
def form_post(request):
    return HttpResponse(f"{request.method}: {request.user.get_username()}")


def billing(request):
    return HttpResponse("billing")


urlpatterns = [
    path("", home, name="home"),
    path("dashboard/", dashboard, name="dashboard"),
    path("sso/", include("secure_sso.urls")),
    path("admin/", admin.site.urls),
    path("test/sensitive/", sensitive, name="test-sensitive"),
    path("test/sensitive-cbv/", SensitiveView.as_view(), name="test-sensitive-cbv"),
    path("test/sensitive-async/", sensitive_async, name="test-sensitive-async"),
    path("test/billing/", billing, name="test-billing"),
    path("test/cookies/", cookies.set_cookies, name="test-cookies"),
    path("test/headers/", cookies.own_headers, name="test-headers"),
    path("test/csp/own/", cookies.own_policy, name="test-csp-own"),
    path("test/csp/extra/", cookies.extra_sources, name="test-csp-extra"),
    path("test/provider-step-up/", provider_stepped_up, name="test-provider-step-up"),
    path("test/access-token/", access_token, name="test-access-token"),
    path("test/form/", form_post, name="test-form"),
]
