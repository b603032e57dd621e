"""Every policy decision about users, as small methods a project can override.

Point ``SECURE_SSO["ADAPTER"]`` at a subclass of :class:`DefaultSSOAdapter` to change
how usernames are chosen, which fields sync, or who may sign in.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.http import HttpRequest

from secure_sso import claims as claim_rules
from secure_sso.conf import sso_settings

_USERNAME_UNSAFE = re.compile(r"[^\w.@+-]")


class DefaultSSOAdapter:
    """Default policy: create users on first sign-in, sync profile, groups and flags."""

    def is_open_for_signup(self, request: HttpRequest | None, claims: dict[str, Any]) -> bool:
        """Whether a first sign-in may create a Django user."""
        return sso_settings.CREATE_USERS

    def username_candidates(self, claims: dict[str, Any]) -> list[str]:
        """Readable usernames to try, from ``USERNAME_CLAIMS``; emails only if verified."""
        candidates = []
        for name in sso_settings.USERNAME_CLAIMS:
            value = claims.get(name)
            if not isinstance(value, str):
                continue
            if name == "email" and not claim_rules.email_is_verified(claims):
                continue
            cleaned = _USERNAME_UNSAFE.sub("", value)[:140]
            if cleaned:
                candidates.append(cleaned)
        return candidates

    def generate_username(self, issuer: str, claims: dict[str, Any]) -> str:
        """A free username; never a bare ``sub``, never an existing account's name."""
        user_model = get_user_model()
        field = user_model.USERNAME_FIELD
        digest = hashlib.sha256(f"{issuer}\n{claims['sub']}".encode()).hexdigest()
        for base in [*self.username_candidates(claims), f"sso-{digest[:12]}"]:
            for suffix in ["", *(f"-{digest[i:i + 6]}" for i in range(0, 24, 6))]:
                name = f"{base}{suffix}"
                if not user_model._default_manager.filter(**{f"{field}__iexact": name}).exists():
                    return name
        return f"sso-{digest[:32]}"

    def new_user(self, issuer: str, claims: dict[str, Any]) -> AbstractBaseUser:
        user_model = get_user_model()
        user = user_model(**{user_model.USERNAME_FIELD: self.generate_username(issuer, claims)})
        # SECURITY: SSO users never get a password that could be guessed or reset.
        user.set_unusable_password()
        return user

    def populate_user(self, user: AbstractBaseUser, claims: dict[str, Any]) -> None:
        """Copy profile fields (``CLAIM_MAPPING``) and privilege flags onto ``user``."""
        for field, value in claim_rules.profile_fields(claims, sso_settings.CLAIM_MAPPING).items():
            if hasattr(user, field):
                setattr(user, field, value)
        idp_groups = claim_rules.extract_groups(claims, sso_settings.GROUPS_CLAIM)
        flags = claim_rules.privilege_flags(
            idp_groups,
            staff_groups=sso_settings.STAFF_GROUPS,
            superuser_groups=sso_settings.SUPERUSER_GROUPS,
        )
        for field, value in flags.items():
            setattr(user, field, value)

    def sync_groups(self, user: Any, claims: dict[str, Any]) -> None:
        """Make the user's mapped Django groups match the provider's, leaving others alone."""
        group_map = sso_settings.GROUP_MAP
        if not group_map or not sso_settings.GROUPS_CLAIM:
            return
        idp_groups = claim_rules.extract_groups(claims, sso_settings.GROUPS_CLAIM)
        wanted = claim_rules.mapped_groups(idp_groups, group_map)
        managed = set(group_map.values())
        current = set(user.groups.filter(name__in=managed).values_list("name", flat=True))
        if current - wanted:
            user.groups.remove(*Group.objects.filter(name__in=current - wanted))
        for name in sorted(wanted - current):
            group, _ = Group.objects.get_or_create(name=name)
            user.groups.add(group)

    def can_sign_in(self, user: AbstractBaseUser, claims: dict[str, Any]) -> bool:
        """Inactive users stay out, whatever the provider says."""
        return bool(getattr(user, "is_active", True))

    def get_login_redirect_url(self, request: HttpRequest) -> str:
        return sso_settings.LOGIN_REDIRECT_URL

    def get_logout_redirect_url(self, request: HttpRequest) -> str:
        return sso_settings.LOGOUT_REDIRECT_URL


def get_adapter() -> DefaultSSOAdapter:
    """The configured adapter instance (``SECURE_SSO["ADAPTER"]``)."""
    return sso_settings.adapter_class()
