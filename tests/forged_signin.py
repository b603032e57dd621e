"""Signing a test client in through a :class:`tests.forge.ForgedProvider`.

``sign_in`` drives ``/sso/login/`` and ``/sso/callback/`` with a forged ID token, the
way a provider would answer a successful sign-in; ``query_of`` reads a redirect's query.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.test import Client

from secure_sso.constants import SESSION_SUBJECT_KEY
from tests.forge import ForgedProvider

#: The subject the forge signs tokens for unless told otherwise.
SUB = "forged-user"


def query_of(url: str) -> dict[str, str]:
    """The query of ``url``, one value per name."""
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def sign_in(
    client: Client,
    forge: ForgedProvider,
    *,
    sub: str = SUB,
    claims: dict[str, Any] | None = None,
    userinfo: dict[str, Any] | str | None = None,
    **token_extra: Any,
) -> dict[str, str]:
    """Sign ``client`` in through ``forge`` as ``sub``; the authorization request's query.

    The ID token carries ``claims`` on top of the forge's defaults; ``token_extra`` is
    added to the token endpoint's answer (``refresh_token``, ``expires_in``, ...), which
    stays in ``forge.token_body``. Userinfo answers ``userinfo``, by default ``sub`` with
    a username (``forged-user`` -> ``forged.user``).
    """
    response = client.get("/sso/login/")
    query = query_of(response["Location"])
    id_token = forge.id_token(claims, nonce=query["nonce"], sub=sub)
    forge.token_body = forge.token_response_for(id_token, **token_extra)
    forge.userinfo = (
        {"sub": sub, "preferred_username": sub.replace("-", ".")} if userinfo is None else userinfo
    )
    response = client.get("/sso/callback/", forge.callback_params(query["state"]))
    assert response.status_code == 302, response.content[:500]
    assert client.session[SESSION_SUBJECT_KEY] == sub
    return query
