"""Audit trail throughput: the hash chain against plain inserts, verify speed, export memory.

Issue #8 item 3. Four tables, each ours against a baseline measured in the same run:

1. SQLite (a file, one writer, autocommit, one transaction per event): ``audit.record()``
   against a plain ORM insert of the same row into a same-shaped table, with the audit log
   line rendered to a null stream and with structlog filtering it out (the logging share).
   Alternating rounds, medians.
2. PostgreSQL (a throwaway server, ``tests.pg.PostgresServer``): 1, 4 and 16 writer
   processes started together, total events/s through the chain against plain inserts;
   after every chain run ``audit_verify`` must report exactly the stored count (no fork).
3. ``audit.chain.verify()`` on a 100k and a 1M-event chain, built with ``compute_mac``
   and COPY (not a million ``record()`` calls). Target: >= 100k events/s.
4. ``audit_export --format jsonl`` to /dev/null: peak RSS of the command for 100k and 1M
   events (flat memory means about equal), against the same command exporting nothing.

Run ``python bench/audit.py`` from the repository root (about 3-4 minutes). Nothing here
asserts a time; it exits 1 only when a chain fails to verify or events go missing.

The script also runs itself as the child processes: ``--writer``, ``--build``,
``--time-verify`` (internal, driven by the main run). ``--sqlite`` or ``--pg`` runs one
part only; ``--profile`` prints a cProfile of verify() on the 1M chain to stderr.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# This file is bench/audit.py: with bench/ first on sys.path, ``import audit`` would be us.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(ROOT))

PG_SETTINGS = "tests.settings_pg"
TEMPLATE_DB = "bench_audit_template"
PLAIN_TABLE = "bench_plain_event"
EVENT_TABLE = "secure_sso_audit_event"

# -- sizes (the whole run stays well under 5 minutes on two cores) ----------------------
SQLITE_ROUNDS = 7
SQLITE_EVENTS_PER_ROUND = 300
PG_WRITERS = (1, 4, 16)
PG_SECONDS = 5.0
VERIFY_SMALL = 100_000
VERIFY_LARGE = 1_000_000
VERIFY_TARGET = 100_000

COLUMNS = (
    "seq", "created_at", "event_type", "outcome", "reason", "user_id", "user_ref", "username",
    "issuer", "subject", "client_ip", "user_agent", "request_id", "session_hash", "details",
    "prev_hash", "key_id", "mac",
)


# -- shared ---------------------------------------------------------------------------


def print_rate_table(title: str, rows: list[tuple[str, float, float, str]]) -> None:
    """Rows of (name, ours events/s, baseline events/s, note); ratio = ours / baseline."""
    name_w = max(len("case"), *(len(r[0]) for r in rows))
    header = f"{'case':<{name_w}}  {'rate/s':>10}  {'baseline/s':>10}  {'ratio':>6}  note"
    line = "-" * max(len(header), 72)
    print(f"\n{title}\n{line}\n{header}\n{line}")
    for name, ours, base, note in rows:
        ratio = f"{ours / base:.2f}x" if base else "n/a"
        base_text = f"{base:,.0f}" if base else "-"
        print(f"{name:<{name_w}}  {ours:>10,.0f}  {base_text:>10}  {ratio:>6}  {note}")
    print(line, flush=True)


def configure_audit_logging(enabled: bool) -> None:
    """structlog as a project configures it (JSON), written to /dev/null; or filtered out."""
    import logging
    import logging.config

    import structlog

    from audit.logs import configure_structlog, logging_config

    structlog.reset_defaults()
    if enabled:
        config = logging_config(json=True)
        config["handlers"]["structlog"]["stream"] = open(os.devnull, "w")  # noqa: SIM115
        logging.config.dictConfig(config)
        configure_structlog(json=True)
    else:
        # Every audit line is below the threshold: logger.info() is a no-op.
        structlog.configure(
            processors=[],
            wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL),
            cache_logger_on_first_use=False,
        )


def plain_model():
    """A model with AuditEvent's columns (and indexes) on ``bench_plain_event``, no chain."""
    from django.db import models

    from audit.models import AuditEvent

    attrs = {
        "__module__": __name__,
        "Meta": type("Meta", (), {"app_label": "secure_sso_audit", "db_table": PLAIN_TABLE,
                                  "managed": False}),
    }
    for field in AuditEvent._meta.local_fields:
        if field.name != "id":
            attrs[field.name] = field.clone()
    return type("BenchPlainEvent", (models.Model,), attrs)


