"""TOTP enrollment, step-up verification and recovery codes, over django-otp. No HTTP here.

Verification relies on django-otp's own protections, which this module does not weaken:

* :meth:`TOTPDevice.verify_token` checks ``verify_is_allowed()`` first (the
  ``ThrottlingMixin`` exponential back-off: 1, 2, 4, 8… seconds after 1, 2, 3, 4…
  failures), calls ``throttle_increment()`` on a wrong code and ``throttle_reset()`` on a
  right one;
* it accepts codes from ``tolerance`` time steps either side (default 1) and only at a
  time step above ``last_t``, which it then advances: a code, or any older one, is never
  accepted twice.

On top of that, a step-up is checked across *all* the user's confirmed devices under
``select_for_update``: one throttled device refuses the attempt, a wrong code counts
against every device, a right one clears them all. Submitted text is normalised strictly
(ASCII digits only, so ``int()`` never turns ``"１２３４５６"`` or ``"12_3456"`` into a code).
"""

from __future__ import annotations

import math
import secrets
from base64 import b32encode
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import segno
from django.conf import settings
from django.db import transaction
from django.http.request import split_domain_port
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django_otp.plugins.otp_totp.models import TOTPDevice

from secure_sso.conf import sso_settings
from secure_sso.models import RecoveryCode, RecoveryCodeDevice

DEFAULT_ISSUER = "django-secure-sso"
DEFAULT_DEVICE_NAME = "Authenticator app"
RECOVERY_DEVICE_NAME = "Recovery codes"
#: RFC 4648 base32: no 0/1/8/9, so no O/0 or I/1 confusion when typed.
RECOVERY_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
#: 10 base32 characters: 50 bits of entropy per code.
RECOVERY_LENGTH = 10
RECOVERY_GROUP = 5
#: Submissions longer than this are refused before any work (a code is at most 11 chars).
MAX_CODE_INPUT = 64
_RECOVERY_HMAC_SALT = "secure_sso.totp.recovery_code"
_SEPARATORS = str.maketrans("", "", " -")


@dataclass(frozen=True)
class Verification:
    """The outcome of one code check.

    ``reason`` is ``"ok"``, ``"wrong_code"``, ``"throttled"`` or ``"no_device"``;
    ``method`` is ``"totp"`` or ``"recovery"`` when ``ok``; ``retry_after`` is the wait in
    whole seconds when throttled.
    """

    reason: str
    method: str | None = None
    device: Any = None
    retry_after: int = 0
    failure_count: int = 0
    recovery_remaining: int | None = None

    @property
    def ok(self) -> bool:
        return self.reason == "ok"


# --- Normalising what people type ---------------------------------------------------


def normalize_totp(value: Any, digits: int = 6) -> str | None:
    """``value`` as exactly ``digits`` ASCII digits (spaces and hyphens dropped), else None."""
    if not isinstance(value, str) or len(value) > MAX_CODE_INPUT or not value.isascii():
        return None
    value = value.strip().translate(_SEPARATORS)
    if len(value) != digits or not all("0" <= c <= "9" for c in value):
        return None
    return value


def normalize_recovery(value: Any) -> str | None:
    """A recovery code in canonical form (upper case, no separators), else None."""
    if not isinstance(value, str) or len(value) > MAX_CODE_INPUT or not value.isascii():
        return None
    value = value.strip().translate(_SEPARATORS).upper()
    if len(value) != RECOVERY_LENGTH or not all(c in RECOVERY_ALPHABET for c in value):
        return None
    return value


# --- Enrollment -----------------------------------------------------------------------


def pending_device(user: Any) -> TOTPDevice | None:
    """The user's unconfirmed TOTP device awaiting its first code, if any."""
    return TOTPDevice.objects.filter(user=user, confirmed=False).order_by("-pk").first()


def start_enrollment(user: Any, name: str = DEFAULT_DEVICE_NAME) -> TOTPDevice:
    """A new unconfirmed TOTP device with a fresh secret, replacing any other unconfirmed one."""
    with transaction.atomic():
        TOTPDevice.objects.filter(user=user, confirmed=False).delete()
        return TOTPDevice.objects.create(user=user, name=name[:64], confirmed=False)


def issuer_for_host(host: str | None) -> str:
    """The issuer shown in authenticator apps: ``OTP_TOTP_ISSUER`` when set, else the
    site's host name without port, else ``"django-secure-sso"``."""
    configured = getattr(settings, "OTP_TOTP_ISSUER", None)
    if isinstance(configured, str) and configured:
        issuer = configured
    else:
        domain = split_domain_port(host or "")[0] if host else ""
        issuer = domain or DEFAULT_ISSUER
    # A colon separates issuer from account in the label; it cannot be part of either.
    return issuer.replace(":", "").strip() or DEFAULT_ISSUER


