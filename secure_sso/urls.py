"""Include with ``path("sso/", include("secure_sso.urls"))``."""

from django.urls import path

from secure_sso import views

app_name = "secure_sso"

urlpatterns = [
    path("login/", views.login_view, name="login"),
    path("callback/", views.callback_view, name="callback"),
    path("logout/", views.logout_view, name="logout"),
]
