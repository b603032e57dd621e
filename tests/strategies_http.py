"""Hypothesis strategies for HTTP-level tests: cookies a project's views may set."""

from __future__ import annotations

import string

from hypothesis import strategies as st

#: RFC 6265 cookie-name characters (an RFC 7230 token).
COOKIE_NAME_CHARS = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
#: Names ``http.cookies`` keeps for cookie attributes; a view cannot use them as names.
RESERVED_NAMES = frozenset(
    {"expires", "path", "comment", "domain", "max-age", "secure", "httponly", "version",
     "samesite", "partitioned"}
)

cookie_names = st.text(alphabet=COOKIE_NAME_CHARS, min_size=1, max_size=24).filter(
    lambda name: name.lower() not in RESERVED_NAMES
)
#: Printable ASCII, including the characters ``http.cookies`` has to quote.
cookie_values = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40
)
#: What a view may pass as ``set_cookie(samesite=...)``; ``None`` leaves it unset.
samesites = st.sampled_from([None, "Lax", "Strict", "None", "lax", "strict", "none"])

#: ``[name, value, samesite]`` triples with distinct names, as JSON-ready lists.
cookie_specs = st.lists(
    st.tuples(cookie_names, cookie_values, samesites).map(list),
    max_size=6,
    unique_by=lambda spec: spec[0],
)
