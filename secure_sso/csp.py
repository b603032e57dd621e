"""The package's Content Security Policy: strict by default, extended without copying.

:func:`package_policy` is what :class:`secure_sso.middleware.CSPMiddleware` sends when the
project sets no ``CONTENT_SECURITY_POLICY``; projects that do set one can start from
it: ``CONTENT_SECURITY_POLICY = {"DIRECTIVES": secure_sso.csp.package_policy()}``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from csp.constants import NONCE, NONE, SELF
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from secure_sso.conf import sso_settings

REPORT_ONLY_SETTING = "CONTENT_SECURITY_POLICY_REPORT_ONLY"


def provider_origin(issuer: str) -> str | None:
    """``scheme://host[:port]`` of the issuer: sign-out forms end with a redirect there."""
    try:
        parts = urlsplit(issuer)
    except ValueError:
        return None
    if parts.scheme not in {"https", "http"} or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


def default_policy(issuer: str = "") -> dict[str, list[Any]]:
    """Nonce-based scripts and styles, no framing, forms only to this site and the provider."""
    form_action: list[Any] = [SELF]
    origin = provider_origin(issuer)
    if origin:
        # CSP form-action also governs the redirect a form submission leads to:
        # sign-out posts here, then redirects to the provider's end-session endpoint.
        form_action.append(origin)
    return {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        "form-action": form_action,
    }


def merge(policy: dict[str, list[Any]], extra: dict[str, Any]) -> dict[str, list[Any]]:
    """Add sources to directives; ``None`` removes a directive. Never mutates ``policy``."""
    merged = {name: list(values) for name, values in policy.items()}
    for name, values in extra.items():
        if values is None:
            merged.pop(name, None)
            continue
        if isinstance(values, str):
            values = [values]
        current = merged.setdefault(name, [])
        current.extend(v for v in values if v not in current)
    return merged


def package_policy() -> dict[str, list[Any]]:
    """The default policy for the configured provider, plus ``SECURE_SSO["CSP"]``."""
    return merge(default_policy(sso_settings.ISSUER), sso_settings.CSP)


_report_only: list[bool] = []


def report_only_policy_set() -> bool:
    """Whether the project sets ``CONTENT_SECURITY_POLICY_REPORT_ONLY`` (then django-csp
    builds every response's headers).

    Cached until the setting changes: an unset setting costs ``getattr(settings, ...)`` an
    ``AttributeError`` on every response, a fifth of the CSP middleware's own time.
    """
    if not _report_only:
        _report_only.append(bool(getattr(settings, REPORT_ONLY_SETTING, None)))
    return _report_only[0]


@receiver(setting_changed)
def _forget_report_only(*, setting: str, **kwargs: Any) -> None:
    if setting == REPORT_ONLY_SETTING:
        _report_only.clear()
