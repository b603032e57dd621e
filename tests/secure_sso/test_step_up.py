"""Step-up with TOTP through the real views: enrollment, the code form, throttling, replay,
recovery codes, devices, and the three ways of protecting a view.

Codes are computed the way an authenticator app does: from the secret shown on the
enrollment page, at the (frozen) time of the request.
"""

from __future__ import annotations

import html
import re
from base64 import b32decode
from collections.abc import Iterator
from typing import Any

import pytest
import time_machine
from django.test import Client
from django_otp import devices_for_user
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from audit import events
from audit.exceptions import AuditWriteError
from audit.models import AuditEvent
from secure_sso import stepup, stepup_views, totp
from secure_sso.models import RecoveryCode, RecoveryCodeDevice
from secure_sso.testing import force_login

pytestmark = pytest.mark.django_db

#: 10 s into a 30 s TOTP step, so ±1 step is unambiguous.
START = 1_800_000_010
STEP_UP = "/sso/step-up/"
ENROLL = "/sso/mfa/enroll/"
RECOVERY = "/sso/mfa/recovery/"
DEVICES = "/sso/mfa/devices/"
SENSITIVE = "/test/sensitive/"
MAX_AGE = 300


# --- What an authenticator app and a person do ----------------------------------------


def secret_from_page(content: bytes) -> str:
    match = re.search(r'<code id="totp-secret">([A-Z2-7 ]+)</code>', content.decode())
    assert match, "the enrollment page shows the secret for manual entry"
    return match.group(1).replace(" ", "")


def code_for(secret: str, steps: int = 0) -> str:
    """The app's code now (time is frozen by time-machine), ``steps`` steps away."""
    app = TOTP(b32decode(secret), drift=steps)
    return f"{app.token():06d}"


def recovery_codes_from_page(content: bytes) -> list[str]:
    block = re.search(r'<ul id="recovery-codes".*?</ul>', content.decode(), re.S)
    return re.findall(r"<code>([A-Z2-7-]+)</code>", block.group(0)) if block else []


def events_of(event_type: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event_type=event_type))


def enroll(client: Client) -> tuple[str, list[str]]:
    """Scan (read the secret), type the code, note the recovery codes."""
    page = client.get(ENROLL)
    assert page.status_code == 200
    secret = secret_from_page(page.content)
    done = client.post(ENROLL, {"code": code_for(secret)})
    assert done.status_code == 200, done.content
    return secret, recovery_codes_from_page(done.content)


def step_up(client: Client, code: str, next_url: str = SENSITIVE) -> Any:
    return client.post(STEP_UP, {"code": code, "next": next_url})


