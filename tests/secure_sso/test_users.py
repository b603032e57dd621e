"""Linking verified identities to users: creation, no takeover, profile, groups and flags."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import authenticate, get_user_model
from django.contrib.auth.models import Group

from secure_sso.backends import SSOBackend, link_identity
from secure_sso.exceptions import UserRefused
from secure_sso.models import SSOIdentity

pytestmark = pytest.mark.django_db

ISSUER = "https://op.test"
OTHER_ISSUER = "https://other-op.test"
User = get_user_model()


def claims(sub: str = "sub-1", **extra: Any) -> dict[str, Any]:
    return {"iss": ISSUER, "sub": sub, "aud": "client", "nonce": "n", "exp": 1, "iat": 0, **extra}


def sign_in(claim_set: dict[str, Any], issuer: str = ISSUER) -> Any:
    user, _identity, _created = link_identity(None, issuer, claim_set)
    user.refresh_from_db()
    return user


def configure(settings: Any, **values: Any) -> None:
    settings.SECURE_SSO = {**django_settings.SECURE_SSO, **values}


def group_names(user: Any) -> set[str]:
    return set(user.groups.values_list("name", flat=True))


class TestFirstSignIn:
    def test_creates_user_with_unusable_password(self) -> None:
        """A first sign-in creates a user named from preferred_username with no usable password."""
        user, identity, created = link_identity(None, ISSUER, claims(preferred_username="bob"))
        assert created is True
        assert user.username == "bob"
        assert not user.has_usable_password()
        assert (identity.issuer, identity.subject, identity.user_id) == (ISSUER, "sub-1", user.pk)

    def test_username_never_bare_sub(self) -> None:
        """Without a readable claim the username is sso-<hash>, never the sub itself."""
        user = sign_in(claims(sub="admin"))
        assert user.username != "admin"
        assert re.fullmatch(r"sso-[0-9a-f]{12}", user.username)

    def test_hash_usernames_differ_per_identity(self) -> None:
        """Two identities without readable claims get distinct usernames."""
        first = sign_in(claims(sub="a"))
        second = sign_in(claims(sub="a"), issuer=OTHER_ISSUER)
        assert first.username != second.username

    def test_unverified_email_not_used_as_username(self) -> None:
        """An unverified email never becomes the username."""
        user = sign_in(claims(email="boss@corp.test", email_verified=False))
        assert user.username != "boss@corp.test"
        assert user.username.startswith("sso-")
        assert user.email == ""

    @pytest.mark.parametrize("verified", ["true", 1, None])
    def test_almost_verified_email_not_used(self, verified: Any) -> None:
        """email_verified must be literally true for the email to name the user."""
        user = sign_in(claims(email="boss@corp.test", email_verified=verified))
        assert user.username != "boss@corp.test"

    def test_verified_email_used_when_nothing_better(self) -> None:
        """A verified email may name the user when no username claim is present."""
        user = sign_in(claims(email="ada@corp.test", email_verified=True))
        assert user.username == "ada@corp.test"
        assert user.email == "ada@corp.test"

    def test_unsafe_username_characters_removed(self) -> None:
        """Characters Django usernames do not allow are stripped."""
        user = sign_in(claims(preferred_username="bo b/<script>"))
        assert user.username == "bobscript"

    def test_identity_stores_claims_without_transient_ones(self) -> None:
        """The identity keeps the verified claims but drops nonce and times."""
        _user, identity, _ = link_identity(None, ISSUER, claims(preferred_username="bob"))
        identity.refresh_from_db()
        assert identity.claims["preferred_username"] == "bob"
        assert "nonce" not in identity.claims
        assert identity.last_login_at is not None


class TestNoTakeover:
    def test_existing_local_user_not_linked(self) -> None:
        """An IdP user calling itself 'alice' gets a new account, not the local alice."""
        alice = User.objects.create_user("alice", password="local-password")
        user = sign_in(claims(preferred_username="alice"))
        assert user.pk != alice.pk
        assert user.username != "alice"
        assert user.username.lower() != "alice"
        alice.refresh_from_db()
        assert alice.check_password("local-password")
        assert not SSOIdentity.objects.filter(user=alice).exists()

    def test_case_variant_does_not_take_over(self) -> None:
        """Usernames are compared case-insensitively when choosing a new one."""
        alice = User.objects.create_user("Alice")
        user = sign_in(claims(preferred_username="alice"))
        assert user.pk != alice.pk
        assert user.username.lower() != "alice"

    def test_same_email_does_not_link(self) -> None:
        """A verified email equal to a local user's email does not link to that user."""
        local = User.objects.create_user("local", email="shared@corp.test")
        user = sign_in(claims(email="shared@corp.test", email_verified=True))
        assert user.pk != local.pk

    def test_other_identity_cannot_take_username_of_sso_user(self) -> None:
        """A second identity claiming an SSO user's username gets its own account."""
        first = sign_in(claims(sub="one", preferred_username="carol"))
        second = sign_in(claims(sub="two", preferred_username="carol"))
        assert first.pk != second.pk
        assert second.username != "carol"


