"""Thin views for step-up with TOTP: the code form, enrollment, recovery codes, devices.

The decisions live in :mod:`secure_sso.stepup` (state) and :mod:`secure_sso.totp`
(devices and codes). Every outcome is audited; an event that cannot be stored
(:class:`audit.exceptions.AuditWriteError`) refuses the action (503), and on the success
paths the code's consumption is rolled back with it. Every response is ``never_cache``:
pages carry secrets (the TOTP secret, recovery codes) or per-session state.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.views import redirect_to_login
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils.cache import add_never_cache_headers
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

import audit
from audit import events
from audit.exceptions import AuditWriteError
from secure_sso import stepup, totp
from secure_sso.conf import sso_settings
from secure_sso.decorators import step_up_required
from secure_sso.redirects import safe_next_url

logger = logging.getLogger("secure_sso")

View = Callable[..., HttpResponse]


def _fail_closed(view: View) -> View:
    """An action whose security event cannot be recorded is not carried out."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except AuditWriteError:
            logger.critical("step-up refused: its audit event could not be recorded")
            return _error(
                request,
                "audit_unavailable",
                _("This could not be recorded, so it was not done. Please try again later."),
                503,
            )

    return wrapper


def _login_required(view: View) -> View:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    return wrapper


def _redirect(url: str) -> HttpResponse:
    response = HttpResponseRedirect(url)
    add_never_cache_headers(response)
    return response


def _error(request: HttpRequest, code: str, message: str, status: int) -> HttpResponse:
    response = render(
        request,
        "secure_sso/step_up_error.html",
        {"error_code": code, "message": message},
        status=status,
    )
    add_never_cache_headers(response)
    return response


def _next_url(request: HttpRequest) -> str:
    candidate = request.POST.get(REDIRECT_FIELD_NAME) if request.method == "POST" else None
    return safe_next_url(candidate or request.GET.get(REDIRECT_FIELD_NAME), "/")


def _with_next(url: str, next_url: str) -> str:
    return f"{url}?{urlencode({REDIRECT_FIELD_NAME: next_url})}"


def _throttled_message(seconds: int) -> str:
    return ngettext(
        "Too many incorrect codes. Wait %(seconds)d second before trying again.",
        "Too many incorrect codes. Wait %(seconds)d seconds before trying again.",
        seconds,
    ) % {"seconds": seconds}


WRONG_CODE = gettext_lazy(
    "That code is not valid. Check the code in your authenticator app and try again."
)


def _audit_failure(request: HttpRequest, result: totp.Verification, **details: Any) -> None:
    if result.reason == "throttled":
        audit.record(events.MFA_THROTTLED, request=request, outcome="failure",
                     reason="throttled", retry_after=result.retry_after,
                     failure_count=result.failure_count, **details)
    else:
        audit.record(events.MFA_FAILURE, request=request, outcome="failure",
                     reason=result.reason, failure_count=result.failure_count, **details)


# --- Step-up ----------------------------------------------------------------------------


@never_cache
@require_http_methods(["GET", "POST"])
@_fail_closed
@_login_required
def step_up_view(request: HttpRequest) -> HttpResponse:
    """Ask for a TOTP (or recovery) code; on success mark the step-up and resume ``next``.

    With ``STEP_UP_METHOD = "provider"`` it hands over to the provider step-up view.
    """
    next_url = _next_url(request)
    if sso_settings.STEP_UP_METHOD == "provider":
        try:
            target = reverse("secure_sso:step_up_provider")
        except NoReverseMatch:
            return _error(request, "step_up_unavailable",
                          _("Confirming your identity is not available on this site."), 503)
        return _redirect(_with_next(target, next_url))

    user = request.user
    if not totp.has_step_up_device(user):
        if sso_settings.STEP_UP_WITHOUT_DEVICE == "enroll":
            return _redirect(_with_next(reverse("secure_sso:enroll"), next_url))
        # "deny", or anything unexpected: fail closed.
        audit.record(events.MFA_FAILURE, request=request, outcome="failure", reason="no_device")
        return render(request, "secure_sso/step_up_denied.html", status=403)

    if request.method == "GET":
        audit.record(events.MFA_CHALLENGE, request=request, method="totp")
        return render(request, "secure_sso/step_up.html", _step_up_context(next_url))

    code = request.POST.get("code", "")
    with transaction.atomic():
        result = totp.verify_for_step_up(user, code)
        if result.ok:
            # Inside the transaction: if it cannot be recorded, the code is not spent.
            audit.record(events.MFA_SUCCESS, request=request, method=result.method,
                         device=result.device.persistent_id)
            if result.method == "recovery":
                audit.record(events.MFA_RECOVERY_USED, request=request,
                             device=result.device.persistent_id,
                             remaining=result.recovery_remaining)
    if result.ok:
        stepup.mark_step_up(request, result.method or "totp")
        return _redirect(next_url)

    _audit_failure(request, result, method="totp")
    if result.reason == "no_device":  # removed meanwhile, in another session
        return _redirect(_with_next(reverse("secure_sso:step_up"), next_url))
    if result.reason == "throttled":
        message, status = _throttled_message(result.retry_after), 429
    else:
        message, status = str(WRONG_CODE), 400
    response = render(request, "secure_sso/step_up.html",
                      {**_step_up_context(next_url), "error": message}, status=status)
    if status == 429:
        response.headers["Retry-After"] = str(result.retry_after)
    return response