def sample_request():
    from django.test import RequestFactory

    return RequestFactory().get(
        "/oidc/callback/", REMOTE_ADDR="203.0.113.7",
        HTTP_USER_AGENT="Mozilla/5.0 (X11; Linux x86_64) bench",
    )


def record_one(request, worker: str, n: int):
    import audit

    return audit.record(
        "auth.login", request=request, outcome="success", issuer="https://idp.example.test/",
        subject="user-1234", method="sso", worker=worker, n=n,
    )


def plain_row(template: dict, seq: int, worker: str, n: int) -> dict:
    """The row record() stores, as a plain insert would write it (no chain, no redaction)."""
    from datetime import UTC, datetime

    return {**template, "seq": seq, "created_at": datetime.now(UTC),
            "details": {"method": "sso", "worker": worker, "n": n}}


def row_template(event) -> dict:
    return {name: getattr(event, name) for name in COLUMNS if name not in {"seq", "created_at"}}


# -- 1. SQLite, one writer --------------------------------------------------------------


def sqlite_bench() -> None:
    import django
    from django.conf import settings

    import tests.settings as base

    tmp = tempfile.mkdtemp(prefix="bench-audit-")
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    config = {name: getattr(base, name) for name in dir(base) if name.isupper()}
    config["DATABASES"] = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.path.join(tmp, "audit.sqlite3"),
            # As audit.chain recommends for SQLite: take the write lock at BEGIN.
            "OPTIONS": {"transaction_mode": "IMMEDIATE"},
        }
    }
    # As deployed: anchoring on (a file sink and the log stream, an anchor per 1,000 events).
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    anchor_file = os.path.join(tmp, "audit-anchors.jsonl")
    config["SECURE_SSO_AUDIT"] = {
        **config["SECURE_SSO_AUDIT"],
        "ANCHOR_SINKS": [{"CLASS": "audit.anchors.FileSink", "PATH": anchor_file},
                         "audit.anchors.LogSink"],
        "ANCHOR_KEY": Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()).decode(),
    }
    settings.configure(**config)
    django.setup()

    from django.core.management import call_command
    from django.db import connection

    from audit import anchors

    call_command("migrate", verbosity=0, interactive=False)
    plain = plain_model()
    with connection.schema_editor() as editor:
        editor.create_model(plain)

    request = sample_request()
    configure_audit_logging(True)
    template = row_template(record_one(request, "warmup", 0))
    counter = iter(range(1, 10**9))

    def chain_event() -> None:
        record_one(request, "w", next(counter))

    def plain_event() -> None:
        n = next(counter)
        plain.objects.create(**plain_row(template, n, "w", n))

    cases = {
        "record(), log line rendered": (chain_event, True),
        "record(), log filtered out": (chain_event, False),
        "plain ORM insert": (plain_event, True),
    }
    samples: dict[str, list[float]] = {name: [] for name in cases}
    names = list(cases)
    for name in names:  # warm-up
        fn, logging_on = cases[name]
        configure_audit_logging(logging_on)
        for _ in range(20):
            fn()
    for r in range(SQLITE_ROUNDS):
        for name in names if r % 2 == 0 else reversed(names):
            fn, logging_on = cases[name]
            configure_audit_logging(logging_on)
            start = time.perf_counter()
            for _ in range(SQLITE_EVENTS_PER_ROUND):
                fn()
            samples[name].append(SQLITE_EVENTS_PER_ROUND / (time.perf_counter() - start))
    rates = {name: statistics.median(values) for name, values in samples.items()}
    base_rate = rates["plain ORM insert"]
    result, report = anchors.verify_database()
    note = (f"verify: {result}; {report.checked} of {report.anchors} anchors matched "
            "(anchoring on)")
    print_rate_table(
        f"1. SQLite file, one writer, autocommit (a transaction per event); median of "
        f"{SQLITE_ROUNDS} alternating rounds x {SQLITE_EVENTS_PER_ROUND} events; target >= 0.80x",
        [
            ("record(), log line rendered", rates["record(), log line rendered"], base_rate,
             "structlog JSON -> /dev/null"),
            ("record(), log filtered out", rates["record(), log filtered out"], base_rate,
             "structlog drops the line"),
            ("plain ORM insert", base_rate, base_rate, "same row, same-shaped table"),
        ],
    )
    on, off = rates["record(), log line rendered"], rates["record(), log filtered out"]
    print(f"   logging share of record(): {100 * (1 / on - 1 / off) * on:.0f}% "
          f"({1e6 / on:.0f} us vs {1e6 / off:.0f} us per event); {note}", flush=True)
    if not (result.ok and report.ok and report.anchors):
        raise SystemExit(f"SQLite chain or anchors do not verify: {report.problems}")


