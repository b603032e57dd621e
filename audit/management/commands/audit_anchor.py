"""``manage.py audit_anchor``: publish an anchor now; print the public key; make a key."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from audit import anchors
from audit.checks import TAG
from audit.exceptions import AuditConfigurationError, AuditError


class Command(BaseCommand):
    help = (
        "Sign the audit chain's state since the last anchor and publish it to every "
        "ANCHOR_SINKS entry. Run it from cron (every minute, say) to bound how long new "
        "events stay unanchored when the site is idle."
    )
    requires_system_checks = [TAG]

    def add_arguments(self, parser: Any) -> None:
        group = parser.add_mutually_exclusive_group()
        group.add_argument("--public-key", action="store_true", help="Print the public keys "
                           "(PEM) that verify this site's anchors, for reviewers.")
        group.add_argument("--new-key", action="store_true", help="Print a new Ed25519 "
                           "private key (PEM) for ANCHOR_KEY, and its public key on stderr.")
        parser.add_argument("--database", default=None, help="Database alias (default: router's).")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["new_key"]:
            pem = anchors.new_private_pem()
            self.stdout.write(pem, ending="")
            public = anchors.load_private_key(pem).public_key()
            self.stderr.write(f"key id {anchors.key_id(public)}; public key:\n"
                              f"{anchors.public_pem(public)}", ending="")
            return
        try:
            if options["public_key"]:
                for public in anchors.configured_public_keys().values():
                    self.stdout.write(anchors.public_pem(public), ending="")
                return
            anchor = anchors.publish("manual", using=options["database"])
        except (AuditConfigurationError, AuditError) as exc:
            raise CommandError(str(exc), returncode=1) from None
        if anchor is None:
            self.stdout.write("nothing new to anchor")
        else:
            self.stdout.write(self.style.SUCCESS(
                f"anchor #{anchor.number}: events {anchor.start_seq}..{anchor.seq} "
                f"(key {anchor.key_id})"
            ))
