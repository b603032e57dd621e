"""Anchors: the chain's state, signed and published where the database's writers cannot
rewrite it.

The HMAC chain proves that stored events were not edited, reordered or removed from the
middle; it cannot prove that the newest events, the head row, or the whole table are
still there, because whoever can write the database can delete from the end and put back
an older (validly signed) head. An anchor closes that gap: every ``ANCHOR_EVERY_EVENTS``
events (or ``ANCHOR_EVERY_SECONDS``), at every prune and on demand (``audit_anchor``), the
range of events since the previous anchor is hashed and the result is signed with an
Ed25519 key and appended to each configured sink (an append-only file, the structlog
stream, or a sink of the project's own). Each anchor names the one before it, like AWS
CloudTrail's digest files, so a removed or replaced anchor breaks the anchor chain too.

What an anchor covers: events ``start_seq..seq``, by their canonical bytes (the ones the
HMAC covers) and their ``mac``, folded into ``range_hash``. Anyone with the public key
can check a range against an export, without the HMAC key; ``audit_verify`` checks the
database against the anchors. What it does not cover: events appended since the last
anchor (at most ``ANCHOR_EVERY_EVENTS`` events or ``ANCHOR_EVERY_SECONDS`` of them, plus
idle time when no ``audit_anchor`` runs from cron).
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.db import connections, router, transaction
from django.utils.module_loading import import_string

from audit import reader
from audit.chain import (
    GENESIS,
    ROW_FIELDS,
    SIGNED_FIELDS,
    VerifyResult,
    _row_canonical,
    _verify_rows,
    verify,
)
from audit.conf import audit_settings
from audit.exceptions import AuditConfigurationError, AuditError
from audit.logs import emit
from audit.models import AuditEvent, ChainHead, Checkpoint

logger = logging.getLogger("audit")

VERSION = 1
ALGORITHM = "Ed25519"
#: Fields of an anchor, in its canonical (signed) form's order; ``sig`` is not signed.
ANCHOR_FIELDS = (
    "version", "number", "start_seq", "seq", "mac", "range_hash", "previous", "created_at",
    "reason", "alg", "key_id",
)


#: How many ``ANCHOR_EVERY_EVENTS`` of unanchored events ``audit_verify`` tolerates (workers
#: publish independently, and a failing sink is retried at the next interval).
UNANCHORED_SLACK = 2


class AnchorError(AuditError):
    """Anchors could not be published or read."""


# -- keys --------------------------------------------------------------------------------


def key_id(public_key: Ed25519PublicKey) -> str:
    """A public key's name in anchors: the first 16 hex digits of SHA-256 of its raw bytes.

    Derived from the key itself, so a reviewer handed a PEM file needs no name for it.
    """
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_private_key(pem: str | bytes) -> Ed25519PrivateKey:
    """Raises ``AuditConfigurationError`` for anything but an Ed25519 private key in PEM."""
    try:
        key = serialization.load_pem_private_key(
            pem.encode() if isinstance(pem, str) else pem, password=None
        )
    except (ValueError, TypeError) as exc:
        raise AuditConfigurationError("ANCHOR_KEY is not a PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditConfigurationError("ANCHOR_KEY is not an Ed25519 key")
    return key


def load_public_keys(pems: Iterable[str | bytes]) -> dict[str, Ed25519PublicKey]:
    """Public keys by :func:`key_id`; a PEM text may hold several keys one after another."""
    keys: dict[str, Ed25519PublicKey] = {}
    for pem in pems:
        text = pem.decode() if isinstance(pem, bytes) else pem
        for block in text.split("-----END PUBLIC KEY-----"):
            if "-----BEGIN PUBLIC KEY-----" not in block:
                continue
            try:
                key = serialization.load_pem_public_key(
                    (block.strip() + "\n-----END PUBLIC KEY-----\n").encode()
                )
            except ValueError as exc:
                raise AuditConfigurationError("not a PEM public key") from exc
            if not isinstance(key, Ed25519PublicKey):
                raise AuditConfigurationError("not an Ed25519 public key")
            keys[key_id(key)] = key
    return keys


def public_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def new_private_pem() -> str:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def signing_key() -> Ed25519PrivateKey:
    if not audit_settings.ANCHOR_KEY:
        raise AuditConfigurationError("SECURE_SSO_AUDIT['ANCHOR_KEY'] is not set")
    return load_private_key(audit_settings.ANCHOR_KEY)


def configured_public_keys() -> dict[str, Ed25519PublicKey]:
    """The current key's public half and every ``ANCHOR_PUBLIC_KEYS`` entry."""
    keys = load_public_keys(audit_settings.ANCHOR_PUBLIC_KEYS)
    if audit_settings.ANCHOR_KEY:
        current = signing_key().public_key()
        keys[key_id(current)] = current
    return keys


