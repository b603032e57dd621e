"""A forged OpenID provider on loopback, for negative tests of the relying party.

``ForgedProvider`` is a real HTTP server (stdlib ``ThreadingHTTPServer`` on
``127.0.0.1``, random port, daemon thread).  The relying party under test talks
to it over real HTTP, nothing is mocked.  Every knob is a plain attribute that
tests may change before or between requests::

    with ForgedProvider() as forge:
        forge.token_body = forge.token_response_for(forge.id_token(nonce=n, omit=("iat",)))
        ...drive the RP's callback view with forge.callback_params(state)...
        assert forge.requests_to("/token")[0].params["code_verifier"]

Endpoints (every request is appended to ``requests_log``):

* ``GET /.well-known/openid-configuration`` -> ``metadata`` (dict is sent as
  JSON, str as the raw body) with ``metadata_status``;
* ``GET /jwks`` (and any ``/jwks/<suffix>``) -> ``jwks`` (dict or str) with
  ``jwks_status``;
* ``POST /token`` -> ``token_body`` (dict, str, or callable(form) returning
  either) with ``token_status``; ``None`` gives 400 invalid_grant;
* ``GET|POST /userinfo`` -> ``userinfo`` (dict or str) with ``userinfo_status``
  when a Bearer token comes in the header or as ``access_token`` in the body
  (a compact JWT string is sent as ``application/jwt``); no token or
  ``userinfo = None`` gives 401;
* ``GET /authorize`` -> 302 to ``redirect_uri`` with ``callback_params(state)``;
* ``GET /logout`` -> 200.

``delay`` maps an endpoint name ("metadata", "jwks", "token", "userinfo",
"authorize", "logout") to seconds to wait before answering (timeout tests).

ID tokens come from :meth:`ForgedProvider.id_token`; the JWS is assembled by
hand so that any header (no ``kid``, a lying ``alg``, ``alg: none``) can be
produced.  See also :func:`tamper_signature` and :meth:`ForgedProvider.wrong_key`.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import warnings
from collections import namedtuple
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlencode, urlsplit

from joserfc.jwk import OctKey, RSAKey
from joserfc.jws import JWSRegistry

__all__ = ["ForgedProvider", "LoggedRequest", "tamper_signature", "b64url", "client_auth_method"]

#: One entry of ``ForgedProvider.requests_log``.  ``headers`` has lower-cased
#: names; ``params`` is the query string merged with an urlencoded body
#: (last value wins for repeated names).
LoggedRequest = namedtuple("LoggedRequest", "method path headers params")

_DEFAULT = object()  # "argument not given" marker, distinct from None


def b64url(data: bytes | str | dict) -> str:
    """Base64url without padding; dicts are JSON-encoded compactly first."""
    if isinstance(data, dict):
        data = json.dumps(data, separators=(",", ":"))
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def tamper_signature(token: str) -> str:
    """Return ``token`` with the first character of its signature segment changed.

    The first base64url character carries 6 full bits of the signature, so the
    decoded signature always changes (flipping the *last* character might only
    touch padding bits).
    """
    head, payload, sig = token.split(".")
    if not sig:
        raise ValueError("token has no signature to tamper with")
    first = "B" if sig[0] != "B" else "C"
    return f"{head}.{payload}.{first}{sig[1:]}"


def client_auth_method(entry: LoggedRequest) -> str:
    """Which client authentication a logged token request used:
    "client_secret_basic", "client_secret_post", "private_key_jwt" or "none"."""
    if entry.headers.get("authorization", "").lower().startswith("basic "):
        return "client_secret_basic"
    if "client_secret" in entry.params:
        return "client_secret_post"
    if "client_assertion" in entry.params:
        return "private_key_jwt"
    return "none"


_key_cache: dict[str, RSAKey] = {}
_key_lock = threading.Lock()


def _spare_rsa_key(slot: str, kid: str) -> RSAKey:
    """A private RSA key per ``slot``, generated once per process (keygen is slow),
    returned as a fresh object carrying ``kid``."""
    with _key_lock:
        if slot not in _key_cache:
            _key_cache[slot] = RSAKey.generate_key(2048, private=True)
        raw = _key_cache[slot].as_dict(private=True)
    raw["kid"] = kid
    return RSAKey.import_key(raw)


class ForgedProvider:
    """A deliberately misbehaving OpenID provider; see the module docstring."""

    def __init__(
        self,
        client_id: str = "forge-client",
        client_secret: str = "forge-secret",  # noqa: S107
    ):
        self.client_id = client_id
        self.client_secret = client_secret
        self.issuer = ""  # set by start()
        self.reset()
        self._log_lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def reset(self) -> ForgedProvider:
        """Every answer back to a correct provider's (a module-shared forge calls this per test)."""
        self.signing_key: RSAKey = _spare_rsa_key("signing", "forge-key-1")
        self.metadata: dict | str = self.default_metadata() if self.issuer else {}
        self.jwks: dict | str = {"keys": [self.public_jwk()]}
        self.userinfo: dict | str | None = {"sub": "forged-user"}
        self.token_body = None  # None -> 400 invalid_grant "no token_body configured"
        self.token_status = 200
        self.token_headers: dict[str, str] = {}  # e.g. {"Location": ...} with a 307
        self.metadata_status = 200
        self.jwks_status = 200
        self.userinfo_status = 200
        self.delay: dict[str, float] = {}
        self.requests_log: list[LoggedRequest] = []
        return self

    # -- lifecycle -------------------------------------------------------
    def start(self) -> ForgedProvider:
        """Bind a fresh port, set ``issuer`` and reset ``metadata``; idempotent."""
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self.issuer = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.metadata = self.default_metadata()
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="forged-op", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._stopping.set()  # wakes handlers sleeping in a delay
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> ForgedProvider:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- documents -------------------------------------------------------
    def default_metadata(self) -> dict:
        """A fresh, correct discovery document for this issuer."""
        i = self.issuer
        return {
            "issuer": i,
            "authorization_endpoint": f"{i}/authorize",
            "token_endpoint": f"{i}/token",
            "userinfo_endpoint": f"{i}/userinfo",
            "jwks_uri": f"{i}/jwks",
            "end_session_endpoint": f"{i}/logout",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "authorization_response_iss_parameter_supported": True,
        }

    def public_jwk(self, key: RSAKey | None = None, *, kid=_DEFAULT) -> dict:
        """Public JWK dict of ``key`` (default ``signing_key``), with ``use``/``alg``.

        ``kid`` replaces the key's kid; ``kid=None`` leaves it out (kid-absent tests).
        """
        jwk = (key or self.signing_key).as_dict(private=False)
        jwk.setdefault("use", "sig")
        jwk.setdefault("alg", "RS256")
        if kid is None:
            jwk.pop("kid", None)
        elif kid is not _DEFAULT:
            jwk["kid"] = kid
        return jwk

    def wrong_key(self, kid: str | None = None, *, n: int = 0) -> RSAKey:
        """A different RSA private key carrying ``kid`` (default: signing_key's kid).

        ``n`` picks one of several distinct spare keys (each generated once per
        process), e.g. to publish several kid-less keys in ``jwks``.
        """
        return _spare_rsa_key(f"wrong-{n}", kid if kid is not None else self.signing_key.kid)

    def rotate_key(self, keep_old: bool = False) -> RSAKey:
        """Replace ``signing_key`` with a new key (new kid) and publish it in ``jwks``.

        Returns the old key.  With ``keep_old`` both public keys are published.
        """
        old = self.signing_key
        self.signing_key = RSAKey.generate_key(
            2048, parameters={"kid": "forge-" + secrets.token_hex(4)}, private=True
        )
        keys = [self.public_jwk()] + ([self.public_jwk(old)] if keep_old else [])
        self.jwks = {"keys": keys}
        return old

    # -- tokens ----------------------------------------------------------
    def id_token(
        self,
        claims_overrides: dict | None = None,
        *,
        omit=(),
        header_overrides: dict | None = None,
        key: RSAKey | OctKey | str | bytes | None = None,
        alg: str = "RS256",
        nonce: str | None = None,
        sub: str = "forged-user",
    ) -> str:
        """Build a compact JWS ID token; valid for this forge unless told otherwise.

        Claims: iss, sub, aud (= client_id), iat (now), exp (now+300),
        auth_time (now), and nonce when given.  ``claims_overrides`` is applied
        next (e.g. ``{"aud": [client_id, "other"], "azp": client_id}``), then
        names in ``omit`` are removed.

        Header: ``{"alg": alg, "typ": "JWT", "kid": <key's kid, if any>}``;
        ``header_overrides`` is applied on top, a ``None`` value removes the
        name (``{"kid": None}``).  The header is not checked against ``alg``,
        so it may lie.

        Signing uses ``alg`` with ``key``: default ``signing_key`` for RS*/PS*,
        the client secret for HS*; a str/bytes key is taken as an HMAC secret.
        ``alg="none"`` gives ``header.payload.`` with an empty signature.
        """
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": sub,
            "aud": self.client_id,
            "iat": now,
            "exp": now + 300,
            "auth_time": now,
        }
        if nonce is not None:
            claims["nonce"] = nonce
        claims.update(claims_overrides or {})
        for name in omit:
            claims.pop(name, None)

        if alg.lower() == "none":
            key = None
        elif key is None:
            key = self.client_secret if alg.startswith("HS") else self.signing_key

        if isinstance(key, (str, bytes)):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # joserfc warns about short HMAC secrets
                key = OctKey.import_key(key)

        header = {"alg": alg, "typ": "JWT"}
        if key is not None and key.kid:
            header["kid"] = key.kid
        for name, value in (header_overrides or {}).items():
            if value is None:
                header.pop(name, None)
            else:
                header[name] = value

        signing_input = f"{b64url(header)}.{b64url(claims)}"
        if key is None:
            return signing_input + "."
        signature = JWSRegistry.algorithms[alg].sign(signing_input.encode("ascii"), key)
        return f"{signing_input}.{b64url(signature)}"

    def logout_token(
        self,
        claims_overrides: dict | None = None,
        *,
        omit=(),
        header_overrides: dict | None = None,
        key: RSAKey | OctKey | str | bytes | None = None,
        alg: str = "RS256",
        sub: str = "forged-user",
        sid: str | None = "forged-sid",
    ) -> str:
        """A back-channel logout token, valid for this forge unless told otherwise.

        Claims: iss, sub, aud, iat, exp (now+120), a fresh jti, the back-channel
        logout event and ``sid``; header ``typ: logout+jwt``. Built by :meth:`id_token`,
        so the same overrides, ``omit`` and signing options apply (``auth_time`` is
        left out, as providers do).
        """
        now = int(time.time())
        claims = {
            "exp": now + 120,
            "jti": secrets.token_urlsafe(12),
            "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
        }
        if sid is not None:
            claims["sid"] = sid
        claims.update(claims_overrides or {})
        return self.id_token(
            claims,
            omit=("auth_time", *omit),
            header_overrides={"typ": "logout+jwt", **(header_overrides or {})},
            key=key,
            alg=alg,
            sub=sub,
        )

    def token_response_for(self, id_token: str | None, **extra) -> dict:
        """A token endpoint success body; ``id_token=None`` leaves it out."""
        body = {
            "access_token": "forge-at-" + secrets.token_urlsafe(16),
            "token_type": "Bearer",
            "expires_in": 300,
        }
        if id_token is not None:
            body["id_token"] = id_token
        body.update(extra)
        return body

    def callback_params(
        self, state: str | None, code: str | None = "forged-code", iss=_DEFAULT, **extra
    ) -> dict:
        """Query parameters for the RP's redirect URI.

        ``iss`` defaults to this issuer; pass ``iss=None`` (or ``state=None``,
        ``code=None``) to leave the parameter out.
        """
        params = {"code": code, "state": state, "iss": self.issuer if iss is _DEFAULT else iss}
        params.update(extra)
        return {k: v for k, v in params.items() if v is not None}

    # -- log ---------------------------------------------------------------
    def requests_to(self, path: str) -> list[LoggedRequest]:
        """Logged requests whose path equals ``path`` (e.g. "/token")."""
        with self._log_lock:
            return [r for r in self.requests_log if r.path == path]

    def _record(self, entry: LoggedRequest) -> None:
        with self._log_lock:
            self.requests_log.append(entry)


