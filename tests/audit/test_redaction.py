"""Redaction: secrets never reach a log line, everything else stays readable."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from audit.redaction import MAX_DEPTH, REDACTED, SECRET_NAMES, redact
from tests.strategies import json_values, jwt_like_strings

#: Marks a value that sat under a secret-named key; never produced by other strategies.
MARK = "\u27e6secret\u27e7"


@st.composite
def secret_names(draw: st.DrawFn) -> str:
    """A secret field name in random letter case."""
    name = draw(st.sampled_from(sorted(SECRET_NAMES)))
    upper = draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
    return "".join(c.upper() if u else c for c, u in zip(name, upper, strict=True))


#: Text that can never contain the mark.
_plain_text = st.text(st.characters(codec="utf-8", exclude_characters="\u27e6\u27e7"), max_size=20)
_plain_leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _plain_text
#: Secret values: any JSON shape, every string in it carrying the mark.
_secret_value = st.recursive(
    st.integers() | st.booleans() | st.none() | _plain_text.map(lambda t: f"{MARK}{t}")
    | jwt_like_strings,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(_plain_text, c, max_size=3),
    max_leaves=5,
)


@st.composite
def _secret_value_marked(draw: st.DrawFn) -> Any:
    """A secret value guaranteed to contain at least one marked string."""
    return [f"{MARK}{draw(_plain_text)}", draw(_secret_value)]


def _documents(with_secrets: bool) -> st.SearchStrategy[Any]:
    keys = (_plain_text.filter(lambda k: k.lower() not in SECRET_NAMES))
    if with_secrets:
        def children(c: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
            pair = st.tuples(keys, c) | st.tuples(secret_names(), _secret_value_marked())
            return st.lists(c, max_size=4) | st.lists(pair, max_size=4).map(dict)
    else:
        def children(c: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
            return st.lists(c, max_size=4) | st.dictionaries(keys, c, max_size=4)
    return st.recursive(_plain_leaf, children, max_leaves=20)


documents_with_secrets = _documents(with_secrets=True)
documents_without_secrets = _documents(with_secrets=False)


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


def assert_secret_positions_redacted(original: Any, redacted: Any) -> None:
    """Walk both trees; every value under a secret-named key is REDACTED in the output."""
    if redacted == REDACTED:
        return
    if isinstance(original, dict):
        assert isinstance(redacted, dict)
        for key, value in original.items():
            if str(key).lower() in SECRET_NAMES:
                assert redacted[str(key)] == REDACTED
            else:
                assert_secret_positions_redacted(value, redacted[str(key)])
    elif isinstance(original, list | tuple):
        assert isinstance(redacted, list)
        for a, b in zip(original, redacted, strict=True):
            assert_secret_positions_redacted(a, b)


JWT = (
    "eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0"
    ".eyJzdWIiOiJ1c2VyLTEiLCJub25jZSI6Im4ifQ"
    ".c2lnbmF0dXJlLWJ5dGVzLWhlcmU"
)


class TestSecretKeys:
    @pytest.mark.parametrize("name", sorted(SECRET_NAMES))
    def test_every_secret_name_redacted(self, name: str) -> None:
        """Each listed secret name has its value replaced."""
        assert redact({name: "s3cret", "user": "alice"}) == {name: REDACTED, "user": "alice"}

    @pytest.mark.parametrize("name", ["Authorization", "ACCESS_TOKEN", "Id_Token", "Cookie",
                                      "PASSWORD", "Client_Secret"])
    def test_case_insensitive(self, name: str) -> None:
        """Secret names match whatever their letter case."""
        assert redact({name: "s3cret"}) == {name: REDACTED}

    def test_nested_in_dicts_and_lists(self) -> None:
        """Secret keys are found inside nested dicts and lists."""
        value = {"outer": {"items": [{"token": "t1"}, {"inner": {"Refresh_Token": "t2"}}]}}
        assert redact(value) == {
            "outer": {"items": [{"token": REDACTED}, {"inner": {"Refresh_Token": REDACTED}}]}
        }

    @pytest.mark.parametrize("secret", [{"nested": "x"}, ["a", "b"], 12345, None, True])
    def test_non_string_secret_values_redacted(self, secret: Any) -> None:
        """Whatever type a secret value has, it is replaced whole."""
        assert redact({"client_secret": secret}) == {"client_secret": REDACTED}

    def test_beyond_max_depth_redacted(self) -> None:
        """Values nested deeper than MAX_DEPTH are replaced rather than inspected."""
        value: Any = {"password": "deep"}
        for _ in range(MAX_DEPTH + 2):
            value = {"level": value}
        assert "deep" not in json.dumps(redact(value))

    def test_deep_nesting_bounded(self) -> None:
        """Very deep or self-referential structures are cut off, never a RecursionError."""
        deep: Any = "bottom"
        for _ in range(5000):
            deep = [{"level": deep}]
        assert "bottom" not in json.dumps(redact(deep))
        loop: dict[str, Any] = {"name": "loop"}
        loop["self"] = loop
        assert redact(loop)["name"] == "loop"

    def test_original_not_modified(self) -> None:
        """Redaction returns a copy and leaves its input alone."""
        value = {"token": "t", "nested": {"password": "p"}}
        redact(value)
        assert value == {"token": "t", "nested": {"password": "p"}}


class TestTokenShapedValues:
    def test_jwt_redacted_under_any_key(self) -> None:
        """A JWT is replaced even under an innocent key and inside lists."""
        assert redact({"note": JWT, "items": [JWT, "ok"]}) == {
            "note": REDACTED, "items": [REDACTED, "ok"],
        }

    def test_unsigned_jwt_redacted(self) -> None:
        """A JWT with an empty signature is still a token."""
        head, payload, _ = JWT.split(".")
        assert redact(f"{head}.{payload}.") == REDACTED

    @settings(max_examples=100, deadline=None)
    @given(jwt_like_strings)
    def test_generated_jwts_redacted(self, token: str) -> None:
        """Every JWT-shaped string is replaced."""
        assert redact({"value": token}) == {"value": REDACTED}


class TestOtherValuesUnchanged:
    @pytest.mark.parametrize("value", [
        "alice", "https://op.test/", "secure_sso.backends.SSOBackend",
        "django.contrib.auth.backends.ModelBackend", "jonathan.smithson.jr",
        "a.b.c", "auth.login.success", 42, 1.5, None, True, "", "Mozilla/5.0 (X11; Linux)",
    ])
    def test_ordinary_values_kept(self, value: Any) -> None:
        """Ordinary values, including dotted names, pass through unchanged."""
        assert redact({"field": value}) == {"field": value}

    def test_keys_that_merely_contain_secret_words_kept(self) -> None:
        """Only exact secret names are redacted: 'token_type' and 'state_of_art' stay."""
        assert redact({"token_type": "Bearer", "reason": "state_mismatch"}) == {
            "token_type": "Bearer", "reason": "state_mismatch",
        }

    def test_tuples_and_sets_become_lists(self) -> None:
        """Tuples become lists with their items kept."""
        assert redact({"pair": ("a", 1)}) == {"pair": ["a", 1]}
        assert redact({"set": {"x"}}) == {"set": ["x"]}

    @settings(max_examples=150, deadline=None)
    @given(documents_without_secrets)
    def test_documents_without_secrets_unchanged(self, document: Any) -> None:
        """A document with no secret keys and no tokens, within MAX_DEPTH, is unchanged."""
        assume(depth(document) <= MAX_DEPTH)
        assume(all("." not in s for s in _strings(document)))
        assert redact(document) == document


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [*value.keys(), *(s for v in value.values() for s in _strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


class TestProperties:
    @settings(max_examples=200, deadline=None)
    @given(json_values)
    def test_never_raises_on_arbitrary_json(self, document: Any) -> None:
        """Any JSON document is redacted without error into JSON-serialisable output."""
        json.dumps(redact(document))

    @settings(max_examples=200, deadline=None)
    @given(documents_with_secrets)
    def test_secrets_never_in_output(self, document: Any) -> None:
        """No value found under a secret-named key survives anywhere in the output."""
        output = redact(document)
        assert MARK not in json.dumps(output, ensure_ascii=False)
        assert_secret_positions_redacted(document, output)

    @settings(max_examples=100, deadline=None)
    @given(st.dictionaries(secret_names(), json_values, min_size=1, max_size=5))
    def test_top_level_secret_values_all_replaced(self, document: dict) -> None:
        """Every top-level secret key, in any case, maps to REDACTED."""
        assert redact(document) == dict.fromkeys(document, REDACTED)


class TestHeaderShapedNames:
    @pytest.mark.parametrize(
        "name", ["HTTP_AUTHORIZATION", "HTTP_COOKIE", "id-token", "Client-Secret", "X_TOKEN"]
    )
    def test_header_and_hyphen_forms(self, name: str) -> None:
        """Django's META names and hyphenated spellings of secret names are redacted too."""
        expected = REDACTED if name != "X_TOKEN" else "v"
        assert redact({name: "v"})[name] == expected