# --- Fixtures ---------------------------------------------------------------------------


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def alice(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user("alice", "alice@example.com", "pw")


@pytest.fixture
def browser(client: Client, alice: Any, clock: Any) -> Client:
    force_login(client, alice)
    return client


@pytest.fixture
def enrolled(browser: Client, clock: Any) -> dict[str, Any]:
    """Alice enrolled an app; then the step-up that enrollment gave her expired."""
    secret, codes = enroll(browser)
    clock.shift(MAX_AGE + 1)
    return {"secret": secret, "codes": codes}


# --- Enrollment -------------------------------------------------------------------------


def test_enrollment_end_to_end(browser: Client, alice: Any, clock: Any) -> None:
    """The QR code is a script-free inline SVG, a code confirms, recovery codes show once."""
    page = browser.get(ENROLL)
    assert page.status_code == 200
    body = page.content.decode()
    svg = re.search(r"<svg.*?</svg>", body, re.S)
    assert svg and "<path" in svg.group(0)
    assert "<script" not in svg.group(0).lower() and "href" not in svg.group(0)
    assert "<script" not in body.lower()
    assert 'autocomplete="one-time-code"' in body and 'inputmode="numeric"' in body
    assert "no-store" in page["Cache-Control"]
    secret = secret_from_page(page.content)
    assert len(b32decode(secret)) == 20
    # Reloading keeps the same pending secret (the app may already have it).
    assert secret_from_page(browser.get(ENROLL).content) == secret

    wrong = browser.post(ENROLL, {"code": "000000" if code_for(secret) != "000000" else "111111"})
    assert wrong.status_code == 400 and b'role="alert"' in wrong.content
    assert not TOTPDevice.objects.filter(user=alice, confirmed=True).exists()

    clock.shift(1)  # the failed try locks for 1 s: a person waits it out
    done = browser.post(ENROLL, {"code": code_for(secret)})
    assert done.status_code == 200
    assert "no-store" in done["Cache-Control"]
    codes = recovery_codes_from_page(done.content)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(re.fullmatch(r"[A-Z2-7]{5}-[A-Z2-7]{5}", code) for code in codes)
    assert TOTPDevice.objects.get(user=alice).confirmed

    # Stored only as keyed hashes; never shown again.
    stored = set(RecoveryCode.objects.values_list("code_hash", flat=True))
    assert not stored & {c.replace("-", "") for c in codes} and len(stored) == 10
    for url in (RECOVERY, DEVICES, ENROLL, STEP_UP):
        again = browser.get(url).content.decode()
        assert not any(code in again or code.replace("-", "") in again for code in codes)

    enrolled_events = events_of(events.MFA_ENROLLED)
    assert len(enrolled_events) == 1 and enrolled_events[0].user_id == alice.pk
    assert enrolled_events[0].details["recovery_codes"] == 10


def test_enrollment_counts_as_step_up(browser: Client) -> None:
    """Confirming a new authenticator is itself a fresh step-up."""
    enroll(browser)
    assert browser.session[stepup.SESSION_STEP_UP_KEY]["method"] == "totp"
    assert browser.get(SENSITIVE).content == b"sensitive: alice"


def test_enrollment_replaces_other_unconfirmed_devices(alice: Any) -> None:
    """Starting an enrollment again replaces the earlier unconfirmed device and secret."""
    first = totp.start_enrollment(alice)
    second = totp.start_enrollment(alice)
    assert list(TOTPDevice.objects.filter(user=alice)) == [second]
    assert first.key != second.key


def test_second_device_needs_step_up(browser: Client, enrolled: dict[str, Any]) -> None:
    """With a device already confirmed, adding another needs a recent step-up."""
    response = browser.get(ENROLL)
    assert response.status_code == 302
    assert response["Location"] == f"{STEP_UP}?next=%2Fsso%2Fmfa%2Fenroll%2F"
    assert step_up(browser, code_for(enrolled["secret"]), ENROLL)["Location"] == ENROLL
    page = browser.get(ENROLL)
    assert page.status_code == 200
    other = secret_from_page(page.content)
    done = browser.post(ENROLL, {"code": code_for(other)})
    assert done.status_code == 200
    assert recovery_codes_from_page(done.content) == []  # the existing codes still work
    assert TOTPDevice.objects.filter(confirmed=True).count() == 2


def test_anonymous_sent_to_sign_in(client: Client) -> None:
    """Every step-up page sends an anonymous visitor to sign in, then back."""
    for url in (STEP_UP, ENROLL, RECOVERY, DEVICES):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/sso/login/?next=")


# --- Protecting views -------------------------------------------------------------------


def test_decorated_view_asks_then_resumes(browser: Client, enrolled: dict[str, Any]) -> None:
    """@step_up_required redirects to the form, and a good code resumes the GET."""
    response = browser.get(SENSITIVE + "?tab=keys")
    assert response.status_code == 302
    assert response["Location"] == f"{STEP_UP}?next=%2Ftest%2Fsensitive%2F%3Ftab%3Dkeys"
    form = browser.get(response["Location"])
    assert form.status_code == 200
    assert b'autocomplete="one-time-code"' in form.content
    assert b'value="/test/sensitive/?tab=keys"' in form.content
    done = step_up(browser, code_for(enrolled["secret"]), "/test/sensitive/?tab=keys")
    assert done.status_code == 302 and done["Location"] == "/test/sensitive/?tab=keys"
    assert browser.get(done["Location"]).content == b"sensitive: alice"
    assert len(events_of(events.MFA_CHALLENGE)) == 1
    success = events_of(events.MFA_SUCCESS)
    assert len(success) == 1 and success[0].details["method"] == "totp"


def test_class_based_view_with_mixin(browser: Client, enrolled: dict[str, Any]) -> None:
    """StepUpRequiredMixin protects a class-based view the same way."""
    assert browser.get("/test/sensitive-cbv/")["Location"].startswith(STEP_UP)
    step_up(browser, code_for(enrolled["secret"]))
    assert browser.get("/test/sensitive-cbv/").content == b"sensitive-cbv"


def test_async_view_with_own_max_age(browser: Client, enrolled: dict[str, Any], clock: Any) -> None:
    """An async view decorated with max_age=60 asks again sooner than the default."""
    assert browser.get("/test/sensitive-async/")["Location"].startswith(STEP_UP)
    step_up(browser, code_for(enrolled["secret"]))
    assert browser.get("/test/sensitive-async/").content == b"sensitive-async"
    clock.shift(61)
    assert browser.get("/test/sensitive-async/")["Location"].startswith(STEP_UP)
    assert browser.get(SENSITIVE).status_code == 200


@pytest.mark.parametrize("rule", ["test-billing", "/test/bill"])
def test_middleware_step_up_urls(
    browser: Client, enrolled: dict[str, Any], settings: Any, rule: str
) -> None:
    """STEP_UP_URLS (a URL name or a path prefix) protects an undecorated view."""
    assert browser.get("/test/billing/").status_code == 200
    settings.SECURE_SSO = {**settings.SECURE_SSO, "STEP_UP_URLS": [rule]}
    response = browser.get("/test/billing/")
    assert response.status_code == 302
    assert response["Location"] == f"{STEP_UP}?next=%2Ftest%2Fbilling%2F"
    assert browser.get(STEP_UP).status_code == 200  # its own pages are never protected
    step_up(browser, code_for(enrolled["secret"]), "/test/billing/")
    assert browser.get("/test/billing/").content == b"billing"


def test_admin_needs_step_up(
    client: Client, django_user_model: Any, settings: Any, clock: Any
) -> None:
    """With STEP_UP_ADMIN, a staff user reaches the admin only after a step-up."""
    settings.SECURE_SSO = {**settings.SECURE_SSO, "STEP_UP_ADMIN": True}
    staff = django_user_model.objects.create_user("root", is_staff=True, is_superuser=True)
    force_login(client, staff)
    secret, _ = enroll(client)
    clock.shift(MAX_AGE + 1)
    response = client.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith(STEP_UP)
    assert step_up(client, code_for(secret), "/admin/")["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_without_device_enroll_or_deny(browser: Client, settings: Any) -> None:
    """No device: sent to enroll by default, refused (403, audited) with "deny"."""
    response = browser.get(f"{STEP_UP}?next=/test/sensitive/")
    assert response["Location"] == f"{ENROLL}?next=%2Ftest%2Fsensitive%2F"
    settings.SECURE_SSO = {**settings.SECURE_SSO, "STEP_UP_WITHOUT_DEVICE": "deny"}
    denied = browser.get(f"{STEP_UP}?next=/test/sensitive/")
    assert denied.status_code == 403 and b'role="alert"' in denied.content
    assert browser.get(ENROLL).status_code == 403  # no self-service first device either
    assert [e.reason for e in events_of(events.MFA_FAILURE)] == ["no_device", "no_device"]
    assert not TOTPDevice.objects.exists()


def test_forms_need_csrf_token(alice: Any, clock: Any) -> None:
    """The step-up, enrollment, recovery and device forms refuse a POST without CSRF token."""
    strict = Client(SERVER_NAME="localhost", enforce_csrf_checks=True)
    force_login(strict, alice)
    for url in (STEP_UP, ENROLL, RECOVERY, DEVICES):
        assert strict.post(url, {"code": "123456"}).status_code == 403
    page = strict.get(ENROLL)
    assert b'name="csrfmiddlewaretoken"' in page.content


def test_provider_method_hands_over(
    browser: Client, enrolled: dict[str, Any], settings: Any, monkeypatch: Any
) -> None:
    """With STEP_UP_METHOD "provider" the form hands over to the provider step-up view."""
    from django.urls import NoReverseMatch, reverse

    settings.SECURE_SSO = {**settings.SECURE_SSO, "STEP_UP_METHOD": "provider"}
    response = browser.get(f"{STEP_UP}?next=/test/sensitive/")
    target = reverse("secure_sso:step_up_provider")
    assert response["Location"] == f"{target}?next=%2Ftest%2Fsensitive%2F"

    def missing(name: str, *args: Any, **kwargs: Any) -> str:
        if name == "secure_sso:step_up_provider":
            raise NoReverseMatch(name)
        return reverse(name, *args, **kwargs)

    monkeypatch.setattr(stepup_views, "reverse", missing)
    unavailable = browser.get(STEP_UP)
    assert unavailable.status_code == 503 and b"step_up_unavailable" in unavailable.content


# --- Codes: time window, replay, throttling --------------------------------------------


@pytest.mark.parametrize(("steps", "accepted"), [(-2, False), (-1, True), (0, True),
                                                 (1, True), (2, False)])
def test_time_step_tolerance(
    browser: Client, enrolled: dict[str, Any], steps: int, accepted: bool
) -> None:
    """Codes from one 30 s step either side are accepted (tolerance 1); two away are not."""
    response = step_up(browser, code_for(enrolled["secret"], steps))
    assert response.status_code == (302 if accepted else 400)


def test_replayed_code_refused(
    browser: Client, enrolled: dict[str, Any], alice: Any, clock: Any
) -> None:
    """A code that worked once is refused again, even within its own 30 s window."""
    code = code_for(enrolled["secret"])
    assert step_up(browser, code).status_code == 302
    again = step_up(browser, code)
    assert again.status_code == 400 and b'role="alert"' in again.content
    other = Client(SERVER_NAME="localhost")
    force_login(other, alice)
    clock.shift(1)  # past the 1 s lock of the failed try (throttling is per device)
    assert step_up(other, code).status_code == 400
    # An older code is refused too: only later time steps count.
    clock.shift(2)
    assert step_up(other, code_for(enrolled["secret"], -1)).status_code == 400


def test_throttling_grows_and_blocks_right_codes(
    browser: Client, enrolled: dict[str, Any], clock: Any
) -> None:
    """Wrong codes lock for 1, 2, 4 s; while locked even the right code is refused (429)."""
    secret = enrolled["secret"]
    wrong = "000000" if code_for(secret) != "000000" else "111111"
    for delay in (1, 2, 4):
        assert step_up(browser, wrong).status_code == 400
        locked = step_up(browser, code_for(secret))
        assert locked.status_code == 429
        assert locked["Retry-After"] == str(delay)
        assert f"Wait {delay} second".encode() in locked.content
        assert b'role="alert"' in locked.content
        clock.shift(delay)
    assert step_up(browser, code_for(secret)).status_code == 302
    assert len(events_of(events.MFA_THROTTLED)) == 3
    failures = events_of(events.MFA_FAILURE)
    assert [e.reason for e in failures] == ["wrong_code"] * 3


def test_step_up_window_expires(browser: Client, enrolled: dict[str, Any], clock: Any) -> None:
    """A step-up lasts STEP_UP_MAX_AGE seconds; one second later the form comes back."""
    step_up(browser, code_for(enrolled["secret"]))
    clock.shift(MAX_AGE - 1)
    assert browser.get(SENSITIVE).status_code == 200
    clock.shift(2)
    assert browser.get(SENSITIVE)["Location"].startswith(STEP_UP)


def test_step_up_stays_in_its_session(
    browser: Client, enrolled: dict[str, Any], alice: Any
) -> None:
    """A step-up in one session does not carry over to the same user's other session."""
    other = Client(SERVER_NAME="localhost")
    force_login(other, alice)
    step_up(browser, code_for(enrolled["secret"]))
    assert browser.get(SENSITIVE).status_code == 200
    assert other.get(SENSITIVE)["Location"].startswith(STEP_UP)


def test_post_is_not_replayed(browser: Client, enrolled: dict[str, Any]) -> None:
    """A POST refused for want of a step-up resumes on the form's page, never re-sent."""
    response = browser.post(SENSITIVE, {"value": "x"},
                            HTTP_REFERER="http://localhost/test/billing/?step=2")
    assert response.status_code == 302
    assert response["Location"] == f"{STEP_UP}?next=%2Ftest%2Fbilling%2F%3Fstep%3D2"
    done = step_up(browser, code_for(enrolled["secret"]), "/test/billing/?step=2")
    assert done["Location"] == "/test/billing/?step=2"
    assert b"changed" not in browser.get(done["Location"]).content


def test_post_without_referer_resumes_home(browser: Client, enrolled: dict[str, Any]) -> None:
    """Without a same-site Referer a refused POST resumes at /."""
    response = browser.post(SENSITIVE, {"value": "x"}, HTTP_REFERER="https://evil.example/a/")
    assert response["Location"] == f"{STEP_UP}?next=%2F"


def test_next_is_kept_same_site(browser: Client, enrolled: dict[str, Any]) -> None:
    """An off-site ``next`` is replaced by / after the step-up."""
    done = step_up(browser, code_for(enrolled["secret"]), "https://evil.example/")
    assert done.status_code == 302 and done["Location"] == "/"


def test_session_rotates_on_step_up(browser: Client, enrolled: dict[str, Any]) -> None:
    """Stepping up gives a new session key and binding cookie, and the session still works."""
    from django.conf import settings

    from secure_sso.conf import sso_settings

    old_session = browser.cookies[settings.SESSION_COOKIE_NAME].value
    old_binding = browser.cookies[sso_settings.BINDING_COOKIE_NAME].value
    response = step_up(browser, code_for(enrolled["secret"]))
    assert response.status_code == 302
    assert response.cookies[settings.SESSION_COOKIE_NAME].value != old_session
    assert response.cookies[sso_settings.BINDING_COOKIE_NAME].value != old_binding
    assert browser.get(SENSITIVE).content == b"sensitive: alice"
    assert browser.get("/").content == b"home: alice"


def test_unrecorded_success_is_refused(
    browser: Client, enrolled: dict[str, Any], monkeypatch: Any
) -> None:
    """If mfa.success cannot be stored the step-up is refused and the code is not spent."""
    import audit

    real = audit.record

    def failing(event_type: str, **kwargs: Any) -> Any:
        if event_type == events.MFA_SUCCESS:
            raise AuditWriteError("down")
        return real(event_type, **kwargs)

    monkeypatch.setattr(audit, "record", failing)
    code = code_for(enrolled["secret"])
    refused = step_up(browser, code)
    assert refused.status_code == 503 and b'role="alert"' in refused.content
    assert browser.get(SENSITIVE)["Location"].startswith(STEP_UP)
    monkeypatch.setattr(audit, "record", real)
    assert step_up(browser, code).status_code == 302


# --- Recovery codes ---------------------------------------------------------------------


def test_recovery_code_works_once(browser: Client, enrolled: dict[str, Any], clock: Any) -> None:
    """A recovery code steps up once (any case, with or without hyphen), then never again."""
    code = enrolled["codes"][0]
    done = step_up(browser, code.lower().replace("-", " "))
    assert done.status_code == 302
    assert browser.session[stepup.SESSION_STEP_UP_KEY]["method"] == "recovery"
    [used] = events_of(events.MFA_RECOVERY_USED)
    assert used.details["remaining"] == 9
    clock.shift(MAX_AGE + 1)
    assert step_up(browser, code).status_code == 400
    assert totp.recovery_codes_remaining(RecoveryCodeDevice.objects.get().user) == 9


def test_regenerating_needs_step_up_and_invalidates(
    browser: Client, enrolled: dict[str, Any], clock: Any
) -> None:
    """New recovery codes need a recent step-up, are shown once, and void the old ones."""
    page = browser.get(RECOVERY)
    assert page.status_code == 200 and b"10 unused recovery codes" in page.content
    refused = browser.post(RECOVERY, HTTP_REFERER=f"http://localhost{RECOVERY}")
    assert refused["Location"] == f"{STEP_UP}?next=%2Fsso%2Fmfa%2Frecovery%2F"
    assert totp.recovery_codes_remaining(RecoveryCodeDevice.objects.get().user) == 10
    step_up(browser, code_for(enrolled["secret"]), RECOVERY)
    fresh = browser.post(RECOVERY)
    assert fresh.status_code == 200
    new_codes = recovery_codes_from_page(fresh.content)
    assert len(new_codes) == 10 and not set(new_codes) & set(enrolled["codes"])
    [event] = events_of(events.MFA_RECOVERY_REGENERATED)
    assert event.details["count"] == 10
    clock.shift(MAX_AGE + 1)
    assert step_up(browser, enrolled["codes"][1]).status_code == 400
    clock.shift(2)  # the wrong code's 1 s lock
    assert step_up(browser, new_codes[0]).status_code == 302


# --- Devices ----------------------------------------------------------------------------


def test_removing_a_device_needs_step_up(
    browser: Client, enrolled: dict[str, Any], alice: Any, django_user_model: Any
) -> None:
    """Listing and removing devices needs a recent step-up; removal is audited."""
    device = TOTPDevice.objects.get(user=alice)
    assert browser.get(DEVICES)["Location"].startswith(STEP_UP)
    refused = browser.post(DEVICES, {"device": device.pk}, HTTP_REFERER=f"http://localhost{DEVICES}")
    assert refused["Location"] == f"{STEP_UP}?next=%2Fsso%2Fmfa%2Fdevices%2F"
    assert TOTPDevice.objects.filter(pk=device.pk).exists()

    step_up(browser, code_for(enrolled["secret"]), DEVICES)
    listing = browser.get(DEVICES)
    assert listing.status_code == 200 and html.escape(device.name).encode() in listing.content

    bob = django_user_model.objects.create_user("bob")
    bobs = TOTPDevice.objects.create(user=bob, name="bob's", confirmed=True)
    for bad in (bobs.pk, "x", "9" * 40, "１"):
        assert browser.post(DEVICES, {"device": bad}).status_code == 400
    assert TOTPDevice.objects.filter(pk=bobs.pk).exists()

    removed = browser.post(DEVICES, {"device": device.pk})
    assert removed.status_code == 302 and removed["Location"] == DEVICES
    assert not TOTPDevice.objects.filter(user=alice).exists()
    assert not RecoveryCodeDevice.objects.filter(user=alice).exists()  # backups go too
    [event] = events_of(events.MFA_DEVICE_REMOVED)
    assert event.details["device"] == f"otp_totp.totpdevice/{device.pk}"


def test_devices_for_user_lists_recovery_codes(enrolled: dict[str, Any], alice: Any) -> None:
    """django-otp's devices_for_user sees the TOTP device and the recovery-code device."""
    kinds = {type(device) for device in devices_for_user(alice)}
    assert kinds == {TOTPDevice, RecoveryCodeDevice}


# --- Arbitrary input --------------------------------------------------------------------

codes_strategy = st.one_of(
    st.text(max_size=80),
    st.from_regex(r"\A[0-9 \-]{0,14}\Z"),
    st.from_regex(r"\A[A-Za-z2-7 \-]{8,14}\Z"),
    st.text(min_size=65, max_size=5000),
    st.text(alphabet=st.characters(categories=["Nd"]), min_size=6, max_size=8),
)


@hyp_settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(submitted=codes_strategy)
def test_arbitrary_codes(browser: Client, enrolled: dict[str, Any], submitted: str) -> None:
    """Any submitted text is answered without a 500 and accepted only if it is a valid code."""
    RecoveryCodeDevice.objects.update(throttling_failure_count=0,
                                      throttling_failure_timestamp=None)
    TOTPDevice.objects.update(throttling_failure_count=0, throttling_failure_timestamp=None)
    device = TOTPDevice.objects.get()
    apps = [TOTP(device.bin_key, drift=device.drift + s) for s in (-1, 0, 1)]
    valid_totp = {f"{app.token():06d}" for app in apps if app.t() > device.last_t}
    valid_recovery = {c.replace("-", "") for c in enrolled["codes"]}
    response = step_up(browser, submitted)
    assert response.status_code in (302, 400)
    if response.status_code == 302:
        normalized = submitted.strip().replace(" ", "").replace("-", "").upper()
        assert normalized in valid_totp | valid_recovery


def test_step_up_pages_have_a_way_back(browser: Client, enrolled: dict[str, Any]) -> None:
    """The enrollment and code pages offer "Cancel" to where a signed-in person lands
    (LOGIN_REDIRECT_URL), not to the protected page, which would only ask again."""
    page = browser.get(STEP_UP, {"next": SENSITIVE})
    assert b'<a id="step-up-cancel" href="/dashboard/">' in page.content
    assert step_up(browser, code_for(enrolled["secret"]), ENROLL)["Location"] == ENROLL
    page = browser.get(ENROLL, {"next": SENSITIVE})
    assert page.status_code == 200 and b'id="totp-secret"' in page.content
    assert b'<a id="step-up-cancel" href="/dashboard/">' in page.content
