"""Talking to the provider: discovery, JWKS, token and userinfo calls, all pinned and bounded.

Built on Authlib's Django client (:class:`~authlib.integrations.django_client.DjangoOAuth2App`)
for the authorization URL, PKCE and the token request, with what Authlib 1.9 leaves
open closed here:

* the discovery document is validated and its ``issuer`` must equal ``SECURE_SSO["ISSUER"]``;
* Authlib is given endpoints, never the metadata URL, so the provider cannot change
  client behaviour (algorithms, auth method, PKCE method) through its metadata;
* metadata and JWKS are cached with a TTL, JWKS refreshed at most every
  ``JWKS_MIN_REFRESH_INTERVAL`` seconds on an unknown ``kid``;
* every HTTP call has a timeout, follows no redirect and reads a bounded body;
* every library exception becomes an :mod:`secure_sso.exceptions` error.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from authlib.common.urls import add_params_to_uri
from authlib.integrations.base_client import OAuthError
from authlib.integrations.django_client import DjangoOAuth2App
from authlib.integrations.django_client.integration import DjangoIntegration
from authlib.integrations.requests_client import OAuth2Session
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from secure_sso.conf import sso_settings
from secure_sso.exceptions import (
    ConfigurationError,
    InvalidIDToken,
    ProviderMetadataError,
    ProviderUnavailable,
    SSOError,
    TokenExchangeFailed,
    TokenRefreshRefused,
)

#: Largest discovery, JWKS or userinfo document read from the provider.
MAX_DOCUMENT_BYTES = 512 * 1024
USER_AGENT = "django-secure-sso"


@dataclass(frozen=True)
class ProviderMetadata:
    """The subset of the discovery document this package uses, validated."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    end_session_endpoint: str | None
    iss_parameter_supported: bool