# -- child processes (PostgreSQL) -------------------------------------------------------


def _setup_pg_child() -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = PG_SETTINGS
    import django

    django.setup()


def writer_main(mode: str, worker: int) -> int:
    """Set up, say ``ready``, read ``START END`` (time.time()) and append until END."""
    _setup_pg_child()
    from django.db import connection

    configure_audit_logging(True)
    request = sample_request()
    name = f"w{worker}"
    plain = plain_model() if mode == "plain" else None
    template = None
    if plain is not None:
        from audit.models import AuditEvent

        # The same field values record() stores (no chain row is written).
        template = row_template(AuditEvent(
            event_type="auth.login", outcome="success", issuer="https://idp.example.test/",
            subject="user-1234", client_ip="203.0.113.7",
            user_agent="Mozilla/5.0 (X11; Linux x86_64) bench", request_id="r" * 32,
            prev_hash="0" * 64, key_id="k1", mac="f" * 64,
        ))
    connection.ensure_connection()
    print("ready", flush=True)
    start, end = (float(x) for x in sys.stdin.readline().split())
    time.sleep(max(0.0, start - time.time()))
    count = 0
    seq_base = worker * 10**9
    while time.time() < end:
        if plain is None:
            record_one(request, name, count)
        else:
            plain.objects.create(**plain_row(template, seq_base + count, name, count))
        count += 1
    print(count, flush=True)
    return 0


def build_main(count: int) -> int:
    """Append ``count`` events after the current head with compute_mac and one COPY."""
    _setup_pg_child()
    from datetime import UTC, datetime, timedelta

    from django.db import connection

    from audit.chain import GENESIS, _link_mac, compute_mac
    from audit.conf import audit_settings
    from audit.models import ChainHead

    key_id, key = audit_settings.signing_key
    head = ChainHead.objects.filter(pk=1).values_list("seq", "mac").first()
    last_seq, prev = head if head else (0, GENESIS)
    epoch = datetime(2024, 1, 1, tzinfo=UTC)
    fixed = {
        "event_type": "auth.login", "outcome": "success", "reason": "", "user_ref": "42",
        "username": "alice", "issuer": "https://idp.example.test/", "subject": "user-1234",
        "client_ip": "203.0.113.7", "user_agent": "Mozilla/5.0 (X11; Linux x86_64) bench",
        "session_hash": "ab" * 32, "key_id": key_id,
    }
    columns = ", ".join(COLUMNS)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        # A chain built in bulk, as no runtime role may: the head jumps by ``count`` events,
        # which the head's trigger refuses; as the superuser, this session skips triggers.
        cursor.execute("SET session_replication_role = replica")
        raw = cursor.cursor
        with raw.copy(f"COPY {EVENT_TABLE} ({columns}) FROM STDIN") as copy:
            for seq in range(last_seq + 1, last_seq + count + 1):
                fields = {
                    **fixed, "seq": seq, "created_at": epoch + timedelta(milliseconds=seq),
                    "request_id": f"{seq:032x}", "details": {"method": "sso", "n": seq},
                    "prev_hash": prev,
                }
                mac = compute_mac(fields, key)
                copy.write_row((
                    seq, fields["created_at"], fields["event_type"], fields["outcome"], "",
                    None, fields["user_ref"], fields["username"], fields["issuer"],
                    fields["subject"], fields["client_ip"], fields["user_agent"],
                    fields["request_id"], fields["session_hash"],
                    json.dumps(fields["details"]), prev, key_id, mac,
                ))
                prev = mac
        seq = last_seq + count
        cursor.execute(
            "INSERT INTO secure_sso_audit_head (id, seq, mac, sig) VALUES (1, %s, %s, %s) "
            "ON CONFLICT (id) DO UPDATE SET seq = EXCLUDED.seq, mac = EXCLUDED.mac, "
            "sig = EXCLUDED.sig",
            [seq, prev, _link_mac("head", seq, prev, key)],
        )
        cursor.execute(f"ANALYZE {EVENT_TABLE}")
    print(json.dumps({"seconds": time.perf_counter() - started, "head": seq}))
    return 0


