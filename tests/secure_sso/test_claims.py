"""Pure claim rules: userinfo merging, profile fields, groups and privilege flags."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secure_sso.claims import (
    FIELD_LIMITS,
    MAX_GROUP_LENGTH,
    MAX_GROUPS,
    email_is_verified,
    extract_groups,
    mapped_groups,
    merge_userinfo,
    privilege_flags,
    profile_fields,
    storable_claims,
)
from secure_sso.constants import PROTOCOL_CLAIMS, TRANSIENT_CLAIMS
from secure_sso.exceptions import InvalidIDToken
from tests.strategies import claim_dicts, group_claim_values, group_names

MAPPING = {"email": "email", "first_name": "given_name", "last_name": "family_name"}
ID_CLAIMS = {
    "iss": "https://op.test/",
    "sub": "user-1",
    "aud": "client",
    "azp": "client",
    "exp": 2000,
    "iat": 1000,
    "nonce": "n-1",
    "auth_time": 1000,
    "acr": "urn:mfa",
    "amr": ["pwd", "otp"],
    "sid": "session-1",
    "email": "id@example.test",
}


class TestMergeUserinfo:
    def test_empty_userinfo_gives_id_claims(self) -> None:
        """Without userinfo the ID token's claims come back as a new dict."""
        merged = merge_userinfo(ID_CLAIMS, {})
        assert merged == ID_CLAIMS
        assert merged is not ID_CLAIMS

    def test_userinfo_adds_profile_claims(self) -> None:
        """Userinfo with the same sub contributes and updates profile claims."""
        merged = merge_userinfo(
            ID_CLAIMS, {"sub": "user-1", "email": "ui@example.test", "groups": ["a"]}
        )
        assert merged["email"] == "ui@example.test"
        assert merged["groups"] == ["a"]

    @pytest.mark.parametrize("other", [{"sub": "user-2"}, {"sub": None}, {"email": "x@y"},
                                       {"sub": "USER-1"}, {"sub": ["user-1"]}])
    def test_sub_mismatch_raises(self, other: dict) -> None:
        """Userinfo naming another (or no) sub is refused with userinfo_sub_mismatch."""
        with pytest.raises(InvalidIDToken) as info:
            merge_userinfo(ID_CLAIMS, other)
        assert info.value.code == "userinfo_sub_mismatch"

    @pytest.mark.parametrize("name", sorted(PROTOCOL_CLAIMS))
    def test_userinfo_cannot_override_protocol_claims(self, name: str) -> None:
        """Userinfo cannot replace or add any protocol claim (iss, aud, nonce, ...)."""
        merged = merge_userinfo(ID_CLAIMS, {"sub": "user-1", name: "forged"})
        assert merged.get(name) == ID_CLAIMS.get(name)
        assert merged.get(name) != "forged"

    @settings(max_examples=100, deadline=None)
    @given(claim_dicts)
    def test_merge_never_changes_protocol_claims(self, userinfo: dict) -> None:
        """For any userinfo, the result keeps the ID token's sub and protocol claims."""
        try:
            merged = merge_userinfo(ID_CLAIMS, userinfo)
        except InvalidIDToken as exc:
            assert exc.code == "userinfo_sub_mismatch"
            assert userinfo and userinfo.get("sub") != ID_CLAIMS["sub"]
            return
        assert merged["sub"] == ID_CLAIMS["sub"]
        for name in PROTOCOL_CLAIMS:
            assert merged.get(name) == ID_CLAIMS.get(name)


class TestStorableClaims:
    def test_transient_claims_dropped(self) -> None:
        """Nonce, hashes and time claims are not kept as last verified claims."""
        stored = storable_claims(ID_CLAIMS)
        assert not set(stored) & TRANSIENT_CLAIMS
        assert stored["sub"] == "user-1"
        assert stored["iss"] == "https://op.test/"


