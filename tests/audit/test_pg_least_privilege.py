"""Least-privilege PostgreSQL: the site's role cannot remove or rewrite audit evidence.

Two roles on a real server started by this module (tests/pg.py), as README's
"Least-privilege PostgreSQL" sets them up: ``audit_owner`` owns the database, migrates,
owns the audit tables and prunes (the ``audit_admin`` alias of tests/settings_pg.py);
``audit_app`` is the role the site runs as (``default``). Two ways of granting it:

* ``granted``: a schema-wide ``GRANT SELECT, INSERT, UPDATE, DELETE`` on every table (what
  Django's other tables need), then what ``audit_grants --runtime-role audit_app`` prints;
* ``broad``: ``GRANT ALL`` on every table and sequence, and nothing taken back (too much:
  the triggers are then the only wall).

Everything Django does runs in subprocesses (``python -m django``, ``tests.audit.pg_writer``)
with ``PG_USER`` naming the role; raw SQL goes through psycopg as one role or the other.
"""

from __future__ import annotations

import itertools
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.pg import PostgresServer

pytestmark = pytest.mark.e2e

REPO_ROOT = Path(__file__).resolve().parents[2]
SETTINGS = "tests.settings_pg"
OWNER = "audit_owner"
RUNTIME = "audit_app"
SEEDED_EVENTS = 12
#: Events the seeding prune removes (a checkpoint exists after it).
SEED_PRUNED = 4
#: Concurrent writers as the site's role, and events each.
WORKERS = 4
PER_WORKER = 150
START_DELAY = 3.0

_db_names = itertools.count(1)


def _env(pg: PostgresServer, dbname: str, user: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(pg.env(dbname))
    env.update(PG_USER=user, PGUSER=user, PG_ADMIN_USER=OWNER)
    env["DJANGO_SETTINGS_MODULE"] = SETTINGS
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def django_command(
    pg: PostgresServer, dbname: str, *args: str, user: str = RUNTIME, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "django", *args, f"--settings={SETTINGS}"],
        cwd=REPO_ROOT, env=_env(pg, dbname, user), capture_output=True, text=True,
        timeout=timeout, check=False,
    )


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def connect(pg: PostgresServer, dbname: str, user: str, *, autocommit: bool = True) -> Any:
    import psycopg

    return psycopg.connect(
        host=pg.host, port=pg.port, user=user, dbname=dbname, autocommit=autocommit,
        connect_timeout=10,
    )


def query(pg: PostgresServer, dbname: str, sql: str, user: str = OWNER) -> list[tuple[Any, ...]]:
    with connect(pg, dbname, user) as conn:
        return conn.execute(sql).fetchall()


def snapshot(pg: PostgresServer, dbname: str) -> list[list[tuple[Any, ...]]]:
    return [
        query(pg, dbname, f"SELECT * FROM {table} ORDER BY 1")  # noqa: S608
        for table in ("secure_sso_audit_event", "secure_sso_audit_head",
                      "secure_sso_audit_checkpoint")
    ]


