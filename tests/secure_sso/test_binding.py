"""Pure helpers behind session binding and lifetimes: no request, no database."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secure_sso.binding import (
    MAX_SECRET_LENGTH,
    binding_digest,
    binding_matches,
    expiry_reason_at_time,
    new_binding_secret,
    user_agent_family,
)

NOW = 1_700_000_000.0
IDLE = 1800
ABSOLUTE = 43_200
URLSAFE = re.compile(r"^[A-Za-z0-9_-]+$")

# Real User-Agent strings, by the family they must map to.
USER_AGENTS = {
    "chrome/windows": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36"
    ),
    "chrome/macos": (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36"
    ),
    "chrome/linux": (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36"
    ),
    "chrome/android": (
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.6367.82 Mobile Safari/537.36"
    ),
    "chrome/ios": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1"
    ),
    "firefox/windows": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0"
    ),
    "firefox/macos": (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0"
    ),
    "firefox/linux": (
        "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
    ),
    "firefox/android": "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0",
    "firefox/ios": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) FxiOS/125.0 Mobile/15E148 Safari/605.1.15"
    ),
    "safari/macos": (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.4.1 Safari/605.1.15"
    ),
    "safari/ios": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1"
    ),
    "edge/windows": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51"
    ),
    "edge/macos": (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51"
    ),
    "edge/linux": (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.51"
    ),
    "edge/android": (
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Mobile Safari/537.36 EdgA/124.0.2478.64"
    ),
    "edge/ios": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.0 EdgiOS/124.2478.50 Mobile/15E148 Safari/605.1.15"
    ),
}

# The same browser before and after an update.
UPDATES = [
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/123.0.0.0 Safari/537.36",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/125.0.0.0 Safari/537.36",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.3; rv:124.0) Gecko/20100101 Firefox/124.0",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:126.0) Gecko/20100101 Firefox/126.0",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 16_6 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1",
    ),
    (
        "Mozilla/5.0 (Linux; Android 13; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Mobile Safari/537.36 EdgA/120.0.2210.115",
        "Mozilla/5.0 (Linux; Android 14; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Mobile Safari/537.36 EdgA/124.0.2478.64",
    ),
]

#: Anything a tampered session row or cookie jar could hold instead of a string.
NOT_STRINGS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.binary(),
    st.lists(st.text(max_size=4), max_size=3), st.dictionaries(st.text(max_size=4), st.integers()),
)
#: Everything that is not a finite, non-boolean number.
BAD_TIMESTAMPS = st.one_of(
    st.none(), st.booleans(), st.text(max_size=20), st.binary(max_size=8),
    st.sampled_from([float("nan"), float("inf"), float("-inf"), [NOW], {"t": NOW}]),
)
GOOD_TIMESTAMPS = st.floats(min_value=NOW - 10 * ABSOLUTE, max_value=NOW)


class TestSecret:
    def test_random_url_safe_and_long(self) -> None:
        """Binding secrets are 43 url-safe characters (256 bits) and never repeat."""
        secrets = [new_binding_secret() for _ in range(100)]
        assert len(set(secrets)) == 100
        for secret in secrets:
            assert len(secret) == 43 and URLSAFE.match(secret)


class TestDigest:
    def test_round_trip(self) -> None:
        """The cookie's secret with the same fingerprint matches the stored digest."""
        secret = new_binding_secret()
        assert binding_matches(binding_digest(secret, "chrome/linux"), secret, "chrome/linux")
        assert binding_matches(binding_digest(secret), secret)

    def test_digest_hides_the_secret(self) -> None:
        """The stored digest is a 64-hex keyed hash that does not contain the cookie value."""
        secret = new_binding_secret()
        digest = binding_digest(secret, "firefox/macos")
        assert re.fullmatch(r"[0-9a-f]{64}", digest)
        assert secret not in digest

    def test_digest_depends_on_secret_key(self, settings) -> None:
        """The digest is keyed with SECRET_KEY: a copied session row is useless elsewhere."""
        secret = new_binding_secret()
        digest = binding_digest(secret)
        settings.SECRET_KEY = "another-secret-key-for-this-test-only"
        assert binding_digest(secret) != digest
        assert not binding_matches(digest, secret)

    def test_wrong_secret_never_matches(self) -> None:
        """Another browser's secret does not match."""
        digest = binding_digest(new_binding_secret(), "chrome/windows")
        assert not binding_matches(digest, new_binding_secret(), "chrome/windows")

    def test_wrong_fingerprint_never_matches(self) -> None:
        """The right secret from another browser family does not match."""
        secret = new_binding_secret()
        digest = binding_digest(secret, "chrome/windows")
        assert not binding_matches(digest, secret, "firefox/windows")
        assert not binding_matches(digest, secret, "")

    def test_stored_value_is_compared_whole(self) -> None:
        """A truncated, padded or re-cased digest does not match."""
        secret = new_binding_secret()
        digest = binding_digest(secret)
        for tampered in (digest[:-1], digest + "0", digest.upper(), "", " " + digest):
            assert not binding_matches(tampered, secret)

    def test_oversized_secret_refused(self) -> None:
        """A cookie longer than MAX_SECRET_LENGTH is refused even if its digest was stored."""
        long_secret = "a" * (MAX_SECRET_LENGTH + 1)
        assert not binding_matches(binding_digest(long_secret), long_secret)
        fits = "a" * MAX_SECRET_LENGTH
        assert binding_matches(binding_digest(fits), fits)

    def test_empty_secret_refused(self) -> None:
        """An empty cookie never matches, not even a digest of the empty string."""
        assert not binding_matches(binding_digest(""), "")

    def test_non_ascii_secret_refused(self) -> None:
        """A non-ASCII cookie value is refused even if its digest was stored."""
        assert not binding_matches(binding_digest("sécret"), "sécret")

    @given(stored=NOT_STRINGS, secret=st.one_of(NOT_STRINGS, st.text()))
    def test_non_string_stored_never_matches(self, stored: object, secret: object) -> None:
        """A session holding anything but a string never matches and never raises."""
        assert binding_matches(stored, secret, "chrome/linux") is False

    @given(stored=st.text(), secret=NOT_STRINGS)
    def test_non_string_cookie_never_matches(self, stored: str, secret: object) -> None:
        """A missing or non-string cookie never matches and never raises."""
        assert binding_matches(stored, secret) is False

    @given(stored=st.text(), secret=st.text(), fingerprint=st.text())
    def test_arbitrary_text_never_raises(self, stored: str, secret: str, fingerprint: str) -> None:
        """Arbitrary text anywhere gives a bool, True only for a genuine digest."""
        result = binding_matches(stored, secret, fingerprint)
        assert isinstance(result, bool)
        assert not result or stored == binding_digest(secret, fingerprint)

    @given(secret=st.text(min_size=1), fingerprint=st.text(max_size=40))
    def test_arbitrary_secret_round_trip(self, secret: str, fingerprint: str) -> None:
        """Any short ASCII secret round-trips; long or non-ASCII ones are always refused."""
        matches = binding_matches(binding_digest(secret, fingerprint), secret, fingerprint)
        assert matches == (len(secret) <= MAX_SECRET_LENGTH and secret.isascii())