def _make_handler(forge: ForgedProvider):
    class Handler(BaseHTTPRequestHandler):
        server_version = "ForgedOP/1"

        def log_message(self, *args):  # keep pytest output clean
            pass

        def do_GET(self):
            self._dispatch()

        def do_POST(self):
            self._dispatch()

        def _dispatch(self):
            url = urlsplit(self.path)
            params = dict(parse_qsl(url.query, keep_blank_values=True))
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if body and self.headers.get("Content-Type", "").startswith(
                "application/x-www-form-urlencoded"
            ):
                params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
            headers = {k.lower(): v for k, v in self.headers.items()}
            forge._record(LoggedRequest(self.command, url.path, headers, params))

            route = {
                "/.well-known/openid-configuration": ("metadata", self._metadata),
                "/jwks": ("jwks", self._jwks),
                "/token": ("token", self._token),
                "/userinfo": ("userinfo", self._userinfo),
                "/authorize": ("authorize", self._authorize),
                "/logout": ("logout", self._logout),
            }.get("/jwks" if url.path.startswith("/jwks/") else url.path)
            if route is None:
                return self._send(404, {"error": "not_found"})
            name, handler = route
            wait = forge.delay.get(name, 0)
            if wait and forge._stopping.wait(wait):
                return  # shutting down: drop the connection
            handler(params, headers)

        # endpoints ----------------------------------------------------------
        def _metadata(self, params, headers):
            self._send(forge.metadata_status, forge.metadata)

        def _jwks(self, params, headers):
            self._send(forge.jwks_status, forge.jwks)

        def _token(self, params, headers):
            if self.command != "POST":
                return self._send(405, {"error": "invalid_request"})
            body = forge.token_body
            if callable(body):
                body = body(params)
            if body is None:
                return self._send(
                    400,
                    {
                        "error": "invalid_grant",
                        "error_description": "forge: no token_body configured",
                    },
                )
            self._send(forge.token_status, body,
                       extra_headers={"Cache-Control": "no-store", **forge.token_headers})

        def _userinfo(self, params, headers):
            auth = headers.get("authorization", "")
            token = (
                auth[7:].strip()
                if auth.lower().startswith("bearer ")
                else params.get("access_token", "")
            )
            if not token or forge.userinfo is None:
                return self._send(
                    401,
                    {"error": "invalid_token"},
                    extra_headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
                )
            body = forge.userinfo
            is_jwt = isinstance(body, str) and body.count(".") == 2 and "{" not in body
            ctype = "application/jwt" if is_jwt else "application/json"
            self._send(forge.userinfo_status, body, content_type=ctype)

        def _authorize(self, params, headers):
            redirect_uri = params.get("redirect_uri")
            if not redirect_uri:
                return self._send(
                    400, {"error": "invalid_request", "error_description": "redirect_uri missing"}
                )
            query = urlencode(forge.callback_params(params.get("state")))
            sep = "&" if "?" in redirect_uri else "?"
            self._send(302, "", extra_headers={"Location": f"{redirect_uri}{sep}{query}"})

        def _logout(self, params, headers):
            self._send(200, "logged out", content_type="text/plain")

        # plumbing ----------------------------------------------------------
        def _send(self, status, body, *, content_type="application/json", extra_headers=None):
            data = (json.dumps(body) if isinstance(body, (dict, list)) else str(body)).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                for k, v in (extra_headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (e.g. a timeout test)

    return Handler