def start_writer(
    pg: PostgresServer, dbname: str, count: int, worker: str, start_at: float | None = None
) -> subprocess.Popen[str]:
    """``tests.audit.pg_writer`` appending ``count`` events as the site's role."""
    env = _env(pg, dbname, RUNTIME)
    if start_at is not None:
        env["PG_WRITER_START_AT"] = repr(start_at)
    return subprocess.Popen(
        [sys.executable, "-m", "tests.audit.pg_writer", str(count), worker],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_writers(writers: list[subprocess.Popen[str]], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    failures = []
    for index, proc in enumerate(writers):
        try:
            out, err = proc.communicate(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            for other in writers:
                other.kill()
            pytest.fail(f"writer {index} still running after {timeout} s")
        if proc.returncode != 0:
            failures.append(f"writer {index} exited {proc.returncode}:\n{out}{err}")
    assert not failures, "\n".join(failures)


def created_at(pg: PostgresServer, dbname: str, seq: int) -> str:
    [(moment,)] = query(
        pg, dbname, f"SELECT created_at FROM secure_sso_audit_event WHERE seq = {int(seq)}"  # noqa: S608
    )
    return moment.isoformat()


def prune_as_owner(pg: PostgresServer, dbname: str, before_seq: int) -> str:
    """``audit_prune --database audit_admin``: every event before ``before_seq`` goes."""
    result = django_command(
        pg, dbname, "audit_prune", "--before", created_at(pg, dbname, before_seq),
        "--database", "audit_admin", "--yes",
    )
    assert result.returncode == 0, output(result)
    return result.stdout


def verify_as_runtime(pg: PostgresServer, dbname: str) -> str:
    result = django_command(pg, dbname, "audit_verify")
    assert result.returncode == 0, output(result)
    return result.stdout


def grants_sql(pg: PostgresServer, dbname: str) -> str:
    result = django_command(pg, dbname, "audit_grants", "--runtime-role", RUNTIME)
    assert result.returncode == 0, output(result)
    return result.stdout


def apply_grants(pg: PostgresServer, dbname: str) -> None:
    """What ``audit_grants`` prints, run as the owner (as ``psql -f`` would)."""
    sql = grants_sql(pg, dbname)
    with connect(pg, dbname, OWNER) as conn:
        conn.execute(sql)


# --- fixtures --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    """A server of this module's own, with the two roles (neither a superuser)."""
    with PostgresServer("lp_postgres") as server:
        with server.connect() as conn:
            conn.execute(f"CREATE ROLE {OWNER} LOGIN")
            conn.execute(f"CREATE ROLE {RUNTIME} LOGIN")
        yield server


def _template(pg: PostgresServer, name: str, template: str | None = None) -> str:
    pg.create_database(name, template=template, owner=OWNER)
    return name


@pytest.fixture(scope="module")
def migrated(pg: PostgresServer) -> str:
    """Migrated through the owner's alias, as README says: ``migrate --database audit_admin``."""
    name = _template(pg, "lp_migrated")
    result = django_command(pg, name, "migrate", "--noinput", "--database", "audit_admin")
    assert result.returncode == 0, output(result)
    [(owner,)] = query(
        pg, name,
        "SELECT DISTINCT tableowner FROM pg_tables WHERE tablename LIKE 'secure_sso_audit%'",
    )
    assert owner == OWNER
    return name


@pytest.fixture(scope="module")
def granted_empty(pg: PostgresServer, migrated: str) -> str:
    """No events yet; the site's role granted what the operator grants, then audit_grants."""
    name = _template(pg, "lp_granted_empty", migrated)
    with connect(pg, name, OWNER) as conn:
        conn.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {RUNTIME}"
        )
    apply_grants(pg, name)
    return name


def _seed(pg: PostgresServer, name: str) -> str:
    """A chain of ``SEEDED_EVENTS`` written by the site's role, its first ``SEED_PRUNED``
    pruned by the owner (so a checkpoint exists)."""
    wait_writers([start_writer(pg, name, SEEDED_EVENTS, "seed")])
    assert "pruned 4 audit events" in prune_as_owner(pg, name, SEED_PRUNED + 1)
    [(low, high, checkpoints)] = query(
        pg, name,
        "SELECT min(seq), max(seq), (SELECT count(*) FROM secure_sso_audit_checkpoint) "
        "FROM secure_sso_audit_event",
    )
    assert (low, high, checkpoints) == (SEED_PRUNED + 1, SEEDED_EVENTS + 1, 1)
    return name


@pytest.fixture(scope="module")
def granted(pg: PostgresServer, granted_empty: str) -> str:
    return _seed(pg, _template(pg, "lp_granted", granted_empty))


@pytest.fixture(scope="module")
def broad(pg: PostgresServer, migrated: str) -> str:
    """The site's role granted everything on every table and sequence (too much)."""
    name = _template(pg, "lp_broad", migrated)
    with connect(pg, name, OWNER) as conn:
        conn.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {RUNTIME}")
        conn.execute(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {RUNTIME}")
    return _seed(pg, name)


def _clone(pg: PostgresServer, template: str) -> Iterator[str]:
    with pg.copy_of(template, f"lp_{next(_db_names)}", owner=OWNER) as name:
        yield name


@pytest.fixture
def migrated_db(pg: PostgresServer, migrated: str) -> Iterator[str]:
    yield from _clone(pg, migrated)


@pytest.fixture
def empty_db(pg: PostgresServer, granted_empty: str) -> Iterator[str]:
    yield from _clone(pg, granted_empty)


@pytest.fixture
def granted_db(pg: PostgresServer, granted: str) -> Iterator[str]:
    yield from _clone(pg, granted)


@pytest.fixture
def broad_db(pg: PostgresServer, broad: str) -> Iterator[str]:
    yield from _clone(pg, broad)


@pytest.fixture(params=["granted", "broad"])
def either_db(request: pytest.FixtureRequest, pg: PostgresServer) -> Iterator[str]:
    """The seeded chain with the grants of README, and with far too many."""
    yield from _clone(pg, request.getfixturevalue(request.param))


# --- the migration --------------------------------------------------------------------


def triggers(pg: PostgresServer, dbname: str) -> set[tuple[str, str]]:
    return set(query(
        pg, dbname,
        "SELECT tgrelid::regclass::text, tgname FROM pg_trigger "
        "WHERE tgrelid::regclass::text LIKE 'secure_sso_audit%' AND NOT tgisinternal",
    ))


def test_migration_guards_all_three_tables_and_reverses(
    pg: PostgresServer, migrated_db: str
) -> None:
    """0004 replaces 0002's trigger; migrating back to 0003 puts 0002's back, and forward again."""
    from audit import pg_checks

    installed = {(table, name) for table, names in pg_checks.TRIGGERS.items() for name in names}
    assert triggers(pg, migrated_db) == installed
    result = django_command(
        pg, migrated_db, "migrate", "secure_sso_audit", "0003", "--database", "audit_admin"
    )
    assert result.returncode == 0, output(result)
    assert triggers(pg, migrated_db) == {
        ("secure_sso_audit_event", "secure_sso_audit_append_only"),
        ("secure_sso_audit_event", "secure_sso_audit_no_truncate"),
    }
    result = django_command(pg, migrated_db, "migrate", "--database", "audit_admin")
    assert result.returncode == 0, output(result)
    assert triggers(pg, migrated_db) == installed


# --- (1) the site's role cannot remove or rewrite evidence ----------------------------


def test_runtime_cannot_switch_the_trigger_off(pg: PostgresServer, either_db: str) -> None:
    """The review's attack: the site's role sets the prune switch and deletes every event.
    Refused by the grants, and by the trigger where the role was granted everything."""
    import psycopg

    before = snapshot(pg, either_db)
    with connect(pg, either_db, RUNTIME, autocommit=False) as conn:
        conn.execute("SET LOCAL secure_sso_audit.prune = 'on'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM secure_sso_audit_event")
        conn.rollback()
    assert snapshot(pg, either_db) == before
    verify_as_runtime(pg, either_db)


_PRUNE_ON = "SET LOCAL secure_sso_audit.prune = 'on'"
_NEW_CHECKPOINT = (
    "INSERT INTO secure_sso_audit_checkpoint "
    "(after_seq, mac, pruned_before, pruned_count, created_at, key_id, sig) "
    "VALUES (12, repeat('0', 64), now(), 8, now(), '', '')"
)
#: name: statements run in one transaction as the site's role; the last one is refused.
RUNTIME_REFUSED: dict[str, list[str]] = {
    "event-delete-all": ["DELETE FROM secure_sso_audit_event"],
    "event-delete-one": ["DELETE FROM secure_sso_audit_event WHERE seq = 7"],
    "event-delete-switch-on": [_PRUNE_ON, "DELETE FROM secure_sso_audit_event WHERE seq = 7"],
    "event-update": ["UPDATE secure_sso_audit_event SET reason = 'x' WHERE seq = 7"],
    "event-update-seq": ["UPDATE secure_sso_audit_event SET seq = seq + 1000"],
    # The one column the role may update, to anything but NULL.
    "event-set-user": ["UPDATE secure_sso_audit_event SET user_id = 42 WHERE seq = 7"],
    "event-truncate": ["TRUNCATE secure_sso_audit_event"],
    "event-truncate-switch-on": [_PRUNE_ON, "TRUNCATE secure_sso_audit_event"],
    "head-delete": ["DELETE FROM secure_sso_audit_head"],
    "head-truncate": ["TRUNCATE secure_sso_audit_head"],
    "head-back-one": ["UPDATE secure_sso_audit_head SET seq = seq - 1"],
    "head-to-genesis": ["UPDATE secure_sso_audit_head SET seq = 0, mac = repeat('0', 64)"],
    "head-jump": ["UPDATE secure_sso_audit_head SET seq = seq + 5"],
    "head-same-seq": ["UPDATE secure_sso_audit_head SET mac = repeat('0', 64)"],
    "head-second-row": [
        "INSERT INTO secure_sso_audit_head (id, seq, mac, sig) VALUES (2, 99, '', '')"
    ],
    "checkpoint-insert": [_NEW_CHECKPOINT],
    "checkpoint-insert-switch-on": [_PRUNE_ON, _NEW_CHECKPOINT],
    "checkpoint-update": ["UPDATE secure_sso_audit_checkpoint SET after_seq = 12"],
    "checkpoint-delete": ["DELETE FROM secure_sso_audit_checkpoint"],
    "checkpoint-truncate": ["TRUNCATE secure_sso_audit_checkpoint"],
}


def is_broad(pg: PostgresServer, dbname: str) -> bool:
    [(broad,)] = query(
        pg, dbname, f"SELECT has_table_privilege('{RUNTIME}', 'secure_sso_audit_event', 'DELETE')"
    )
    return bool(broad)


@pytest.mark.parametrize("case", list(RUNTIME_REFUSED))
def test_runtime_refused(pg: PostgresServer, either_db: str, case: str) -> None:
    """Every change but an append is refused to the site's role: by the missing grant or by
    a trigger; with every privilege granted (``broad``), by a trigger."""
    import psycopg

    *setup, statement = RUNTIME_REFUSED[case]
    before = snapshot(pg, either_db)
    with connect(pg, either_db, RUNTIME, autocommit=False) as conn:
        for sql in setup:
            conn.execute(sql)
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as raised:
            conn.execute(statement)
        conn.rollback()
    if is_broad(pg, either_db):
        assert "PL/pgSQL function" in (raised.value.diag.context or ""), raised.value
    assert snapshot(pg, either_db) == before


def test_owner_needs_the_prune_switch(pg: PostgresServer, granted_db: str) -> None:
    """The owner's own DELETE typed by hand is refused too: only audit_prune sets the switch.
    UPDATE and TRUNCATE are refused to the owner whatever it sets."""
    import psycopg

    before = snapshot(pg, granted_db)
    for statements in (
        ["DELETE FROM secure_sso_audit_event WHERE seq = 7"],
        [_PRUNE_ON, "UPDATE secure_sso_audit_event SET reason = 'x' WHERE seq = 7"],
        [_PRUNE_ON, "TRUNCATE secure_sso_audit_event"],
        [_PRUNE_ON, "UPDATE secure_sso_audit_head SET seq = seq - 1"],
        [_PRUNE_ON, "DELETE FROM secure_sso_audit_checkpoint"],
    ):
        *setup, statement = statements
        with connect(pg, granted_db, OWNER, autocommit=False) as conn:
            for sql in setup:
                conn.execute(sql)
            with pytest.raises(psycopg.errors.InsufficientPrivilege) as raised:
                conn.execute(statement)
            conn.rollback()
        assert "PL/pgSQL function" in (raised.value.diag.context or ""), statements
    assert snapshot(pg, granted_db) == before


# --- (2) appending still works as the site's role -------------------------------------


def test_runtime_appends_concurrently(pg: PostgresServer, empty_db: str) -> None:
    """Writers as the site's role, together, on an empty chain (the first ones race to
    create the head): one contiguous chain, none lost, and it verifies."""
    total = WORKERS * PER_WORKER
    start_at = time.time() + START_DELAY
    writers = [
        start_writer(pg, empty_db, PER_WORKER, f"w{i}", start_at=start_at)
        for i in range(WORKERS)
    ]
    wait_writers(writers)
    assert verify_as_runtime(pg, empty_db).startswith(f"audit chain verified: {total} events")
    [(count, low, high, links, pairs, head)] = query(
        pg, empty_db,
        "SELECT count(*), min(seq), max(seq), count(DISTINCT prev_hash), "
        "count(DISTINCT (details->>'worker', details->>'n')), "
        "(SELECT seq FROM secure_sso_audit_head) FROM secure_sso_audit_event",
    )
    assert (count, low, high, links, pairs, head) == (total, 1, total, total, total, total)
    rows = query(pg, empty_db, "SELECT details->>'worker' FROM secure_sso_audit_event ORDER BY seq")
    switches = sum(1 for (a,), (b,) in itertools.pairwise(rows) if a != b)
    assert switches > 2 * WORKERS, f"only {switches} switches between writers"


def test_deleting_a_user_as_runtime_keeps_the_events(pg: PostgresServer, empty_db: str) -> None:
    """The one UPDATE the site's role may make: a deleted user's foreign key becomes NULL."""
    script = (
        "import os; os.environ['DJANGO_SETTINGS_MODULE'] = 'tests.settings_pg'\n"
        "import django; django.setup()\n"
        "from django.contrib.auth import get_user_model\n"
        "import audit\n"
        "user = get_user_model().objects.create_user('leaver')\n"
        "audit.record('test.user', user=user)\n"
        "user.delete()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=_env(pg, empty_db, RUNTIME), capture_output=True,
        text=True, timeout=60, cwd=REPO_ROOT, check=False,
    )
    assert result.returncode == 0, output(result)
    [(user_id, username)] = query(
        pg, empty_db, "SELECT user_id, username FROM secure_sso_audit_event"
    )
    assert user_id is None and username == "leaver"
    verify_as_runtime(pg, empty_db)


# --- (3) pruning through the owner's alias ---------------------------------------------


def test_prune_through_the_owner_alias(pg: PostgresServer, either_db: str) -> None:
    """audit_prune --database audit_admin: a second prune continues from the checkpoint,
    records audit.pruned in its own transaction, and the site's role still verifies."""
    assert "pruned 4 audit events" in prune_as_owner(pg, either_db, 9)
    [(low, high, last_type)] = query(
        pg, either_db,
        "SELECT min(seq), max(seq), (SELECT event_type FROM secure_sso_audit_event "
        "ORDER BY seq DESC LIMIT 1) FROM secure_sso_audit_event",
    )
    assert (low, high, last_type) == (9, SEEDED_EVENTS + 2, "audit.pruned")
    checkpoints = query(
        pg, either_db, "SELECT after_seq FROM secure_sso_audit_checkpoint ORDER BY 1"
    )
    assert checkpoints == [(SEED_PRUNED,), (8,)]
    verified = SEEDED_EVENTS + 2 - 8
    assert verify_as_runtime(pg, either_db).startswith(f"audit chain verified: {verified} events")
    # The site's role appends on after the prune.
    wait_writers([start_writer(pg, either_db, 3, "after")])
    assert verify_as_runtime(pg, either_db).startswith(
        f"audit chain verified: {verified + 3} events"
    )


def test_prune_as_runtime_is_refused(pg: PostgresServer, granted_db: str) -> None:
    """Through the site's own alias the command refuses, naming the role to use; nothing goes."""
    before = snapshot(pg, granted_db)
    result = django_command(
        pg, granted_db, "audit_prune", "--before", created_at(pg, granted_db, 9), "--yes"
    )
    assert result.returncode != 0
    assert f"database role '{RUNTIME}' (alias 'default') does not own" in output(result)
    assert f"connects as '{OWNER}'" in output(result)
    assert snapshot(pg, granted_db) == before


# --- (4) check --deploy ----------------------------------------------------------------

_IDS = re.compile(r"\((secure_sso_audit\.[EW]01\d)\)")


def deploy_check(pg: PostgresServer, dbname: str, user: str = RUNTIME,
                 **env: str) -> tuple[set[str], str]:
    """The least-privilege ids ``check --deploy`` reports, and its output."""
    environment = _env(pg, dbname, user)
    environment.update(env)
    result = subprocess.run(
        [sys.executable, "-m", "django", "check", "--deploy", "--tag", "secure_sso_audit",
         f"--settings={SETTINGS}"],
        cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=120,
        check=False,
    )
    text = output(result)
    assert "Traceback" not in text, text
    return set(_IDS.findall(text)), text


def test_deploy_check_silent_with_the_grants(pg: PostgresServer, granted: str) -> None:
    ids, text = deploy_check(pg, granted)
    assert ids == set(), text


@pytest.mark.parametrize("user", [OWNER, PostgresServer.user])
def test_deploy_check_runtime_owns_the_tables(pg: PostgresServer, granted: str, user: str) -> None:
    """The site running as the owner, or as a superuser: E010."""
    ids, text = deploy_check(pg, granted, user)
    assert ids == {"secure_sso_audit.E010"}, text
    assert f'"{user}" that the site runs as' in text


def test_deploy_check_runtime_member_of_the_owner(pg: PostgresServer, granted_db: str) -> None:
    """A member of the owner role can SET ROLE to it: E010 too."""
    with pg.connect(granted_db) as conn:
        conn.execute(f"GRANT {OWNER} TO {RUNTIME}")
    try:
        ids, text = deploy_check(pg, granted_db)
    finally:
        with pg.connect(granted_db) as conn:
            conn.execute(f"REVOKE {OWNER} FROM {RUNTIME}")
    assert ids == {"secure_sso_audit.E010"}, text


def test_deploy_check_too_many_grants(pg: PostgresServer, broad: str) -> None:
    ids, text = deploy_check(pg, broad)
    assert ids == {"secure_sso_audit.E011"}, text
    for grant in ("UPDATE on secure_sso_audit_event", "DELETE on secure_sso_audit_event",
                  "TRUNCATE on secure_sso_audit_event", "DELETE on secure_sso_audit_head",
                  "INSERT on secure_sso_audit_checkpoint", "TRIGGER on secure_sso_audit_event"):
        assert grant in text, (grant, text)
    assert "UPDATE on secure_sso_audit_head" not in text  # appending moves the head


#: One privilege too many each, granted by the owner (or the superuser, for parameters).
EXTRA_GRANTS = {
    "event-column": (f"GRANT UPDATE (reason) ON secure_sso_audit_event TO {RUNTIME}",
                     "UPDATE (reason) on secure_sso_audit_event"),
    "event-delete": (f"GRANT DELETE ON secure_sso_audit_event TO {RUNTIME}",
                     "DELETE on secure_sso_audit_event"),
    "public-truncate": ("GRANT TRUNCATE ON secure_sso_audit_event TO PUBLIC",
                        "TRUNCATE on secure_sso_audit_event"),
    "head-delete": (f"GRANT DELETE ON secure_sso_audit_head TO {RUNTIME}",
                    "DELETE on secure_sso_audit_head"),
    "checkpoint-insert": (f"GRANT INSERT ON secure_sso_audit_checkpoint TO {RUNTIME}",
                          "INSERT on secure_sso_audit_checkpoint"),
    "checkpoint-column": (f"GRANT UPDATE (sig) ON secure_sso_audit_checkpoint TO {RUNTIME}",
                          "UPDATE (sig) on secure_sso_audit_checkpoint"),
    "trigger": (f"GRANT TRIGGER ON secure_sso_audit_head TO {RUNTIME}",
                "TRIGGER on secure_sso_audit_head"),
    "replication-role": (f"GRANT SET ON PARAMETER session_replication_role TO {RUNTIME}",
                         "SET session_replication_role"),
}


@pytest.mark.parametrize("case", list(EXTRA_GRANTS))
def test_deploy_check_reports_each_extra_grant(
    pg: PostgresServer, granted_db: str, case: str
) -> None:
    """Each privilege beyond appending is E011; audit_grants takes it back (silent again)."""
    grant, reported = EXTRA_GRANTS[case]
    with pg.connect(granted_db) as conn:
        conn.execute(grant)
    try:
        ids, text = deploy_check(pg, granted_db)
    finally:
        if case == "replication-role":  # the whole cluster's, and the superuser's to revoke
            with pg.connect(granted_db) as conn:
                conn.execute(grant.replace("GRANT", "REVOKE").replace(" TO ", " FROM "))
    assert ids == {"secure_sso_audit.E011"}, text
    assert reported in text
    apply_grants(pg, granted_db)
    ids, text = deploy_check(pg, granted_db)
    assert ids == set(), text


def test_deploy_check_disabled_trigger(pg: PostgresServer, granted_db: str) -> None:
    with connect(pg, granted_db, OWNER) as conn:
        conn.execute("ALTER TABLE secure_sso_audit_head DISABLE TRIGGER secure_sso_audit_head_keep")
        conn.execute("DROP TRIGGER secure_sso_audit_event_delete ON secure_sso_audit_event")
    ids, text = deploy_check(pg, granted_db)
    assert ids == {"secure_sso_audit.E012"}, text
    assert "secure_sso_audit_head_keep disabled" in text
    assert "secure_sso_audit_event_delete missing" in text


def test_deploy_check_database_unreachable(pg: PostgresServer, granted: str) -> None:
    """No server at the address: a warning, not a crash (and not silence)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = str(sock.getsockname()[1])
    ids, text = deploy_check(pg, granted, PG_PORT=closed)
    assert ids == {"secure_sso_audit.W010"}, text


def test_grants_are_idempotent(pg: PostgresServer, granted_db: str) -> None:
    """Run twice, the grants leave the same privileges, and appending still works."""
    apply_grants(pg, granted_db)
    apply_grants(pg, granted_db)
    assert deploy_check(pg, granted_db)[0] == set()
    wait_writers([start_writer(pg, granted_db, 2, "again")])
    verify_as_runtime(pg, granted_db)