def time_verify_main(profile: bool) -> int:
    _setup_pg_child()
    from audit import chain

    if profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
    started = time.perf_counter()
    result = chain.verify()
    seconds = time.perf_counter() - started
    if profile:
        profiler.disable()
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(18)
    print(json.dumps({"ok": result.ok, "checked": result.checked, "seconds": seconds,
                      "text": str(result)}))
    return 0


def time_anchored_verify_main() -> int:
    """Publish one anchor over the whole chain (timed), then verify the database against it
    (timed): what ``audit_verify`` does with anchoring on."""
    _setup_pg_child()
    from django.conf import settings
    from django.test.utils import override_settings

    from audit import anchors

    with tempfile.TemporaryDirectory(prefix="bench-anchors-") as folder:
        audit = {**settings.SECURE_SSO_AUDIT, "ANCHOR_KEY": anchors.new_private_pem(),
                 "ANCHOR_SINKS": [{"CLASS": "audit.anchors.FileSink",
                                   "PATH": str(Path(folder) / "anchors.jsonl")}]}
        with override_settings(SECURE_SSO_AUDIT=audit):
            started = time.perf_counter()
            anchor = anchors.publish("manual")
            published = time.perf_counter() - started
            started = time.perf_counter()
            result, report = anchors.verify_database()
            seconds = time.perf_counter() - started
    print(json.dumps({"ok": result.ok and report.ok and report.checked == 1,
                      "checked": result.checked, "seconds": seconds,
                      "publish_seconds": published, "anchored": anchor.seq if anchor else 0,
                      "text": f"{result}; {report.checked} of {report.anchors} anchors matched "
                              + "; ".join(report.problems)}))
    return 0


# -- 2-4. PostgreSQL ------------------------------------------------------------------


def _env(pg, dbname: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update(pg.env(dbname))
    env["DJANGO_SETTINGS_MODULE"] = PG_SETTINGS
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _self(pg, dbname: str, *args: str, timeout: float = 300) -> dict:
    result = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *args], cwd=ROOT,
        env=_env(pg, dbname), capture_output=True, text=True, timeout=timeout, check=False,
    )
    if result.returncode:
        raise SystemExit(f"{' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    if result.stderr.strip():
        print(result.stderr, file=sys.stderr)
    return json.loads(result.stdout.strip().splitlines()[-1])


def django_command(pg, dbname: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "django", *args, f"--settings={PG_SETTINGS}"], cwd=ROOT,
        env=_env(pg, dbname), capture_output=True, text=True, timeout=600, check=False,
    )


def count_rows(pg, dbname: str, table: str) -> int:
    with pg.connect(dbname) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608


def run_writers(pg, dbname: str, mode: str, writers: int) -> tuple[int, float]:
    procs = [
        subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--writer", mode, str(i)],
            cwd=ROOT, env=_env(pg, dbname), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )
        for i in range(writers)
    ]
    try:
        for proc in procs:  # all set up and connected before the clock starts
            line = proc.stdout.readline()
            if line.strip() != "ready":
                raise SystemExit(f"writer failed to start:\n{line}{proc.stderr.read()}")
        start = time.time() + 0.3
        for proc in procs:
            proc.stdin.write(f"{start!r} {start + PG_SECONDS!r}\n")
            proc.stdin.flush()
        total = 0
        for proc in procs:
            out, err = proc.communicate(timeout=PG_SECONDS + 120)
            if proc.returncode:
                raise SystemExit(f"writer exited {proc.returncode}:\n{out}{err}")
            total += int(out.split()[-1])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    return total, PG_SECONDS


