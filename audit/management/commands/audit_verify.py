"""``manage.py audit_verify``: the stored chain against its anchors, or an export offline.

With no arguments: the database's chain (every HMAC and link) and the configured anchors
against it. With ``--export``, ``--anchors`` and ``--public-key``: an exported file on a
reviewer's machine, with no database and no secret key. Exit 1 naming what is wrong.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit import anchors, export
from audit.checks import TAG
from audit.conf import audit_settings
from audit.exceptions import AuditConfigurationError, AuditError


class Command(BaseCommand):
    help = (
        "Verify the audit chain and its anchors; exit 1 naming the first broken, missing "
        "or reordered event, a missing or replayed head, or anchors the events do not match."
    )
    # The audit checks run for the database mode only (in _database): a reviewer verifying
    # an export needs no secret key at all, so nothing may insist on one.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--database", default=None, help="Database alias (default: router's).")
        parser.add_argument("--skip-checks", action="store_true", help="Skip the audit checks.")
        parser.add_argument("--export", help="Verify this JSONL export (audit_export) instead "
                            "of the database; needs --anchors and --public-key.")
        parser.add_argument("--anchors", help="Anchor file (a FileSink's) to verify against.")
        parser.add_argument("--public-key", action="append", default=[], help="PEM file of a "
                            "public key that signed anchors (repeat for rotated keys).")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["export"]:
                self._offline(options)
            else:
                self._database(options)
        except (AuditConfigurationError, AuditError, OSError, ValueError) as exc:
            raise CommandError(str(exc), returncode=1) from None

    def _database(self, options: dict[str, Any]) -> None:
        if not options.get("skip_checks"):
            self.check(tags=[TAG])
        stored = anchors.read_anchor_file(options["anchors"]) if options["anchors"] else None
        keys = (anchors.load_public_keys(Path(p).read_text() for p in options["public_key"])
                if options["public_key"] else None)
        result, report = anchors.verify_database(options["database"], anchors=stored, keys=keys)
        if not result.ok:
            raise CommandError(str(result), returncode=1)
        if not report.ok:
            raise CommandError("anchors: " + "; ".join(report.problems), returncode=1)
        if audit_settings.anchoring or stored:
            self.stdout.write(self.style.SUCCESS(f"{result}; {self._anchored(report)}"))
        else:
            self.stdout.write(self.style.SUCCESS(str(result)))
            self.stderr.write("no anchors configured (ANCHOR_SINKS): deleting the newest "
                              "events, or the whole table, would go unnoticed")

    def _offline(self, options: dict[str, Any]) -> None:
        if not options["anchors"] or not options["public_key"]:
            raise CommandError("--export needs --anchors and --public-key", returncode=2)
        keys = anchors.load_public_keys(Path(p).read_text() for p in options["public_key"])
        stored = anchors.read_anchor_file(options["anchors"])
        with open(options["export"], encoding="utf-8") as lines:
            report = anchors.verify_export(export.load_jsonl(lines), stored, keys)
        if not report.ok:
            raise CommandError("; ".join(report.problems), returncode=1)
        self.stdout.write(self.style.SUCCESS(f"export verified: {self._anchored(report)}"))

    @staticmethod
    def _anchored(report: anchors.AnchorReport) -> str:
        return f"{report.checked} of {report.anchors} anchors matched"
