"""The audit hash chain on a real PostgreSQL server, started by this test run (tests/pg.py).

* Many writer processes appending at once form one linear chain, none lost.
* The triggers installed by the migrations refuse UPDATE and DELETE of events, moving the
  chain head back and any change to checkpoints, even to the superuser (who could switch
  them off: tests/audit/test_pg_least_privilege.py runs the site as a role that cannot).
* A row changed, deleted or moved with raw SQL (the trigger disabled by the database
  superuser) makes ``audit_verify`` fail naming the first broken event.

Everything goes through subprocesses (``python -m django ...``, ``tests.audit.pg_writer``)
against that server, plus psycopg for the raw SQL; pytest-django's databases are not used.
These are end-to-end tests: CI fails if they are skipped (the server binaries missing).
"""

from __future__ import annotations

import itertools
import os
import re
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

#: Concurrent writers and events each (6 x 500: about 6 s of appending on two cores).
WORKERS = 6
PER_WORKER = 500
WRITERS_TIMEOUT = 120.0
#: Seconds the writers wait, once started, so that all begin appending together.
START_DELAY = 3.0
#: Events in the chain that the tamper tests edit.
SEEDED_EVENTS = 12

_db_names = itertools.count(1)


# --- helpers ---------------------------------------------------------------------------


