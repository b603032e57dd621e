"""Admin for identity links, and SSO on the admin's own login and logout."""

from __future__ import annotations

from functools import wraps
from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponseForbidden

from secure_sso.conf import sso_settings
from secure_sso.models import SSOIdentity, SSOSession


@admin.register(SSOIdentity)
class SSOIdentityAdmin(admin.ModelAdmin):
    list_display = ("user", "issuer", "subject", "last_login_at")
    search_fields = ("subject", "user__username", "issuer")
    readonly_fields = ("user", "issuer", "subject", "claims", "created_at", "last_login_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Links are made only by a verified sign-in.
        return False


@admin.register(SSOSession)
class SSOSessionAdmin(admin.ModelAdmin):
    """Signed-in SSO sessions, and a way to end them (a stolen laptop, a departed employee)."""

    list_display = ("user", "subject", "issuer", "has_provider_session", "created_at")
    list_filter = ("issuer",)
    search_fields = ("subject", "user__username")
    # The session key and the tokens are secrets: never shown, not even encrypted.
    fields = ("user", "issuer", "subject", "created_at")
    readonly_fields = fields
    actions = ["end_sessions"]

    @admin.display(boolean=True, description="provider sid")
    def has_provider_session(self, obj: SSOSession) -> bool:
        return bool(obj.sid)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting a row would only forget the session; "End sessions" ends it.
        return False

    @admin.action(description="End the selected sessions", permissions=["end"])
    def end_sessions(self, request: HttpRequest, queryset: Any) -> None:
        from secure_sso import session_index
        from secure_sso.signals import session_ended

        rows = list(queryset.select_related("user"))
        session_index.end(rows)
        for row in rows:
            session_ended.send(
                sender=SSOSessionAdmin, request=request, event="session.ended_by_admin",
                reason="admin", username=row.user.get_username(), user=row.user,
                ended_by=request.user.get_username(),
            )
        self.message_user(request, f"{len(rows)} session(s) ended.")

    def has_end_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("secure_sso.delete_ssosession")


def sso_admin_login(login_view: Any) -> Any:
    """Wrap ``AdminSite.login``: offer SSO beside the password form, or instead of it."""

    @wraps(login_view)
    def wrapper(request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        password_login = sso_settings.ADMIN_PASSWORD_LOGIN
        if request.method == "POST" and not password_login:
            return HttpResponseForbidden("Password sign-in to the admin is disabled.")
        context = {"secure_sso_password_login": password_login, **(extra_context or {})}
        return login_view(request, extra_context=context)

    return wrapper


def sso_admin_logout(logout_view: Any) -> Any:
    """Wrap ``AdminSite.logout``: a POST ends the provider's session too."""

    @wraps(logout_view)
    def wrapper(request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        if request.method == "POST":
            # Aliased: importing it as ``logout_view`` would make that name local
            # to the whole wrapper and break the GET branch (UnboundLocalError).
            from secure_sso.views import logout_view as sso_logout_view

            return sso_logout_view(request)
        return logout_view(request, extra_context=extra_context)

    return wrapper


def install_admin_sso(site: admin.AdminSite) -> None:
    """Called from ``AppConfig.ready`` when ``ADMIN_SSO`` is on; idempotent."""
    if getattr(site, "_secure_sso_installed", False):
        return
    site.login_template = site.login_template or "secure_sso/admin_login.html"
    site.login = sso_admin_login(site.login)  # type: ignore[method-assign]
    site.logout = sso_admin_logout(site.logout)  # type: ignore[method-assign]
    site._secure_sso_installed = True  # type: ignore[attr-defined]
