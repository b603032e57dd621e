from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SecureSSOConfig(AppConfig):
    name = "secure_sso"
    verbose_name = _("Secure SSO")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in, user_logged_out

        from secure_sso import checks  # noqa: F401  registers the system checks
        from secure_sso.conf import sso_settings

        user_logged_in.connect(_start_guarded_session, dispatch_uid="secure_sso.sessions.start")
        user_logged_out.connect(_forget_session, dispatch_uid="secure_sso.session_index.forget")

        if sso_settings.ADMIN_SSO and self.apps.is_installed("django.contrib.admin"):
            from django.contrib import admin

            from secure_sso.admin import install_admin_sso

            install_admin_sso(admin.site)


def _start_guarded_session(sender: object, request: object, user: object, **kwargs: object) -> None:
    """Every login, SSO or password, gets timestamps and a browser binding."""
    if request is not None and hasattr(request, "session"):
        from secure_sso import sessions

        sessions.start(request, user)  # type: ignore[arg-type]


def _forget_session(sender: object, request: object, **kwargs: object) -> None:
    """A logged-out session leaves the back-channel index, and its tokens with it."""
    session = getattr(request, "session", None)
    if session is not None and session.session_key:
        from secure_sso import session_index

        session_index.forget(session.session_key)
