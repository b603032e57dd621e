"""Least-privilege PostgreSQL: the GRANTs the site's role needs, and the deploy check that
inspects the live ones.

The role the site runs as (the alias the router writes audit events to, ``default`` as a
rule) appends: it may SELECT and INSERT events (and null a deleted user's foreign key),
lock, create and move the chain head, and read checkpoints. Nothing else. The role that
owns the audit tables migrates and prunes, through an alias of its own
(``DATABASES["audit_admin"]``). Migration 0004's triggers refuse everything else to any
role but the owner; the owner itself can switch them off, so the site must not run as it.

Ids are listed in README's checks table with their fixes.
"""

from __future__ import annotations

from typing import Any

from django.core.checks import Error, Tags, Warning, register
from django.db import DatabaseError, connections, router

from audit.checks import TAG
from audit.models import AuditEvent, ChainHead, Checkpoint

EVENT = AuditEvent._meta.db_table
HEAD = ChainHead._meta.db_table
CHECKPOINT = Checkpoint._meta.db_table
TABLES = (EVENT, HEAD, CHECKPOINT)
#: The one event column the site's role may update (to NULL, when the user is deleted).
USER_COLUMN = AuditEvent._meta.get_field("user").column
#: The head columns an append moves.
HEAD_COLUMNS = tuple(ChainHead._meta.get_field(name).column for name in ("seq", "mac", "sig"))

#: Table privileges the site's role must not hold, by table. TRIGGER: a trigger of its own
#: could rewrite rows; UPDATE on events and on the head is limited by column below.
FORBIDDEN = {
    EVENT: ("UPDATE", "DELETE", "TRUNCATE", "TRIGGER"),
    HEAD: ("DELETE", "TRUNCATE", "TRIGGER"),
    CHECKPOINT: ("INSERT", "UPDATE", "DELETE", "TRUNCATE", "TRIGGER"),
}
#: Columns the site's role may UPDATE where table-wide UPDATE is forbidden (the head's may
#: all be updated: its trigger lets only one step forward through).
UPDATABLE = {EVENT: (USER_COLUMN,), CHECKPOINT: ()}
#: Migration 0004's triggers, by table.
TRIGGERS = {
    EVENT: (
        "secure_sso_audit_event_update", "secure_sso_audit_event_delete",
        "secure_sso_audit_event_truncate",
    ),
    HEAD: ("secure_sso_audit_head_forward", "secure_sso_audit_head_keep"),
    CHECKPOINT: ("secure_sso_audit_checkpoint_insert", "secure_sso_audit_checkpoint_keep"),
}

E010 = (
    "The database role {role} that the site runs as (alias {alias!r}) owns the audit tables, "
    "can act as their owner {owner}, or is a superuser: it can switch the append-only "
    "triggers off and delete or rewrite audit events."
)
E010_HINT = (
    "Migrate and prune as the owner through a database alias of its own "
    "(DATABASES['audit_admin']: `migrate --database audit_admin`, `audit_prune --database "
    "audit_admin`); run the site as another role, not a member of the owner, and grant it "
    "what `manage.py audit_grants --runtime-role ROLE` prints."
)
E011 = (
    "The database role {role} that the site runs as (alias {alias!r}) may change or remove "
    "audit records: {grants}."
)
E011_HINT = (
    "As the owner of the audit tables, run what `manage.py audit_grants --runtime-role "
    "{role}` prints (after any schema-wide GRANT, and again after every migrate)."
)
E012 = (
    "The append-only triggers of the audit tables are missing or do not fire for the site's "
    "role (alias {alias!r}): {problems}."
)
E012_HINT = (
    "Apply the audit migrations as the owner (`manage.py migrate secure_sso_audit "
    "--database audit_admin`), switch the triggers back on (`ALTER TABLE <table> ENABLE "
    "TRIGGER ALL`), and do not run the site with session_replication_role = replica."
)
W010 = "Could not inspect the grants on the audit tables through alias {alias!r}: {error}"
W010_HINT = (
    "Run `manage.py check --deploy` where the database is reachable, with the site's own "
    "database settings: the least-privilege checks (secure_sso_audit.E010-E012) did not run."
)


# --- the GRANTs ---------------------------------------------------------------------------


def quote_identifier(name: str) -> str:
    """``name`` as a PostgreSQL quoted identifier."""
    if not name or "\x00" in name:
        raise ValueError(f"not a PostgreSQL identifier: {name!r}")
    return '"' + name.replace('"', '""') + '"'


def grant_sql(runtime_role: str) -> str:
    """The SQL giving ``runtime_role`` exactly what appending needs on the audit tables.

    Run as the owner of the audit tables, after any schema-wide GRANT (it takes back what
    that gave on these three tables) and after every migrate. Django's other tables are
    the operator's to grant.
    """
    if runtime_role.lower() == "public":
        raise ValueError("PUBLIC is not a role the site can run as")
    role = quote_identifier(runtime_role)
    event, head, checkpoint = (quote_identifier(table) for table in TABLES)
    user_column = quote_identifier(USER_COLUMN)
    head_columns = ", ".join(quote_identifier(column) for column in HEAD_COLUMNS)
    return "\n".join([
        "-- Least-privilege grants on the audit tables (django-secure-sso, secure_sso_audit).",
        "-- Run as the role that owns them (the one migrate ran as), after any schema-wide",
        "-- GRANT and again after every migrate; `manage.py check --deploy` verifies them.",
        "BEGIN;",
        f"REVOKE ALL ON {event}, {head}, {checkpoint} FROM PUBLIC, {role};",
        "-- Events: read and append; null a deleted user's foreign key (the trigger allows",
        "-- nothing else).",
        f"GRANT SELECT, INSERT ON {event} TO {role};",
        f"GRANT UPDATE ({user_column}) ON {event} TO {role};",
        "-- Chain head: lock it (SELECT ... FOR UPDATE), create it, move it one event forward.",
        f"GRANT SELECT, INSERT ON {head} TO {role};",
        f"GRANT UPDATE ({head_columns}) ON {head} TO {role};",
        "-- Checkpoints: written by audit_prune as the owner; the site only reads them.",
        f"GRANT SELECT ON {checkpoint} TO {role};",
        "COMMIT;",
        "",
    ])