class TestUserAgentFamily:
    @pytest.mark.parametrize(("family", "user_agent"), sorted(USER_AGENTS.items()))
    def test_real_user_agents(self, family: str, user_agent: str) -> None:
        """Real browsers on Windows, macOS, Linux, Android and iOS get their browser/os label."""
        assert user_agent_family(user_agent) == family

    @pytest.mark.parametrize(("before", "after"), UPDATES)
    def test_update_keeps_family(self, before: str, after: str) -> None:
        """A browser or system update does not change the family."""
        assert user_agent_family(before) == user_agent_family(after)

    @given(
        family=st.sampled_from(sorted(USER_AGENTS)),
        versions=st.lists(st.integers(min_value=0, max_value=99_999), min_size=40, max_size=40),
    )
    def test_any_version_numbers_keep_family(self, family: str, versions: list[int]) -> None:
        """Renumbering every version in a real User-Agent never changes its family."""
        numbers = iter(versions)
        renumbered = re.sub(r"\d+", lambda _: str(next(numbers)), USER_AGENTS[family])
        assert user_agent_family(renumbered) == family

    def test_families_distinguish_browsers(self) -> None:
        """Every browser/os combination above has its own label."""
        assert len({user_agent_family(ua) for ua in USER_AGENTS.values()}) == len(USER_AGENTS)

    @pytest.mark.parametrize("user_agent", ["", "curl/8.5.0", "python-requests/2.32.3", "-"])
    def test_unknown_is_other(self, user_agent: str) -> None:
        """Clients that are no known browser (or send nothing) are other/other."""
        assert user_agent_family(user_agent) == "other/other"

    def test_only_the_first_512_characters_count(self) -> None:
        """Tokens after the first 512 characters are ignored (bounded regex work)."""
        assert user_agent_family("x" * 512 + " Firefox/125.0 (Windows)") == "other/other"

    @given(st.text(max_size=2000))
    def test_never_raises(self, user_agent: str) -> None:
        """Arbitrary text always yields one of the known labels."""
        browser, system = user_agent_family(user_agent).split("/")
        assert browser in {"edge", "opera", "samsung", "firefox", "chrome", "safari", "other"}
        assert system in {"android", "ios", "windows", "macos", "linux", "other"}


