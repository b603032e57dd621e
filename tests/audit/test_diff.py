"""claims_diff: what changed between two claim sets, readable, never leaking sensitive values."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from audit.diff import VOLATILE_CLAIMS, claims_diff
from tests.strategies import claim_dicts, json_values

MARK = "\u27e6sensitive\u27e7"


class TestClaimsDiff:
    def test_nothing_changed(self) -> None:
        """Equal claims give an empty diff."""
        claims = {"sub": "1", "name": "Ann", "groups": ["a"]}
        assert claims_diff(claims, dict(claims)) == {}

    def test_volatile_claims_ignored(self) -> None:
        """iat, exp, nonce and the like change every sign-in and are not reported."""
        before = {"sub": "1", "iat": 1, "exp": 2, "nonce": "a", "auth_time": 3, "sid": "x"}
        after = {"sub": "1", "iat": 5, "exp": 6, "nonce": "b", "auth_time": 7, "jti": "y"}
        assert claims_diff(before, after) == {}

    def test_added_removed_changed(self) -> None:
        """Added and removed claims carry their values; a changed scalar gives from/to."""
        diff = claims_diff({"sub": "1", "name": "Ann", "locale": "en"},
                           {"sub": "1", "name": "Ann B", "email": "a@x.example"})
        assert diff == {
            "added": {"email": "a@x.example"},
            "removed": {"locale": "en"},
            "changed": {"name": {"from": "Ann", "to": "Ann B"}},
        }

    def test_group_members(self) -> None:
        """A list claim reports the members added and removed, in order."""
        diff = claims_diff({"groups": ["staff", "users", "x"]}, {"groups": ["users", "admins"]})
        assert diff == {"changed": {"groups": {"added": ["admins"], "removed": ["staff", "x"]}}}

    def test_list_to_scalar(self) -> None:
        """A claim changing type is reported as from/to."""
        assert claims_diff({"groups": ["a"]}, {"groups": "a"}) == {
            "changed": {"groups": {"from": ["a"], "to": "a"}}
        }

    def test_sensitive_claims(self) -> None:
        """A sensitive claim is reported as added, removed or changed without its value."""
        diff = claims_diff(
            {"email": "old@x.example", "phone_number": "+1"},
            {"email": "new@x.example", "ssn": "123"},
            sensitive=["email", "phone_number", "ssn"],
        )
        assert diff == {
            "added": {"ssn": "[sensitive]"},
            "removed": {"phone_number": "[sensitive]"},
            "changed": {"email": {"changed": True}},
        }

    @given(before=claim_dicts, after=claim_dicts)
    def test_never_raises_and_is_json(self, before: dict, after: dict) -> None:
        """Any two claim dicts give a JSON-serialisable diff naming only differing claims."""
        diff = claims_diff(before, after)
        json.dumps(diff)
        named = set().union(*(part.keys() for part in diff.values()))
        assert named.isdisjoint(VOLATILE_CLAIMS)
        for name in named:
            assert before.get(name, MARK) != after.get(name, MARK)

    @given(claims=claim_dicts)
    def test_diff_with_itself_is_empty(self, claims: dict) -> None:
        """x against x is always empty (NaN-free JSON claims)."""
        assert claims_diff(claims, json.loads(json.dumps(claims))) == {}

    @given(
        before=claim_dicts,
        after=claim_dicts,
        names=st.lists(st.text(max_size=12), min_size=1, max_size=4),
        values=st.data(),
    )
    def test_sensitive_values_never_appear(
        self, before: dict, after: dict, names: list[str], values: Any
    ) -> None:
        """Values of sensitive claims never appear in the diff, whatever else changed."""
        for name in names:
            if values.draw(st.booleans()):
                before[name] = MARK + values.draw(st.text(max_size=5))
            if values.draw(st.booleans()):
                after[name] = [MARK, values.draw(json_values)]
        diff = claims_diff(before, after, sensitive=names)
        assert MARK not in json.dumps(diff, ensure_ascii=False)
