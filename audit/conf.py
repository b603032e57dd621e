"""The one place that reads the ``SECURE_SSO_AUDIT`` setting."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

SETTING_NAME = "SECURE_SSO_AUDIT"

DEFAULTS: dict[str, Any] = {
    # HMAC keys by id; the current id signs new events, older ids still verify.
    "SIGNING_KEYS": {},
    "SIGNING_KEY_ID": "",
    # Event types that may be dropped (logged loudly) when the table cannot be written.
    # Security events (auth.*, session.*, mfa.*, sso.*) always fail closed.
    "FAIL_OPEN_EVENTS": [],
    # Claims recorded as changed without their values.
    "SENSITIVE_CLAIMS": [],
    # Client IP: REMOTE_ADDR unless a proxy header is named and the number of proxies given.
    "CLIENT_IP_HEADER": None,
    "TRUSTED_PROXY_COUNT": 0,
    # Request id taken from this header when a trusted proxy sets it (else generated).
    "REQUEST_ID_HEADER": None,
    # Anchors: the chain's state, signed with an Ed25519 key and published where the
    # database's writers cannot rewrite it (audit.anchors). Off while ANCHOR_SINKS is empty.
    "ANCHOR_SINKS": [],
    # The current anchor signing key: an Ed25519 private key, PEM (audit_anchor --new-key).
    "ANCHOR_KEY": "",
    # Public keys (PEM) of earlier anchor keys, so their anchors still verify after rotation.
    "ANCHOR_PUBLIC_KEYS": [],
    # Publish after this many new events, or this many seconds since the last anchor
    # (checked when an event is recorded; run `audit_anchor` from cron to bound idle time).
    "ANCHOR_EVERY_EVENTS": 1000,
    "ANCHOR_EVERY_SECONDS": 300,
    # Anonymous failures (no signed-in user) per (client, event type, reason) and window:
    # the first COALESCE_AFTER are stored, the rest counted into one event
    # (audit.coalesce). COALESCE_WINDOW 0 stores every one.
    "COALESCE_WINDOW": 60,
    "COALESCE_AFTER": 5,
    # Open windows of distinct clients per process; past it, new clients share one count.
    "COALESCE_MAX_KEYS": 100,
}

#: Prefixes of event types that are security events and never fail open.
SECURITY_PREFIXES = ("auth.", "session.", "mfa.", "sso.", "audit.")


class AuditSettings:
    @cached_property
    def user_settings(self) -> dict[str, Any]:
        value = getattr(settings, SETTING_NAME, {})
        return dict(value) if isinstance(value, dict) else {}

    def _get(self, key: str) -> Any:
        return self.user_settings.get(key, DEFAULTS[key])

    @property
    def unknown_keys(self) -> list[str]:
        return sorted(set(self.user_settings) - set(DEFAULTS))

    @cached_property
    def SIGNING_KEYS(self) -> dict[str, bytes]:
        keys = self._get("SIGNING_KEYS") or {}
        if not isinstance(keys, dict):
            return {}
        return {
            str(k): (v.encode() if isinstance(v, str) else bytes(v))
            for k, v in keys.items()
            if isinstance(v, str | bytes) and v
        }

    @cached_property
    def SIGNING_KEY_ID(self) -> str:
        return str(self._get("SIGNING_KEY_ID") or "")

    @cached_property
    def signing_key(self) -> tuple[str, bytes] | None:
        key = self.SIGNING_KEYS.get(self.SIGNING_KEY_ID)
        return (self.SIGNING_KEY_ID, key) if key else None

    @cached_property
    def FAIL_OPEN_EVENTS(self) -> frozenset[str]:
        return frozenset(self._get("FAIL_OPEN_EVENTS") or ())

    @cached_property
    def SENSITIVE_CLAIMS(self) -> frozenset[str]:
        return frozenset(self._get("SENSITIVE_CLAIMS") or ())

    @cached_property
    def CLIENT_IP_HEADER(self) -> str | None:
        return self._get("CLIENT_IP_HEADER") or None

    @cached_property
    def TRUSTED_PROXY_COUNT(self) -> int:
        return int(self._get("TRUSTED_PROXY_COUNT") or 0)

    @cached_property
    def REQUEST_ID_HEADER(self) -> str | None:
        return self._get("REQUEST_ID_HEADER") or None

    @cached_property
    def ANCHOR_SINKS(self) -> list[Any]:
        value = self._get("ANCHOR_SINKS") or []
        return list(value) if isinstance(value, list | tuple) else [value]

    @cached_property
    def ANCHOR_KEY(self) -> str:
        value = self._get("ANCHOR_KEY") or ""
        return value.decode() if isinstance(value, bytes) else str(value)

    @cached_property
    def ANCHOR_PUBLIC_KEYS(self) -> list[str]:
        value = self._get("ANCHOR_PUBLIC_KEYS") or []
        return [v.decode() if isinstance(v, bytes) else str(v) for v in value]

    @cached_property
    def ANCHOR_EVERY_EVENTS(self) -> int:
        return int(self._get("ANCHOR_EVERY_EVENTS"))

    @cached_property
    def ANCHOR_EVERY_SECONDS(self) -> float:
        return float(self._get("ANCHOR_EVERY_SECONDS"))

    @cached_property
    def COALESCE_WINDOW(self) -> float:
        return max(0.0, float(self._get("COALESCE_WINDOW") or 0))

    @cached_property
    def COALESCE_AFTER(self) -> int:
        return max(0, int(self._get("COALESCE_AFTER") or 0))

    @cached_property
    def COALESCE_MAX_KEYS(self) -> int:
        return max(1, int(self._get("COALESCE_MAX_KEYS") or 1))

    @property
    def anchoring(self) -> bool:
        return bool(self.ANCHOR_SINKS)

    def may_fail_open(self, event_type: str) -> bool:
        return event_type in self.FAIL_OPEN_EVENTS and not event_type.startswith(SECURITY_PREFIXES)

    def reload(self) -> None:
        for name in list(self.__dict__):
            del self.__dict__[name]


audit_settings = AuditSettings()


@receiver(setting_changed)
def _reload(*, setting: str, **kwargs: Any) -> None:
    if setting == SETTING_NAME:
        audit_settings.reload()