# -- anchors -----------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Anchor:
    """One signed statement: events ``start_seq..seq`` hash to ``range_hash``."""

    number: int
    start_seq: int
    seq: int
    mac: str
    range_hash: str
    previous: str
    created_at: str
    reason: str
    key_id: str
    alg: str = ALGORITHM
    version: int = VERSION
    sig: str = ""

    def signed_bytes(self) -> bytes:
        data = asdict(self)
        return json.dumps(
            {name: data[name] for name in ANCHOR_FIELDS}, sort_keys=True, separators=(",", ":")
        ).encode()

    def line(self) -> str:
        """The anchor as one JSON line (what the file sink appends)."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    def digest(self) -> str:
        """What the next anchor's ``previous`` names: SHA-256 of this whole line."""
        return hashlib.sha256(self.line().encode()).hexdigest()

    @classmethod
    def from_line(cls, text: str) -> Anchor:
        try:
            data = json.loads(text)
            return cls(**{name: data[name] for name in (*ANCHOR_FIELDS, "sig")})
        except (ValueError, TypeError, KeyError) as exc:
            raise AnchorError(f"not an anchor: {text[:80]!r}") from exc

    def verifies(self, keys: Mapping[str, Ed25519PublicKey]) -> bool:
        key = keys.get(self.key_id)
        if key is None or self.alg != ALGORITHM:
            return False
        try:
            key.verify(_unb64(self.sig), self.signed_bytes())
        except (InvalidSignature, ValueError):
            return False
        return True


class RangeHash:
    """SHA-256 over each event's canonical bytes (length-prefixed) and ``mac``, in ``seq``
    order: one stream per anchored range, so checking costs one ``update`` per event."""

    __slots__ = ("_hash",)

    PREFIX = b"secure_sso_audit anchor range v1\n"

    def __init__(self) -> None:
        self._hash = hashlib.sha256(self.PREFIX)

    def add(self, canonical: bytes, mac: str) -> None:
        self._hash.update(len(canonical).to_bytes(8, "big") + canonical + mac.encode())

    def hexdigest(self) -> str:
        return self._hash.hexdigest()


def sign(anchor: Anchor, key: Ed25519PrivateKey) -> Anchor:
    unsigned = replace(anchor, key_id=key_id(key.public_key()), alg=ALGORITHM, sig="")
    return replace(unsigned, sig=_b64(key.sign(unsigned.signed_bytes())))


# -- sinks -------------------------------------------------------------------------------


class AnchorSink(Protocol):
    """Where anchors go. ``publish`` must not return before the anchor is durable there.

    A sink that can also ``read()`` its anchors back (the file sink) lets ``audit_verify``
    check the database against them; one of the configured sinks must.
    """

    def publish(self, anchor: Anchor) -> None: ...


class ReadableSink(AnchorSink, Protocol):
    def read(self) -> list[Anchor]: ...


class FileSink:
    """Appends each anchor as one JSON line to ``PATH``, fsync'ed, under an exclusive lock.

    Put the file where the database's writers cannot rewrite it: another host, a volume
    mounted append-only (``chattr +a``), or a directory shipped to WORM storage.
    """

    def __init__(self, PATH: str | os.PathLike[str]) -> None:  # noqa: N803  settings style
        self.path = Path(PATH)

    def publish(self, anchor: Anchor) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, (anchor.line() + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def read(self) -> list[Anchor]:
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return []
        return [Anchor.from_line(line) for line in text.splitlines() if line.strip()]

    def lock(self) -> _FileLock:
        return _FileLock(self.path.with_name(self.path.name + ".lock"))


class LogSink:
    """Emits each anchor as an ``audit.anchor`` structlog line, for the log pipeline or
    SIEM to keep (the database's writers cannot reach what it already shipped)."""

    def publish(self, anchor: Anchor) -> None:
        emit("audit.anchor", asdict(anchor))


class _FileLock:
    """Serialises publishers on one host (processes and threads)."""

    _threads = threading.Lock()

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def __enter__(self) -> _FileLock:
        self._threads.acquire()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o640)
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except BaseException:
            self._threads.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self.fd is not None:
                fcntl.flock(self.fd, fcntl.LOCK_UN)
                os.close(self.fd)
        finally:
            self.fd = None
            self._threads.release()


