"""The hash chain: canonical form, keyed HMAC, locked append, and verification.

Each event's ``mac`` is HMAC-SHA256, under the key named by ``key_id``, of the canonical
JSON of all its fields including ``seq`` and ``prev_hash`` (the previous event's ``mac``).
Changing a field breaks that event's ``mac``; deleting, inserting or swapping events
breaks the ``seq`` run or the ``prev_hash`` links. Appends lock the single
:class:`~audit.models.ChainHead` row, so concurrent writers form one line.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import json.encoder
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.db import connections, models, router, transaction

from audit import reader
from audit.conf import audit_settings
from audit.exceptions import AuditConfigurationError
from audit.models import AuditEvent, ChainHead, Checkpoint

GENESIS = "0" * 64
#: Fields covered by the HMAC, in the canonical form's (sorted) order.
SIGNED_FIELDS = (
    "seq", "created_at", "event_type", "outcome", "reason", "user_ref", "username", "issuer",
    "subject", "client_ip", "user_agent", "request_id", "session_hash", "details",
    "prev_hash", "key_id",
)
# SQLite has no row locks; one process's threads are serialised here, other processes by
# SQLite's own write lock (use "transaction_mode": "IMMEDIATE").
_local_lock = threading.Lock()


def _timestamp(value: datetime) -> str:
    value = value.astimezone(UTC)
    if value.year >= 1000:
        # The same text as the strftime below, in a third of its time (verify formats one
        # per stored event).
        return _TIMESTAMP_FORMAT % (
            value.year, value.month, value.day, value.hour, value.minute, value.second,
            value.microsecond,
        )
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_TIMESTAMP_FORMAT = "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ"


# What json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
# allow_nan=False) builds on every call; encode() keeps no state between calls.
_ENCODER = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


def _encode(data: dict[str, Any]) -> bytes:
    data["created_at"] = _timestamp(data["created_at"])
    data["client_ip"] = data["client_ip"] or None
    return _ENCODER.encode(data).encode()


def canonical(fields: Mapping[str, Any]) -> bytes:
    """Deterministic bytes for ``fields``: sorted keys, no whitespace, UTF-8."""
    return _encode({name: fields.get(name) for name in SIGNED_FIELDS})


def compute_mac(fields: Mapping[str, Any], key: bytes) -> str:
    return hmac.new(key, canonical(fields), hashlib.sha256).hexdigest()


def _row_mac(row: tuple[Any, ...], key: bytes) -> str:
    """:func:`compute_mac` of a row holding the ``SIGNED_FIELDS`` in order (then ``mac``)."""
    return hmac.new(key, _row_canonical(row), hashlib.sha256).hexdigest()


#: The JSON string encoder ``_ENCODER`` applies to every ``str`` (``ensure_ascii=False``).
_encode_str = json.encoder.encode_basestring
#: ``_ENCODER``'s C encoder, made once (``encode()`` makes one per call) and without the
#: circular-reference check: a cycle raises RecursionError, which falls back to the
#: general encoder and its ValueError.
_encode_json = json.encoder.c_make_encoder(  # type: ignore[attr-defined]
    None, _ENCODER.default, _encode_str, None, ":", ",", True, False, False
) if json.encoder.c_make_encoder is not None else None  # type: ignore[attr-defined]
#: The canonical object: the ``SIGNED_FIELDS`` in sorted order, each value a ``%s``.
_CANONICAL_TEMPLATE = "{" + ",".join(f'"{name}":%s' for name in sorted(SIGNED_FIELDS)) + "}"
#: The order :func:`_row_canonical` unpacks a row in and fills the template in; both are
#: checked against ``SIGNED_FIELDS`` at import, below.
_ROW_ORDER = (
    "seq", "created_at", "event_type", "outcome", "reason", "user_ref", "username", "issuer",
    "subject", "client_ip", "user_agent", "request_id", "session_hash", "details",
    "prev_hash", "key_id",
)
_TEMPLATE_ORDER = (
    "client_ip", "created_at", "details", "event_type", "issuer", "key_id", "outcome",
    "prev_hash", "reason", "request_id", "seq", "session_hash", "subject", "user_agent",
    "user_ref", "username",
)


def _row_canonical(row: tuple[Any, ...]) -> bytes:
    """:func:`canonical` of a ``ROW_FIELDS`` row: the same bytes, in a third of the time.

    Stored rows have plain types (``int`` seq, ``datetime``, ``dict`` details, ``str`` or
    ``None`` for the rest), so their JSON is put together from the pieces the encoder
    would produce, in sorted key order, without building and sorting a dict per row
    (``verify`` spends most of its time here). Anything else, a tampered row included,
    goes through the general encoder and so serialises, or fails, exactly as before.
    """
    (seq, created_at, event_type, outcome, reason, user_ref, username, issuer, subject,
     client_ip, user_agent, request_id, session_hash, details, prev_hash, key_id) = row[:16]
    if (
        type(seq) is int
        and type(created_at) is datetime
        and type(details) is dict
        and _encode_json is not None
    ):
        e = _encode_str
        try:
            text = _CANONICAL_TEMPLATE % (
                e(client_ip) if client_ip else "null",
                f'"{_timestamp(created_at)}"',
                "".join(_encode_json(details, 0)),
                e(event_type), e(issuer), e(key_id), e(outcome), e(prev_hash), e(reason),
                e(request_id), int.__repr__(seq), e(session_hash), e(subject), e(user_agent),
                e(user_ref), e(username),
            )
        except (TypeError, RecursionError):
            pass  # a value of another type (or a cycle): the general encoder decides
        else:
            return text.encode()
    return _encode(dict(zip(SIGNED_FIELDS, row, strict=False)))


if (
    SIGNED_FIELDS != _ROW_ORDER or tuple(sorted(SIGNED_FIELDS)) != _TEMPLATE_ORDER
):  # pragma: no cover - a developer's error, caught at import
    raise RuntimeError("audit.chain: _row_canonical no longer matches SIGNED_FIELDS")


class _Sha256Hmac:
    """HMAC-SHA256 under one key with its padded-key states computed once (RFC 2104).

    ``hexdigest(message) == hmac.new(key, message, hashlib.sha256).hexdigest()``, in half
    the time: the verifier computes one per stored event, all under the same few keys.
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > 64:  # SHA-256's block size
            key = hashlib.sha256(key).digest()
        key = key.ljust(64, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in key))
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in key))

    def hexdigest(self, message: bytes) -> str:
        inner = self._inner.copy()
        inner.update(message)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()


