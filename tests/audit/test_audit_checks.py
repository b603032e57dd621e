"""System checks of the audit app, called directly and asserted by id."""

from __future__ import annotations

from typing import Any

import pytest

from audit import checks


def ids(*functions: Any) -> list[str]:
    return [message.id for function in functions for message in function()]


class TestSigningKey:
    def test_test_settings_pass(self) -> None:
        """The suite's settings have a long enough current key."""
        assert ids(checks.check_signing_key, checks.check_unknown_keys) == []

    @pytest.mark.parametrize(
        "value",
        [
            {},
            {"SIGNING_KEYS": {"k1": "x" * 40}},
            {"SIGNING_KEYS": {"k1": ""}, "SIGNING_KEY_ID": "k1"},
            {"SIGNING_KEYS": {"k2": "x" * 40}, "SIGNING_KEY_ID": "k1"},
        ],
    )
    def test_e001_no_current_key(self, settings: Any, value: dict) -> None:
        """No key for SIGNING_KEY_ID means every security event fails: E001."""
        settings.SECURE_SSO_AUDIT = value
        assert ids(checks.check_signing_key) == ["secure_sso_audit.E001"]

    def test_e002_short_key(self, settings: Any) -> None:
        """A key under 32 characters is E002."""
        settings.SECURE_SSO_AUDIT = {"SIGNING_KEYS": {"k1": "short"}, "SIGNING_KEY_ID": "k1"}
        assert ids(checks.check_signing_key) == ["secure_sso_audit.E002"]

    def test_w001_unknown_key(self, settings: Any) -> None:
        """A misspelt setting is reported."""
        settings.SECURE_SSO_AUDIT = {**settings.SECURE_SSO_AUDIT, "SIGNING_KEY": "k1"}
        assert ids(checks.check_unknown_keys) == ["secure_sso_audit.W001"]