def secret_base32(device: TOTPDevice) -> str:
    """The shared secret as authenticator apps expect it typed in (RFC 4648, no padding)."""
    return b32encode(device.bin_key).decode("ascii").rstrip("=")


def secret_for_display(device: TOTPDevice) -> str:
    """The base32 secret in groups of four, for manual entry."""
    secret = secret_base32(device)
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def provisioning_uri(device: TOTPDevice, issuer: str) -> str:
    """The ``otpauth://totp/…`` URI (Key Uri Format) that the QR code carries."""
    issuer = issuer.replace(":", "")
    account = str(device.user.get_username()).replace(":", "")
    label = quote(f"{issuer}:{account}", safe=":@")
    params = urlencode(
        {
            "secret": secret_base32(device),
            "issuer": issuer,
            "algorithm": "SHA1",
            "digits": device.digits,
            "period": device.step,
        },
        quote_via=quote,
    )
    return f"otpauth://totp/{label}?{params}"


def qr_svg(uri: str) -> str:
    """The QR code for ``uri`` as inline SVG (paths only: no script, no text, no link).

    Rendered server-side by segno, so the secret never reaches an image service.
    """
    return segno.make(uri, error="m").svg_inline(scale=4, light="#fff", svgclass="totp-qr")


def confirm_device(device: TOTPDevice, code: Any) -> Verification:
    """Confirm an unconfirmed device with its first code (throttled, replay-safe)."""
    with transaction.atomic():
        device = (
            TOTPDevice.objects.select_for_update()
            .filter(pk=device.pk, user_id=device.user_id, confirmed=False)
            .first()
        )
        if device is None:
            return Verification("no_device")
        allowed, info = device.verify_is_allowed()
        if not allowed:
            return _throttled([(device, info)])
        token = normalize_totp(code, device.digits)
        if token is None:
            device.throttle_increment(commit=True)
            return Verification("wrong_code", device=device,
                                failure_count=device.throttling_failure_count)
        if not device.verify_token(token):
            return Verification("wrong_code", device=device,
                                failure_count=device.throttling_failure_count)
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        return Verification("ok", method="totp", device=device)


# --- Step-up ----------------------------------------------------------------------------


def confirmed_totp_devices(user: Any) -> Any:
    return TOTPDevice.objects.devices_for_user(user, confirmed=True).order_by("pk")


def has_step_up_device(user: Any) -> bool:
    """Whether the user can step up: a confirmed TOTP device or an unused recovery code."""
    if user is None or not user.is_authenticated:
        return False
    return (
        confirmed_totp_devices(user).exists()
        or RecoveryCode.objects.filter(
            device__user=user, device__confirmed=True, used_at__isnull=True
        ).exists()
    )


def _retry_after(info: dict[str, Any] | None) -> int:
    locked_until = (info or {}).get("locked_until")
    if locked_until is None:
        return 1
    return max(1, math.ceil((locked_until - timezone.now()).total_seconds()))


def _throttled(blocked: list[tuple[Any, dict[str, Any] | None]]) -> Verification:
    device, info = max(blocked, key=lambda item: _retry_after(item[1]))
    return Verification(
        "throttled",
        device=device,
        retry_after=_retry_after(info),
        failure_count=int((info or {}).get("failure_count", 0)),
    )


def verify_for_step_up(user: Any, code: Any) -> Verification:
    """Check ``code`` against the user's confirmed TOTP devices, then their recovery codes.

    Runs in one transaction with every device row locked, so concurrent submissions are
    serialised: a code (or a recovery code) succeeds at most once.
    """
    if user is None or not user.is_authenticated:
        return Verification("no_device")
    with transaction.atomic():
        totp_devices = list(confirmed_totp_devices(user).select_for_update())
        recovery_devices = list(
            RecoveryCodeDevice.objects.filter(user=user, confirmed=True)
            .order_by("pk")
            .select_for_update()
        )
        usable_recovery = [d for d in recovery_devices if d.codes.filter(used_at__isnull=True)
                           .exists()]
        if not totp_devices and not usable_recovery:
            return Verification("no_device")
        devices: list[Any] = [*totp_devices, *recovery_devices]
        blocked = [(d, info) for d in devices for allowed, info in [d.verify_is_allowed()]
                   if not allowed]
        if blocked:
            return _throttled(blocked)

        tried: set[int] = set()
        matched: Any = None
        method: str | None = None
        for index, device in enumerate(totp_devices):
            token = normalize_totp(code, device.digits)
            if token is None:
                continue
            tried.add(index)
            if device.verify_token(token):  # increments its throttle on failure
                matched, method = device, "totp"
                break
        if matched is None and normalize_recovery(code) is not None:
            for offset, device in enumerate(recovery_devices, start=len(totp_devices)):
                tried.add(offset)
                if device.verify_token(code):
                    matched, method = device, "recovery"
                    break

        if matched is None:
            # SECURITY: a wrong guess costs the same on every device, whatever it looked like.
            for index, device in enumerate(devices):
                if index not in tried:
                    device.throttle_increment(commit=True)
            return Verification(
                "wrong_code",
                failure_count=max(d.throttling_failure_count for d in devices),
            )
        # The person proved presence: failures the other devices just counted are cleared.
        for device in devices:
            if device is not matched and device.throttling_failure_count:
                device.throttle_reset(commit=True)
        remaining = matched.remaining() if method == "recovery" else None
        return Verification("ok", method=method, device=matched, recovery_remaining=remaining)