def build_sink(spec: Any) -> AnchorSink:
    """A sink from one ``ANCHOR_SINKS`` entry: a dotted path, or a dict with ``CLASS``."""
    if isinstance(spec, str):
        return import_string(spec)()
    if isinstance(spec, dict) and isinstance(spec.get("CLASS"), str):
        options = {k: v for k, v in spec.items() if k != "CLASS"}
        return import_string(spec["CLASS"])(**options)
    raise AuditConfigurationError(f"ANCHOR_SINKS entry {spec!r}: a dotted path or {{'CLASS': ...}}")


_sinks: list[AnchorSink] | None = None
_sinks_key: list[Any] | None = None


def sinks() -> list[AnchorSink]:
    global _sinks, _sinks_key
    configured = audit_settings.ANCHOR_SINKS
    if _sinks is None or _sinks_key is not configured:
        _sinks, _sinks_key = [build_sink(spec) for spec in configured], configured
    return _sinks


def readable_sink() -> ReadableSink | None:
    """The first sink that can read its anchors back (the one publishers lock and read)."""
    for sink in sinks():
        if callable(getattr(sink, "read", None)):
            return sink  # type: ignore[return-value]
    return None


# -- publishing --------------------------------------------------------------------------


def _stored_range(using: str, start_seq: int, end_seq: int) -> Iterator[tuple[Any, ...]]:
    connection = connections[using]
    for row in reader.stored_rows(connection, ROW_FIELDS, start_seq):
        if row[0] > end_seq:
            break
        yield row


def _range(using: str, start_seq: int, end_seq: int, start_hash: str) -> tuple[str, str]:
    """``(range_hash, mac at end_seq)`` of the stored events ``start_seq..end_seq``, which
    must verify (HMAC and links): tampered evidence is never anchored."""
    hasher = RangeHash()
    last_mac = start_hash
    count = 0

    def observe(seq: int, canonical: bytes, mac: str) -> None:
        nonlocal last_mac, count
        hasher.add(canonical, mac)
        last_mac, count = mac, count + 1

    result = _verify_rows(
        _stored_range(using, start_seq, end_seq), keys=audit_settings.SIGNING_KEYS,
        start_seq=start_seq, start_hash=start_hash, head=None, observe=observe,
    )
    if not result.ok:
        raise AnchorError(f"refusing to anchor: {result}")
    if count != end_seq - start_seq + 1:
        raise AnchorError(f"refusing to anchor: events {start_seq + count}..{end_seq} missing")
    return hasher.hexdigest(), last_mac


@dataclass
class _Published:
    seq: int = -1
    at: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


_last = _Published()


def publish(reason: str = "manual", *, using: str | None = None,
            up_to: int | None = None) -> Anchor | None:
    """Anchor the events since the last anchor (up to the head, or ``up_to``); ``None``
    when there is nothing new. Appends to every sink; the readable one first, under its
    lock, so two publishers never fork the anchor chain.

    Raises:
        AuditConfigurationError: anchoring is not configured (no key, no readable sink).
        AnchorError: the events to anchor do not verify, or a sink failed.
    """
    primary = readable_sink()
    if primary is None:
        raise AuditConfigurationError("ANCHOR_SINKS has no sink that can read anchors back")
    key = signing_key()
    using = using or router.db_for_write(AuditEvent)
    lock = primary.lock() if callable(getattr(primary, "lock", None)) else threading.Lock()
    with lock:
        existing = primary.read()
        last = existing[-1] if existing else None
        head = ChainHead.objects.using(using).filter(pk=1).values_list("seq", flat=True).first()
        end = (head or 0) if up_to is None else up_to
        checkpoint = Checkpoint.objects.using(using).order_by("-after_seq").first()
        if last is not None:
            start_seq, start_hash = last.seq + 1, last.mac
        elif checkpoint is not None:
            start_seq, start_hash = checkpoint.after_seq + 1, checkpoint.mac
        else:
            start_seq, start_hash = 1, GENESIS
        if end < start_seq:
            _remember(last)
            return None
        with transaction.atomic(using=using):  # one snapshot; streams on PostgreSQL
            range_hash, mac = _range(using, start_seq, end, start_hash)
        anchor = sign(Anchor(
            number=(last.number + 1) if last else 1,
            start_seq=start_seq, seq=end, mac=mac, range_hash=range_hash,
            previous=last.digest() if last else GENESIS,
            created_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            reason=reason, key_id="",
        ), key)
        primary.publish(anchor)
    for sink in sinks():
        if sink is not primary:
            sink.publish(anchor)
    _remember(anchor)
    return anchor


