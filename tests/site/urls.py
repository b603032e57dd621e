from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.urls import include, path


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
]
