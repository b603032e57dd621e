"""The index from provider sessions (``sid``) and accounts (``sub``) to Django sessions.

Back-channel logout arrives without a browser: the provider names a ``sid`` or a
``sub`` and this index says which session keys to end. Ending goes through the
configured session engine's own ``SessionStore.delete``, so it works with the
database, cache, cached_db and file engines alike (cookie sessions cannot be ended
from the server: ``secure_sso.E031``).
"""

from __future__ import annotations

import datetime
import logging
import time
from importlib import import_module
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from secure_sso.conf import sso_settings
from secure_sso.intervals import Every

logger = logging.getLogger("secure_sso")


def _models() -> Any:
    from secure_sso import models

    return models


#: Rows older than any session can live are swept at most this often (seconds).
SWEEP_INTERVAL = 300
_sweeps = Every(SWEEP_INTERVAL)


def record(session_key: str, *, user: Any, issuer: str, subject: str, sid: str | None,
           tokens: str = "") -> None:
    """Index a session that just signed in (``login()`` gave it a new key)."""
    SSOSession = _models().SSOSession
    _sweep(SSOSession)
    fields = {"user": user, "issuer": issuer, "subject": subject, "sid": sid or "",
              "tokens": tokens}
    try:
        with transaction.atomic():
            SSOSession.objects.create(session_key=session_key, **fields)
    except IntegrityError:  # the key was indexed already (a login without a new key)
        SSOSession.objects.filter(session_key=session_key).update(**fields)


def _sweep(model: Any) -> None:
    if not _sweeps.due(time.monotonic()):
        return
    lifetime = max(sso_settings.SESSION_ABSOLUTE_TIMEOUT, int(settings.SESSION_COOKIE_AGE))
    model.objects.filter(
        created_at__lt=timezone.now() - datetime.timedelta(seconds=lifetime)
    ).delete()


def rekey(old_key: str | None, new_key: str | None) -> None:
    """The session's key rotated (step-up, privilege change): follow it."""
    if old_key and new_key and old_key != new_key:
        _models().SSOSession.objects.filter(session_key=old_key).update(session_key=new_key)


def forget(session_key: str | None) -> None:
    if session_key:
        _models().SSOSession.objects.filter(session_key=session_key).delete()


def find(issuer: str, *, sid: str | None, subject: str | None) -> list[Any]:
    """Rows for a provider session (``sid``, and ``sub`` when given too), else for ``sub``."""
    SSOSession = _models().SSOSession
    if sid:
        query = Q(issuer=issuer, sid=sid)
        if subject:
            query &= Q(subject=subject)
    elif subject:
        query = Q(issuer=issuer, subject=subject)
    else:
        return []
    return list(SSOSession.objects.filter(query).select_related("user"))


def session_store_class() -> Any:
    return import_module(settings.SESSION_ENGINE).SessionStore


def end_sessions(rows: list[Any]) -> None:
    """Delete each row's Django session through the session engine; keep the rows."""
    store_class = session_store_class()
    for row in rows:
        store_class(session_key=row.session_key).delete()


def end(rows: list[Any]) -> int:
    """Delete each row's Django session through the session engine, then the rows."""
    end_sessions(rows)
    ended = len(rows)
    if rows:
        _models().SSOSession.objects.filter(pk__in=[row.pk for row in rows]).delete()
    return ended
