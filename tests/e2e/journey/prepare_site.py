"""One-time set-up of the example's database before gunicorn serves it, as an operator would.

Run as ``python -m tests.e2e.journey.prepare_site`` with the site's environment:

1. ``migrate`` the (temporary SQLite) database;
2. ``check --deploy`` at warning level, so the journey runs only against a configuration
   Django itself calls production-ready;
3. give the ``Administrators`` group (where the example maps the provider's ``admins``
   group) the view permission on audit events: the reviewer is staff through the group
   mapping and reads the audit admin through this permission, not as a superuser.
"""

from __future__ import annotations

import django
from django.core.management import call_command

#: The Django group the example maps the provider's "admins" group to.
REVIEWER_GROUP = "Administrators"


def main() -> None:
    django.setup()
    call_command("migrate", interactive=False, verbosity=0)
    call_command("check", deploy=True, fail_level="WARNING")

    from django.contrib.auth.models import Group, Permission

    group, _ = Group.objects.get_or_create(name=REVIEWER_GROUP)
    group.permissions.add(
        Permission.objects.get(content_type__app_label="secure_sso_audit",
                               codename="view_auditevent")
    )


if __name__ == "__main__":
    main()