def _endpoint(document: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = document.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value or len(value) > 2048:
        raise ProviderMetadataError(f"discovery document: '{name}' missing or not a string")
    try:
        parts = urlsplit(value)
    except ValueError:
        raise ProviderMetadataError(f"discovery document: '{name}' is not a URL") from None
    if parts.fragment or not parts.hostname:
        raise ProviderMetadataError(f"discovery document: '{name}' is not an absolute URL")
    if parts.scheme != "https" and not (
        parts.scheme == "http" and sso_settings.allows_http(value)
    ):
        raise ProviderMetadataError(f"discovery document: '{name}' is not https")
    return value


def parse_metadata(document: Any, *, expected_issuer: str) -> ProviderMetadata:
    """Validate a discovery document against the configured issuer.

    Raises:
        ProviderMetadataError: the document is not an object, names another issuer,
            lacks a required endpoint, uses plain http outside development mode,
            or does not support the authorization code flow.
    """
    if not isinstance(document, dict):
        raise ProviderMetadataError("discovery document is not a JSON object")
    # SECURITY: OpenID Connect Discovery 4.3: the issuer must be identical to the one
    # configured, or an attacker-controlled document could name itself issuer.
    if document.get("issuer") != expected_issuer:
        raise ProviderMetadataError("discovery issuer does not match the configured ISSUER")
    response_types = document.get("response_types_supported")
    if isinstance(response_types, list) and "code" not in response_types:
        raise ProviderMetadataError("provider does not support response_type=code")
    return ProviderMetadata(
        issuer=expected_issuer,
        authorization_endpoint=_endpoint(document, "authorization_endpoint", required=True),
        token_endpoint=_endpoint(document, "token_endpoint", required=True),
        jwks_uri=_endpoint(document, "jwks_uri", required=True),
        userinfo_endpoint=_endpoint(document, "userinfo_endpoint", required=False),
        end_session_endpoint=_endpoint(document, "end_session_endpoint", required=False),
        iss_parameter_supported=document.get("authorization_response_iss_parameter_supported")
        is True,
    )


def parse_jwks(document: Any) -> KeySet:
    """Import a JWKS, keeping only public signature keys.

    Raises:
        ProviderMetadataError: not a JWKS, or no usable key.
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ProviderMetadataError("JWKS is not an object with a 'keys' list")
    usable = []
    for key in document["keys"]:
        if not isinstance(key, dict) or key.get("kty") not in {"RSA", "EC", "OKP"}:
            # SECURITY: symmetric ("oct") keys are never trusted from a JWKS.
            continue
        if key.get("use", "sig") != "sig" or "d" in key:
            continue
        usable.append(key)
    try:
        key_set = KeySet.import_key_set({"keys": usable})
    except (JoseError, ValueError, TypeError, KeyError):
        raise ProviderMetadataError("JWKS holds a malformed key") from None
    if not key_set.keys:
        raise ProviderMetadataError("JWKS has no usable signature key")
    return key_set


class _Cache:
    """Per-process TTL cache for metadata and keys, shared by threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.metadata: tuple[str, ProviderMetadata, float] | None = None
        self.jwks: tuple[str, KeySet, float] | None = None
        #: When an unknown ``kid`` last forced a JWKS fetch (the refetch rate limit).
        self.jwks_forced_at: float | None = None


_cache = _Cache()


def reset_provider_cache() -> None:
    """Forget cached metadata and keys (called when ``SECURE_SSO`` changes)."""
    with _cache.lock:
        _cache.metadata = None
        _cache.jwks = None
        _cache.jwks_forced_at = None


def _get_json(url: str, *, headers: dict[str, str] | None = None) -> Any:
    try:
        with requests.get(
            url,
            headers={"Accept": "application/json", "User-Agent": USER_AGENT, **(headers or {})},
            timeout=sso_settings.HTTP_TIMEOUT,
            allow_redirects=False,
            stream=True,
        ) as response:
            if response.status_code != 200:
                raise ProviderUnavailable(f"GET {urlsplit(url).path} -> {response.status_code}")
            body = response.raw.read(MAX_DOCUMENT_BYTES + 1, decode_content=True)
    except requests.RequestException as exc:
        raise ProviderUnavailable(f"GET {urlsplit(url).path}: {exc.__class__.__name__}") from None
    if len(body) > MAX_DOCUMENT_BYTES:
        raise ProviderUnavailable(f"GET {urlsplit(url).path}: response too large")
    try:
        return json.loads(body)
    except ValueError:
        raise ProviderUnavailable(f"GET {urlsplit(url).path}: not JSON") from None


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


def get_metadata(*, now: float | None = None) -> ProviderMetadata:
    """The provider's validated metadata, fetched at most once per ``METADATA_TTL``."""
    issuer = sso_settings.ISSUER
    if not sso_settings.is_configured:
        raise ConfigurationError("SECURE_SSO ISSUER/CLIENT_ID not set")
    # SECURITY: discovery over plain http could be rewritten in transit, endpoints and
    # all; only a loopback issuer in DEVELOPMENT_MODE may use it.
    if not issuer.startswith("https://") and not (
        issuer.startswith("http://") and sso_settings.allows_http(issuer)
    ):
        raise ConfigurationError("SECURE_SSO ISSUER is not an https URL")
    now = time.time() if now is None else now
    cached = _cache.metadata
    if cached and cached[0] == issuer and now - cached[2] < sso_settings.METADATA_TTL:
        return cached[1]
    metadata = parse_metadata(_get_json(discovery_url(issuer)), expected_issuer=issuer)
    with _cache.lock:
        _cache.metadata = (issuer, metadata, now)
    return metadata


def get_key_set(force_refresh: bool = False, *, now: float | None = None) -> KeySet:
    """The provider's signature keys; ``force_refresh`` is honoured at most once per interval."""
    jwks_uri = get_metadata().jwks_uri
    now = time.time() if now is None else now
    cached = _cache.jwks
    if cached and cached[0] == jwks_uri and now - cached[2] < sso_settings.JWKS_TTL:
        if not force_refresh:
            return cached[1]
        # The interval counts from the last *forced* fetch, not the last fetch: a key
        # rotated just after a routine fetch is still picked up, while a flood of
        # unknown kids costs at most one request per interval.
        forced_at = _cache.jwks_forced_at
        if forced_at is not None and now - forced_at < sso_settings.JWKS_MIN_REFRESH_INTERVAL:
            return cached[1]
    key_set = parse_jwks(_get_json(jwks_uri))
    with _cache.lock:
        _cache.jwks = (jwks_uri, key_set, now)
        if force_refresh:
            _cache.jwks_forced_at = now
    return key_set


def get_oauth_app(metadata: ProviderMetadata) -> DjangoOAuth2App:
    """Authlib's client, given endpoints and never a metadata URL.

    SECURITY: without ``server_metadata_url`` Authlib neither fetches nor applies the
    provider's metadata, so nothing the provider publishes reaches the OAuth client's
    options (auth method, PKCE method, algorithms).
    """
    return DjangoOAuth2App(
        DjangoIntegration("secure_sso"),
        name="secure_sso",
        client_id=sso_settings.CLIENT_ID,
        client_secret=sso_settings.CLIENT_SECRET,
        authorize_url=metadata.authorization_endpoint,
        access_token_url=metadata.token_endpoint,
        client_kwargs={
            "scope": " ".join(sso_settings.SCOPES),
            # SECURITY: S256 is pinned here; the provider's metadata cannot downgrade it.
            "code_challenge_method": "S256",
            "token_endpoint_auth_method": sso_settings.TOKEN_ENDPOINT_AUTH_METHOD,
            "default_timeout": sso_settings.HTTP_TIMEOUT,
        },
        user_agent=USER_AGENT,
    )


def authorization_url(
    metadata: ProviderMetadata,
    *,
    redirect_uri: str,
    state: str,
    nonce: str,
    code_verifier: str,
    extra: dict[str, str] | None = None,
) -> str:
    """The provider URL that starts an Authorization Code + PKCE sign-in."""
    params = dict(sso_settings.EXTRA_AUTHORIZE_PARAMS)
    params.update(extra or {})
    # Protocol parameters always win over configured extras.
    for reserved in ("state", "nonce", "code_verifier", "code_challenge", "redirect_uri",
                     "response_type", "client_id", "scope", "code_challenge_method"):
        params.pop(reserved, None)
    result = get_oauth_app(metadata).create_authorization_url(
        redirect_uri,
        state=state,
        nonce=nonce,
        code_verifier=code_verifier,
        response_type="code",
        **params,
    )
    return str(result["url"])


@contextmanager
def _token_endpoint_errors(*, refused: type[SSOError]) -> Iterator[None]:
    """Authlib's and requests' exceptions as this package's: an OAuth error answer is
    ``refused``, anything else (network, timeout, an unparsable answer) is unavailable."""
    try:
        yield
    except OAuthError as exc:
        error = exc.error if isinstance(exc.error, str) else "oauth_error"
        raise refused(f"token endpoint error={error[:64]}") from None
    except requests.RequestException as exc:
        raise ProviderUnavailable(f"token endpoint: {exc.__class__.__name__}") from None
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ProviderUnavailable(f"token endpoint: {exc.__class__.__name__}") from None


def _bearer_answer(token: Any) -> dict[str, Any]:
    """A token endpoint answer with a Bearer access token, as a plain dict."""
    token = dict(token)
    if not isinstance(token.get("access_token"), str) or not token["access_token"]:
        raise ProviderUnavailable("token endpoint answer has no access_token")
    if str(token.get("token_type", "")).lower() != "bearer":
        raise ProviderUnavailable("token endpoint answer is not a Bearer token")
    return token


def exchange_code(
    metadata: ProviderMetadata, *, code: str, code_verifier: str, redirect_uri: str
) -> dict[str, Any]:
    """Trade the authorization code for tokens.

    Raises:
        TokenExchangeFailed: the provider answered with an OAuth error.
        ProviderUnavailable: network failure, timeout, or an unusable answer.
        InvalidIDToken: the answer has no ID token.
    """
    app = get_oauth_app(metadata)
    with _token_endpoint_errors(refused=TokenExchangeFailed):
        token = app.fetch_access_token(
            redirect_uri=redirect_uri,
            code=code,
            code_verifier=code_verifier,
            grant_type="authorization_code",
            allow_redirects=False,
        )
    token = _bearer_answer(token)
    if not isinstance(token.get("id_token"), str):
        # SECURITY: Authlib would return this token without userinfo; we refuse it.
        raise InvalidIDToken("token endpoint answer has no id_token", code="id_token_missing")
    return token


def refresh_tokens(metadata: ProviderMetadata, tokens: dict[str, Any]) -> dict[str, Any]:
    """Trade the refresh token for new tokens through Authlib's update-token hook.

    Raises:
        TokenRefreshRefused: the provider answered with an OAuth error (``invalid_grant``
            when the refresh token was revoked, expired or reused).
        ProviderUnavailable: network failure, timeout, or an unusable answer.
    """
    updated: list[dict[str, Any]] = []

    def on_update(token: Any, refresh_token: Any = None, access_token: Any = None) -> None:
        updated.append(dict(token))

    session = OAuth2Session(
        client_id=sso_settings.CLIENT_ID,
        client_secret=sso_settings.CLIENT_SECRET,
        token_endpoint_auth_method=sso_settings.TOKEN_ENDPOINT_AUTH_METHOD,
        token=tokens,
        update_token=on_update,
        default_timeout=sso_settings.HTTP_TIMEOUT,
    )
    session.headers["User-Agent"] = USER_AGENT
    with _token_endpoint_errors(refused=TokenRefreshRefused), session:
        # SECURITY: no redirect: a 307 would re-send the refresh token and the secret.
        session.refresh_token(
            metadata.token_endpoint,
            refresh_token=tokens["refresh_token"],
            allow_redirects=False,
        )
    if not updated:
        raise ProviderUnavailable("token endpoint: no refreshed token")
    return _bearer_answer(updated[-1])


def fetch_userinfo(metadata: ProviderMetadata, access_token: str) -> dict[str, Any]:
    """The userinfo claims, as an untrusted JSON object (the caller checks ``sub``)."""
    if not metadata.userinfo_endpoint:
        return {}
    document = _get_json(
        metadata.userinfo_endpoint, headers={"Authorization": f"Bearer {access_token}"}
    )
    if not isinstance(document, dict):
        raise ProviderUnavailable("userinfo is not a JSON object")
    return document


def end_session_url(
    *,
    id_token_hint: str | None,
    post_logout_redirect_uri: str,
    state: str | None = None,
    fallback_return_to: str | None = None,
    metadata: ProviderMetadata | None = None,
) -> str | None:
    """Where to send the browser to end the provider's session, or ``None``.

    OpenID Connect RP-Initiated Logout when the provider advertises it (with
    ``state`` for the round trip); Auth0's ``/v2/logout`` when the issuer is an Auth0
    tenant without it, returning to ``fallback_return_to`` (it carries no ``state``).
    """
    if metadata is None:
        try:
            metadata = get_metadata()
        except (ProviderUnavailable, ConfigurationError):
            return None
    if metadata.end_session_endpoint:
        params = {"client_id": sso_settings.CLIENT_ID,
                  "post_logout_redirect_uri": post_logout_redirect_uri}
        if id_token_hint:
            params["id_token_hint"] = id_token_hint
        if state:
            params["state"] = state
        return add_params_to_uri(metadata.end_session_endpoint, params)
    if sso_settings.is_auth0:
        return add_params_to_uri(
            metadata.issuer.rstrip("/") + "/v2/logout",
            {"client_id": sso_settings.CLIENT_ID,
             "returnTo": fallback_return_to or post_logout_redirect_uri},
        )
    return None
