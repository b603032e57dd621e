"""Hypothesis strategies shared by the unit tests.

Everything here models untrusted input: ``next=`` values an attacker may craft,
claims a provider (or an attacker in the middle of one) may send, and strings
shaped like compact JWTs.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import strategies as st

# -- URLs ------------------------------------------------------------------

#: Schemes an open-redirect payload may use, plus the harmless ones.
SCHEMES = ["http", "https", "javascript", "JavaScript", "data", "vbscript", "ftp", "file", ""]
#: Hosts an attacker would want to reach, spelled in the ways browsers accept.
EVIL_HOSTS = ["evil.com", "evil.com:443", "user@evil.com", "evil.com.", "EVIL.COM", "127.0.0.1",
              "[::1]", "évil.com", "xn--vil-bma.com", "site.test@evil.com"]

#: Fragments of known open-redirect bypasses; combined freely below.
_TRICKS = [
    "//", "///", "////", "/\\", "\\\\", "\\/", "/\t/", "/\n/", "/\r/", "\t//", " //", "\x00//",
    "/%2F", "/%2f%2f", "/%5C", "%2F%2F", "/%09/", "/%0d%0a/", ":", "javascript:", "data:",
    "https:", "http:/", "https:\\\\", "/./", "/../", "?", "#", "@", "%00", "\u3002", "\uff0f",
    "\u2215", "\u00a0", "\ufeff", "\x7f", "\x0b", "\x0c",
]

_url_chars = st.characters(codec="utf-8", exclude_categories=("Cs",))

#: Readable path segments (unreserved characters only).
_segment = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~",
    min_size=1,
    max_size=12,
)


@st.composite
def _crafted_url(draw: st.DrawFn) -> str:
    """A URL built from a scheme, tricks and a hostile host, in random order."""
    parts = draw(
        st.lists(
            st.one_of(
                st.sampled_from(_TRICKS),
                st.sampled_from(EVIL_HOSTS),
                st.sampled_from(SCHEMES).map(lambda s: f"{s}:" if s else ""),
                _segment,
            ),
            min_size=1,
            max_size=6,
        )
    )
    return "".join(parts)


#: Absolute and scheme-relative URLs with a hostile host.
absolute_urls = st.builds(
    lambda scheme, sep, host, path: f"{scheme}{sep}{host}{path}",
    st.sampled_from(["http:", "https:", "HTTPS:", "javascript:", "data:", "ftp:", "", " ", "\t"]),
    st.sampled_from(["//", "///", "/\\", "\\\\", "\\/", ":/", "/\t/", "%2F%2F"]),
    st.sampled_from(EVIL_HOSTS),
    st.sampled_from(["", "/", "/path?q=1", "#frag"]),
)

#: Anything a browser might put in ``next=``: crafted bypasses, absolute URLs,
#: percent-encoded and unicode text, control characters and plain paths.
url_like = st.one_of(
    _crafted_url(),
    absolute_urls,
    st.text(_url_chars, max_size=40),
    st.text(alphabet="/\\:%.@?#&=abcevilom0129 \t\r\n\x00\x7f", max_size=30),
    st.text(_url_chars, max_size=30).map(lambda s: "/" + s),
    st.builds(lambda p, s: p + s, st.sampled_from(_TRICKS), st.text(_url_chars, max_size=20)),
)

#: Same-site paths that ``safe_next_url`` must keep as they are.
safe_paths = st.builds(
    lambda segments, trailing, query, fragment: (
        "/" + "/".join(segments) + ("/" if trailing and segments else "") + query + fragment
    ),
    st.lists(_segment, max_size=5),
    st.booleans(),
    st.one_of(
        st.just(""),
        st.builds(lambda k, v: f"?{k}={v}", _segment, _segment),
    ),
    st.one_of(st.just(""), _segment.map(lambda f: f"#{f}")),
)

# -- Claims ----------------------------------------------------------------

#: Any JSON value, as a provider could send for any claim.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=12,
)

STANDARD_CLAIMS = [
    "iss", "sub", "aud", "azp", "exp", "iat", "nbf", "nonce", "auth_time", "acr", "amr", "jti",
    "at_hash", "sid", "email", "email_verified", "preferred_username", "nickname", "name",
    "given_name", "family_name", "groups", "roles", "picture", "locale",
]

#: Claim dicts whose standard claims hold arbitrary JSON values.
claim_dicts = st.dictionaries(
    st.one_of(st.sampled_from(STANDARD_CLAIMS), st.text(max_size=12)),
    json_values,
    max_size=12,
)

#: Group names: mostly short readable names, sometimes empty, huge or odd.
group_names = st.one_of(
    st.sampled_from(["admins", "staff", "users", "Admins", "admins ", "", "*"]),
    st.text(max_size=20),
    st.text(min_size=250, max_size=300),
)

#: What a provider may put in its groups claim: a list of anything, or one value.
group_claim_values = st.one_of(
    st.lists(st.one_of(group_names, json_values), max_size=20),
    group_names,
    json_values,
)

# -- Tokens ----------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


_b64_segment = st.binary(max_size=120).map(_b64)
_json_segment = st.dictionaries(st.text(max_size=8), json_values, max_size=5).map(
    lambda d: _b64(json.dumps(d).encode())
)
_headers = st.fixed_dictionaries(
    {"alg": st.sampled_from(["RS256", "RS384", "HS256", "none", "None", "ES256", "", "PS256"])},
    optional={"kid": st.text(max_size=10), "typ": st.sampled_from(["JWT", "at+jwt"])},
).map(lambda d: _b64(json.dumps(d).encode()))


@st.composite
def jwt_shaped(draw: st.DrawFn) -> str:
    """Three dot-separated segments, each base64url of JSON, bytes or raw text."""
    head = draw(st.one_of(_headers, _json_segment, _b64_segment, st.text(max_size=20)))
    body = draw(st.one_of(_json_segment, _b64_segment, st.text(max_size=20)))
    sig = draw(st.one_of(_b64_segment, st.just(""), st.text(max_size=20)))
    return f"{head}.{body}.{sig}"


#: Realistic compact JWTs: a JSON-object header, a payload, a signature (maybe empty).
jwt_like_strings = st.builds(
    lambda head, body, sig: f"{head}.{body}.{sig}",
    _headers,
    st.binary(min_size=6, max_size=60).map(_b64),
    st.binary(max_size=60).map(_b64),
)


def any_text_token() -> st.SearchStrategy[Any]:
    """Arbitrary values offered where an ID token is expected."""
    return st.one_of(jwt_shaped(), st.text(max_size=60), st.none(), st.integers(), st.binary())