def _remember(anchor: Anchor | None) -> None:
    with _last.lock:
        _last.seq = anchor.seq if anchor else 0
        _last.at = time.monotonic()


def after_append(seq: int) -> None:
    """Publish when ``ANCHOR_EVERY_EVENTS`` or ``ANCHOR_EVERY_SECONDS`` has passed; called
    after an event is committed. Cheap when not due (two comparisons). A failure is logged
    loudly and retried at the next event: the recorded event itself stands."""
    if not audit_settings.anchoring:
        return
    if _last.seq >= 0 and seq - _last.seq < audit_settings.ANCHOR_EVERY_EVENTS and (
        time.monotonic() - _last.at < audit_settings.ANCHOR_EVERY_SECONDS
    ):
        return
    try:
        if _last.seq < 0:  # first event of this process: learn where the anchors are
            primary = readable_sink()
            existing = primary.read() if primary else []
            _remember(existing[-1] if existing else None)
            if seq - _last.seq < audit_settings.ANCHOR_EVERY_EVENTS:
                return
        publish("schedule")
    except Exception as exc:  # noqa: BLE001  any sink or database failure: retry later
        _last.at = time.monotonic()  # not again at once: at the next interval
        logger.critical("audit anchor not published: %s: %s", exc.__class__.__name__, exc)


# -- verification ------------------------------------------------------------------------


@dataclass
class AnchorReport:
    """What the anchors say about a chain: ``problems`` empty means it matches."""

    anchors: int = 0
    checked: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_anchor_chain(anchors: Sequence[Anchor], keys: Mapping[str, Ed25519PublicKey]
                       ) -> list[str]:
    """Signatures, numbering, links and contiguous ranges of an anchor file."""
    problems: list[str] = []
    previous: Anchor | None = None
    for index, anchor in enumerate(anchors):
        where = f"anchor #{anchor.number} (line {index + 1})"
        if anchor.key_id not in keys:
            problems.append(f"{where}: signed by unknown key {anchor.key_id}")
        elif not anchor.verifies(keys):
            problems.append(f"{where}: signature does not verify")
        expected_previous = previous.digest() if previous else GENESIS
        if anchor.number != (previous.number + 1 if previous else 1):
            problems.append(f"{where}: expected anchor #{previous.number + 1 if previous else 1}")
        if anchor.previous != expected_previous:
            problems.append(f"{where}: does not link to the anchor before it")
        if previous is not None and anchor.start_seq != previous.seq + 1:
            problems.append(f"{where}: starts at seq {anchor.start_seq}, the anchor before "
                            f"ends at {previous.seq}")
        if anchor.seq < anchor.start_seq:
            problems.append(f"{where}: empty range {anchor.start_seq}..{anchor.seq}")
        previous = anchor
    return problems


class _RangeChecker:
    """Folds verified events into the range hash of each anchor they fall in (an
    :data:`audit.chain.Observer`; kept cheap: verify calls it once per stored event)."""

    def __init__(self, anchors: Sequence[Anchor], first_seq: int) -> None:
        # Anchors whose whole range is present (from first_seq on) are checked.
        self.pending = [a for a in anchors if a.start_seq >= first_seq]
        self.skipped = [a for a in anchors if a.start_seq < first_seq <= a.seq]
        self.index = 0
        self.checked = 0
        self.problems: list[str] = []
        self.last_seq = first_seq - 1
        self._hash: RangeHash | None = None
        self._start = self._end = 0
        self._next()

    def _next(self) -> None:
        if self.index < len(self.pending):
            anchor = self.pending[self.index]
            self._start, self._end = anchor.start_seq, anchor.seq
        else:
            self._start = self._end = -1

    def __call__(self, seq: int, canonical: bytes, mac: str) -> None:
        self.last_seq = seq
        if seq < self._start or self._start < 0:
            return
        if self._hash is None:
            self._hash = RangeHash()
        self._hash.add(canonical, mac)
        if seq == self._end:
            anchor = self.pending[self.index]
            if self._hash.hexdigest() != anchor.range_hash or mac != anchor.mac:
                self.problems.append(
                    f"events {anchor.start_seq}..{anchor.seq} differ from anchor "
                    f"#{anchor.number}"
                )
            else:
                self.checked += 1
            self._hash = None
            self.index += 1
            self._next()


