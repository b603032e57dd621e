"""Pure claim handling: merging userinfo, profile fields, groups and privilege flags.

No ORM here: :mod:`secure_sso.adapter` applies what these functions decide.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from secure_sso.constants import PROTOCOL_CLAIMS, TRANSIENT_CLAIMS
from secure_sso.exceptions import InvalidIDToken

#: Bounds on untrusted group claims.
MAX_GROUPS = 512
MAX_GROUP_LENGTH = 256
#: Field lengths of django.contrib.auth's User.
FIELD_LIMITS = {"email": 254, "first_name": 150, "last_name": 150}


def merge_userinfo(id_claims: Mapping[str, Any], userinfo: Mapping[str, Any]) -> dict[str, Any]:
    """ID-token claims plus userinfo claims; userinfo cannot override protocol claims.

    Raises:
        InvalidIDToken: userinfo names another ``sub`` (OpenID Connect Core 5.3.2).
    """
    if not userinfo:
        return dict(id_claims)
    if userinfo.get("sub") != id_claims.get("sub"):
        raise InvalidIDToken("userinfo sub differs from id_token sub", code="userinfo_sub_mismatch")
    merged = dict(id_claims)
    for name, value in userinfo.items():
        if name not in PROTOCOL_CLAIMS:
            merged[name] = value
    return merged


def storable_claims(claims: Mapping[str, Any]) -> dict[str, Any]:
    """Claims worth keeping as the identity's last verified claims."""
    return {k: v for k, v in claims.items() if k not in TRANSIENT_CLAIMS}


def email_is_verified(claims: Mapping[str, Any]) -> bool:
    """Only a literal ``true`` counts; "true", 1 or a missing claim do not."""
    return claims.get("email_verified") is True


def profile_fields(claims: Mapping[str, Any], mapping: Mapping[str, str]) -> dict[str, str]:
    """User field values from claims through ``CLAIM_MAPPING``.

    SECURITY: an email the provider has not verified is never copied: other code may
    trust ``user.email`` for password resets or notifications.
    """
    fields: dict[str, str] = {}
    for field, claim in mapping.items():
        value = claims.get(claim)
        if field == "email" and not email_is_verified(claims):
            value = ""
        if value is None:
            value = ""
        if not isinstance(value, str):
            continue
        limit = FIELD_LIMITS.get(field, 150)
        fields[field] = value.strip()[:limit]
    return fields


def extract_groups(claims: Mapping[str, Any], claim_name: str | None) -> frozenset[str]:
    """The provider's group names from ``claim_name``: a list of strings, or one string."""
    if not claim_name:
        return frozenset()
    value = claims.get(claim_name)
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return frozenset()
    return frozenset(
        g for g in value[:MAX_GROUPS] if isinstance(g, str) and 0 < len(g) <= MAX_GROUP_LENGTH
    )


def mapped_groups(idp_groups: Iterable[str], group_map: Mapping[str, str]) -> frozenset[str]:
    """Django group names for the provider groups on the allow-list; others are ignored."""
    return frozenset(group_map[g] for g in idp_groups if g in group_map)


def privilege_flags(
    idp_groups: frozenset[str],
    *,
    staff_groups: frozenset[str],
    superuser_groups: frozenset[str],
) -> dict[str, bool]:
    """``is_staff`` / ``is_superuser`` values the groups grant; empty when no rule is set.

    A configured rule is authoritative both ways: losing the group at the provider
    removes the flag at the next sign-in.
    """
    flags: dict[str, bool] = {}
    if superuser_groups:
        flags["is_superuser"] = bool(idp_groups & superuser_groups)
    if staff_groups or superuser_groups:
        flags["is_staff"] = bool(idp_groups & staff_groups) or flags.get("is_superuser", False)
    return flags
