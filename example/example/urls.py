from django.contrib import admin
from django.urls import include, path

from example import views

urlpatterns = [
    path("", views.home, name="home"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("account/security/", views.account_security, name="account_security"),
    path("sso/", include("secure_sso.urls")),
    path("admin/", admin.site.urls),
]
