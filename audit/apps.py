from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AuditConfig(AppConfig):
    name = "audit"
    label = "secure_sso_audit"
    verbose_name = _("Security audit")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from audit import checks, pg_checks, receivers  # noqa: F401  registers checks, receivers
