"""When a periodic chore (a sweep, a purge) is due, whatever the clock reads at start-up.

A chore "done at most every N seconds" must still run the first time it is asked,
also in a process started moments after the machine booted, when ``time.monotonic()``
is smaller than N. Comparing the clock with a constant start value (``0.0``) silently
postponed the first run by up to N seconds of uptime; here "never ran" is its own state.
"""

from __future__ import annotations

import threading


class Every:
    """Says whether a chore that runs at most every ``seconds`` is due at ``now``.

    The first call is always due; so is any call whose ``now`` is earlier than the last
    run (a wall clock stepped back), which would otherwise suspend the chore for as long
    as the step.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = float(seconds)
        self._last: float | None = None
        self._lock = threading.Lock()

    def due(self, now: float) -> bool:
        """``True`` (and the run is counted from ``now``) when the chore should run."""
        with self._lock:
            last = self._last
            if last is not None and last <= now < last + self.seconds:
                return False
            self._last = now
            return True