class TestProfileFields:
    def test_verified_email_copied(self) -> None:
        """An email with email_verified true is copied with names."""
        claims = {"email": "a@example.test", "email_verified": True,
                  "given_name": "Ada", "family_name": "Lovelace"}
        assert profile_fields(claims, MAPPING) == {
            "email": "a@example.test", "first_name": "Ada", "last_name": "Lovelace",
        }

    @pytest.mark.parametrize("verified", [False, "true", "True", 1, 1.0, None, [True], {}])
    def test_unverified_email_never_copied(self, verified: object) -> None:
        """Only a literal JSON true verifies an email; anything else blanks it."""
        claims = {"email": "a@example.test", "email_verified": verified}
        assert profile_fields(claims, MAPPING)["email"] == ""
        assert email_is_verified(claims) is False

    def test_missing_email_verified_blanks_email(self) -> None:
        """An email without email_verified is not copied."""
        assert profile_fields({"email": "a@example.test"}, MAPPING)["email"] == ""

    def test_missing_claims_give_empty_strings(self) -> None:
        """Absent claims clear the mapped fields."""
        assert profile_fields({}, MAPPING) == {"email": "", "first_name": "", "last_name": ""}

    @pytest.mark.parametrize("field,claim", [("first_name", "given_name"),
                                             ("last_name", "family_name")])
    def test_names_truncated_to_field_limit(self, field: str, claim: str) -> None:
        """Over-long names are cut to the User field's max_length."""
        value = profile_fields({claim: "x" * 1000}, MAPPING)[field]
        assert value == "x" * FIELD_LIMITS[field]

    def test_email_truncated_to_field_limit(self) -> None:
        """A verified over-long email is cut to 254 characters."""
        claims = {"email": "e" * 500, "email_verified": True}
        assert len(profile_fields(claims, MAPPING)["email"]) == FIELD_LIMITS["email"] == 254

    def test_unknown_field_limited_to_150(self) -> None:
        """Fields without a known limit are cut to 150 characters."""
        assert profile_fields({"nick": "n" * 400}, {"nickname": "nick"}) == {"nickname": "n" * 150}

    @pytest.mark.parametrize("value", [42, 1.5, True, ["Ada"], {"x": "Ada"}])
    def test_non_string_values_ignored(self, value: object) -> None:
        """Non-string claim values leave the field untouched (not in the result)."""
        assert "first_name" not in profile_fields({"given_name": value}, MAPPING)

    def test_whitespace_stripped(self) -> None:
        """Surrounding whitespace is removed."""
        assert profile_fields({"given_name": "  Ada \n"}, MAPPING)["first_name"] == "Ada"

    @settings(max_examples=150, deadline=None)
    @given(claim_dicts)
    def test_output_always_bounded_strings(self, claims: dict) -> None:
        """For any claims, outputs are strings within limits and email only when verified."""
        fields = profile_fields(claims, MAPPING)
        for field, value in fields.items():
            assert isinstance(value, str)
            assert len(value) <= FIELD_LIMITS.get(field, 150)
        if claims.get("email_verified") is not True:
            assert fields.get("email", "") == ""


class TestExtractGroups:
    def test_list_of_strings(self) -> None:
        """A list of names gives those names."""
        assert extract_groups({"groups": ["a", "b", "a"]}, "groups") == {"a", "b"}

    def test_single_string(self) -> None:
        """A single string is one group."""
        assert extract_groups({"groups": "admins"}, "groups") == {"admins"}

    @pytest.mark.parametrize("claim_name", [None, ""])
    def test_no_claim_configured(self, claim_name: str | None) -> None:
        """Without GROUPS_CLAIM no groups are read."""
        assert extract_groups({"groups": ["a"]}, claim_name) == frozenset()

    @pytest.mark.parametrize("value", [None, 1, {"admins": True}, True, 2.5])
    def test_wrong_types_give_nothing(self, value: object) -> None:
        """A claim that is neither a string nor a list gives no groups."""
        assert extract_groups({"groups": value}, "groups") == frozenset()

    def test_non_string_empty_and_long_members_dropped(self) -> None:
        """Members that are not strings, empty or too long are skipped."""
        longest = "x" * MAX_GROUP_LENGTH
        value = ["ok", 1, None, ["admins"], "", longest + "x", longest]
        assert extract_groups({"groups": value}, "groups") == {"ok", longest}

    def test_list_bounded(self) -> None:
        """Only the first MAX_GROUPS entries are considered."""
        value = [f"g{i}" for i in range(MAX_GROUPS + 10)]
        groups = extract_groups({"groups": value}, "groups")
        assert len(groups) == MAX_GROUPS
        assert f"g{MAX_GROUPS}" not in groups

    @settings(max_examples=200, deadline=None)
    @given(group_claim_values)
    def test_never_raises_and_output_bounded(self, value: object) -> None:
        """For any claim value, the result is a bounded set of non-empty bounded strings."""
        groups = extract_groups({"groups": value}, "groups")
        assert isinstance(groups, frozenset)
        assert len(groups) <= MAX_GROUPS
        assert all(isinstance(g, str) and 0 < len(g) <= MAX_GROUP_LENGTH for g in groups)

    @settings(max_examples=100, deadline=None)
    @given(claim_dicts, st.text(max_size=10))
    def test_arbitrary_claims_never_raise(self, claims: dict, claim_name: str) -> None:
        """Arbitrary claim dicts and claim names never raise."""
        groups = extract_groups(claims, claim_name)
        assert all(isinstance(g, str) for g in groups)


