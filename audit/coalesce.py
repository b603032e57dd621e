"""Anonymous failure floods: counted, not appended one by one (issue #10, item 5).

Every stored event takes the chain head's lock, so a flood of stored events queues every
sign-in behind it. :func:`audit.recording.record_event` sends each *anonymous failure*
(``outcome="failure"``, a request, no authenticated user) through :data:`COALESCER`
first. Per ``(client, event type, reason)`` and window of ``COALESCE_WINDOW`` seconds
(starting at the key's first event), where the client is the IPv4 address, or the /64
network of an IPv6 address (:func:`client_key`):

* the first ``COALESCE_AFTER`` are stored and logged one by one, as before;
* the next one is logged (not stored) with ``coalescing=True``: the live signal that a
  flood started;
* the rest are counted in memory: nothing stored, nothing logged;
* when the window has closed, ONE chained event of the same type, outcome, reason and
  client IP (the window's first) carries ``details = {"coalesced_count": N,
  "window_start", "window_end"}`` (ISO-8601 UTC, ``start <= t < end``; for IPv6 also
  ``client_network``). N counts the events not stored, so the window saw AFTER + N. It
  is written by the next anonymous failure of any key, or (at most one per call) by the
  next event of any kind, or by :func:`flush` (from a periodic job, if a process may sit
  idle), and at process exit (``atexit``).

Authenticated users' events and every success are never coalesced; nor is an event
without a request (no client to flood from). Only committed events use up a window's
``COALESCE_AFTER``: one rolled back never reached the trail.

Bounds, per process and window: at most ``COALESCE_MAX_KEYS`` open windows (memory);
past that, a new client is counted, never stored, in one window per ``(event type,
reason)`` whose summary has no client IP and ``many_addresses: true``. Stored rows: at most
``COALESCE_MAX_KEYS x (COALESCE_AFTER + 1)`` plus one per ``(event type, reason)``, however
many addresses a flood rotates through. Counting is per process: with P worker processes
a client may store ``P x COALESCE_AFTER`` events and P summaries per window; the counts
still add up exactly. Loss: counts live in memory until their summary is written, so a
process killed without ``atexit`` (SIGKILL, OOM) loses the counts of its open windows (at
most one window per key), and a summary written inside a transaction that rolls back is
lost with it; a summary whose write fails is logged critical, with its count.

``COALESCE_WINDOW = 0`` switches coalescing off (every anonymous failure stored).
"""

from __future__ import annotations

import atexit
import ipaddress
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from django.core.signals import setting_changed
from django.dispatch import receiver

from audit.conf import SETTING_NAME, audit_settings

logger = logging.getLogger("audit")

#: What :meth:`Coalescer.admit` decides for one event.
RECORD = "record"  # store and log it, as any event
ANNOUNCE = "announce"  # log it with coalescing=True, store nothing: the window is full
COUNT = "count"  # count it only

#: The client-IP slot of windows that count many addresses together (never an address).
_MANY = "*"

Key = tuple[str | None, str, str]


@dataclass(frozen=True, slots=True)
class Limits:
    window: float
    after: int
    max_keys: int

    @property
    def enabled(self) -> bool:
        return self.window > 0


_limits: Limits | None = None


def limits() -> Limits:
    """The coalescing settings (cached until ``SECURE_SSO_AUDIT`` changes)."""
    global _limits
    if _limits is None:
        _limits = Limits(
            window=audit_settings.COALESCE_WINDOW,
            after=audit_settings.COALESCE_AFTER,
            max_keys=audit_settings.COALESCE_MAX_KEYS,
        )
    return _limits


@receiver(setting_changed, dispatch_uid="audit.coalesce.limits")
def _reload(*, setting: str, **kwargs: Any) -> None:
    global _limits
    if setting == SETTING_NAME:
        _limits = None


@dataclass(frozen=True, slots=True)
class Summary:
    """The count of one closed window: what its one chained event says."""

    key: Key  # (client IP or None, event type, reason)
    count: int  # events counted and not stored (the first AFTER were stored)
    start: float
    end: float
    many_addresses: bool = False
    network: str | None = None  # an IPv6 /64 counted as one client (key[0]: its first address)

    def details(self) -> dict[str, Any]:
        details: dict[str, Any] = {
            "coalesced_count": self.count,
            "window_start": iso(self.start),
            "window_end": iso(self.end),
        }
        if self.many_addresses:
            details["many_addresses"] = True
        if self.network:
            details["client_network"] = self.network
        return details


def iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds")


class Window:
    __slots__ = ("address", "budget", "counted", "end", "recorded", "start")

    def __init__(self, start: float, end: float, budget: int, address: str | None) -> None:
        self.start, self.end, self.budget = start, end, budget
        self.address = address  # the first client address seen (a key may be a network)
        self.recorded = 0
        self.counted = 0


class Coalescer:
    """Windows of anonymous failures, by key; thread-safe; time always passed in (``now``).

    Windows sit in a dict in the order they opened; all have the same length, so the
    expired ones are at the front and :meth:`_expire` stops at the first open one.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._windows: dict[Key, Window] = {}
        #: Closed windows with a count, waiting to be written (oldest first).
        self._ready: deque[Summary] = deque()
        #: Open windows with a count.
        self._counting = 0

    def __len__(self) -> int:
        return len(self._windows)

    @property
    def pending(self) -> bool:
        """Any count not yet handed over (read without the lock: a hint for the fast path)."""
        return bool(self._counting or self._ready)

    def due(self, now: float) -> bool:
        """Is a summary ready to be written at ``now``?"""
        if self._ready:
            return True
        if not self._counting:
            return False
        try:
            first = next(iter(self._windows.values()))
        except (StopIteration, RuntimeError):  # emptied or resized by another thread
            return False
        return first.end <= now

    def admit(
        self, key: Key, *, now: float, window: float, after: int, max_keys: int,
        limit: int | None = None, address: str | None = None,
    ) -> tuple[str, list[Summary], Window | None]:
        """Decide for one anonymous failure; also hand over closed windows' counts (at
        most ``limit``; the rest stay ready for the next call). ``key[0]`` is the client
        address or its network (:func:`client_key`); ``address`` the address itself
        (default ``key[0]``), kept for the summary.

        Returns ``(decision, summaries, window)``: for ``RECORD``, pass ``window`` to
        :meth:`stored` once the event is committed. Only committed events use up a
        window's ``after``: one rolled back (the request's transaction, a test's) was
        never in the trail, so the next failure is stored in its place.
        """
        with self._lock:
            self._expire(now)
            current = self._windows.get(key)
            if current is not None and current.end <= now:  # only if the window length changed
                self._close(key)
                current = None
            if current is None:
                budget = after
                if len(self._windows) >= max_keys:
                    # SECURITY: too many addresses at once; count them together, store none.
                    key, budget = (_MANY, key[1], key[2]), 0
                    if key not in self._windows and len(self._windows) >= 2 * max_keys:
                        key = (_MANY, key[1], "")  # even the reasons are too many
                current = self._windows.get(key)
                if current is None:
                    current = self._windows[key] = Window(
                        now, now + window, budget, key[0] if address is None else address
                    )
            ready = self._hand_over(limit)
            if current.recorded < current.budget:
                return RECORD, ready, current
            current.counted += 1
            if current.counted == 1:
                self._counting += 1
                return ANNOUNCE, ready, None
            return COUNT, ready, None

    def stored(self, window: Window) -> None:
        """One event admitted by ``window`` was committed (harmless once it has closed)."""
        with self._lock:
            window.recorded += 1

    def take(self, *, now: float | None, limit: int | None = None) -> list[Summary]:
        """Hand over the counts of closed windows (``now=None``: of every window, open or
        not, which closes them all), oldest first, at most ``limit``."""
        with self._lock:
            if now is None:
                for key in list(self._windows):
                    self._close(key)
            else:
                self._expire(now)
            return self._hand_over(limit)

    def clear(self) -> None:
        """Forget every window and count (tests; nothing is written)."""
        with self._lock:
            self._windows.clear()
            self._ready.clear()
            self._counting = 0

    def _after_fork_in_child(self) -> None:
        # The parent writes its own counts; a child starts empty, with a lock nobody holds.
        self._lock = threading.Lock()
        self._windows, self._ready, self._counting = {}, deque(), 0

    # -- under the lock -----------------------------------------------------------------

    def _expire(self, now: float) -> None:
        windows = self._windows
        while windows:
            key, first = next(iter(windows.items()))
            if first.end > now:
                return
            self._close(key)

    def _close(self, key: Key) -> None:
        window = self._windows.pop(key)
        if window.counted:
            self._counting -= 1
            many = key[0] == _MANY
            network = key[0] if key[0] is not None and "/" in key[0] else None
            self._ready.append(Summary(
                (None if many else window.address, key[1], key[2]), window.counted,
                window.start, window.end, many_addresses=many, network=network,
            ))

    def _hand_over(self, limit: int | None) -> list[Summary]:
        ready = self._ready
        count = len(ready) if limit is None else min(limit, len(ready))
        return [ready.popleft() for _ in range(count)]


#: The process's coalescer.
COALESCER = Coalescer()
#: Summaries one anonymous failure writes at most (the rest wait for the next calls).
FLOOD_FLUSH_LIMIT = 100


@lru_cache(maxsize=1024)
def client_key(address: str | None) -> str | None:
    """Who a window counts: an IPv4 address itself, an IPv6 address's /64 network.

    SECURITY: one subscriber usually holds a whole /64 and can use any address in it; by
    address, each of its 2**64 would get its own ``COALESCE_AFTER``. An IPv4-mapped IPv6
    address is its IPv4 address. Bounded cache: a flood of distinct addresses only evicts.
    """
    if address is None or ":" not in address:
        return address
    try:
        parsed = ipaddress.IPv6Address(address)
    except ValueError:
        return address
    if parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    return str(ipaddress.IPv6Network((parsed, 64), strict=False))


def admit(
    event_type: str, reason: str, client_ip: str | None, settings: Limits
) -> tuple[str, Window | None]:
    """:meth:`Coalescer.admit` at the current time; writes the summaries it hands over."""
    decision, ready, window = COALESCER.admit(
        (client_key(client_ip), event_type, reason), now=time.time(), window=settings.window,
        after=settings.after, max_keys=settings.max_keys, limit=FLOOD_FLUSH_LIMIT,
        address=client_ip,
    )
    if ready:
        _write(ready)
    return decision, window


def flush(now: float | None = None, *, everything: bool = False,
          limit: int | None = None) -> int:
    """Write the summaries of closed windows (``everything``: of all windows); return how
    many were stored. ``now`` defaults to the current time."""
    if everything:
        ready = COALESCER.take(now=None, limit=limit)
    else:
        ready = COALESCER.take(now=time.time() if now is None else now, limit=limit)
    return _write(ready)


def flush_due(now: float) -> None:
    """The non-coalesced path's share: at most one due summary per event recorded."""
    if COALESCER.due(now):
        _write(COALESCER.take(now=now, limit=1))