# --- the deploy check ---------------------------------------------------------------------


def _privileges(cursor: Any, table: str) -> list[str]:
    """What the current role holds of ``FORBIDDEN[table]``, and column UPDATEs beyond
    ``UPDATABLE[table]``, as ``"DELETE on table"`` / ``"UPDATE (col) on table"``."""
    forbidden = FORBIDDEN[table]
    cursor.execute(
        "SELECT " + ", ".join(
            f"has_table_privilege(current_user, to_regclass(%s), '{privilege}')"
            for privilege in forbidden
        ),
        [table] * len(forbidden),
    )
    held = [p for p, has in zip(forbidden, cursor.fetchone(), strict=True) if has]
    if "UPDATE" in forbidden and "UPDATE" not in held:
        cursor.execute(
            "SELECT a.attname FROM pg_attribute a WHERE a.attrelid = to_regclass(%s) "
            "AND a.attnum > 0 AND NOT a.attisdropped "
            "AND has_column_privilege(current_user, a.attrelid, a.attnum, 'UPDATE') "
            "ORDER BY a.attnum",
            [table],
        )
        columns = [name for (name,) in cursor.fetchall() if name not in UPDATABLE[table]]
        if columns:
            held.append(f"UPDATE ({', '.join(columns)})")
    return [f"{privilege} on {table}" for privilege in held]


def _trigger_problems(cursor: Any, table: str) -> list[str]:
    cursor.execute(
        "SELECT tgname, tgenabled FROM pg_trigger "
        "WHERE tgrelid = to_regclass(%s) AND NOT tgisinternal",
        [table],
    )
    enabled = {name: state for name, state in cursor.fetchall()}
    problems = []
    for name in TRIGGERS[table]:
        state = enabled.get(name)
        if state is None:
            problems.append(f"{name} missing")
        elif state not in ("O", "A"):  # 'D' disabled, 'R' fires on replicas only
            problems.append(f"{name} disabled")
    return problems


def inspect(alias: str) -> list[Any]:
    """The least-privilege problems of ``alias``'s role on the audit tables (PostgreSQL)."""
    with connections[alias].cursor() as cursor:
        cursor.execute(
            "SELECT current_user, c.relname, pg_get_userbyid(c.relowner), "
            "pg_has_role(current_user, c.relowner, 'MEMBER') "
            "FROM pg_class c WHERE c.oid IN (to_regclass(%s), to_regclass(%s), to_regclass(%s)) "
            "ORDER BY c.relname",
            list(TABLES),
        )
        tables = cursor.fetchall()
        if not tables:
            return []  # not migrated: Django's own warnings say so
        role = tables[0][0]
        present = [name for _, name, _, _ in tables]
        found: list[Any] = []
        owned = [(name, owner) for _, name, owner, owns in tables if owns]
        if owned:
            found.append(Error(
                E010.format(role=quote_identifier(role), alias=alias,
                            owner=quote_identifier(owned[0][1])),
                hint=E010_HINT, id="secure_sso_audit.E010",
            ))
        else:
            grants = [grant for table in TABLES if table in present
                      for grant in _privileges(cursor, table)]
            cursor.execute("SELECT current_setting('server_version_num')::int >= 150000")
            if cursor.fetchone()[0]:
                cursor.execute(
                    "SELECT has_parameter_privilege(current_user, "
                    "'session_replication_role', 'SET')"
                )
                if cursor.fetchone()[0]:
                    grants.append("SET session_replication_role (switches triggers off)")
            if grants:
                found.append(Error(
                    E011.format(role=quote_identifier(role), alias=alias,
                                grants="; ".join(grants)),
                    hint=E011_HINT.format(role=quote_identifier(role)),
                    id="secure_sso_audit.E011",
                ))
        problems = [p for table in TABLES if table in present
                    for p in _trigger_problems(cursor, table)]
        cursor.execute("SELECT current_setting('session_replication_role')")
        if cursor.fetchone()[0] == "replica":
            problems.append("session_replication_role is replica (no trigger fires)")
        if problems:
            found.append(Error(
                E012.format(alias=alias, problems="; ".join(problems)),
                hint=E012_HINT, id="secure_sso_audit.E012",
            ))
    return found


@register(Tags.security, TAG, deploy=True)
def check_postgresql_grants(app_configs: Any = None, **kwargs: Any) -> list[Any]:
    """``check --deploy``: the site's role on PostgreSQL appends and nothing more."""
    alias = router.db_for_write(AuditEvent)
    if connections[alias].vendor != "postgresql":
        return []
    try:
        return inspect(alias)
    except DatabaseError as exc:
        error = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
        return [Warning(W010.format(alias=alias, error=error), hint=W010_HINT,
                        id="secure_sso_audit.W010")]
