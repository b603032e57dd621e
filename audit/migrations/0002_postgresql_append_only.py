"""On PostgreSQL, refuse UPDATE and DELETE on the audit table in the database itself.

``audit_prune`` is the only path allowed to delete, by setting the transaction-local
``secure_sso_audit.prune`` to ``on``. Other databases rely on the model's refusal.
"""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION secure_sso_audit_refuse_change() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('secure_sso_audit.prune', true) = 'on' THEN
        RETURN OLD;
    END IF;
    -- Deleting a user nulls the unsigned foreign key (the signed user_ref and username stay).
    IF TG_OP = 'UPDATE' AND NEW.user_id IS NULL
       AND (to_jsonb(NEW) - 'user_id') = (to_jsonb(OLD) - 'user_id') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'secure_sso_audit_event is append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""
TRIGGER = """
CREATE TRIGGER secure_sso_audit_append_only
    BEFORE UPDATE OR DELETE ON secure_sso_audit_event
    FOR EACH ROW EXECUTE FUNCTION secure_sso_audit_refuse_change();
CREATE TRIGGER secure_sso_audit_no_truncate
    BEFORE TRUNCATE ON secure_sso_audit_event
    FOR EACH STATEMENT EXECUTE FUNCTION secure_sso_audit_refuse_change();
"""
DROP = """
DROP TRIGGER IF EXISTS secure_sso_audit_no_truncate ON secure_sso_audit_event;
DROP TRIGGER IF EXISTS secure_sso_audit_append_only ON secure_sso_audit_event;
DROP FUNCTION IF EXISTS secure_sso_audit_refuse_change();
"""


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FUNCTION, params=None)
        schema_editor.execute(TRIGGER, params=None)


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)


class Migration(migrations.Migration):
    dependencies = [("secure_sso_audit", "0001_initial")]
    operations = [migrations.RunPython(install, uninstall)]