def _event_fields(event: AuditEvent) -> dict[str, Any]:
    return {name: getattr(event, name) for name in SIGNED_FIELDS}


def _link_mac(kind: str, seq: int, mac: str, key: bytes) -> str:
    return hmac.new(key, f"{kind}\n{seq}\n{mac}".encode(), hashlib.sha256).hexdigest()


def sign_link(kind: str, seq: int, mac: str) -> tuple[str, str]:
    """``(key_id, signature)`` for a head or checkpoint row pointing at ``(seq, mac)``."""
    signing = audit_settings.signing_key
    if signing is None:
        raise AuditConfigurationError("SECURE_SSO_AUDIT has no SIGNING_KEYS[SIGNING_KEY_ID]")
    return signing[0], _link_mac(kind, seq, mac, signing[1])


def link_verifies(kind: str, seq: int, mac: str, key_id: str, sig: str) -> bool:
    key = audit_settings.SIGNING_KEYS.get(key_id)
    return key is not None and hmac.compare_digest(sig, _link_mac(kind, seq, mac, key))


@dataclass(frozen=True)
class _AppendSQL:
    """The three statements of an append, quoted for one database backend."""

    lock_head: str
    insert: str
    update_head: str
    returning: bool
    #: ``(attname, field, plain_text)`` per inserted column; ``plain_text`` marks a plain
    #: ``CharField``, whose ``get_db_prep_save`` gives a ``str`` back unchanged.
    columns: tuple[tuple[str, Any, bool], ...]


_append_sql: dict[type, _AppendSQL] = {}