class TestReturningUser:
    def test_same_issuer_and_sub_same_user(self) -> None:
        """The same (issuer, sub) signs into the same user even if username/email changed."""
        first = sign_in(claims(preferred_username="dave", email="d@a.test", email_verified=True))
        user, _identity, created = link_identity(
            None, ISSUER,
            claims(preferred_username="david", email="david@b.test", email_verified=True),
        )
        assert created is False
        assert user.pk == first.pk
        user.refresh_from_db()
        assert user.username == "dave"
        assert SSOIdentity.objects.count() == 1

    def test_same_sub_other_issuer_other_user(self) -> None:
        """The same sub from another issuer is a different identity and user."""
        first = sign_in(claims(preferred_username="erin"))
        second = sign_in(claims(preferred_username="erin"), issuer=OTHER_ISSUER)
        assert first.pk != second.pk
        assert SSOIdentity.objects.count() == 2

    def test_profile_synced_each_sign_in(self) -> None:
        """Names and verified email follow the provider at every sign-in."""
        sign_in(claims(given_name="Fay", family_name="Old", email="f@old.test",
                       email_verified=True))
        user = sign_in(claims(given_name="Faye", family_name="New", email="f@new.test",
                              email_verified=True))
        assert (user.first_name, user.last_name, user.email) == ("Faye", "New", "f@new.test")

    def test_email_cleared_when_no_longer_verified(self) -> None:
        """An email that becomes unverified is removed from the user."""
        sign_in(claims(email="g@corp.test", email_verified=True))
        user = sign_in(claims(email="g@corp.test", email_verified=False))
        assert user.email == ""

    def test_inactive_user_refused(self) -> None:
        """A deactivated user cannot sign in, whatever the provider says."""
        user = sign_in(claims(preferred_username="hank"))
        User.objects.filter(pk=user.pk).update(is_active=False)
        with pytest.raises(UserRefused) as info:
            link_identity(None, ISSUER, claims(preferred_username="hank", given_name="New"))
        assert info.value.code == "user_inactive"
        user.refresh_from_db()
        assert user.is_active is False
        assert user.first_name == ""

    def test_signup_closed_refuses_new_identities(self, settings: Any) -> None:
        """With CREATE_USERS False a new identity is refused, an existing one still works."""
        existing = sign_in(claims(sub="known", preferred_username="ivy"))
        configure(settings, CREATE_USERS=False)
        with pytest.raises(UserRefused) as info:
            link_identity(None, ISSUER, claims(sub="new", preferred_username="jack"))
        assert info.value.code == "signup_closed"
        assert not User.objects.filter(username="jack").exists()
        assert not SSOIdentity.objects.filter(subject="new").exists()
        assert sign_in(claims(sub="known")).pk == existing.pk

    def test_signup_closed_does_not_link_local_user(self, settings: Any) -> None:
        """With sign-up closed, a matching local username is still not linked."""
        User.objects.create_user("kim")
        configure(settings, CREATE_USERS=False)
        with pytest.raises(UserRefused):
            link_identity(None, ISSUER, claims(preferred_username="kim"))
        assert SSOIdentity.objects.count() == 0


