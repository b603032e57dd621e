"""``manage.py audit_verify``: walk the chain; exit 1 naming the first broken event."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit.chain import verify
from audit.checks import TAG


class Command(BaseCommand):
    help = "Verify the audit chain; exit 1 naming the first broken, missing or reordered event."
    # Only the audit checks: the provider's settings need not be on a reviewer's machine.
    requires_system_checks = [TAG]

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--database", default=None, help="Database alias (default: router's).")

    def handle(self, *args: Any, **options: Any) -> None:
        result = verify(options["database"])
        if not result.ok:
            raise CommandError(str(result), returncode=1)
        self.stdout.write(self.style.SUCCESS(str(result)))
