"""The least-privilege deploy check and audit_grants, without a PostgreSQL server.

The check itself against real grants: tests/audit/test_pg_least_privilege.py.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
from django.core.checks import Tags
from django.core.checks.registry import registry
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import OperationalError, connection

from audit import pg_checks


def test_silent_on_sqlite() -> None:
    """No query at all (this test may not touch the database): SQLite has no roles."""
    assert pg_checks.check_postgresql_grants() == []


def test_registered_as_a_deploy_check_with_the_audit_tag() -> None:
    check = pg_checks.check_postgresql_grants
    assert check in registry.get_checks(include_deployment_checks=True)
    assert check not in registry.get_checks(include_deployment_checks=False)
    assert set(check.tags) == {Tags.security, "secure_sso_audit"}


def test_unreachable_database_is_a_warning(monkeypatch: Any) -> None:
    """A database that cannot be reached at check time: W010 naming the alias, no crash."""
    monkeypatch.setattr(connection, "vendor", "postgresql")

    def unreachable(alias: str) -> list[Any]:
        raise OperationalError("connection refused\ndetails")

    monkeypatch.setattr(pg_checks, "inspect", unreachable)
    [warning] = pg_checks.check_postgresql_grants()
    assert warning.id == "secure_sso_audit.W010"
    assert warning.msg.endswith("through alias 'default': connection refused")
    assert warning.hint == pg_checks.W010_HINT


def test_grants_name_the_role_quoted() -> None:
    sql = pg_checks.grant_sql('site "app"')
    role = '"site ""app"""'
    assert f'GRANT SELECT, INSERT ON "secure_sso_audit_event" TO {role};' in sql
    assert f'GRANT UPDATE ("user_id") ON "secure_sso_audit_event" TO {role};' in sql
    assert f'GRANT UPDATE ("seq", "mac", "sig") ON "secure_sso_audit_head" TO {role};' in sql
    assert f'GRANT SELECT ON "secure_sso_audit_checkpoint" TO {role};' in sql
    assert sql.index("REVOKE ALL") < sql.index("\nGRANT ")
    assert "DELETE" not in sql and "TRUNCATE" not in sql


@pytest.mark.parametrize("role", ["", "PUBLIC", "public", "a\x00b"])
def test_grants_refuse_what_is_not_a_role(role: str) -> None:
    with pytest.raises(CommandError):
        call_command("audit_grants", "--runtime-role", role, stdout=io.StringIO())


def test_audit_grants_prints_the_sql() -> None:
    out = io.StringIO()
    call_command("audit_grants", "--runtime-role", "app", stdout=out)
    assert out.getvalue() == pg_checks.grant_sql("app")
