"""``secure_sso.intervals.Every``: a periodic chore runs the first time it is asked, on any
clock, including one that starts near zero (a machine that booted moments ago)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from secure_sso.intervals import Every

clock = st.floats(min_value=0.0, max_value=2e9, allow_nan=False)
interval = st.floats(min_value=1.0, max_value=86_400.0)


class TestEvery:
    @given(start=clock, seconds=interval)
    def test_first_ask_is_due_whatever_the_clock_reads(self, start: float, seconds: float) -> None:
        """A process whose clock reads 0.5 s (just booted) still runs the chore at once."""
        assert Every(seconds).due(start) is True

    def test_just_booted_machine(self) -> None:
        """The reported bug: ``monotonic()`` at 12 s, interval 300 s."""
        chore = Every(300)
        assert chore.due(12.0) is True
        assert chore.due(13.0) is False
        assert chore.due(312.0) is True

    @given(start=clock, seconds=interval, fraction=st.floats(min_value=0.0, max_value=0.999))
    def test_not_due_again_within_the_interval(
        self, start: float, seconds: float, fraction: float
    ) -> None:
        chore = Every(seconds)
        chore.due(start)
        later = start + seconds * fraction
        if later < start + seconds:  # floating point may round up to the boundary
            assert chore.due(later) is False

    @given(start=clock, seconds=interval, extra=st.floats(min_value=0.0, max_value=1e6))
    def test_due_again_once_the_interval_has_passed(
        self, start: float, seconds: float, extra: float
    ) -> None:
        chore = Every(seconds)
        chore.due(start)
        assert chore.due(start + seconds + extra) is True

    @given(start=st.floats(min_value=10.0, max_value=2e9),
           step=st.floats(min_value=1e-3, max_value=10.0))
    def test_a_clock_stepped_back_does_not_suspend_the_chore(
        self, start: float, step: float
    ) -> None:
        """A wall clock set back an hour must not postpone the purge by an hour."""
        chore = Every(300)
        chore.due(start)
        if start - step < start:
            assert chore.due(start - step) is True
