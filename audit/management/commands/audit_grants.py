"""``manage.py audit_grants --runtime-role ROLE``: print the least-privilege GRANTs (PostgreSQL).

Migrations run as the owner of the audit tables and do not know the role the site runs
as; the operator runs what this prints, as the owner (``psql -f``), after any schema-wide
GRANT and after every migrate. ``check --deploy`` (secure_sso_audit.E010-E012) verifies.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit.pg_checks import grant_sql


class Command(BaseCommand):
    help = (
        "Print the SQL that gives the PostgreSQL role the site runs as exactly what "
        "appending audit events needs (SELECT and INSERT events, move the chain head, read "
        "checkpoints) and takes back anything more. Run it as the owner of the audit tables."
    )
    # Prints SQL only: it needs neither the database nor the audit key.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--runtime-role", required=True,
                            help="The PostgreSQL role the site connects as (DATABASES['default']).")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            self.stdout.write(grant_sql(options["runtime_role"]), ending="")
        except ValueError as exc:
            raise CommandError(str(exc)) from None
