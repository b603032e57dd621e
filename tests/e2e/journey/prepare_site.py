"""One-time set-up of the example's database before gunicorn serves it, as an operator would.

Run as ``python -m tests.e2e.journey.prepare_site`` with the site's environment:

1. ``migrate`` the (temporary SQLite) database;
2. ``check --deploy`` at warning level, so the journey runs only against a configuration
   Django itself calls production-ready.

Nothing else: the reviewer reads the audit admin through the permissions the example's own
data migration gives its ``Administrators`` group (where the provider's ``admins`` group
maps), as on any operator's database, not through a grant made here.
"""

from __future__ import annotations

import django
from django.core.management import call_command


def main() -> None:
    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    call_command("check", deploy=True, fail_level="WARNING")


if __name__ == "__main__":
    main()