def pg_concurrency(pg) -> bool:
    rows = []
    all_ok = True
    for writers in PG_WRITERS:
        rates = {}
        verdict = ""
        for mode in ("chain", "plain"):
            dbname = f"bench_{mode}_{writers}"
            pg.create_database(dbname, template=TEMPLATE_DB)
            total, seconds = run_writers(pg, dbname, mode, writers)
            rates[mode] = total / seconds
            if mode == "chain":
                stored = count_rows(pg, dbname, EVENT_TABLE)
                result = django_command(pg, dbname, "audit_verify")
                text = (result.stdout + result.stderr).strip()
                match = re.search(r"verified: (\d+) events", text)
                verified = int(match.group(1)) if match else -1
                with pg.connect(dbname) as conn:
                    head = conn.execute("SELECT seq FROM secure_sso_audit_head").fetchone()[0]
                if result.returncode == 0 and verified == stored == total == head:
                    verdict = f"no fork: audit_verify {verified} = stored = written"
                else:
                    all_ok = False
                    verdict = (f"FAILED: written {total}, stored {stored}, head {head}, "
                               f"audit_verify: {text}")
            else:
                stored = count_rows(pg, dbname, PLAIN_TABLE)
                if stored != total:
                    all_ok = False
                    verdict += f"; FAILED plain: written {total}, stored {stored}"
            pg.drop_database(dbname)
        rows.append((f"{writers:>2} writer process{'es' if writers > 1 else ''}",
                     rates["chain"], rates["plain"], verdict))
    print_rate_table(
        f"2. PostgreSQL 15, N writer processes started together, {PG_SECONDS:.0f} s each: "
        "total events/s, record() vs plain ORM insert",
        rows,
    )
    return all_ok