def _env(pg: PostgresServer, dbname: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(pg.env(dbname))
    env["DJANGO_SETTINGS_MODULE"] = SETTINGS
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def django_command(
    pg: PostgresServer, dbname: str, *args: str, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """``python -m django <args> --settings=tests.settings_pg`` against ``dbname``."""
    return subprocess.run(
        [sys.executable, "-m", "django", *args, f"--settings={SETTINGS}"],
        cwd=REPO_ROOT,
        env=_env(pg, dbname),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_writer(
    pg: PostgresServer, dbname: str, count: int, worker: str, start_at: float | None = None
) -> subprocess.Popen[str]:
    env = _env(pg, dbname)
    if start_at is not None:
        env["PG_WRITER_START_AT"] = repr(start_at)
    return subprocess.Popen(
        [sys.executable, "-m", "tests.audit.pg_writer", str(count), worker],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_writers(writers: list[subprocess.Popen[str]], timeout: float) -> None:
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


def verify(pg: PostgresServer, dbname: str) -> subprocess.CompletedProcess[str]:
    return django_command(pg, dbname, "audit_verify")


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def names_seq(text: str, seq: int) -> bool:
    return re.search(rf"\bseq {seq}\b", text) is not None


def query(pg: PostgresServer, dbname: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    with pg.connect(dbname) as conn:
        return conn.execute(sql, params).fetchall()


def snapshot(pg: PostgresServer, dbname: str) -> list[tuple[Any, ...]]:
    return query(pg, dbname, "SELECT * FROM secure_sso_audit_event ORDER BY id")


Statement = tuple[str, dict[str, Any]]


def tamper(pg: PostgresServer, dbname: str, statements: list[Statement]) -> None:
    """Run ``statements`` in one transaction as the superuser, with the table's triggers off."""
    with pg.connect(dbname, autocommit=False) as conn:  # commits when the block ends
        conn.execute("ALTER TABLE secure_sso_audit_event DISABLE TRIGGER USER")
        for sql, params in statements:
            conn.execute(sql, params)
        conn.execute("ALTER TABLE secure_sso_audit_event ENABLE TRIGGER USER")


# --- fixtures --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    """A PostgreSQL server of this module's own."""
    with PostgresServer("audit_migrated") as server:
        yield server


@pytest.fixture(scope="module")
def migrated(pg: PostgresServer) -> str:
    """The server's database, migrated, without events: the template of the others."""
    result = django_command(pg, pg.dbname, "migrate", "--noinput")
    assert result.returncode == 0, output(result)
    return pg.dbname


@pytest.fixture(scope="module")
def seeded(pg: PostgresServer, migrated: str) -> str:
    """A template database holding a verified chain of ``SEEDED_EVENTS`` events."""
    name = "audit_seeded"
    pg.create_database(name, template=migrated)
    writer = start_writer(pg, name, SEEDED_EVENTS, "seed")
    wait_writers([writer], timeout=60)
    result = verify(pg, name)
    assert result.returncode == 0, output(result)
    return name


def _clone(pg: PostgresServer, template: str) -> Iterator[str]:
    with pg.copy_of(template, f"audit_{next(_db_names)}") as name:
        yield name


@pytest.fixture
def empty_db(pg: PostgresServer, migrated: str) -> Iterator[str]:
    """A migrated database with no events yet."""
    yield from _clone(pg, migrated)


@pytest.fixture
def seeded_db(pg: PostgresServer, seeded: str) -> Iterator[str]:
    """A copy of the seeded chain, for one test to change."""
    yield from _clone(pg, seeded)


# --- tests -----------------------------------------------------------------------------


def test_server_answers(pg: PostgresServer) -> None:
    assert query(pg, "postgres", "SELECT 1") == [(1,)]
    assert query(pg, "postgres", "SHOW fsync") == [("off",)]
    [(superuser,)] = query(
        pg, "postgres", "SELECT rolsuper FROM pg_roles WHERE rolname = %s", [pg.user]
    )
    assert superuser


def test_migrations_install_the_trigger(pg: PostgresServer, migrated: str) -> None:
    triggers = query(
        pg,
        migrated,
        "SELECT tgname FROM pg_trigger "
        "WHERE tgrelid = 'secure_sso_audit_event'::regclass AND NOT tgisinternal",
    )
    assert triggers, "no trigger on secure_sso_audit_event"


def test_concurrent_writers_form_one_chain(pg: PostgresServer, empty_db: str) -> None:
    total = WORKERS * PER_WORKER
    # Every writer sets Django up first, then all start appending at the same moment,
    # on an empty chain: the first appends race for the chain head as well.
    start_at = time.time() + START_DELAY
    started = time.monotonic()
    writers = [
        start_writer(pg, empty_db, PER_WORKER, f"w{i}", start_at=start_at) for i in range(WORKERS)
    ]
    wait_writers(writers, timeout=WRITERS_TIMEOUT)
    elapsed = time.monotonic() - started

    result = verify(pg, empty_db)
    assert result.returncode == 0, output(result)

    [(count, low, high)] = query(
        pg,
        empty_db,
        "SELECT count(*), min(seq), max(seq) FROM secure_sso_audit_event "
        "WHERE event_type = 'test.concurrent'",
    )
    assert count == total
    [(all_count, all_low, all_high, links, pairs)] = query(
        pg,
        empty_db,
        "SELECT count(*), min(seq), max(seq), count(DISTINCT prev_hash), "
        "count(DISTINCT (details->>'worker', details->>'n')) FROM secure_sso_audit_event",
    )
    # One line: contiguous from 1, every event linked to a different predecessor.
    assert (all_low, all_high) == (1, all_count)
    assert all_count == high - low + 1 == total
    assert links == all_count
    # None lost, none doubled: every (worker, n) exactly once.
    assert pairs == total
    per_worker = dict(
        query(
            pg,
            empty_db,
            "SELECT details->>'worker', count(*) FROM secure_sso_audit_event GROUP BY 1",
        )
    )
    assert per_worker == {f"w{i}": PER_WORKER for i in range(WORKERS)}
    [(head_seq, head_mac, last_mac)] = query(
        pg,
        empty_db,
        "SELECT h.seq, h.mac, e.mac FROM secure_sso_audit_head h "
        "JOIN secure_sso_audit_event e ON e.seq = h.seq",
    )
    assert head_seq == total
    assert head_mac == last_mac

    # The writers really interleaved (else this proved nothing about concurrency).
    rows = query(pg, empty_db, "SELECT details->>'worker' FROM secure_sso_audit_event ORDER BY seq")
    switches = sum(1 for (a,), (b,) in itertools.pairwise(rows) if a != b)
    assert switches > 10 * WORKERS, f"only {switches} switches between writers"
    print(
        f"\n{WORKERS} writers x {PER_WORKER} events: {elapsed:.1f} s "
        f"(incl. {START_DELAY:.0f} s start-up), {switches} writer switches along the chain"
    )


REFUSED = [
    "UPDATE secure_sso_audit_event SET reason = 'x'",
    "UPDATE secure_sso_audit_event SET reason = 'x' WHERE seq = 3",
    "UPDATE secure_sso_audit_event SET seq = seq + 1000",
    "DELETE FROM secure_sso_audit_event",
    "DELETE FROM secure_sso_audit_event WHERE seq = (SELECT max(seq) FROM secure_sso_audit_event)",
    "TRUNCATE secure_sso_audit_event",
    "DELETE FROM secure_sso_audit_head",
    "TRUNCATE secure_sso_audit_head",
    "UPDATE secure_sso_audit_head SET seq = seq - 1",
    "UPDATE secure_sso_audit_checkpoint SET pruned_count = 0",
    "DELETE FROM secure_sso_audit_checkpoint",
    "TRUNCATE secure_sso_audit_checkpoint",
]


def test_trigger_refuses_update_and_delete(pg: PostgresServer, seeded_db: str) -> None:
    """Even the database superuser cannot change or remove events while the triggers are on
    (a DELETE needs the prune switch too, which only audit_prune sets)."""
    import psycopg

    before = snapshot(pg, seeded_db)
    assert len(before) == SEEDED_EVENTS
    for statement in REFUSED:
        with pg.connect(seeded_db) as conn, pytest.raises(psycopg.Error) as raised:
            conn.execute(statement)
        # Refused by the trigger function, not by a mistake in the statement.
        context = raised.value.diag.context or ""
        assert "PL/pgSQL function" in context, (statement, raised.value)
    assert snapshot(pg, seeded_db) == before
    result = verify(pg, seeded_db)
    assert result.returncode == 0, output(result)


MID = SEEDED_EVENTS // 2
_SET_SEQ = "UPDATE secure_sso_audit_event SET seq = %(new)s WHERE seq = %(old)s"


def _swap(a: int, b: int) -> list[Statement]:
    return [
        (_SET_SEQ, {"old": a, "new": -1}),
        (_SET_SEQ, {"old": b, "new": a}),
        (_SET_SEQ, {"old": -1, "new": b}),
    ]


def _at(sql: str, seq: int = MID) -> list[Statement]:
    return [(sql + " WHERE seq = %(seq)s", {"seq": seq})]


#: name: (raw SQL run with the trigger disabled, the seq that audit_verify must name)
TAMPERS: dict[str, tuple[list[Statement], int]] = {
    "edit-reason": (_at("UPDATE secure_sso_audit_event SET reason = 'tampered'"), MID),
    "edit-details": (
        _at("""UPDATE secure_sso_audit_event SET details = details || '{"n": 999}'"""),
        MID,
    ),
    "edit-outcome": (_at("UPDATE secure_sso_audit_event SET outcome = 'failure'"), MID),
    "edit-created-at": (
        _at("UPDATE secure_sso_audit_event SET created_at = created_at - interval '1 hour'"),
        MID,
    ),
    "delete-middle": (_at("DELETE FROM secure_sso_audit_event"), MID),
    "delete-last": (_at("DELETE FROM secure_sso_audit_event", SEEDED_EVENTS), SEEDED_EVENTS),
    "swap-seq": (_swap(MID, MID + 3), MID),
    "swap-adjacent": (_swap(MID, MID + 1), MID),
}


@pytest.mark.parametrize("case", list(TAMPERS))
def test_raw_sql_edit_is_detected(pg: PostgresServer, seeded_db: str, case: str) -> None:
    statements, bad_seq = TAMPERS[case]
    before = snapshot(pg, seeded_db)
    tamper(pg, seeded_db, statements)
    assert snapshot(pg, seeded_db) != before, "the tamper changed nothing"
    # The trigger is on again.
    [(enabled,)] = query(
        pg,
        seeded_db,
        "SELECT bool_and(tgenabled = 'O') FROM pg_trigger "
        "WHERE tgrelid = 'secure_sso_audit_event'::regclass AND NOT tgisinternal",
    )
    assert enabled

    result = verify(pg, seeded_db)
    assert result.returncode != 0, output(result)
    assert names_seq(output(result), bad_seq), output(result)


def test_values_postgresql_rewrites_still_verify(pg: PostgresServer, empty_db: str) -> None:
    """-0.0, huge numbers, NUL, lone surrogates and IPv6 zone ids are stored so they verify."""
    result = subprocess.run(
        [sys.executable, "-m", "tests.audit.pg_awkward"],
        env=_env(pg, empty_db), capture_output=True, text=True, timeout=60, cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert verify(pg, empty_db).returncode == 0, output(verify(pg, empty_db))
    [(ip,)] = query(pg, empty_db, "SELECT client_ip FROM secure_sso_audit_event")
    assert str(ip) == "fe80::1"


def test_deleting_a_user_keeps_the_events(pg: PostgresServer, empty_db: str) -> None:
    """The trigger lets a user deletion null the foreign key only; the chain still verifies."""
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
        [sys.executable, "-c", script], env=_env(pg, empty_db), capture_output=True, text=True,
        timeout=60, cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr
    [(user_id, username)] = query(
        pg, empty_db, "SELECT user_id, username FROM secure_sso_audit_event"
    )
    assert user_id is None and username == "leaver"
    assert verify(pg, empty_db).returncode == 0
    with pytest.raises(Exception, match="append-only"):
        query(pg, empty_db, "UPDATE secure_sso_audit_event SET user_id = NULL, reason = 'x'")