# --- Recovery codes ---------------------------------------------------------------------


def _new_recovery_code() -> str:
    return "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_LENGTH))


def format_recovery_code(code: str) -> str:
    """``ABCDEFGHJK`` → ``ABCDE-FGHJK`` for display."""
    return "-".join(code[i : i + RECOVERY_GROUP] for i in range(0, len(code), RECOVERY_GROUP))


def recovery_code_hash(normalized: str, secret: str | bytes | None = None) -> str:
    """HMAC-SHA256 of a normalised code keyed by ``SECRET_KEY`` (or ``secret``)."""
    return salted_hmac(_RECOVERY_HMAC_SALT, normalized, secret=secret,
                       algorithm="sha256").hexdigest()


def _candidate_hashes(normalized: str) -> list[str]:
    # Codes made before a SECRET_KEY rotation keep working while the old key is listed in
    # SECRET_KEY_FALLBACKS.
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return [recovery_code_hash(normalized, key) for key in keys]


def recovery_codes_remaining(user: Any) -> int:
    return RecoveryCode.objects.filter(
        device__user=user, device__confirmed=True, used_at__isnull=True
    ).count()


def generate_recovery_codes(user: Any, count: int | None = None) -> list[str]:
    """Replace the user's recovery codes with ``count`` new ones (default ``RECOVERY_CODES``).

    Returns the codes formatted for display: the only time they exist in clear. Every
    older code stops working.
    """
    count = sso_settings.RECOVERY_CODES if count is None else count
    count = max(1, int(count))
    codes: set[str] = set()
    while len(codes) < count:
        codes.add(_new_recovery_code())
    with transaction.atomic():
        RecoveryCodeDevice.objects.filter(user=user).delete()
        device = RecoveryCodeDevice.objects.create(
            user=user, name=RECOVERY_DEVICE_NAME, confirmed=True
        )
        RecoveryCode.objects.bulk_create(
            RecoveryCode(device=device, code_hash=recovery_code_hash(code)) for code in codes
        )
    return [format_recovery_code(code) for code in sorted(codes)]


def use_recovery_code(device: RecoveryCodeDevice, value: Any) -> bool:
    """Spend one unused recovery code of ``device``; ``False`` (and a throttle step) if none.

    The row is locked and marked used with a conditional update in one transaction, so
    two concurrent uses of the same code cannot both succeed.
    """
    allowed, _ = device.verify_is_allowed()
    if not allowed:
        return False
    normalized = normalize_recovery(value)
    with transaction.atomic():
        spent = False
        if normalized is not None:
            row = (
                RecoveryCode.objects.select_for_update()
                .filter(device=device, used_at__isnull=True,
                        code_hash__in=_candidate_hashes(normalized))
                .first()
            )
            spent = row is not None and RecoveryCode.objects.filter(
                pk=row.pk, used_at__isnull=True
            ).update(used_at=timezone.now()) == 1
        if spent:
            device.throttle_reset(commit=False)
            device.set_last_used_timestamp(commit=False)
            device.save()
        else:
            device.throttle_increment(commit=True)
    return spent


def remove_device(user: Any, device_pk: Any) -> TOTPDevice | None:
    """Delete one of the user's confirmed TOTP devices; with the last one, its recovery
    codes go too (they back up an authenticator that is no longer there).

    Returns the removed device (unsaved copy), or ``None`` when it is not the user's.
    """
    if not isinstance(device_pk, str) or not (device_pk.isascii() and device_pk.isdigit()):
        return None
    if len(device_pk) > 18:  # beyond a 64-bit key: not one of ours
        return None
    pk = int(device_pk)
    with transaction.atomic():
        device = confirmed_totp_devices(user).select_for_update().filter(pk=pk).first()
        if device is None:
            return None
        device.delete()
        device.pk = pk  # keep it printable for the audit record
        if not confirmed_totp_devices(user).exists():
            RecoveryCodeDevice.objects.filter(user=user).delete()
    return device
