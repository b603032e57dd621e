"""The example's reviewers: the provider's ``admins`` group maps to the Django group
``Administrators`` (``SECURE_SSO["GROUP_MAP"]``), which may read the audit trail and the
signed-in SSO sessions, and end those sessions. Staff without these permissions see
"You don't have permission to view or edit anything" in the admin.

A data migration, so ``migrate`` (``make run`` runs it) sets it up once; an operator may
change the group's permissions afterwards and no later run undoes that.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

REVIEWER_GROUP = "Administrators"
#: (app label, codename)
REVIEWER_PERMISSIONS = [
    ("secure_sso_audit", "view_auditevent"),
    ("secure_sso_audit", "view_checkpoint"),
    ("secure_sso", "view_ssosession"),
    ("secure_sso", "delete_ssosession"),  # the admin's "End the selected sessions"
    ("secure_sso", "view_ssoidentity"),
]


def grant_reviewers(apps, schema_editor):
    # Permissions are created after migrations (post_migrate); on a new database they do
    # not exist yet, so create those of the apps named above first.
    for label in {label for label, _ in REVIEWER_PERMISSIONS}:
        app_config = apps.get_app_config(label)
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=REVIEWER_GROUP)
    for label, codename in REVIEWER_PERMISSIONS:
        group.permissions.add(
            Permission.objects.get(content_type__app_label=label, codename=codename)
        )


def revoke_reviewers(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group in Group.objects.filter(name=REVIEWER_GROUP):
        for label, codename in REVIEWER_PERMISSIONS:
            group.permissions.remove(
                *Permission.objects.filter(content_type__app_label=label, codename=codename)
            )


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("secure_sso", "0003_sessions_and_single_use"),
        ("secure_sso_audit", "0003_auditevent_base_manager"),
    ]

    operations = [migrations.RunPython(grant_reviewers, revoke_reviewers)]
