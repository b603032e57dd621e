"""Per-request cost of the package's middleware: issue #8, item 1.

An authenticated https GET of a view that reads ``request.user`` (a bound session, made
with :func:`secure_sso.testing.force_login`), through

* Django's ``startproject`` middleware list (the baseline), and
* the package's recommended list (README: TransportMiddleware first,
  AuditContextMiddleware, SessionGuardMiddleware, StepUpMiddleware, CSPMiddleware),

over WSGI (``django.test.Client``) and ASGI (``django.test.AsyncClient`` on one event
loop); WSGI also in CPU time of the process (steadier on a shared machine). Reference
rows: each package middleware alone added to the default list, and django-csp's own
middleware alone. Alternating rounds, medians; target <= 1.10x.

Run from the repository root: ``python bench/request_overhead.py``. Nothing here asserts a time.
``--full-only`` times just the default and the full stack (quicker, for iterating);
``--rounds N`` / ``--number N`` change the sizes; ``--profile wsgi|asgi`` prints a cProfile
of the full stack (2,000 requests) to stdout instead of timing.
"""

import argparse
import asyncio
import sys
import time
from pathlib import Path

_root = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _root / "bench"]
sys.path.insert(0, str(_root))

from bench.common import machine, median_rounds, print_table, setup_django  # noqa: E402

ROUNDS = 7
NUMBER = 150
PATH = "/whoami/"
#: A real browser's User-Agent: the session guard's fingerprint parses it.
UA = ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/126.0.0.0 Safari/537.36")
HDRS = {"User-Agent": UA}

def build_stacks(settings) -> dict[str, list[str]]:
    default = list(settings.DJANGO_DEFAULT_MIDDLEWARE)
    package = list(settings.PACKAGE_MIDDLEWARE)

    def with_one(name: str, *, before: str | None = None, after: str | None = None,
                 first: bool = False) -> list[str]:
        stack = list(default)
        if first:
            stack.insert(0, name)
        elif after:
            stack.insert(stack.index(after) + 1, name)
        else:
            stack.append(name)
        return stack

    auth = "django.contrib.auth.middleware.AuthenticationMiddleware"
    return {
        "default": default,
        "package (full stack)": package,
        "+ TransportMiddleware": with_one("secure_sso.middleware.TransportMiddleware",
                                          first=True),
        "+ AuditContextMiddleware": with_one("audit.middleware.AuditContextMiddleware",
                                             first=True),
        "+ SessionGuardMiddleware": with_one("secure_sso.middleware.SessionGuardMiddleware",
                                             after=auth),
        "+ StepUpMiddleware": with_one("secure_sso.middleware.StepUpMiddleware", after=auth),
        "+ CSPMiddleware (package)": with_one("secure_sso.middleware.CSPMiddleware"),
        "+ django-csp alone (reference)": with_one("bench.urls.DjangoCSPMiddleware"),
    }

def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--full-only", action="store_true",
                        help="only the default and the full package stack")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--number", type=int, default=NUMBER)
    parser.add_argument("--profile", choices=("wsgi", "asgi"),
                        help="cProfile the full stack on one handler instead of timing")
    return parser.parse_args(argv)


def profile(call, *, requests: int = 2000) -> None:
    import cProfile
    import pstats

    for _ in range(50):
        call()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(requests):
        call()
    profiler.disable()
    stats = pstats.Stats(profiler).sort_stats("tottime")
    stats.print_stats(40)
    print("the package's own functions (cumulative time includes what they call):")
    stats.sort_stats("cumulative").print_stats(r"/(secure_sso|audit)/", 30)


def main(argv: list[str]) -> None:
    args = parse_args(argv)
    setup_django()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import AsyncClient, Client, override_settings

    from secure_sso.testing import force_login

    user = get_user_model().objects.create_user("bench-user")
    stacks = build_stacks(settings)
    if args.full_only:
        stacks = {name: stacks[name] for name in ("default", "package (full stack)")}
    loop = asyncio.new_event_loop()

    def wsgi_call(stack: list[str]):
        with override_settings(MIDDLEWARE=stack):
            browser = Client(HTTP_USER_AGENT=UA)
            force_login(browser, user, user_agent=UA)
            response = browser.get(PATH, secure=True)  # loads the chain now
        assert response.status_code == 200, (stack, response.status_code)
        assert response.content == b"user: bench-user", response.content
        return lambda: browser.get(PATH, secure=True)

    def asgi_call(stack: list[str]):
        with override_settings(MIDDLEWARE=stack):
            browser = AsyncClient()
            force_login(browser, user, user_agent=UA)
            response = loop.run_until_complete(browser.get(PATH, secure=True, headers=HDRS))
        assert response.status_code == 200, (stack, response.status_code)
        assert response.content == b"user: bench-user", response.content
        return lambda: loop.run_until_complete(browser.get(PATH, secure=True, headers=HDRS))

    if args.profile:
        make = wsgi_call if args.profile == "wsgi" else asgi_call
        profile(make(stacks["package (full stack)"]))
        loop.close()
        return
    print(f"machine: {machine()}")
    print(f"{args.rounds} alternating rounds x {args.number} requests per case; medians")
    for label, make in (("WSGI (django.test.Client)", wsgi_call),
                        ("ASGI (django.test.AsyncClient, one event loop)", asgi_call)):
        funcs = {name: make(stack) for name, stack in stacks.items()}
        times = median_rounds(funcs, rounds=args.rounds, number=args.number)
        base = times["default"]
        rows = [(name, times[name], base) for name in stacks if name != "default"]
        print_table(f"authenticated https GET {PATH}, {label}: vs default stack", rows)
        if make is wsgi_call:
            # One thread: its CPU time is the work the stack does, without the time other
            # processes on a shared machine take (ASGI's thread hand-offs would not count).
            cpu = median_rounds(funcs, rounds=args.rounds, number=args.number,
                                clock=time.process_time)
            rows = [(name, cpu[name], cpu["default"]) for name in stacks if name != "default"]
            print_table("same, WSGI, CPU time of this process: vs default stack", rows)
    loop.close()

if __name__ == "__main__":
    main(sys.argv[1:])
