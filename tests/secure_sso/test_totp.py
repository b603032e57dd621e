"""secure_sso.totp without HTTP: input normalisation, provisioning, the QR code, verification
across devices, django-otp's replay and throttling guarantees, and recovery codes."""

from __future__ import annotations

import re
from base64 import b32decode
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import time_machine
from django.db.models import QuerySet
from django.utils import timezone
from django_otp import devices_for_user
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from hypothesis import given
from hypothesis import strategies as st

from secure_sso import totp
from secure_sso.models import RecoveryCode, RecoveryCodeDevice

START = 1_800_000_010


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def alice(db: Any, django_user_model: Any) -> Any:
    return django_user_model.objects.create_user("alice")


def now_code(device: TOTPDevice, steps: int = 0) -> str:
    app = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift + steps)
    return f"{app.token():0{device.digits}d}"


# --- Normalisation ----------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["123456", " 123456 ", "123 456", "123-456"])
def test_totp_input_accepted_forms(raw: str) -> None:
    """Six ASCII digits, with the spaces or hyphen apps show, normalise to the code."""
    assert totp.normalize_totp(raw) == "123456"


@pytest.mark.parametrize(
    "raw",
    ["１２３４５６", "12_3456", "+12345", "12345", "1234567", "٣٣٣٣٣٣", "12345\x00", None, 123456,
     "1" * 65, "12345a"],
)
def test_totp_input_refused_forms(raw: Any) -> None:
    """Anything int() would bend into a number (unicode digits, underscores, signs) is refused."""
    assert totp.normalize_totp(raw) is None


def test_recovery_input_forms() -> None:
    """Recovery codes ignore case, spaces and hyphens, and nothing else."""
    assert totp.normalize_recovery("abcde-fgh23") == "ABCDEFGH23"
    assert totp.normalize_recovery(" ABCDE FGH23 ") == "ABCDEFGH23"
    for bad in ("ABCDE-FGH21", "ıBCDE-FGH23", "ABCDE-FGH2", "ſBCDE-FGH23", "A" * 65, None):
        assert totp.normalize_recovery(bad) is None


@given(st.text(max_size=100))
def test_normalisation_never_raises(value: str) -> None:
    """Normalising arbitrary text never raises and yields only ASCII of the right shape."""
    code = totp.normalize_totp(value)
    assert code is None or re.fullmatch(r"[0-9]{6}", code)
    recovery = totp.normalize_recovery(value)
    assert recovery is None or re.fullmatch(r"[A-Z2-7]{10}", recovery)


# --- Provisioning -----------------------------------------------------------------------


def test_provisioning_uri(alice: Any) -> None:
    """The otpauth URI carries the issuer, the account, the secret and the parameters."""
    device = totp.start_enrollment(alice)
    uri = totp.provisioning_uri(device, "example.com")
    parts = urlsplit(uri)
    assert parts.scheme == "otpauth" and parts.netloc == "totp"
    assert unquote(parts.path) == "/example.com:alice"
    params = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert params == {
        "secret": totp.secret_base32(device),
        "issuer": "example.com",
        "algorithm": "SHA1",
        "digits": "6",
        "period": "30",
    }
    assert b32decode(params["secret"]) == device.bin_key
    assert totp.secret_for_display(device).replace(" ", "") == params["secret"]


def test_provisioning_uri_escapes_label(django_user_model: Any, db: Any) -> None:
    """Colons, spaces and ampersands in names cannot break the label or the query."""
    user = django_user_model.objects.create_user("a:b c&d")
    uri = totp.provisioning_uri(totp.start_enrollment(user), "Acme: Corp")
    parts = urlsplit(uri)
    assert unquote(parts.path) == "/Acme Corp:ab c&d"
    assert parse_qs(parts.query)["issuer"] == ["Acme Corp"]


def test_issuer_defaults(settings: Any) -> None:
    """The issuer is OTP_TOTP_ISSUER if set, else the host without port, else the package."""
    assert totp.issuer_for_host("example.com:8443") == "example.com"
    assert totp.issuer_for_host("") == "django-secure-sso"
    assert totp.issuer_for_host(None) == "django-secure-sso"
    settings.OTP_TOTP_ISSUER = "Acme"
    assert totp.issuer_for_host("example.com") == "Acme"


def test_qr_svg_is_inert(alice: Any) -> None:
    """The QR code is inline SVG made of paths: no script, event handler, link or text."""
    device = totp.start_enrollment(alice)
    svg = totp.qr_svg(totp.provisioning_uri(device, "example.com"))
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "<path" in svg
    lowered = svg.lower()
    for forbidden in ("<script", "href", "<foreignobject", "<text", "style=", "javascript:"):
        assert forbidden not in lowered
    assert not re.search(r"\son\w+\s*=", lowered)
    assert totp.secret_base32(device) not in svg


# --- django-otp's guarantees, relied upon -----------------------------------------------


def test_django_otp_prevents_replay_and_throttles(alice: Any, clock: Any) -> None:
    """TOTPDevice.verify_token refuses a used code (last_t) and throttles after a failure."""
    device = TOTPDevice.objects.create(user=alice, name="app")
    code = int(now_code(device))
    assert device.verify_token(code)
    assert not device.verify_token(code)  # replay
    allowed, info = device.verify_is_allowed()
    assert not allowed and info["failure_count"] == 1
    assert not device.verify_token(int(now_code(device, 1)))  # a valid code, but locked
    assert device.throttling_failure_count == 1  # locked attempts do not count
    clock.shift(1)
    assert device.verify_token(int(now_code(device, 1)))


# --- Verification across devices --------------------------------------------------------


