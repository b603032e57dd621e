"""Fixtures for the tests that sign in through a forged provider (``tests/forge.py``).

``configure`` points ``SECURE_SSO`` at the forge; a module adds its own module-wide
settings by overriding ``sso_settings_extra``, and a test overrides single settings by
calling the fixture's value again with keywords.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.forge import ForgedProvider


@pytest.fixture(scope="module")
def forge_server() -> Iterator[ForgedProvider]:
    """One forge per module: stopping a server costs half a second, so it is reused."""
    with ForgedProvider() as provider:
        yield provider


@pytest.fixture
def forge(forge_server: ForgedProvider) -> ForgedProvider:
    """The module's forge with every answer back to its default for this test."""
    return forge_server.reset()


@pytest.fixture
def sso_settings_extra() -> dict[str, Any]:
    """Settings a module adds to every ``configure`` (override in the module)."""
    return {}


@pytest.fixture
def configure(
    settings: Any, forge: ForgedProvider, sso_settings_extra: dict[str, Any]
) -> Callable[..., None]:
    """Point ``SECURE_SSO`` at the forge (applied now); keyword arguments override single
    settings, on top of the module's ``sso_settings_extra``."""

    def apply(**overrides: Any) -> None:
        settings.SECURE_SSO = {
            "ISSUER": forge.issuer,
            "CLIENT_ID": forge.client_id,
            "CLIENT_SECRET": forge.client_secret,
            "DEVELOPMENT_MODE": True,
            "HTTP_TIMEOUT": 2,
            **sso_settings_extra,
            **overrides,
        }

    apply()
    return apply
