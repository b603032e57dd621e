"""Micro-benchmarks of single functions, as ratios to a baseline measured in the same run.

Each line times one of our functions and the plainest thing that does the same job
without our checks; the ratio is what to watch. Nothing here asserts a time.
Run alone with ``python bench/micro.py``, or all benchmarks with ``make bench``.
"""

from __future__ import annotations

import os
import sys
import time
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from django.utils.http import url_has_allowed_host_and_scheme  # noqa: E402
from joserfc import jwt  # noqa: E402
from joserfc.jwk import KeySet, RSAKey  # noqa: E402

from secure_sso import state  # noqa: E402
from secure_sso.conf import sso_settings  # noqa: E402
from secure_sso.id_token import verify_id_token_at_time  # noqa: E402
from secure_sso.redirects import safe_next_url  # noqa: E402


def best(stmt, number: int) -> float:
    return min(timeit.repeat(stmt, number=number, repeat=5)) / number


def report(name: str, ours, baseline, number: int) -> None:
    t_ours, t_base = best(ours, number), best(baseline, number)
    print(f"{name:<34} ours {t_ours * 1e6:9.2f} us   baseline {t_base * 1e6:9.2f} us   "
          f"ratio {t_ours / t_base:6.2f}")


def main() -> None:
    key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    keys = KeySet([key])
    now = int(time.time())
    claims = {"iss": "https://idp.test/", "aud": "client", "sub": "user", "iat": now,
              "exp": now + 300, "nonce": "n" * 43}
    token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, key)

    report(
        "ID token: verify vs bare decode",
        lambda: verify_id_token_at_time(
            token, get_key_set=lambda _f: keys, algorithms=["RS256"], issuer="https://idp.test/",
            client_id="client", nonce="n" * 43, now=now,
        ),
        lambda: jwt.decode(token, keys),
        200,
    )
    report(
        "next=: safe_next_url vs Django",
        lambda: safe_next_url("/dashboard/?tab=2", "/"),
        lambda: url_has_allowed_host_and_scheme("/dashboard/?tab=2", allowed_hosts={"site"}),
        20000,
    )
    session: dict = {}
    pending = state.new_pending_login_at_time(redirect_uri="https://rp/cb", next_url="/",
                                              now=now)

    def store_consume() -> None:
        state.store_at_time(session, pending, now=now, ttl=600, limit=5)
        state.consume_at_time(session, pending.state, now=now, ttl=600)

    plain: dict = {}

    def dict_roundtrip() -> None:
        plain[pending.state] = pending
        plain.pop(pending.state)

    report("pending login: store+consume", store_consume, dict_roundtrip, 20000)
    settings_dict = {"HTTP_TIMEOUT": 5.0}
    report("settings read (cached)", lambda: sso_settings.HTTP_TIMEOUT,
           lambda: settings_dict["HTTP_TIMEOUT"], 200000)
    bench_request_stack()


PLAIN_STACK = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]


def bench_request_stack() -> None:
    """One authenticated GET through the whole stack: plain Django vs the hardened list."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client, override_settings

    from secure_sso.testing import force_login

    call_command("migrate", verbosity=0, interactive=False)
    user = get_user_model().objects.create_user("bench")
    from django.conf import settings

    hardened = list(settings.MIDDLEWARE)

    def make(stack: list[str]) -> Client:
        with override_settings(MIDDLEWARE=stack):
            browser = Client(SERVER_NAME="localhost")
            force_login(browser, user)
            assert browser.get("/dashboard/").status_code == 200
        return browser

    plain_client, hardened_client = make(PLAIN_STACK), make(hardened)

    # Each client loaded its middleware chain at its first request, inside make().
    report("authenticated GET: hardened vs plain", lambda: hardened_client.get("/dashboard/"),
           lambda: plain_client.get("/dashboard/"), 300)


if __name__ == "__main__":
    main()
