"""``manage.py audit_prune --before DATE``: delete the oldest events, keep the chain verifiable."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit import export, prune
from audit.checks import TAG
from audit.exceptions import AuditError


class Command(BaseCommand):
    help = (
        "Delete the audit events created before --before, as one prefix of the chain (never "
        "a hole): a checkpoint keeps audit_verify working and an audit.pruned event is "
        "recorded. Asks for confirmation unless --yes. On PostgreSQL run it through the "
        "alias of the role that owns the audit tables (--database audit_admin)."
    )
    # Only the audit checks: the provider's settings need not be on a reviewer's machine.
    requires_system_checks = [TAG]

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--before", required=True, help="ISO date or datetime (UTC unless "
                            "an offset is given); events created before it are pruned.")
        parser.add_argument("--yes", action="store_true", help="Do not ask for confirmation.")
        parser.add_argument(
            "--database", default=None,
            help="Database alias (default: the router's). On PostgreSQL one that connects as "
                 "the role owning the audit tables, e.g. audit_admin: the site's own role "
                 "cannot delete events.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            before = export.parse_moment(options["before"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        using = options["database"]
        plan = prune.plan_prune(before, using)
        if plan.count == 0:
            self.stdout.write("nothing to prune")
            return
        summary = (
            f"{plan.count} audit events (seq {plan.start_seq}..{plan.after_seq}) "
            f"created before {before.isoformat()}"
        )
        if not options["yes"]:
            if not sys.stdin.isatty():
                raise CommandError(f"would prune {summary}; pass --yes to confirm")
            answer = input(f"Prune {summary}? Type 'yes' to continue: ")
            if answer.strip().lower() != "yes":
                raise CommandError("prune cancelled")
        try:
            checkpoint = prune.prune(before, using)
        except AuditError as exc:
            raise CommandError(str(exc)) from None
        if checkpoint is None:
            self.stdout.write("nothing to prune")
            return
        self.stdout.write(self.style.SUCCESS(
            f"pruned {checkpoint.pruned_count} audit events; the chain now starts after "
            f"seq {checkpoint.after_seq}"
        ))
