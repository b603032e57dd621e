"""Cost of TOTP step-up and of StepUpMiddleware: issue #8, item 4.

1. Verifying a TOTP code: :func:`secure_sso.totp.verify_for_step_up` (every confirmed
   device locked in one transaction, recovery codes considered, throttling shared) against
   django-otp alone (load the device, ``TOTPDevice.verify_token``). A right code is only
   accepted once (django-otp's ``last_t``) and wrong ones are throttled, so before every
   call both sides reset the device row with one UPDATE; a "reset alone" row gives that
   cost, and the net rows subtract it.
2. ``StepUpMiddleware`` on a request that needs no step-up: the package stack with and
   without it, with no ``STEP_UP_URLS`` and with a realistic list that does not match.

Run from the repository root: ``python bench/mfa.py``. Nothing here asserts a time.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _ROOT / "bench"]
sys.path.insert(0, str(_ROOT))

from bench.common import machine, median_rounds, print_table, setup_django  # noqa: E402

ROUNDS = 7
NUMBER = 200
UA = ("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")


def main() -> None:
    setup_django()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.test import Client, override_settings
    from django_otp.oath import TOTP
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from secure_sso import totp
    from secure_sso.testing import force_login

    print(f"machine: {machine()}")
    print(f"{ROUNDS} alternating rounds; medians")

    # --- 1. TOTP verification ----------------------------------------------------------
    user = get_user_model().objects.create_user("mfa-user")
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    totp.generate_recovery_codes(user)
    rows_device = TOTPDevice.objects.filter(pk=device.pk)
    from secure_sso.models import RecoveryCodeDevice

    rows_recovery = RecoveryCodeDevice.objects.filter(user=user)

    def current_code() -> str:
        d = device
        return f"{TOTP(d.bin_key, d.step, d.t0, d.digits, d.drift).token():0{d.digits}d}"

    def wrong_code() -> str:
        return f"{(int(current_code()) + 500_000) % 1_000_000:06d}"

    def reset() -> None:
        rows_device.update(last_t=-1, throttling_failure_count=0,
                           throttling_failure_timestamp=None)
        # A wrong code counts against the recovery codes too (ours only; for the bare
        # side this UPDATE matches nothing that matters but costs the same).
        rows_recovery.update(throttling_failure_count=0, throttling_failure_timestamp=None)

    def ours_right() -> None:
        reset()
        result = totp.verify_for_step_up(user, current_code())
        assert result.ok, result

    def bare_right() -> None:
        reset()
        assert TOTPDevice.objects.get(pk=device.pk).verify_token(current_code())

    def ours_wrong() -> None:
        reset()
        assert totp.verify_for_step_up(user, wrong_code()).reason == "wrong_code"

    def bare_wrong() -> None:
        reset()
        assert not TOTPDevice.objects.get(pk=device.pk).verify_token(wrong_code())

    def reset_only() -> None:
        reset()
        current_code()

    t = median_rounds({"ours_right": ours_right, "bare_right": bare_right,
                       "ours_wrong": ours_wrong, "bare_wrong": bare_wrong,
                       "reset": reset_only}, rounds=ROUNDS, number=NUMBER)
    r = t["reset"]
    print_table(
        "TOTP check: verify_for_step_up vs django-otp verify_token (1 device + 10 recovery codes)",
        [("right code, incl. reset UPDATEs", t["ours_right"], t["bare_right"]),
         ("wrong code, incl. reset UPDATEs", t["ours_wrong"], t["bare_wrong"]),
         ("right code, net of reset", t["ours_right"] - r, t["bare_right"] - r),
         ("wrong code, net of reset", t["ours_wrong"] - r, t["bare_wrong"] - r)],
    )
    print(f"reset UPDATEs + code generation alone: {r * 1e6:,.1f} µs")

    # --- 2. StepUpMiddleware on a request that needs no step-up --------------------------
    with_stepup = list(settings.PACKAGE_MIDDLEWARE)
    without = [m for m in with_stepup if m != "secure_sso.middleware.StepUpMiddleware"]
    page = get_user_model().objects.create_user("page-user")

    def client_for(stack: list[str]):
        with override_settings(MIDDLEWARE=stack):
            browser = Client(HTTP_USER_AGENT=UA)
            force_login(browser, page, user_agent=UA)
            response = browser.get("/whoami/", secure=True)
        assert response.status_code == 200, response.status_code
        return lambda: browser.get("/whoami/", secure=True)

    rows = []
    configs = [
        ("no STEP_UP_URLS", {}),
        ("4 STEP_UP_URLS + STEP_UP_ADMIN, none match",
         {"STEP_UP_URLS": ["secure_sso:devices", "/billing/", "/api-keys/", "admin:index"],
          "STEP_UP_ADMIN": True}),
    ]
    for label, extra in configs:
        with override_settings(SECURE_SSO={**settings.SECURE_SSO, **extra}):
            funcs = {"with": client_for(with_stepup), "without": client_for(without)}
            t = median_rounds(funcs, rounds=ROUNDS, number=NUMBER)
        rows.append((f"GET /whoami/, {label}", t["with"], t["without"]))
    print_table("package stack with StepUpMiddleware vs without (WSGI, bound session)", rows)


if __name__ == "__main__":
    main()
