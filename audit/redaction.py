"""Remove secrets from anything on its way to a log line or audit record.

Secrets are recognised by their shape, not by an exact spelling:

* **Names.** A field name is normalised first (``accessToken``, ``Access-Token``,
  ``ACCESS_TOKEN``, ``access token`` and Django's ``HTTP_ACCESS_TOKEN`` all become the words
  ``access token``) and is secret when the words, run together, contain one of
  :data:`SECRET_WORDS` (``token``, ``secret``, ``password``, ``apikey``, ``cookie``, ...),
  when one whole word is in :data:`SECRET_PARTS` (``otp``, ``pin``, ``nonce``, ...), when
  ``code`` follows a word that makes it a credential (``recovery code``, ``otp code``; see
  :data:`CODE_QUALIFIERS`), or when the whole name is one of :data:`SECRET_NAMES`
  (``code``, ``state``, ``auth``, ...). Names that describe a secret without holding it
  stay readable: :data:`NOT_SECRET_NAMES` (``token_type``) and names ending in one of
  :data:`NOT_SECRET_SUFFIXES` (``token_endpoint``, ``password_changed``, ``key_id``).
  The value under a secret name is replaced whole, whatever its type; an integer under a
  plural secret name (``recovery_codes=10``) is a count and is kept.
* **Values**, inside any string at any depth (and in dict keys), replaced in place:
  ``Bearer <credential>`` and ``Basic <credential>``; JWTs (three dot-separated base64url
  segments) and JWEs (five) whose first segment decodes to a JSON object (``{`` first),
  even glued to the text around them; and runs of 32 or more base64url characters mixing
  at least two of lower case, upper case and digits (API keys, opaque tokens, Django
  session keys). Runs of hexadecimal digits (and dashes) are kept: they are the digests
  the package stores on purpose (``session_hash``, ``mac``, ``prev_hash``,
  ``checkpoint_mac``) and request ids.

Log lines name their opaque fields (:data:`OPAQUE_FIELDS`: ``subject``, ``issuer``,
``username``, ``request_id``, ``sig``, ...; ``redact(line, opaque=OPAQUE_FIELDS)``): at the
top level these are only checked for credential shapes (Bearer, Basic, JWT), since a
provider's ``sub`` may be a long opaque string by design and an anchor's signature is
published with what it signs. Details get no such exemption: a detail called ``sig`` is
scrubbed like any other (and the log line takes the details already redacted).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

REDACTED = "[redacted]"
MAX_DEPTH = 6

# -- names -----------------------------------------------------------------------------

#: Matched as substrings of the name's words run together (``x-api-key`` -> ``xapikey``).
SECRET_WORDS = (
    "token", "secret", "password", "passwd", "passphrase", "passcode", "pwd", "credential",
    "assertion", "authorization", "authorisation", "cookie", "bearer", "jwt", "apikey",
    "privatekey", "accesskey", "sessionkey", "sessionid", "signingkey", "encryptionkey",
    "masterkey", "hmackey", "codeverifier", "authheader",
)
#: Matched as whole words only: as substrings they would hit ordinary names (``footprint``).
SECRET_PARTS = frozenset({"otp", "totp", "hotp", "pin", "nonce"})
#: Whole names that are secrets though their word is common inside other names.
SECRET_NAMES = frozenset(
    {"access_token", "refresh_token", "id_token", "code", "codes", "code_verifier",
     "client_secret", "password", "secret", "token", "otp", "otp_token", "state", "nonce",
     "authorization", "cookie", "sessionid", "session_key", "id_token_hint", "auth",
     "pass", "seed"}
)
#: ``code`` is a credential after these words (``recovery_code``), not in ``status_code``.
CODE_QUALIFIERS = frozenset(
    {"auth", "authorization", "authorisation", "otp", "totp", "hotp", "mfa", "2fa",
     "recovery", "backup", "verification", "verify", "device", "user", "sms", "email",
     "login", "security", "access", "reset", "activation", "confirmation", "confirm",
     "invite", "magic", "time", "pin", "pass", "one"}
)
#: Names about a secret, not holding one (values are still scanned for token shapes).
NOT_SECRET_NAMES = frozenset({"token_type", "token_type_hint"})
#: A last word that makes the name metadata: ``token_endpoint``, ``password_changed``.
NOT_SECRET_SUFFIXES = frozenset(
    {"type", "types", "method", "methods", "alg", "algs", "algorithm", "endpoint", "count",
     "length", "len", "ttl", "expiry", "expires", "expired", "lifetime", "age", "changed",
     "present", "given", "used", "revoked", "rotated", "required", "enabled", "kid"}
)
#: Fields of a log line opaque by design (identifiers; signatures, which are published with
#: what they sign): at the top level only credential shapes are replaced, not long runs.
OPAQUE_FIELDS = frozenset(
    {"subject", "issuer", "username", "user", "user_ref", "request_id", "session_hash",
     "client_ip", "sig", "signature"}
)

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SEPARATORS = re.compile(r"[^a-z0-9]+")
_COMPACT_SECRET_NAMES = frozenset(name.replace("_", "") for name in SECRET_NAMES)
#: ``recoverycode``, ``mfacode``, ``onetimecode``: the qualified codes written as one word.
_CODE_WORDS = (*(f"{q}code" for q in sorted(CODE_QUALIFIERS - {"time", "one"})), "onetimecode")
_COMPACT_NOT_SECRET_NAMES = frozenset(name.replace("_", "") for name in NOT_SECRET_NAMES)


def _words(text: str) -> list[str]:
    words = [w for w in _SEPARATORS.split(text.lower()) if w]
    if len(words) > 1 and words[0] == "http":
        words = words[1:]  # Django's request.META prefix
    return words


def name_words(name: str) -> tuple[list[str], list[str]]:
    """The name's words split at separators, and split at separators and camelCase too.

    ``"HTTP_X-ApiKey"`` gives ``["x", "apikey"]`` and ``["x", "api", "key"]``. Both are
    tried for whole-word rules, so ``otpCode`` and ``OTP_CODE`` are found alike, and a
    name in random letter case (``tOkEn``) still has its separator words.
    """
    return _words(name), _words(_CAMEL.sub("_", name))


def is_secret_name(name: Any) -> bool:
    """``Authorization``, ``HTTP_AUTHORIZATION``, ``accessToken``, ``x-api-key`` alike."""
    return _key_info(str(name))[0]


# Every audit line asks this of the same few dozen field names, three times over (record,
# emit, the structlog processor); the answer depends on the name alone. Bounded: arbitrary
# names only evict.
@lru_cache(maxsize=2048)
def _key_info(name: str) -> tuple[bool, bool, str]:
    """(secret name?, plural last word?, the name with token-shaped text scrubbed).

    Asked of the name as given and as scrubbed (secret if either is, plural if both are),
    so that redacting the output again gives the same output.
    """
    safe = _text(name)
    secret, plural = _name_kind(name)
    if safe != name:
        safe_secret, safe_plural = _name_kind(safe)
        secret, plural = secret or safe_secret, plural and safe_plural
    return secret, plural, safe


def _name_kind(name: str) -> tuple[bool, bool]:
    plain, camel = name_words(name)
    plural = bool(plain) and plain[-1].endswith("s") and not plain[-1].endswith("ss")
    return _is_secret_words(plain, camel), plural


def _is_secret_words(plain: list[str], camel: list[str]) -> bool:
    """Secret unless the name is about a secret; substrings decide, whatever the case."""
    compact = "".join(plain)
    if not compact or compact in _COMPACT_NOT_SECRET_NAMES:
        return False
    # Only clean word splits may clear a name: a garbled camel split ("tOKEN" -> "t", "oken")
    # must not make a secret name look like metadata.
    words = plain if len(plain) > 1 else camel
    if len(words) > 1 and (words[-1] in NOT_SECRET_SUFFIXES or words[-2:] == ["key", "id"]):
        return False
    if compact in _COMPACT_SECRET_NAMES or any(word in compact for word in SECRET_WORDS):
        return True
    if "code" in compact and any(word in compact for word in _CODE_WORDS):
        return True
    for split in (plain, camel):
        for i, word in enumerate(split):
            if word in SECRET_PARTS:
                return True
            if word in ("code", "codes") and i and split[i - 1] in CODE_QUALIFIERS:
                return True
    return False


# -- values ----------------------------------------------------------------------------

#: ``Bearer <credential>`` / ``Basic <credential>`` (also URL- and form-encoded spaces).
_AUTH = re.compile(r"(?i)(\b(?:bearer|basic)(?:[ \t\r\n]|%20|\+)+)[^\s\"',;<>&]+")
_B64 = "A-Za-z0-9_-"
#: A base64url run with at least two dots: a JWT/JWE candidate (possessive: no backtracking).
_DOTTED = re.compile(rf"(?<![{_B64}])[{_B64}]++(?:\.[{_B64}]*+){{2,}}+")
#: Shortest run the long-run rule redacts.
LONG_RUN = 32
_LONG = re.compile(rf"[{_B64}]{{{LONG_RUN},}}+")
_HEX = frozenset("0123456789abcdefABCDEF-")
_JOSE_START = re.compile(rb"\s*\{\s*\"")
_MIN_HEADER = 8


def _jose_header_at(segment: str) -> bool:
    """True if ``segment`` is (or ends in) a base64url JSON object: a JOSE header.

    Only the first 12 characters are decoded (9 bytes: ``{"alg"`` with some blanks). A
    header glued to the text before it (``see:eyJ...`` has a separator; ``xeyJ...`` has
    not) is found by trying each ``ey``/``ew`` in the segment, the ways ``{`` encodes.
    """
    if len(segment) < _MIN_HEADER:
        return False
    if _decodes_to_object(segment):
        return True
    start = 1
    while True:
        ey, ew = segment.find("ey", start), segment.find("ew", start)
        at = min(i for i in (ey, ew, len(segment)) if i >= 0)
        if len(segment) - at < _MIN_HEADER:
            return False
        if _decodes_to_object(segment[at:]):
            return True
        start = at + 1


def _decodes_to_object(segment: str) -> bool:
    head = segment[:12]
    head = head[: len(head) - len(head) % 4]
    try:
        decoded = base64.urlsafe_b64decode(head)
    except (ValueError, binascii.Error):
        return False
    return _JOSE_START.match(decoded) is not None


def _is_long_secret(run: str) -> bool:
    """32+ base64url characters mixing two of lower/upper/digit, not hexadecimal."""
    if len(run) < LONG_RUN or _HEX.issuperset(run):
        return False
    classes = (
        any(c.islower() for c in run) + any(c.isupper() for c in run)
        + any(c.isdigit() for c in run)
    )
    return classes >= 2


def _replace_jwt(match: re.Match[str]) -> str:
    """The dotted run with a JWT/JWE in it replaced from its header on."""
    run = match.group()
    segments = run.split(".")
    for i, segment in enumerate(segments[:-2]):
        if _jose_header_at(segment) and any(segments[i + 1:]):
            return ".".join([*segments[:i], REDACTED])
    return run


def _replace_long(match: re.Match[str]) -> str:
    run = match.group()
    return REDACTED if _is_long_secret(run) else run


def _replace_auth(match: re.Match[str]) -> str:
    return match.group(1) + REDACTED


def scrub_text(text: str, *, long_runs: bool = True) -> str:
    """``text`` with credentials replaced in place: Bearer/Basic, JWT/JWE, long tokens.

    ``long_runs=False`` replaces only the unambiguous credential shapes (Bearer, Basic,
    JWT, JWE), for identifiers that may be long opaque strings (a provider's ``sub``).
    Idempotent: ``[redacted]`` matches nothing. Each pass runs only when a plain string
    test says it may match (this is on the path of every audit event and log line).
    """
    if len(text) < 8:
        return text
    lower = text.lower()
    if "bearer" in lower or "basic" in lower:
        text = _AUTH.sub(_replace_auth, text)
    # A JOSE header starts with "{", which base64url-encodes as "ey..." or "ew...".
    if ("ey" in text or "ew" in text) and text.count(".") >= 2:
        text = _DOTTED.sub(_replace_jwt, text)
    if long_runs and len(text) >= LONG_RUN:
        text = _LONG.sub(_replace_long, text)
    return text


def _text(value: str, long_runs: bool = True) -> str:
    if "\x00" in value:
        # storable() removes NULs: one inside a token would hide it here, then join it.
        joined = value.replace("\x00", "")
        scrubbed = scrub_text(joined, long_runs=long_runs)
        if scrubbed != joined:
            return scrubbed
    return scrub_text(value, long_runs=long_runs)


def redact(value: Any, *, depth: int = 0, opaque: frozenset[str] = frozenset()) -> Any:
    """A copy of ``value`` with secret-named keys and token-shaped text replaced.

    Strings are scrubbed wherever they are (dict keys included); values of other types
    that are not JSON (bytes, exceptions, objects) are scrubbed as their ``str()``, the
    form :func:`storable` stores them in. Top-level keys in ``opaque`` (a log line passes
    :data:`OPAQUE_FIELDS`) keep long runs in their string values.
    """
    if depth > MAX_DEPTH:
        return REDACTED
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, Mapping):
        result = {}
        for k, v in value.items():
            secret, plural, key = _key_info(k if isinstance(k, str) else str(k))
            if secret:
                result[key] = v if plural and type(v) is int else REDACTED
            elif key in opaque and depth == 0 and isinstance(v, str):
                result[key] = _text(v, long_runs=False)
            else:
                result[key] = redact(v, depth=depth + 1)
        return result
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(v, depth=depth + 1) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return _text(str(value))


def storable(value: Any, *, depth: int = 0) -> Any:
    """A JSON-safe copy: strings for unknown types, no NUL characters, finite numbers only.

    PostgreSQL's jsonb refuses ``\u0000`` and the canonical form refuses NaN, so both are
    removed here rather than failing the write.
    """
    if depth > MAX_DEPTH:
        return REDACTED
    if isinstance(value, Mapping):
        return {clean_text(str(k)): storable(v, depth=depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [storable(v, depth=depth + 1) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**63 else str(value)
    if isinstance(value, float):
        # PostgreSQL's jsonb gives back -0.0 as 0.0 and large floats as integers; both
        # would change the canonical form, so they are stored in a form that survives.
        if not math.isfinite(value) or abs(value) >= 1e15:
            return repr(value)
        return value + 0.0 if value else 0.0
    return clean_text(str(value))


def clean_text(value: str) -> str:
    """No NUL (PostgreSQL refuses it), no lone surrogates (UTF-8 cannot encode them), and
    no credential shapes (Bearer, Basic, JWT, JWE; see :func:`scrub_text`).

    Every string :mod:`audit.recording` stores passes through here, the fixed fields
    (``reason``, ``user_agent``, ``subject``, ...) included. Long opaque runs are left to
    :func:`redact`: here they may be identifiers (a provider's ``sub``, a request id).
    """
    if not value.isascii():
        value = value.encode("utf-8", "replace").decode("utf-8")
    if "\x00" in value:
        value = value.replace("\x00", "")
    return scrub_text(value, long_runs=False)