#: Stores one summary: :func:`audit.recording.record_summary`, which registers itself
#: (imports run from recording to here, never back). Windows exist only after an event
#: went through recording, so a flush never finds summaries and no writer.
_writer: Callable[[Summary], Any] | None = None


def set_writer(writer: Callable[[Summary], Any]) -> None:
    global _writer
    _writer = writer


def _write(ready: list[Summary]) -> int:
    """Store each summary; never raises into the caller (whose own event comes next)."""
    written = 0
    for summary in ready:
        try:
            if _writer is None:
                raise RuntimeError("no summary writer registered (audit.recording)")
            written += _writer(summary) is not None
        except Exception:  # noqa: BLE001  record_summary logs database failures itself
            logger.critical("audit: summary of %s x %s not written", summary.count,
                            summary.key[1], exc_info=True)
    return written


def reset() -> None:
    """Forget every window and count without writing anything (for tests)."""
    COALESCER.clear()


def _flush_at_exit() -> None:
    if not COALESCER.pending:
        return
    try:
        flush(everything=True)
    except Exception:  # noqa: BLE001  the interpreter is going away: say so, loudly
        logger.critical("audit: coalesced counts could not be written at exit", exc_info=True)


atexit.register(_flush_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=COALESCER._after_fork_in_child)