def _coverage(anchors: Sequence[Anchor], checker: _RangeChecker, *, last_seq: int,
              what: str) -> list[str]:
    problems = list(checker.problems)
    if anchors and anchors[-1].seq > last_seq:
        problems.append(
            f"{what} ends at seq {last_seq} but anchor #{anchors[-1].number} covers events up "
            f"to {anchors[-1].seq}: events {last_seq + 1}..{anchors[-1].seq} are missing"
        )
    for anchor in checker.skipped:
        problems.append(f"anchor #{anchor.number} ({anchor.start_seq}..{anchor.seq}) is only "
                        f"partly in the {what}")
    return problems


def verify_database(using: str | None = None, *, anchors: Sequence[Anchor] | None = None,
                    keys: Mapping[str, Ed25519PublicKey] | None = None
                    ) -> tuple[VerifyResult, AnchorReport]:
    """The stored chain (:func:`audit.chain.verify`) and the anchors against it."""
    using = using or router.db_for_read(AuditEvent)
    if anchors is None:
        primary = readable_sink()
        anchors = primary.read() if primary else []
    keys = configured_public_keys() if keys is None else keys
    report = AnchorReport(anchors=len(anchors))
    report.problems += check_anchor_chain(anchors, keys)
    checkpoint = Checkpoint.objects.using(using).order_by("-after_seq").first()
    first_seq = checkpoint.after_seq + 1 if checkpoint else 1
    checker = _RangeChecker(anchors, first_seq)
    result = verify(using, observe=checker)
    head = ChainHead.objects.using(using).filter(pk=1).values_list("seq", flat=True).first()
    last_seq = max(checker.last_seq, head or 0) if result.ok else checker.last_seq
    report.problems += _coverage(anchors, checker, last_seq=last_seq, what="database")
    anchored = max([first_seq - 1] + [a.seq for a in anchors])
    if audit_settings.anchoring and last_seq - anchored > UNANCHORED_SLACK * (
        audit_settings.ANCHOR_EVERY_EVENTS
    ):
        # SECURITY: a removed (or never written) anchor file must not read as "nothing to
        # check": with anchoring on, a long unanchored tail is itself a finding.
        report.problems.append(
            f"events {anchored + 1}..{last_seq} are not anchored (more than "
            f"{UNANCHORED_SLACK} x ANCHOR_EVERY_EVENTS): anchors were removed, or publishing "
            "has been failing"
        )
    report.checked = checker.checked
    return result, report


def verify_export(events: Iterable[AuditEvent], anchors: Sequence[Anchor],
                  keys: Mapping[str, Ed25519PublicKey]) -> AnchorReport:
    """An exported file against anchors and public keys, without the HMAC key.

    The export must be whole from where it starts (the genesis, or the end of an
    anchored range) and reach the last anchor: a file cut short at either end, an edited,
    removed or reordered event, or an anchor file that does not link, is reported.
    """
    report = AnchorReport(anchors=len(anchors))
    report.problems += check_anchor_chain(anchors, keys)
    checker: _RangeChecker | None = None
    expected_seq: int | None = None
    previous_mac: str | None = None
    for event in events:
        if checker is None:
            first = event.seq
            if first != 1 and not any(a.seq == first - 1 for a in anchors):
                report.problems.append(f"export starts at seq {first}, not at the genesis or "
                                       "right after an anchored range")
            checker = _RangeChecker(anchors, first)
            expected_seq = first
        if event.seq != expected_seq:
            report.problems.append(f"export: expected seq {expected_seq}, found {event.seq}")
            return report
        if previous_mac is not None and event.prev_hash != previous_mac:
            report.problems.append(f"export: event {event.seq} does not link to the one "
                                   "before it")
            return report
        row = (*(getattr(event, name) for name in SIGNED_FIELDS), event.mac)
        try:
            canonical = _row_canonical(row)
        except (TypeError, ValueError):
            report.problems.append(f"export: event {event.seq} cannot be serialised")
            return report
        checker(event.seq, canonical, event.mac)
        previous_mac, expected_seq = event.mac, event.seq + 1
    if checker is None:
        checker = _RangeChecker(anchors, 1)
    report.problems += _coverage(anchors, checker, last_seq=checker.last_seq, what="export")
    report.checked = checker.checked
    return report


def read_anchor_file(path: str | os.PathLike[str]) -> list[Anchor]:
    return FileSink(path).read()
