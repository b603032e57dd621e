"""``manage.py audit_export``: stream audit events as JSON Lines or CSV."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit import export
from audit.checks import TAG


def _moment(value: str) -> Any:
    try:
        return export.parse_moment(value)
    except ValueError as exc:
        raise CommandError(str(exc)) from None


class Command(BaseCommand):
    help = (
        "Export audit events created in [--since, --until) in sequence order, every stored "
        "field included (seq, prev_hash, key_id, mac), so the file can be verified offline."
    )
    # Only the audit checks: the provider's settings need not be on a reviewer's machine.
    requires_system_checks = [TAG]

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--since", help="ISO date or datetime (UTC unless an offset is "
                            "given); events created at or after it.")
        parser.add_argument("--until", help="ISO date or datetime; events created before it.")
        parser.add_argument("--format", choices=export.FORMATS, default="jsonl",
                            help="jsonl (default) or csv (details as a JSON string).")
        parser.add_argument("--output", default="-", help="File to write; '-' (default) is "
                            "standard output.")
        parser.add_argument("--database", default=None, help="Database alias (default: router's).")

    def handle(self, *args: Any, **options: Any) -> None:
        since = _moment(options["since"]) if options["since"] else None
        until = _moment(options["until"]) if options["until"] else None
        if since and until and since >= until:
            raise CommandError("--since must be before --until")
        kwargs = {"fmt": options["format"], "since": since, "until": until,
                  "using": options["database"]}
        if options["output"] == "-":
            count = export.export(self.stdout, **kwargs)
        else:
            with open(options["output"], "w", encoding="utf-8", newline="") as stream:
                count = export.export(stream, **kwargs)
        self.stderr.write(f"exported {count} audit events")
