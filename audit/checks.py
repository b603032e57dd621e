"""System checks for the audit app; ids are listed in README with their fixes."""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, Tags, Warning, register

from audit.conf import audit_settings

E001 = "SECURE_SSO_AUDIT has no signing key: every security event (and so every sign-in) fails."
E001_HINT = (
    "Set SECURE_SSO_AUDIT = {'SIGNING_KEYS': {'k1': os.environ['AUDIT_SIGNING_KEY']}, "
    "'SIGNING_KEY_ID': 'k1'} with a random key of 32+ bytes, separate from SECRET_KEY."
)
E002 = "SECURE_SSO_AUDIT['SIGNING_KEYS'] has a key shorter than 32 characters."
E002_HINT = "Generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'."
W001 = "SECURE_SSO_AUDIT has unknown keys: {keys}."
W001_HINT = "Check the spelling against README's audit settings."

#: The audit commands run only the checks with this tag: a reviewer's machine holds the
#: audit settings and the database, not the provider's client secret or ``SECRET_KEY``.
TAG = "secure_sso_audit"


@register(Tags.security, TAG)
def check_signing_key(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    if audit_settings.signing_key is None:
        return [Error(E001, hint=E001_HINT, id="secure_sso_audit.E001")]
    if any(len(key) < 32 for key in audit_settings.SIGNING_KEYS.values()):
        return [Error(E002, hint=E002_HINT, id="secure_sso_audit.E002")]
    return []


@register(TAG)
def check_unknown_keys(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    unknown = audit_settings.unknown_keys
    if unknown:
        return [Warning(W001.format(keys=", ".join(unknown)), hint=W001_HINT,
                        id="secure_sso_audit.W001")]
    return []