def test_no_device(alice: Any) -> None:
    """A user without a confirmed device (an unconfirmed one does not count) has none."""
    totp.start_enrollment(alice)
    assert not totp.has_step_up_device(alice)
    assert totp.verify_for_step_up(alice, "123456").reason == "no_device"


def test_confirm_device(alice: Any, clock: Any) -> None:
    """A pending device is confirmed by its own current code only."""
    device = totp.start_enrollment(alice)
    assert totp.confirm_device(device, "１２３４５６").reason == "wrong_code"
    clock.shift(1)
    result = totp.confirm_device(device, now_code(device))
    assert result.ok and TOTPDevice.objects.get(pk=device.pk).confirmed
    assert totp.confirm_device(device, now_code(device)).reason == "no_device"


def test_second_device_code_clears_first_devices_count(alice: Any, clock: Any) -> None:
    """A right code from any device succeeds and clears what the others counted."""
    first = TOTPDevice.objects.create(user=alice, name="phone")
    second = TOTPDevice.objects.create(user=alice, name="tablet")
    result = totp.verify_for_step_up(alice, now_code(second))
    assert result.ok and result.device == second and result.method == "totp"
    first.refresh_from_db()
    assert first.throttling_failure_count == 0


def test_wrong_code_counts_on_every_device(alice: Any, clock: Any) -> None:
    """A wrong guess, numeric or not, throttles all the user's devices alike."""
    device = TOTPDevice.objects.create(user=alice, name="phone")
    totp.generate_recovery_codes(alice, 3)
    assert totp.verify_for_step_up(alice, "not a code").reason == "wrong_code"
    device.refresh_from_db()
    assert device.throttling_failure_count == 1
    assert RecoveryCodeDevice.objects.get().throttling_failure_count == 1
    throttled = totp.verify_for_step_up(alice, now_code(device))
    assert throttled.reason == "throttled" and throttled.retry_after == 1


def test_eight_digit_device(alice: Any, clock: Any) -> None:
    """A device configured for 8 digits is verified with 8 digits."""
    device = TOTPDevice.objects.create(user=alice, name="token", digits=8)
    assert totp.verify_for_step_up(alice, now_code(device)).ok


# --- Recovery codes ---------------------------------------------------------------------


def test_recovery_codes_shape_and_storage(alice: Any) -> None:
    """Codes are 10 base32 characters (50 bits), unique, and stored only as keyed hashes."""
    codes = totp.generate_recovery_codes(alice)
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(re.fullmatch(r"[A-Z2-7]{5}-[A-Z2-7]{5}", code) for code in codes)
    hashes = set(RecoveryCode.objects.values_list("code_hash", flat=True))
    assert hashes == {totp.recovery_code_hash(code.replace("-", "")) for code in codes}
    assert all(len(h) == 64 for h in hashes)
    assert {type(d) for d in devices_for_user(alice)} == {RecoveryCodeDevice}


def test_recovery_code_single_use_and_regeneration(alice: Any, clock: Any) -> None:
    """Each code works once; regenerating voids every old code."""
    old = totp.generate_recovery_codes(alice, 3)
    result = totp.verify_for_step_up(alice, old[0])
    assert result.ok and result.method == "recovery" and result.recovery_remaining == 2
    assert totp.verify_for_step_up(alice, old[0]).reason == "wrong_code"
    clock.shift(2)
    new = totp.generate_recovery_codes(alice, 3)
    assert totp.verify_for_step_up(alice, old[1]).reason == "wrong_code"
    clock.shift(2)
    assert totp.verify_for_step_up(alice, new[1]).ok


def test_concurrent_use_of_one_code(alice: Any, monkeypatch: Any) -> None:
    """If another request spends the code between lookup and update, this one fails."""
    codes = totp.generate_recovery_codes(alice, 1)
    device = RecoveryCodeDevice.objects.get()
    real_first = QuerySet.first

    def racing_first(self: QuerySet) -> Any:
        row = real_first(self)
        if self.model is RecoveryCode and row is not None:
            # The other request commits first.
            RecoveryCode.objects.filter(pk=row.pk).update(used_at=timezone.now())
        return row

    monkeypatch.setattr(QuerySet, "first", racing_first)
    assert not totp.use_recovery_code(device, codes[0])


def test_recovery_codes_survive_secret_key_rotation(alice: Any, settings: Any) -> None:
    """Codes keep working while the old SECRET_KEY is in SECRET_KEY_FALLBACKS."""
    codes = totp.generate_recovery_codes(alice, 2)
    old_key = settings.SECRET_KEY
    settings.SECRET_KEY = "rotated-tests-only-key"
    settings.SECRET_KEY_FALLBACKS = [old_key]
    device = RecoveryCodeDevice.objects.get()
    assert totp.use_recovery_code(device, codes[0])
    settings.SECRET_KEY_FALLBACKS = []
    device.refresh_from_db()
    assert not totp.use_recovery_code(device, codes[1])


def test_remove_last_device_removes_recovery_codes(alice: Any) -> None:
    """Removing the last authenticator also removes its recovery codes."""
    phone = TOTPDevice.objects.create(user=alice, name="phone")
    tablet = TOTPDevice.objects.create(user=alice, name="tablet")
    totp.generate_recovery_codes(alice, 2)
    assert totp.remove_device(alice, str(phone.pk)).name == "phone"
    assert RecoveryCodeDevice.objects.filter(user=alice).exists()
    assert totp.remove_device(alice, str(tablet.pk)) is not None
    assert not RecoveryCodeDevice.objects.filter(user=alice).exists()
    assert totp.remove_device(alice, str(tablet.pk)) is None
