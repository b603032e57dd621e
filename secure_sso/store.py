"""Claiming a value once, for every worker and host: ``STATE_STORE`` "database" or "cache".

A ``state`` spent by one worker, or a logout token's ``jti`` seen by one host, must be
refused by all the others. The session alone cannot promise that (two requests holding
the same session both see the entry before either saves), so each claim is an atomic
insert: a primary key in the database, ``cache.add`` in a shared cache. Only digests
are stored, never the values.
"""

from __future__ import annotations

import hashlib
import logging
import time

from django.core.cache import caches
from django.db import DatabaseError, IntegrityError, transaction

from secure_sso.conf import sso_settings
from secure_sso.exceptions import StoreUnavailable
from secure_sso.intervals import Every

logger = logging.getLogger("secure_sso")

#: Expired database claims are swept at most this often (seconds), by the next claim.
PURGE_INTERVAL = 300
_purges = Every(PURGE_INTERVAL)


def digest(namespace: str, value: str) -> str:
    return hashlib.sha256(f"{namespace}\0{value}".encode("utf-8", "surrogatepass")).hexdigest()


def _claim_in_database(key: str, *, ttl: float, now: float) -> bool:
    from secure_sso.models import SingleUseValue

    if _purges.due(now):
        SingleUseValue.objects.filter(expires_at__lt=now).delete()
    for _attempt in range(2):
        try:
            with transaction.atomic():
                SingleUseValue.objects.create(digest=key, expires_at=now + ttl)
            return True
        except IntegrityError:
            # A claim whose time is over may be made again (a lock left by a dead worker).
            if not SingleUseValue.objects.filter(digest=key, expires_at__lt=now).delete()[0]:
                return False
    return False


def use_once_at_time(namespace: str, value: str, *, ttl: float, now: float) -> bool:
    """Claim ``value`` in ``namespace`` for ``ttl`` seconds; ``False`` if it was claimed.

    Raises:
        StoreUnavailable: the store could not be asked (fail closed: nothing is claimed).
    """
    key = digest(namespace, value)
    ttl = max(1.0, float(ttl))
    if sso_settings.STATE_STORE == "cache":
        try:
            cache = caches[sso_settings.STATE_CACHE_ALIAS]
            return bool(cache.add(f"secure_sso:once:{key}", 1, timeout=int(ttl) + 1))
        # Cache clients raise their own errors (redis-py's ConnectionError and pymemcache's
        # MemcacheError are not OSErrors): any failure to ask is "unavailable".
        except Exception as exc:  # noqa: BLE001
            logger.error("single-use store unavailable: %s", exc.__class__.__name__)
            raise StoreUnavailable(f"store: {exc.__class__.__name__}") from None
    try:
        return _claim_in_database(key, ttl=ttl, now=now)
    except (DatabaseError, OSError, ConnectionError) as exc:
        logger.error("single-use store unavailable: %s", exc.__class__.__name__)
        raise StoreUnavailable(f"store: {exc.__class__.__name__}") from None


def use_once(namespace: str, value: str, *, ttl: float) -> bool:
    return use_once_at_time(namespace, value, ttl=ttl, now=time.time())
