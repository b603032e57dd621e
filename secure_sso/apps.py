from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SecureSSOConfig(AppConfig):
    name = "secure_sso"
    verbose_name = _("Secure SSO")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from secure_sso import checks  # noqa: F401  registers the system checks
        from secure_sso.conf import sso_settings

        if sso_settings.ADMIN_SSO and self.apps.is_installed("django.contrib.admin"):
            from django.contrib import admin

            from secure_sso.admin import install_admin_sso

            install_admin_sso(admin.site)
