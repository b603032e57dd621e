"""Properties of logout token claim checking (Back-Channel Logout 1.0, 2.6), by hypothesis."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secure_sso.exceptions import InvalidLogoutToken
from secure_sso.logout_token import BACKCHANNEL_EVENT, check_logout_claims_at_time

ISSUER = "https://idp.example"
CLIENT = "client-1"
NOW = 1_800_000_000

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=10,
)


def valid_claims(**overrides: Any) -> dict[str, Any]:
    claims = {
        "iss": ISSUER, "aud": CLIENT, "iat": NOW, "exp": NOW + 120, "jti": "j-1",
        "events": {BACKCHANNEL_EVENT: {}}, "sid": "s-1", "sub": "u-1",
    }
    claims.update(overrides)
    return claims


def check(claims: dict[str, Any], header: dict[str, Any] | None = None) -> Any:
    return check_logout_claims_at_time(
        header or {"alg": "RS256", "typ": "logout+jwt"}, claims, issuer=ISSUER,
        client_id=CLIENT, now=NOW, leeway=60, max_age=120,
    )


def accepted(claims: dict[str, Any], header: dict[str, Any] | None = None) -> bool:
    try:
        check(claims, header)
    except InvalidLogoutToken:
        return False
    return True


@given(st.dictionaries(st.text(max_size=12).filter(lambda k: k not in valid_claims()
                                                    and k != "nonce"), json_values, max_size=5))
def test_extra_claims_do_not_matter(extra: dict[str, Any]) -> None:
    request = check({**valid_claims(), **extra})
    assert (request.sid, request.subject, request.jti) == ("s-1", "u-1", "j-1")


@given(st.dictionaries(st.sampled_from(sorted(valid_claims()) + ["nonce"]), json_values))
def test_anything_accepted_satisfies_every_rule(claims: dict[str, Any]) -> None:
    """Arbitrary claim sets: refused with InvalidLogoutToken, or valid in every respect."""
    merged = {**valid_claims(), **claims}
    if not accepted(merged):
        return
    aud = merged["aud"]
    assert merged["iss"] == ISSUER
    assert CLIENT in ([aud] if isinstance(aud, str) else aud)
    assert isinstance(merged["events"][BACKCHANNEL_EVENT], dict)
    assert "nonce" not in merged
    assert isinstance(merged["jti"], str) and merged["jti"]
    assert isinstance(merged.get("sid"), str) or isinstance(merged.get("sub"), str)
    assert NOW - 180 <= merged["iat"] <= NOW + 60
    assert merged["exp"] >= NOW - 60


@pytest.mark.parametrize("name", ["iss", "aud", "iat", "exp", "jti", "events"])
@given(value=json_values)
def test_a_required_claim_replaced_is_refused(name: str, value: Any) -> None:
    good = valid_claims()[name]
    if value == good or (name == "aud" and value == [CLIENT]):
        return
    if name == "iat" and isinstance(value, int | float) and NOW - 180 <= value <= NOW + 60:
        return
    if name == "exp" and isinstance(value, int | float) and not isinstance(value, bool) \
            and value >= NOW - 60:
        return
    if name == "jti" and isinstance(value, str) and 0 < len(value) <= 255:
        return
    if name == "events" and isinstance(value, dict) and isinstance(
        value.get(BACKCHANNEL_EVENT), dict
    ):
        return
    assert not accepted(valid_claims(**{name: value}))


@pytest.mark.parametrize("name", ["iss", "aud", "iat", "exp", "jti", "events"])
def test_a_required_claim_missing_is_refused(name: str) -> None:
    claims = valid_claims()
    del claims[name]
    assert not accepted(claims)


@given(value=json_values)
def test_any_nonce_is_refused(value: Any) -> None:
    with pytest.raises(InvalidLogoutToken) as refused:
        check(valid_claims(nonce=value))
    assert refused.value.code == "logout_token_nonce_present"


@given(typ=st.text(max_size=30))
def test_typ_header(typ: str) -> None:
    expected = typ.lower() in {"", "jwt", "logout+jwt", "application/logout+jwt"}
    assert accepted(valid_claims(), {"alg": "RS256", "typ": typ}) is expected


def test_sid_or_sub_suffices() -> None:
    sid_only = valid_claims()
    del sid_only["sub"]
    sub_only = valid_claims()
    del sub_only["sid"]
    assert check(sid_only).subject is None and check(sub_only).sid is None
    del sid_only["sid"]
    assert not accepted(sid_only)