# --- Enrollment -------------------------------------------------------------------------


def _step_up_context(next_url: str) -> dict[str, Any]:
    # "Cancel" leads where a signed-in person lands (LOGIN_REDIRECT_URL), never to ``next``:
    # the protected page would only ask again.
    return {"next": next_url, "cancel_url": sso_settings.LOGIN_REDIRECT_URL}


def _enroll_context(request: HttpRequest, device: Any, next_url: str) -> dict[str, Any]:
    uri = totp.provisioning_uri(device, totp.issuer_for_host(request.get_host()))
    return {
        **_step_up_context(next_url),
        "qr_svg": totp.qr_svg(uri),
        "secret": totp.secret_for_display(device),
        "digits": device.digits,
        "period": device.step,
    }


@never_cache
@require_http_methods(["GET", "POST"])
@_fail_closed
@_login_required
def enroll_view(request: HttpRequest) -> HttpResponse:
    """Add an authenticator app: show its QR code and secret, confirm it with one code.

    A user who already has a device needs a recent step-up first; a first device can be
    enrolled here only with ``STEP_UP_WITHOUT_DEVICE = "enroll"``. Confirming counts as a
    step-up and, when the user has no recovery codes left, shows new ones once.
    """
    user = request.user
    next_url = _next_url(request)
    if totp.has_step_up_device(user):
        if not stepup.has_recent_step_up(request):
            return _redirect(stepup.step_up_redirect_url(request))
    elif sso_settings.STEP_UP_WITHOUT_DEVICE != "enroll":
        # SECURITY: with "deny", a first device is provisioned by an administrator; letting
        # the session enroll one would hand a step-up to whoever holds the session.
        audit.record(events.MFA_FAILURE, request=request, outcome="failure",
                     reason="no_device", stage="enroll")
        return render(request, "secure_sso/step_up_denied.html", status=403)

    if request.method == "GET":
        device = totp.pending_device(user) or totp.start_enrollment(user)
        return render(request, "secure_sso/enroll.html", _enroll_context(request, device, next_url))

    device = totp.pending_device(user)
    if device is None:  # confirmed or replaced meanwhile: start again
        return _redirect(_with_next(reverse("secure_sso:enroll"), next_url))
    codes: list[str] = []
    with transaction.atomic():
        result = totp.confirm_device(device, request.POST.get("code", ""))
        if result.ok:
            if not totp.recovery_codes_remaining(user):
                codes = totp.generate_recovery_codes(user)
            audit.record(events.MFA_ENROLLED, request=request, device=result.device.persistent_id,
                         recovery_codes=len(codes))
    if result.ok:
        stepup.mark_step_up(request, "totp")
        return render(request, "secure_sso/recovery_codes.html",
                      {"codes": codes, "next": next_url, "enrolled": True})

    _audit_failure(request, result, method="totp", stage="enroll")
    if result.reason == "no_device":
        return _redirect(_with_next(reverse("secure_sso:enroll"), next_url))
    context = _enroll_context(request, device, next_url)
    if result.reason == "throttled":
        context["error"], status = _throttled_message(result.retry_after), 429
    else:
        context["error"], status = str(WRONG_CODE), 400
    response = render(request, "secure_sso/enroll.html", context, status=status)
    if status == 429:
        response.headers["Retry-After"] = str(result.retry_after)
    return response


# --- Recovery codes ---------------------------------------------------------------------


@never_cache
@require_http_methods(["GET", "POST"])
@_fail_closed
@_login_required
def recovery_view(request: HttpRequest) -> HttpResponse:
    """How many recovery codes are left; POST makes a new set (needs a recent step-up)."""
    user = request.user
    if request.method == "GET":
        return render(request, "secure_sso/recovery.html", {
            "remaining": totp.recovery_codes_remaining(user),
            "has_authenticator": totp.confirmed_totp_devices(user).exists(),
        })
    if not stepup.has_recent_step_up(request):
        # The submission is not replayed after the step-up: the person comes back here.
        return _redirect(stepup.step_up_redirect_url(request))
    if not totp.confirmed_totp_devices(user).exists():
        return _redirect(reverse("secure_sso:enroll"))
    with transaction.atomic():
        codes = totp.generate_recovery_codes(user)
        audit.record(events.MFA_RECOVERY_REGENERATED, request=request, count=len(codes))
    return render(request, "secure_sso/recovery_codes.html",
                  {"codes": codes, "next": reverse("secure_sso:devices"), "enrolled": False})


# --- Devices ----------------------------------------------------------------------------


@never_cache
@require_http_methods(["GET", "POST"])
@_fail_closed
@step_up_required
def devices_view(request: HttpRequest) -> HttpResponse:
    """List the user's authenticators and remove one (POST ``device``); needs a step-up."""
    user = request.user
    error = ""
    if request.method == "POST":
        with transaction.atomic():
            removed = totp.remove_device(user, request.POST.get("device"))
            if removed is not None:
                audit.record(events.MFA_DEVICE_REMOVED, request=request,
                             device=removed.persistent_id, name=removed.name,
                             remaining=totp.confirmed_totp_devices(user).count())
        if removed is not None:
            return _redirect(reverse("secure_sso:devices"))
        error = _("That device was not found.")
    response = render(request, "secure_sso/step_up_devices.html", {
        "devices": list(totp.confirmed_totp_devices(user)),
        "recovery_remaining": totp.recovery_codes_remaining(user),
        "error": error,
    }, status=400 if error else 200)
    return response