def _statements(connection: Any) -> _AppendSQL:
    """SQL for :func:`append` on ``connection``'s backend, built once per backend.

    The same statements the ORM would send (``select_for_update().filter(pk=1)``,
    ``save(force_insert=True)``, ``filter(pk=1).update(...)``), without compiling three
    querysets per event: that compilation cost as much as the database work on SQLite.
    """
    cached = _append_sql.get(type(connection))
    if cached is not None:
        return cached
    quote, ops, features = connection.ops.quote_name, connection.ops, connection.features
    head = quote(ChainHead._meta.db_table)
    event_meta = AuditEvent._meta
    fields = tuple(f for f in event_meta.local_concrete_fields if not f.primary_key)
    columns = ", ".join(quote(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    insert = f"INSERT INTO {quote(event_meta.db_table)} ({columns}) VALUES ({placeholders})"  # noqa: S608
    returning = bool(features.can_return_columns_from_insert)
    if returning:
        # Django 6.1 renamed the backend operation; the SQL it gives is the same.
        returning_columns = getattr(ops, "returning_columns", None) or ops.return_insert_columns
        returning_sql, _ = returning_columns([event_meta.pk])
        insert = f"{insert} {returning_sql}"
    lock_head = f"SELECT {quote('seq')}, {quote('mac')} FROM {head} WHERE {quote('id')} = 1"  # noqa: S608
    if features.has_select_for_update:
        lock_head += f" {ops.for_update_sql()}"
    update_head = (
        f"UPDATE {head} SET {quote('seq')} = %s, {quote('mac')} = %s, {quote('sig')} = %s "  # noqa: S608
        f"WHERE {quote('id')} = 1"
    )
    prepared = tuple((f.attname, f, type(f) is models.CharField) for f in fields)
    statements = _AppendSQL(lock_head, insert, update_head, returning, prepared)
    _append_sql[type(connection)] = statements
    return statements


def _create_head(using: str) -> None:
    """The head row for an empty chain; several first writers may race: one inserts."""
    ChainHead.objects.using(using).bulk_create(
        [ChainHead(pk=1, seq=0, mac=GENESIS)], ignore_conflicts=True
    )


def append(fields: dict[str, Any], *, using: str | None = None) -> AuditEvent:
    """Append one event after the current head, atomically.

    In one transaction: read and lock the head row, insert the event (its ``seq`` and
    ``prev_hash`` from the head, its ``mac`` over both), move the head to it. The three
    statements go through the connection's cursor (Django's execute wrappers and query
    logging included); values are prepared by the model's fields (a ``str`` for a plain
    ``CharField`` goes as is: that is what its ``get_db_prep_save`` returns), so the
    stored row is the one ``AuditEvent.save()`` would write. Compiling the three
    querysets of the ORM version cost as much as the database work on SQLite.

    Raises:
        AuditConfigurationError: no signing key is configured.
        django.db.DatabaseError: the write failed (the caller applies the failure policy).
    """
    signing = audit_settings.signing_key
    if signing is None:
        raise AuditConfigurationError("SECURE_SSO_AUDIT has no SIGNING_KEYS[SIGNING_KEY_ID]")
    key_id, key = signing
    using = using or router.db_for_write(AuditEvent)
    connection = connections[using]
    # SECURITY: the head is read under its row lock (PostgreSQL: FOR UPDATE; SQLite: the
    # database write lock, taken at BEGIN with "transaction_mode": "IMMEDIATE", and
    # _local_lock between this process's threads), so concurrent writers form one line.
    with _local_lock, transaction.atomic(using=using), connection.cursor() as cursor:
        sql = _statements(connection)
        cursor.execute(sql.lock_head)
        head = cursor.fetchone()
        if head is None:
            _create_head(using)
            cursor.execute(sql.lock_head)
            head = cursor.fetchone()
        event = AuditEvent(
            **fields,
            seq=head[0] + 1,
            created_at=datetime.now(UTC),
            prev_hash=head[1] or GENESIS,
            key_id=key_id,
        )
        event.mac = _row_mac(tuple(getattr(event, name) for name in SIGNED_FIELDS), key)
        params = []
        for attname, field, plain_text in sql.columns:
            value = getattr(event, attname)
            if not (plain_text and type(value) is str):
                value = field.get_db_prep_save(value, connection)
            params.append(value)
        cursor.execute(sql.insert, params)
        if sql.returning:
            event.pk = cursor.fetchone()[0]
        else:
            event.pk = connection.ops.last_insert_id(
                cursor, AuditEvent._meta.db_table, AuditEvent._meta.pk.column
            )
        cursor.execute(
            sql.update_head, [event.seq, event.mac, _link_mac("head", event.seq, event.mac, key)]
        )
    event._state.adding = False
    event._state.db = using
    return event


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str = ""

    def __str__(self) -> str:
        if self.ok:
            return f"audit chain verified: {self.checked} events"
        return f"audit chain broken at seq {self.first_bad_seq}: {self.problem}"


def verify_events(
    events: Iterable[AuditEvent],
    *,
    keys: Mapping[str, bytes],
    start_seq: int = 1,
    start_hash: str = GENESIS,
    head: tuple[int, str, str] | None = None,
    observe: Observer | None = None,
) -> VerifyResult:
    """Walk ``events`` (in ``seq`` order) and name the first one that breaks the chain."""
    rows = ((*(getattr(event, name) for name in SIGNED_FIELDS), event.mac) for event in events)
    return _verify_rows(rows, keys=keys, start_seq=start_seq, start_hash=start_hash, head=head,
                        observe=observe)


#: Called with ``(seq, canonical bytes, mac)`` of each event that verified, in order (the
#: anchors hash the same bytes the HMAC covers, without computing them twice).
Observer = Callable[[int, bytes, str], None]


_SEQ, _PREV, _KEY_ID = (SIGNED_FIELDS.index(name) for name in ("seq", "prev_hash", "key_id"))
_MAC = len(SIGNED_FIELDS)
#: Columns of the rows :func:`_verify_rows` walks: the signed fields in order, then ``mac``.
ROW_FIELDS = (*SIGNED_FIELDS, "mac")


def _verify_rows(
    rows: Iterable[tuple[Any, ...]],
    *,
    keys: Mapping[str, bytes],
    start_seq: int,
    start_hash: str,
    head: tuple[int, str, str] | None,
    observe: Observer | None = None,
) -> VerifyResult:
    """:func:`verify_events` over ``ROW_FIELDS`` tuples (no model instance per event)."""
    expected_seq, expected_prev, checked = start_seq, start_hash, 0
    mac_at_head: str | None = None
    compare = hmac.compare_digest
    signers: dict[Any, _Sha256Hmac] = {}
    for row in rows:
        seq = row[_SEQ]
        if seq != expected_seq:
            problem = (
                f"expected seq {expected_seq}, found {seq} "
                f"({'missing events' if seq > expected_seq else 'duplicate or reordered'})"
            )
            return VerifyResult(False, checked, expected_seq, problem)
        if not compare(row[_PREV], expected_prev):
            return VerifyResult(False, checked, seq, "previous hash does not match")
        signer = signers.get(row[_KEY_ID])
        if signer is None:
            key = keys.get(row[_KEY_ID])
            if key is None:
                return VerifyResult(False, checked, seq, f"unknown key id {row[_KEY_ID]!r}")
            signer = signers[row[_KEY_ID]] = _Sha256Hmac(key)
        try:
            message = _row_canonical(row)
        except (TypeError, ValueError):
            return VerifyResult(False, checked, seq, "fields cannot be serialised")
        if not compare(row[_MAC], signer.hexdigest(message)):
            return VerifyResult(False, checked, seq, "HMAC does not match its fields")
        if observe is not None:
            observe(seq, message, row[_MAC])
        if head is not None and seq == head[0]:
            mac_at_head = row[_MAC]
        expected_seq, expected_prev, checked = seq + 1, row[_MAC], checked + 1
    if head is not None:
        head_seq, head_mac, head_sig = head
        if head_seq >= expected_seq:
            problem = f"chain head is at seq {head_seq}: events after {expected_seq - 1} missing"
            return VerifyResult(False, checked, expected_seq, problem)
        # The head was read first: events appended since (each verified above, so written
        # with a key) may follow it. It must point at a real event of the chain.
        at_head = expected_prev if head_seq == expected_seq - 1 else mac_at_head
        # SECURITY: the head is signed with every key that may have written it; a head moved
        # back by someone without the key (to hide deleted tail events) does not verify.
        if (
            at_head is None
            or not compare(head_mac, at_head)
            or not any(
                compare(head_sig, _link_mac("head", head_seq, head_mac, key))
                for key in keys.values()
            )
        ):
            return VerifyResult(False, checked, head_seq + 1, "chain head does not verify")
    return VerifyResult(True, checked)


def verify(using: str | None = None, *, observe: Observer | None = None) -> VerifyResult:
    """Verify the whole stored chain from the genesis or the last prune checkpoint.

    A chain with events (or a checkpoint) but no head row does not verify: deleting the
    newest events together with the head must not read as a shorter, intact chain.
    """
    using = using or router.db_for_read(AuditEvent)
    checkpoint = Checkpoint.objects.using(using).order_by("-after_seq").first()
    start_seq, start_hash = (
        (checkpoint.after_seq + 1, checkpoint.mac) if checkpoint else (1, GENESIS)
    )
    if checkpoint is not None and not link_verifies(
        "checkpoint", checkpoint.after_seq, checkpoint.mac, checkpoint.key_id, checkpoint.sig
    ):
        return VerifyResult(False, 0, start_seq, "prune checkpoint does not verify")
    head = ChainHead.objects.using(using).filter(pk=1).values_list("seq", "mac", "sig").first()
    if head is None and (
        checkpoint is not None
        or AuditEvent.objects.using(using).filter(seq__gte=start_seq).exists()
    ):
        return VerifyResult(False, 0, start_seq, "the chain head row is missing")
    # Inside a transaction PostgreSQL streams the server-side cursor; in autocommit Django
    # declares it WITH HOLD, which makes the server materialise the whole result first.
    with transaction.atomic(using=using):
        return _verify_rows(
            reader.stored_rows(connections[using], ROW_FIELDS, start_seq),
            keys=audit_settings.SIGNING_KEYS,
            start_seq=start_seq,
            start_hash=start_hash,
            head=head,
            observe=observe,
        )


def event_verifies(event: AuditEvent) -> bool:
    """This event's own HMAC (for the admin); links are checked by :func:`verify`."""
    key = audit_settings.SIGNING_KEYS.get(event.key_id)
    if key is None:
        return False
    return hmac.compare_digest(event.mac, compute_mac(_event_fields(event), key))
