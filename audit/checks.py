"""System checks for the audit app; ids are listed in README with their fixes."""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, Tags, Warning, register

from audit import anchors
from audit.conf import DEFAULTS, audit_settings
from audit.exceptions import AuditConfigurationError

E001 = "SECURE_SSO_AUDIT has no signing key: every security event (and so every sign-in) fails."
E001_HINT = (
    "Set SECURE_SSO_AUDIT = {'SIGNING_KEYS': {'k1': os.environ['AUDIT_SIGNING_KEY']}, "
    "'SIGNING_KEY_ID': 'k1'} with a random key of 32+ bytes, separate from SECRET_KEY."
)
E002 = "SECURE_SSO_AUDIT['SIGNING_KEYS'] has a key shorter than 32 characters."
E002_HINT = "Generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'."
W001 = "SECURE_SSO_AUDIT has unknown keys: {keys}."
W001_HINT = "Check the spelling against README's audit settings."

E003 = "SECURE_SSO_AUDIT anchors cannot be signed or checked: {why}."
E003_HINT = (
    "Generate a key with `python manage.py audit_anchor --new-key > anchor-key.pem` (keep it "
    "off the database host), and set 'ANCHOR_KEY': Path('anchor-key.pem').read_text()."
)
E004 = "SECURE_SSO_AUDIT['ANCHOR_SINKS'] entry cannot be used: {why}."
E004_HINT = (
    "Each entry is a dotted path ('audit.anchors.LogSink') or a dict "
    "{'CLASS': 'audit.anchors.FileSink', 'PATH': '/var/log/audit-anchors.jsonl'}."
)
E005 = "SECURE_SSO_AUDIT['{name}'] must be a number of at least {minimum}, got {value!r}."
E005_HINT = (
    "Defaults: ANCHOR_EVERY_EVENTS 1000, ANCHOR_EVERY_SECONDS 300, COALESCE_WINDOW 60 "
    "(0: off), COALESCE_AFTER 5, COALESCE_MAX_KEYS 100."
)
#: Number settings and their least allowed value.
NUMBERS = {"ANCHOR_EVERY_EVENTS": 1, "ANCHOR_EVERY_SECONDS": 1, "COALESCE_WINDOW": 0,
           "COALESCE_AFTER": 0, "COALESCE_MAX_KEYS": 1}
W002 = (
    "No audit anchors (SECURE_SSO_AUDIT['ANCHOR_SINKS'] is empty): someone who can write the "
    "database can delete the newest events, or all of them, and audit_verify cannot tell."
)
W002_HINT = (
    "Set 'ANCHOR_SINKS': [{'CLASS': 'audit.anchors.FileSink', 'PATH': ...}, "
    "'audit.anchors.LogSink'] and 'ANCHOR_KEY' (see README, Anchors)."
)
E006 = (
    "SECURE_SSO_AUDIT['ANCHOR_SINKS'] is set but there is no ANCHOR_KEY: this site cannot "
    "publish anchors (a reviewer's machine that only verifies may leave it out)."
)
E006_HINT = E003_HINT
W003 = "No ANCHOR_SINKS entry can read its anchors back: audit_verify cannot check the database."
W003_HINT = "Add a FileSink (or a sink of yours with a read() method) to ANCHOR_SINKS."

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


@register(Tags.security, TAG)
def check_anchors(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    errors: list[Any] = []
    for name, minimum in NUMBERS.items():
        value = audit_settings.user_settings.get(name, DEFAULTS[name])
        try:
            valid = not isinstance(value, bool) and float(value) >= minimum
        except (TypeError, ValueError):
            valid = False
        if not valid:
            errors.append(Error(E005.format(name=name, minimum=minimum, value=value),
                                hint=E005_HINT, id="secure_sso_audit.E005"))
    if not audit_settings.anchoring:
        return errors
    try:
        if audit_settings.ANCHOR_KEY:
            anchors.signing_key()
        if not anchors.configured_public_keys():
            raise AuditConfigurationError("no ANCHOR_KEY and no ANCHOR_PUBLIC_KEYS")
    except AuditConfigurationError as exc:
        errors.append(Error(E003.format(why=exc), hint=E003_HINT, id="secure_sso_audit.E003"))
    try:
        built = [anchors.build_sink(spec) for spec in audit_settings.ANCHOR_SINKS]
    except (AuditConfigurationError, ImportError, TypeError) as exc:
        errors.append(Error(E004.format(why=exc), hint=E004_HINT, id="secure_sso_audit.E004"))
    else:
        if not any(callable(getattr(sink, "read", None)) for sink in built):
            errors.append(Warning(W003, hint=W003_HINT, id="secure_sso_audit.W003"))
    return errors


@register(Tags.security, TAG, deploy=True)
def check_anchors_deploy(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    if not audit_settings.anchoring:
        return [Warning(W002, hint=W002_HINT, id="secure_sso_audit.W002")]
    if not audit_settings.ANCHOR_KEY:
        return [Error(E006, hint=E006_HINT, id="secure_sso_audit.E006")]
    return []
