"""Audit errors."""


class AuditError(Exception):
    """Base class."""


class AuditWriteError(AuditError):
    """An event could not be appended; security events must not proceed without it."""


class AuditConfigurationError(AuditWriteError):
    """No signing key: ``SECURE_SSO_AUDIT['SIGNING_KEYS']`` / ``SIGNING_KEY_ID``."""


class ImmutableAuditEvent(AuditError):
    """Audit events are append-only: no update, no delete."""
