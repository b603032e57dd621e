"""Authentication backend that finds or creates the user linked to (issuer, ``sub``).

It accepts only claims that :mod:`secure_sso.flows` has verified: the keyword
arguments ``sso_issuer``/``sso_claims`` are not reachable from any login form.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from secure_sso import claims as claim_rules
from secure_sso.adapter import get_adapter
from secure_sso.exceptions import UserRefused
from secure_sso.models import SSOIdentity


class SSOBackend(ModelBackend):
    """``ModelBackend`` for permissions, plus sign-in by verified OpenID Connect claims."""

    def authenticate(  # type: ignore[override]
        self,
        request: HttpRequest | None,
        *,
        sso_issuer: str | None = None,
        sso_claims: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        if not sso_issuer or not sso_claims:
            return None
        user, identity, created = link_identity(request, sso_issuer, sso_claims)
        user._secure_sso_identity = identity  # handed back to the flow, not persisted
        user._secure_sso_created = created
        return user


def link_identity(
    request: HttpRequest | None, issuer: str, claims: dict[str, Any]
) -> tuple[Any, SSOIdentity, bool]:
    """Find or create the identity and its user, sync profile and groups.

    Raises:
        UserRefused: creation is closed, or the adapter refuses the user.
    """
    adapter = get_adapter()
    subject = claims["sub"]
    for _attempt in range(2):
        try:
            with transaction.atomic():
                identity = (
                    SSOIdentity.objects.select_for_update()
                    .select_related("user")
                    .filter(issuer=issuer, subject=subject)
                    .first()
                )
                created = identity is None
                if created:
                    if not adapter.is_open_for_signup(request, claims):
                        raise UserRefused("sign-up closed", code="signup_closed")
                    user = adapter.new_user(issuer, claims)
                else:
                    user = identity.user
                adapter.populate_user(user, claims)
                if not adapter.can_sign_in(user, claims):
                    raise UserRefused("user may not sign in", code="user_inactive")
                user.save()
                if created:
                    identity = SSOIdentity(user=user, issuer=issuer, subject=subject)
                previous_claims = {} if created else dict(identity.claims or {})
                identity.claims = claim_rules.storable_claims(claims)
                identity.last_login_at = timezone.now()
                identity.save()
                adapter.sync_groups(user, claims)
                identity._previous_claims = previous_claims  # for the claim-change audit
                return user, identity, created
        except IntegrityError:
            # Two first sign-ins of one identity raced; the second finds the first's row.
            continue
    raise UserRefused("could not link identity", code="identity_conflict")
