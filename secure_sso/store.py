"""Claiming a value once, for every worker and host: ``STATE_STORE`` "database" or "cache".

A ``state`` spent by one worker, or a logout token's ``jti`` seen by one host, must be
refused by all the others. The session alone cannot promise that (two requests holding
the same session both see the entry before either saves), so each claim is an atomic
insert: a primary key in the database, ``cache.add`` in a shared cache. Only digests
are stored, never the values.

A claim can also be made part of a transaction (:func:`use_once_in_transaction`): it then
stands only if that transaction commits, so work that fails after the claim (a logout
whose audit event cannot be stored) leaves the value usable for a retry.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

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


def _cache_key(key: str) -> str:
    return f"secure_sso:once:{key}"


def _claim_in_cache(key: str, *, ttl: float) -> bool:
    try:
        cache = caches[sso_settings.STATE_CACHE_ALIAS]
        return bool(cache.add(_cache_key(key), 1, timeout=int(ttl) + 1))
    # Cache clients raise their own errors (redis-py's ConnectionError and pymemcache's
    # MemcacheError are not OSErrors): any failure to ask is "unavailable".
    except Exception as exc:  # noqa: BLE001
        logger.error("single-use store unavailable: %s", exc.__class__.__name__)
        raise StoreUnavailable(f"store: {exc.__class__.__name__}") from None


def _release_in_cache(key: str) -> None:
    """Undo a cache claim whose transaction failed; never raises (the failure is the news)."""
    try:
        caches[sso_settings.STATE_CACHE_ALIAS].delete(_cache_key(key))
    except Exception as exc:  # noqa: BLE001
        # The value stays claimed until its ttl runs out: a retry is refused meanwhile.
        logger.critical("single-use claim not released: %s", exc.__class__.__name__)


def _claim_in_database_or_unavailable(key: str, *, ttl: float, now: float) -> bool:
    try:
        return _claim_in_database(key, ttl=ttl, now=now)
    except (DatabaseError, OSError, ConnectionError) as exc:
        logger.error("single-use store unavailable: %s", exc.__class__.__name__)
        raise StoreUnavailable(f"store: {exc.__class__.__name__}") from None


def use_once_at_time(namespace: str, value: str, *, ttl: float, now: float) -> bool:
    """Claim ``value`` in ``namespace`` for ``ttl`` seconds; ``False`` if it was claimed.

    Raises:
        StoreUnavailable: the store could not be asked (fail closed: nothing is claimed).
    """
    key = digest(namespace, value)
    ttl = max(1.0, float(ttl))
    if sso_settings.STATE_STORE == "cache":
        return _claim_in_cache(key, ttl=ttl)
    return _claim_in_database_or_unavailable(key, ttl=ttl, now=now)


def use_once(namespace: str, value: str, *, ttl: float) -> bool:
    return use_once_at_time(namespace, value, ttl=ttl, now=time.time())


@contextmanager
def use_once_in_transaction(namespace: str, value: str, *, ttl: float) -> Iterator[bool]:
    """Claim ``value`` like :func:`use_once`, kept only if the block's transaction commits.

    Opens ``transaction.atomic()`` (default database), claims, and yields whether the
    claim was made (``False``: the value was claimed before; the block decides what to
    refuse). When the block raises, or its commit fails, the claim is undone and the
    value may be claimed again:

    - ``"database"``: the claim is a row of the block's transaction and rolls back with
      the block's other writes (a concurrent claim of the same value waits on that row:
      it is refused if the block commits, made if it rolls back).
    - ``"cache"``: ``cache.add`` cannot join a transaction, so a claim made here is
      deleted again after the rollback. Between the claim and that delete a concurrent
      claim of the same value is refused; if the delete itself fails, the value stays
      claimed until ``ttl`` runs out (logged as critical).

    The guarantee needs the block to be the outermost ``atomic`` (the back-channel view
    is ``non_atomic_requests``): nested, it is a savepoint, the claim is only as final
    as the outer transaction, and a cache claim is not released if that one rolls back.

    Raises:
        StoreUnavailable: the store could not be asked (nothing is claimed). Exceptions
            of the block pass through unchanged.
    """
    key = digest(namespace, value)
    ttl = max(1.0, float(ttl))
    if sso_settings.STATE_STORE == "cache":
        claimed = _claim_in_cache(key, ttl=ttl)
        try:
            with transaction.atomic():
                yield claimed
        except BaseException:
            if claimed:  # only this call's own claim: a refused one belongs to another
                _release_in_cache(key)
            raise
        return
    with transaction.atomic():
        yield _claim_in_database_or_unavailable(key, ttl=ttl, now=time.time())
