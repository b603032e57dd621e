"""On PostgreSQL, guard all three audit tables by role, not by a setting any session may set.

Replaces 0002's trigger. The role that owns a table (or a member of it, superusers
included: they can disable triggers anyway) is the prune role: ``audit_prune`` run through
a database alias that connects as that role. The role the site runs as (any other role,
whatever it was granted) may not delete or rewrite anything:

* ``secure_sso_audit_event``: INSERT; UPDATE only to null a deleted user's unsigned
  foreign key; DELETE only by the owner, inside a transaction that also set
  ``secure_sso_audit.prune`` (a catch against a mistyped DELETE in the owner's own
  session, not a gate: the role is the gate); TRUNCATE never.
* ``secure_sso_audit_head``: INSERT only the empty head (``id`` 1, ``seq`` 0); UPDATE only
  one step forward (``seq + 1``, as an append moves it); DELETE and TRUNCATE never.
* ``secure_sso_audit_checkpoint``: INSERT only by the owner with the prune setting on;
  UPDATE, DELETE and TRUNCATE never.

Privileges are the lock (``manage.py audit_grants --runtime-role ROLE`` prints the
GRANTs); these triggers are the second wall, against a site role that was granted too much.
Row checks run AFTER the row is final, so another BEFORE trigger (from a role granted
TRIGGER) cannot change the row once it passed. The functions name only ``pg_catalog``
objects and pin ``search_path``, so a session's own ``search_path`` cannot swap an operator.
Other databases rely on the models' refusal.
"""

from importlib import import_module

from django.db import migrations

OWNER_OR_REFUSE = """
CREATE FUNCTION secure_sso_audit_owner_only() RETURNS trigger AS $$
BEGIN
    IF NOT pg_has_role(current_user,
                       (SELECT relowner FROM pg_class WHERE oid = TG_RELID), 'MEMBER') THEN
        RAISE EXCEPTION '% on % refused: only the role that owns it may (audit_prune through '
                        'the owner''s database alias), not %', TG_OP, TG_TABLE_NAME, current_user
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF current_setting('secure_sso_audit.prune', true) IS DISTINCT FROM 'on' THEN
        RAISE EXCEPTION '% on % refused: audit records are removed by audit_prune only',
                        TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp;
"""
REFUSE = """
CREATE FUNCTION secure_sso_audit_refuse() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only (% refused)', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp;
"""
EVENT_UPDATE = """
CREATE FUNCTION secure_sso_audit_event_update() RETURNS trigger AS $$
BEGIN
    -- Deleting a user nulls the unsigned foreign key (the signed user_ref and username stay).
    IF NEW.user_id IS NULL AND (to_jsonb(NEW) - 'user_id') = (to_jsonb(OLD) - 'user_id') THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION '% is append-only (% refused)', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp;
"""
HEAD_FORWARD = """
CREATE FUNCTION secure_sso_audit_head_forward() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' AND NEW.id = 1 AND NEW.seq = 0 THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.id = OLD.id AND NEW.seq = OLD.seq + 1 THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION '% refused: the chain head only moves one event forward', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp;
"""
TRIGGERS = """
CREATE TRIGGER secure_sso_audit_event_update
    AFTER UPDATE ON secure_sso_audit_event
    FOR EACH ROW EXECUTE FUNCTION secure_sso_audit_event_update();
CREATE TRIGGER secure_sso_audit_event_delete
    BEFORE DELETE ON secure_sso_audit_event
    FOR EACH STATEMENT EXECUTE FUNCTION secure_sso_audit_owner_only();
CREATE TRIGGER secure_sso_audit_event_truncate
    BEFORE TRUNCATE ON secure_sso_audit_event
    FOR EACH STATEMENT EXECUTE FUNCTION secure_sso_audit_refuse();
CREATE TRIGGER secure_sso_audit_head_forward
    AFTER INSERT OR UPDATE ON secure_sso_audit_head
    FOR EACH ROW EXECUTE FUNCTION secure_sso_audit_head_forward();
CREATE TRIGGER secure_sso_audit_head_keep
    BEFORE DELETE OR TRUNCATE ON secure_sso_audit_head
    FOR EACH STATEMENT EXECUTE FUNCTION secure_sso_audit_refuse();
CREATE TRIGGER secure_sso_audit_checkpoint_insert
    BEFORE INSERT ON secure_sso_audit_checkpoint
    FOR EACH STATEMENT EXECUTE FUNCTION secure_sso_audit_owner_only();
CREATE TRIGGER secure_sso_audit_checkpoint_keep
    BEFORE UPDATE OR DELETE OR TRUNCATE ON secure_sso_audit_checkpoint
    FOR EACH STATEMENT EXECUTE FUNCTION secure_sso_audit_refuse();
"""
DROP = """
DROP TRIGGER IF EXISTS secure_sso_audit_checkpoint_keep ON secure_sso_audit_checkpoint;
DROP TRIGGER IF EXISTS secure_sso_audit_checkpoint_insert ON secure_sso_audit_checkpoint;
DROP TRIGGER IF EXISTS secure_sso_audit_head_keep ON secure_sso_audit_head;
DROP TRIGGER IF EXISTS secure_sso_audit_head_forward ON secure_sso_audit_head;
DROP TRIGGER IF EXISTS secure_sso_audit_event_truncate ON secure_sso_audit_event;
DROP TRIGGER IF EXISTS secure_sso_audit_event_delete ON secure_sso_audit_event;
DROP TRIGGER IF EXISTS secure_sso_audit_event_update ON secure_sso_audit_event;
DROP FUNCTION IF EXISTS secure_sso_audit_head_forward();
DROP FUNCTION IF EXISTS secure_sso_audit_event_update();
DROP FUNCTION IF EXISTS secure_sso_audit_refuse();
DROP FUNCTION IF EXISTS secure_sso_audit_owner_only();
"""
def _previous() -> object:
    return import_module("audit.migrations.0002_postgresql_append_only")


def install(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(_previous().DROP, params=None)
        for sql in (OWNER_OR_REFUSE, REFUSE, EVENT_UPDATE, HEAD_FORWARD, TRIGGERS):
            schema_editor.execute(sql, params=None)


def uninstall(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP, params=None)
        previous = _previous()
        schema_editor.execute(previous.FUNCTION, params=None)
        schema_editor.execute(previous.TRIGGER, params=None)


class Migration(migrations.Migration):
    dependencies = [("secure_sso_audit", "0003_auditevent_base_manager")]
    operations = [migrations.RunPython(install, uninstall)]