class TestMappedGroups:
    def test_only_allow_listed_groups(self) -> None:
        """Only provider groups in GROUP_MAP become Django groups, renamed by the map."""
        group_map = {"admins": "Administrators", "staff": "Staff"}
        assert mapped_groups({"admins", "hackers", "Staff"}, group_map) == {"Administrators"}

    def test_empty_map_gives_nothing(self) -> None:
        """Without a map no group is granted."""
        assert mapped_groups({"admins"}, {}) == frozenset()

    @settings(max_examples=100, deadline=None)
    @given(st.frozensets(group_names, max_size=10),
           st.dictionaries(group_names, st.text(min_size=1, max_size=10), max_size=5))
    def test_result_within_map_values(self, groups: frozenset, group_map: dict) -> None:
        """Every result is the mapped name of a provider group that is a map key."""
        result = mapped_groups(groups, group_map)
        assert result == {group_map[g] for g in groups if g in group_map}
        assert result <= set(group_map.values())


class TestPrivilegeFlags:
    STAFF = frozenset({"staff"})
    ADMINS = frozenset({"admins"})

    def test_no_rule_no_flags(self) -> None:
        """Without staff or superuser groups configured, no flag is decided."""
        assert privilege_flags(frozenset({"staff", "admins"}), staff_groups=frozenset(),
                               superuser_groups=frozenset()) == {}

    def test_staff_granted_and_revoked(self) -> None:
        """A staff rule grants is_staff to members and removes it from non-members."""
        assert privilege_flags(frozenset({"staff"}), staff_groups=self.STAFF,
                               superuser_groups=frozenset()) == {"is_staff": True}
        assert privilege_flags(frozenset({"users"}), staff_groups=self.STAFF,
                               superuser_groups=frozenset()) == {"is_staff": False}

    def test_superuser_granted_and_revoked(self) -> None:
        """A superuser rule grants both flags to members and removes them otherwise."""
        assert privilege_flags(frozenset({"admins"}), staff_groups=frozenset(),
                               superuser_groups=self.ADMINS) == {
            "is_superuser": True, "is_staff": True,
        }
        assert privilege_flags(frozenset(), staff_groups=frozenset(),
                               superuser_groups=self.ADMINS) == {
            "is_superuser": False, "is_staff": False,
        }

    def test_staff_member_not_superuser(self) -> None:
        """Staff membership alone does not grant superuser."""
        assert privilege_flags(frozenset({"staff"}), staff_groups=self.STAFF,
                               superuser_groups=self.ADMINS) == {
            "is_superuser": False, "is_staff": True,
        }

    def test_superuser_implies_staff(self) -> None:
        """A superuser is also staff even when not in a staff group."""
        flags = privilege_flags(frozenset({"admins"}), staff_groups=self.STAFF,
                                superuser_groups=self.ADMINS)
        assert flags == {"is_superuser": True, "is_staff": True}

    @settings(max_examples=100, deadline=None)
    @given(st.frozensets(group_names, max_size=6), st.frozensets(group_names, max_size=3),
           st.frozensets(group_names, max_size=3))
    def test_flags_follow_rules(self, groups: frozenset, staff: frozenset,
                                superusers: frozenset) -> None:
        """Flags are exactly membership of the configured groups; superuser implies staff."""
        flags = privilege_flags(groups, staff_groups=staff, superuser_groups=superusers)
        if superusers:
            assert flags["is_superuser"] == bool(groups & superusers)
        else:
            assert "is_superuser" not in flags
        if staff or superusers:
            assert flags["is_staff"] == (bool(groups & staff) or bool(groups & superusers))
        else:
            assert flags == {}
        if flags.get("is_superuser"):
            assert flags["is_staff"] is True