def export_rss(pg, dbname: str, *extra: str) -> tuple[int, float]:
    """Peak RSS (KiB) and seconds of one ``audit_export`` process, from its own rusage."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "django", "audit_export", "--format", "jsonl",
         "--output", os.devnull, *extra, f"--settings={PG_SETTINGS}"],
        cwd=ROOT, env=_env(pg, dbname), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    # wait4 gives this child's own ru_maxrss (getrusage(RUSAGE_CHILDREN) is the maximum
    # over every child waited for so far, writers and builders included).
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode()
    proc.stderr.close()
    if proc.returncode:
        raise SystemExit(f"audit_export failed: {err}")
    return usage.ru_maxrss, time.perf_counter() - started


def pg_large(pg, profile: bool) -> bool:
    small, large = "bench_chain_100k", "bench_chain_1m"
    pg.create_database(small, template=TEMPLATE_DB)
    built_small = _self(pg, small, "--build", str(VERIFY_SMALL))
    pg.create_database(large, template=small)
    built_large = _self(pg, large, "--build", str(VERIFY_LARGE - VERIFY_SMALL))
    print(f"\n   built chains with compute_mac + COPY: {VERIFY_SMALL:,} events in "
          f"{built_small['seconds']:.1f} s, +{VERIFY_LARGE - VERIFY_SMALL:,} in "
          f"{built_large['seconds']:.1f} s", flush=True)

    ok = True
    rows = []
    for dbname, size in ((small, VERIFY_SMALL), (large, VERIFY_LARGE)):
        args = ["--time-verify"] + (["--profile"] if profile and size == VERIFY_LARGE else [])
        timed = _self(pg, dbname, *args)
        good = timed["ok"] and timed["checked"] == size
        ok = ok and good
        rows.append((f"verify() {size:,} events", timed["checked"] / timed["seconds"],
                     VERIFY_TARGET,
                     f"{timed['seconds']:.1f} s; {timed['text']}" if good else timed["text"]))
    anchored = _self(pg, large, "--time-anchored-verify")
    good = anchored["ok"] and anchored["checked"] == VERIFY_LARGE
    ok = ok and good
    rows.append((f"verify() + anchors {VERIFY_LARGE:,} events",
                 anchored["checked"] / anchored["seconds"], VERIFY_TARGET,
                 f"{anchored['seconds']:.1f} s; {anchored['text']}"))
    rows.append((f"publish one anchor over {VERIFY_LARGE:,}",
                 anchored["anchored"] / anchored["publish_seconds"], VERIFY_TARGET,
                 f"{anchored['publish_seconds']:.1f} s (HMACs checked, then hashed)"))
    command = django_command(pg, large, "audit_verify")
    text = (command.stdout + command.stderr).strip()
    ok = ok and command.returncode == 0 and f"verified: {VERIFY_LARGE} events" in text
    print_rate_table(
        "3. audit.chain.verify() on PostgreSQL (in-process, after Django set-up); "
        f"baseline column = target {VERIFY_TARGET:,}/s",
        rows,
    )
    print(f"   python -m django audit_verify on the 1M chain: exit {command.returncode}, {text}")

    empty_rss, _ = export_rss(pg, small, "--until", "1970-01-01")
    rss = {}
    for dbname, size in ((small, VERIFY_SMALL), (large, VERIFY_LARGE)):
        rss[size] = export_rss(pg, dbname)
    name_w = 34
    print("\n4. audit_export --format jsonl --output /dev/null: peak RSS of the process "
          "(os.wait4 ru_maxrss)")
    print("-" * 78)
    print(f"{'case':<{name_w}}  {'peak RSS MiB':>12}  {'events/s':>10}  {'vs 0 events':>11}")
    print("-" * 78)
    print(f"{'0 events (Django + command only)':<{name_w}}  {empty_rss / 1024:>12.1f}  "
          f"{'-':>10}  {'1.00x':>11}")
    for size, (kib, seconds) in rss.items():
        print(f"{f'{size:,} events':<{name_w}}  {kib / 1024:>12.1f}  {size / seconds:>10,.0f}  "
              f"{kib / empty_rss:>10.2f}x")
    print("-" * 78)
    growth = rss[VERIFY_LARGE][0] / rss[VERIFY_SMALL][0]
    print(f"   1M / 100k peak RSS: {growth:.2f}x ({'flat' if growth < 1.2 else 'GROWS'})",
          flush=True)
    return ok and growth < 1.2


def pg_bench(profile: bool) -> bool:
    from tests.pg import PostgresServer

    with PostgresServer(TEMPLATE_DB, max_connections=60) as pg:
        migrated = django_command(pg, TEMPLATE_DB, "migrate", "--noinput")
        if migrated.returncode:
            raise SystemExit(migrated.stdout + migrated.stderr)
        with pg.connect(TEMPLATE_DB) as conn:
            # Same columns, defaults, indexes and constraints; no triggers, no chain.
            conn.execute(f"CREATE TABLE {PLAIN_TABLE} (LIKE {EVENT_TABLE} INCLUDING ALL)")
        ok = pg_concurrency(pg)
        return pg_large(pg, profile) and ok


def main(argv: list[str]) -> int:
    if argv[:1] == ["--writer"]:
        return writer_main(argv[1], int(argv[2]))
    if argv[:1] == ["--build"]:
        return build_main(int(argv[1]))
    if argv[:1] == ["--time-verify"]:
        return time_verify_main("--profile" in argv)
    if argv[:1] == ["--time-anchored-verify"]:
        return time_anchored_verify_main()
    started = time.monotonic()
    print(f"machine: {os.cpu_count()} CPUs, {_cpu_model()}; Python {sys.version.split()[0]}")
    only = set(argv) & {"--sqlite", "--pg"}
    ok = True
    if not only or "--sqlite" in only:
        sqlite_bench()  # Django in this process; the PostgreSQL part uses child processes
    if not only or "--pg" in only:
        ok = pg_bench(profile="--profile" in argv)
    print(f"\ntotal {time.monotonic() - started:.0f} s")
    return 0 if ok else 1


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
