"""CPU cost of one SSO sign-in: issue #8, item 2.

A forged OpenID provider (tests/forge.py) runs in a child process on loopback, so its
token signing is not counted here; discovery and JWKS are fetched once and cached, the
token and userinfo calls are real loopback HTTP. Each sign-in is a fresh browser doing
``GET /sso/login/`` then ``GET /sso/callback/`` with a new state and a valid ID token for
that state's nonce (the returning-user path: identity and user exist, profile and groups
are synced), through the package's recommended middleware, over https.

Reported: sign-ins per second (wall clock, and CPU time of this process on one core),
against a plain Django password sign-in (ModelBackend, MD5 hasher) through the same
stack; then the split of the callback's work, each part timed alone.

Run from the repository root: ``python bench/signin.py``. Nothing here asserts a time.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))

from bench.common import machine, median_rounds, print_table, setup_django  # noqa: E402

ROUNDS = 7
NUMBER = 20  # sign-ins per round and case
SUB = "bench-subject"
GROUPS = ["engineering", "admins", "unmapped"]
PASSWORD = "bench-password"  # noqa: S105


def claims_for(issuer: str) -> dict:
    return {"email": "ada@example.test", "email_verified": True, "given_name": "Ada",
            "family_name": "Lovelace", "preferred_username": "ada", "groups": GROUPS}


def _serve_forge(conn) -> None:
    """Child process: a forged provider whose token endpoint signs an ID token for the
    nonce the benchmark passes as the authorization code."""
    sys.path.insert(0, str(_ROOT))
    from tests.forge import ForgedProvider

    forge = ForgedProvider().start()
    extra = claims_for(forge.issuer)

    def token_body(form: dict) -> dict:
        return forge.token_response_for(
            forge.id_token(extra, nonce=form.get("code", ""), sub=SUB)
        )

    forge.token_body = token_body
    forge.userinfo = {"sub": SUB, **extra}
    conn.send(forge.issuer)
    conn.recv()  # until the parent says stop (or goes away)
    forge.stop()


@contextlib.contextmanager
def forged_provider() -> Iterator[str]:
    """The forged provider in a child process for the ``with`` block; yields its issuer
    (also set as ``BENCH_SSO_ISSUER`` for bench/settings.py)."""
    ctx = multiprocessing.get_context("spawn")
    parent_conn, child_conn = ctx.Pipe()
    child = ctx.Process(target=_serve_forge, args=(child_conn,), daemon=True)
    child.start()
    try:
        issuer = parent_conn.recv()
        os.environ["BENCH_SSO_ISSUER"] = issuer
        yield issuer
    finally:
        try:
            parent_conn.send("stop")
        except OSError:
            pass
        child.join(timeout=5)
        if child.is_alive():
            child.terminate()


def main() -> None:
    with forged_provider() as issuer:
        run(issuer)


def run(issuer: str) -> None:
    setup_django()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.contrib.auth.backends import ModelBackend
    from django.contrib.auth.models import update_last_login
    from django.contrib.sessions.backends.db import SessionStore
    from django.test import Client, RequestFactory
    from joserfc import jwt

    import audit
    from audit import events
    from secure_sso import client, sessions
    from secure_sso.backends import link_identity
    from secure_sso.conf import sso_settings
    from secure_sso.id_token import verify_id_token_at_time

    assert settings.MIDDLEWARE == settings.PACKAGE_MIDDLEWARE
    user_model = get_user_model()
    user_model.objects.create_user("pw-user", password=PASSWORD)

    def sso_sign_in() -> None:
        browser = Client()
        started = browser.get("/sso/login/", secure=True)
        assert started.status_code == 302, started.status_code
        query = parse_qs(urlsplit(started["Location"]).query)
        state, nonce = query["state"][0], query["nonce"][0]
        done = browser.get(
            "/sso/callback/", {"code": nonce, "state": state, "iss": issuer}, secure=True
        )
        assert done.status_code == 302 and done["Location"] == "/whoami/", (
            done.status_code, done.content[:300])

    def password_sign_in() -> None:
        browser = Client()
        done = browser.post("/password-login/", {"username": "pw-user", "password": PASSWORD},
                            secure=True)
        assert done.status_code == 302, done.status_code

    sso_sign_in()  # first sign-in: creates the user, identity, groups; fills the caches
    from secure_sso.models import SSOIdentity

    identity = SSOIdentity.objects.select_related("user").get(subject=SUB)
    user = identity.user
    assert sorted(user.groups.values_list("name", flat=True)) == ["Admins", "Engineering"]

    print(f"machine: {machine()}")
    print(f"forged provider: {issuer} (child process; its signing is not counted)")
    print(f"{ROUNDS} alternating rounds x {NUMBER} sign-ins per case; medians")

    # Wall clock and this process's CPU time, both as medians over alternating rounds.
    wall = median_rounds({"sso": sso_sign_in, "password": password_sign_in},
                         rounds=ROUNDS, number=NUMBER)
    cpu = _median_cpu({"sso": sso_sign_in, "password": password_sign_in})
    print_table(
        "one sign-in, package stack, https: SSO (login + callback) vs password login",
        [("SSO sign-in, wall clock", wall["sso"], wall["password"]),
         ("SSO sign-in, CPU of this process", cpu["sso"], cpu["password"])],
    )
    print(f"sign-ins per second on one core: SSO {1 / cpu['sso']:,.0f} (CPU-bound), "
          f"{1 / wall['sso']:,.0f} (wall clock, waiting on the provider); "
          f"password {1 / cpu['password']:,.0f} (CPU-bound)")

    # --- The split ---------------------------------------------------------------------
    metadata = client.get_metadata()
    keys = client.get_key_set()
    now = int(time.time())
    nonce = "n" * 43
    token = _token_from_provider(metadata, nonce)
    claims = verify_id_token_at_time(
        token, get_key_set=client.get_key_set, algorithms=sso_settings.ID_TOKEN_ALGORITHMS,
        issuer=issuer, client_id=sso_settings.CLIENT_ID, nonce=nonce, now=now)
    claims = {**claims, **claims_for(issuer)}

    def verify() -> None:
        verify_id_token_at_time(
            token, get_key_set=client.get_key_set, algorithms=sso_settings.ID_TOKEN_ALGORITHMS,
            issuer=issuer, client_id=sso_settings.CLIENT_ID, nonce=nonce, now=now,
            leeway=sso_settings.CLOCK_SKEW, max_age=sso_settings.ID_TOKEN_MAX_AGE)

    def bare_decode() -> None:
        jwt.decode(token, keys)

    factory = RequestFactory()
    request = factory.get("/sso/callback/", secure=True, HTTP_USER_AGENT="bench")
    request.session = SessionStore()
    request.session["seed"] = 1
    request.session.save()
    request.user = user
    backend = ModelBackend()

    def link() -> None:
        link_identity(request, issuer, claims)

    def password_check() -> None:
        backend.authenticate(request, username="pw-user", password=PASSWORD)

    def audit_write() -> None:
        audit.record(events.LOGIN_SUCCESS, request=request, user=user, issuer=issuer,
                     subject=SUB, method="sso", created=False)

    def plain_write() -> None:
        update_last_login(None, user)

    def rotate() -> None:
        sessions.rotate(request)

    def cycle_key() -> None:
        request.session.cycle_key()

    def exchange() -> None:
        client.exchange_code(metadata, code=nonce, code_verifier="v" * 43,
                             redirect_uri="https://testserver/sso/callback/")

    import requests as http

    def bare_post() -> None:
        http.post(metadata.token_endpoint, data={"grant_type": "authorization_code",
                                                 "code": nonce}, timeout=5).json()

    t = median_rounds({"verify": verify, "bare": bare_decode}, rounds=ROUNDS, number=300)
    rows = [("ID-token verification vs joserfc jwt.decode", t["verify"], t["bare"])]
    t = median_rounds({"link": link, "pw": password_check}, rounds=ROUNDS, number=100)
    rows.append(("user/group mapping (link_identity) vs ModelBackend.authenticate",
                 t["link"], t["pw"]))
    t = median_rounds({"audit": audit_write, "plain": plain_write}, rounds=ROUNDS, number=100)
    rows.append(("audit.record(login) vs update_last_login (one UPDATE)",
                 t["audit"], t["plain"]))
    t = median_rounds({"rotate": rotate, "cycle": cycle_key}, rounds=ROUNDS, number=100)
    rows.append(("session rotation (sessions.rotate) vs session.cycle_key()",
                 t["rotate"], t["cycle"]))
    t = median_rounds({"exchange": exchange, "post": bare_post}, rounds=ROUNDS, number=20)
    rows.append(("token exchange (loopback, wall) vs bare requests.post",
                 t["exchange"], t["post"]))
    print_table("the callback's parts, each alone (wall clock)", rows)
    total = wall["sso"]
    print("share of one SSO sign-in (wall): " + ", ".join(
        f"{name} {value / total:.0%}" for name, value in
        [("verify", rows[0][1]), ("link_identity", rows[1][1]), ("audit", rows[2][1]),
         ("rotation", rows[3][1]), ("token exchange", rows[4][1])]))


def _token_from_provider(metadata, nonce: str) -> str:
    """An ID token signed by the child provider for ``nonce`` (through its token endpoint)."""
    import requests as http

    body = http.post(metadata.token_endpoint, data={"grant_type": "authorization_code",
                                                    "code": nonce}, timeout=5).json()
    return body["id_token"]


def _median_cpu(funcs: dict, *, rounds: int = ROUNDS, number: int = NUMBER) -> dict:
    """Like median_rounds, with this process's CPU time instead of wall clock."""
    import statistics

    samples: dict[str, list[float]] = {name: [] for name in funcs}
    names = list(funcs)
    for r in range(rounds):
        for name in names if r % 2 == 0 else reversed(names):
            start = time.process_time()
            for _ in range(number):
                funcs[name]()
            samples[name].append((time.process_time() - start) / number)
    return {name: statistics.median(values) for name, values in samples.items()}


if __name__ == "__main__":
    main()
