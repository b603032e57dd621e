"""Step-up: proving presence again, with TOTP (django-otp) or through the provider.

A step-up is a timestamp and a method kept in the session that made it (so it never
carries to another session of the same user), valid for ``STEP_UP_MAX_AGE`` seconds.
Marking one rotates the session key and the browser binding, like any privilege change.
The views that collect the proof live in :mod:`secure_sso.stepup_views`; this module
holds the state and the decisions, without requests' HTTP details where it can.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest
from django.urls import reverse

from secure_sso import sessions
from secure_sso.conf import sso_settings
from secure_sso.exceptions import SSOError

SESSION_STEP_UP_KEY = "_secure_sso_step_up"
SESSION_RESUME_KEY = "_secure_sso_step_up_next"
METHODS = ("totp", "recovery", "provider")


class StepUpRequired(SSOError):
    """The view needs a recent step-up; middleware and decorators turn this into a redirect."""

    code = "step_up_required"
    status = 401


def step_up_age_at_time(session: Any, *, now: float) -> float | None:
    """Seconds since this session's last step-up, or ``None`` when it never made one."""
    value = session.get(SESSION_STEP_UP_KEY)
    if not isinstance(value, dict):
        return None
    at = value.get("at")
    if isinstance(at, bool) or not isinstance(at, int | float) or at > now + 60:
        return None
    return now - at


def has_recent_step_up_at_time(session: Any, *, now: float, max_age: int | None = None) -> bool:
    age = step_up_age_at_time(session, now=now)
    limit = sso_settings.STEP_UP_MAX_AGE if max_age is None else max_age
    return age is not None and age < limit


def has_recent_step_up(request: HttpRequest, max_age: int | None = None) -> bool:
    """Whether ``request``'s session stepped up within ``max_age`` (default ``STEP_UP_MAX_AGE``)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return False
    return has_recent_step_up_at_time(request.session, now=time.time(), max_age=max_age)


def mark_step_up(request: HttpRequest, method: str, *, now: float | None = None) -> None:
    """Record a successful step-up and rotate the session (a privilege change)."""
    if method not in METHODS:
        raise ValueError(f"unknown step-up method {method!r}")
    sessions.rotate(request)
    request.session[SESSION_STEP_UP_KEY] = {
        "at": time.time() if now is None else now,
        "method": method,
    }


def clear_step_up(request: HttpRequest) -> None:
    request.session.pop(SESSION_STEP_UP_KEY, None)


def resume_url(request: HttpRequest) -> str:
    """Where to go after the step-up: the same page for GET; for other methods the page the
    form was on (Referer, same site only), never a silent replay of the submission."""
    from secure_sso.redirects import safe_next_url

    if request.method in ("GET", "HEAD"):
        return safe_next_url(request.get_full_path(), "/")
    referer = request.headers.get("Referer", "")
    host_prefix = request.build_absolute_uri("/")
    if referer.startswith(host_prefix):
        return safe_next_url("/" + referer[len(host_prefix):], "/")
    return "/"


def step_up_redirect_url(request: HttpRequest) -> str:
    """The step-up page for this request, with where to resume."""
    return f"{reverse('secure_sso:step_up')}?{urlencode({'next': resume_url(request)})}"
