"""Include with ``path("sso/", include("secure_sso.urls"))``."""

from django.urls import path

from secure_sso import stepup_views, views

app_name = "secure_sso"

urlpatterns = [
    path("login/", views.login_view, name="login"),
    path("callback/", views.callback_view, name="callback"),
    path("logout/", views.logout_view, name="logout"),
    path("logout/complete/", views.logout_complete_view, name="logout_complete"),
    path("backchannel-logout/", views.backchannel_logout_view, name="backchannel_logout"),
    path("step-up/", stepup_views.step_up_view, name="step_up"),
    path("mfa/enroll/", stepup_views.enroll_view, name="enroll"),
    path("mfa/recovery/", stepup_views.recovery_view, name="recovery"),
    path("mfa/devices/", stepup_views.devices_view, name="devices"),
    path("step-up/provider/", views.step_up_provider_view, name="step_up_provider"),
]