def reason(
    created_at: object = NOW, last_seen: object = NOW, now: float = NOW,
    idle: int = IDLE, absolute: int = ABSOLUTE,
) -> str | None:
    return expiry_reason_at_time(
        created_at=created_at, last_seen=last_seen, now=now, idle=idle, absolute=absolute
    )


class TestExpiry:
    def test_fresh_session_lives(self) -> None:
        """A session just used and recently created is not expired."""
        assert reason(created_at=NOW - 100, last_seen=NOW - 10) is None

    def test_idle(self) -> None:
        """Inactivity reaching the idle timeout is idle; one second less is not."""
        assert reason(last_seen=NOW - IDLE, created_at=NOW - IDLE) == "idle"
        assert reason(last_seen=NOW - IDLE + 1, created_at=NOW - IDLE) is None

    def test_absolute(self) -> None:
        """A session reaching the absolute lifetime ends even if it was just used."""
        assert reason(created_at=NOW - ABSOLUTE, last_seen=NOW) == "absolute"
        assert reason(created_at=NOW - ABSOLUTE + 1, last_seen=NOW) is None

    def test_both_reports_absolute(self) -> None:
        """Idle and too old at once is reported as absolute."""
        assert reason(created_at=NOW - ABSOLUTE - 5, last_seen=NOW - IDLE - 5) == "absolute"

    def test_zero_disables(self) -> None:
        """A timeout of 0 disables that limit only."""
        ancient = NOW - 100 * ABSOLUTE
        assert reason(created_at=ancient, last_seen=ancient, idle=0, absolute=0) is None
        assert reason(created_at=ancient, last_seen=NOW, idle=0) == "absolute"
        assert reason(created_at=NOW - 10, last_seen=ancient, absolute=0) == "idle"

    @given(created_at=BAD_TIMESTAMPS, last_seen=st.one_of(BAD_TIMESTAMPS, GOOD_TIMESTAMPS))
    def test_bad_created_at_is_absolute(self, created_at: object, last_seen: object) -> None:
        """An unreadable creation time (None, text, bool, NaN, infinity) is expired as absolute."""
        assert reason(created_at=created_at, last_seen=last_seen) == "absolute"

    @given(last_seen=BAD_TIMESTAMPS, created_at=GOOD_TIMESTAMPS)
    def test_bad_last_seen_is_idle(self, last_seen: object, created_at: object) -> None:
        """An unreadable last-seen time with a readable creation time is expired as idle."""
        assert reason(created_at=created_at, last_seen=last_seen) == "idle"

    @given(
        created_at=GOOD_TIMESTAMPS,
        seen_after=st.floats(min_value=0, max_value=10 * ABSOLUTE),
        idle=st.integers(min_value=0, max_value=10 * IDLE),
        absolute=st.integers(min_value=0, max_value=10 * ABSOLUTE),
    )
    def test_matches_the_definition(
        self, created_at: float, seen_after: float, idle: int, absolute: int
    ) -> None:
        """For readable timestamps the reason is exactly what the two limits say."""
        last_seen = min(created_at + seen_after, NOW)
        expected = None
        if idle and NOW - last_seen >= idle:
            expected = "idle"
        if absolute and NOW - created_at >= absolute:
            expected = "absolute"
        assert reason(created_at, last_seen, NOW, idle, absolute) == expected

    def test_integer_timestamps_accepted(self) -> None:
        """Whole-second timestamps (ints) are read like floats."""
        assert reason(created_at=int(NOW) - 5, last_seen=int(NOW) - 5) is None