class TestGroupsAndFlags:
    GROUP_SETTINGS = {
        "GROUPS_CLAIM": "groups",
        "GROUP_MAP": {"admins": "Administrators", "staff": "Staff"},
    }

    def test_group_sync_adds_and_removes_only_mapped(self, settings: Any) -> None:
        """Mapped groups follow the provider; unmanaged Django groups are left alone."""
        configure(settings, **self.GROUP_SETTINGS)
        user = sign_in(claims(groups=["admins", "hackers"]))
        local = Group.objects.create(name="Local")
        user.groups.add(local)
        assert group_names(user) == {"Administrators", "Local"}
        assert not Group.objects.filter(name="hackers").exists()

        user = sign_in(claims(groups=["staff"]))
        assert group_names(user) == {"Staff", "Local"}

        user = sign_in(claims(groups=[]))
        assert group_names(user) == {"Local"}

    def test_unmapped_django_group_with_provider_name_not_granted(self, settings: Any) -> None:
        """A Django group named like an unmapped provider group is not granted."""
        configure(settings, **self.GROUP_SETTINGS)
        Group.objects.create(name="hackers")
        user = sign_in(claims(groups=["hackers", "Administrators"]))
        assert group_names(user) == set()

    def test_no_group_map_leaves_groups_alone(self, settings: Any) -> None:
        """Without GROUP_MAP a sign-in never changes groups."""
        configure(settings, GROUPS_CLAIM="groups")
        user = sign_in(claims())
        user.groups.add(Group.objects.create(name="Administrators"))
        user = sign_in(claims(groups=[]))
        assert group_names(user) == {"Administrators"}

    def test_staff_and_superuser_granted_and_revoked(self, settings: Any) -> None:
        """STAFF_GROUPS and SUPERUSER_GROUPS set and clear the flags at each sign-in."""
        configure(settings, GROUPS_CLAIM="groups", STAFF_GROUPS=["staff"],
                  SUPERUSER_GROUPS=["root"])
        user = sign_in(claims(groups=["staff"]))
        assert (user.is_staff, user.is_superuser) == (True, False)
        user = sign_in(claims(groups=["root"]))
        assert (user.is_staff, user.is_superuser) == (True, True)
        user = sign_in(claims(groups=["users"]))
        assert (user.is_staff, user.is_superuser) == (False, False)
        user = sign_in(claims())
        assert (user.is_staff, user.is_superuser) == (False, False)

    def test_no_rule_leaves_flags_alone(self, settings: Any) -> None:
        """Without staff/superuser rules, flags set by an administrator survive sign-in."""
        configure(settings, GROUPS_CLAIM="groups")
        user = sign_in(claims(groups=["root"]))
        assert (user.is_staff, user.is_superuser) == (False, False)
        User.objects.filter(pk=user.pk).update(is_staff=True)
        user = sign_in(claims(groups=[]))
        assert user.is_staff is True


class TestBackend:
    def test_authenticate_without_sso_arguments(self) -> None:
        """The backend ignores ordinary credentials."""
        User.objects.create_user("lou", password="pw")
        assert SSOBackend().authenticate(None, username="lou", password="pw") is None
        assert SSOBackend().authenticate(None, sso_issuer=ISSUER, sso_claims={}) is None
        assert SSOBackend().authenticate(None, sso_issuer="", sso_claims=claims()) is None

    def test_authenticate_with_verified_claims(self) -> None:
        """django.contrib.auth.authenticate with verified claims returns the linked user."""
        user = authenticate(None, sso_issuer=ISSUER, sso_claims=claims(preferred_username="max"))
        assert user is not None
        assert user.username == "max"
        assert user.backend == "secure_sso.backends.SSOBackend"
        assert user._secure_sso_created is True
