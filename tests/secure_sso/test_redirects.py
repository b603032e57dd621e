"""``safe_next_url``: only same-site relative paths survive; no open redirect."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import pytest
from django.utils.http import url_has_allowed_host_and_scheme
from hypothesis import example, given, settings
from hypothesis import strategies as st

from secure_sso.redirects import MAX_NEXT_LENGTH, safe_next_url
from tests.strategies import absolute_urls, safe_paths, url_like

DEFAULT = "/default/"
SITE = "https://site.test/"


def assert_stays_on_site(result: str) -> None:
    """The result is the default or a single-slash path that resolves onto site.test."""
    if result == DEFAULT:
        return
    assert result.startswith("/")
    assert not result.startswith("//")
    assert not result.startswith("/\\")
    resolved = urlsplit(urljoin(SITE, result))
    assert resolved.scheme == "https"
    assert resolved.hostname == "site.test"
    assert url_has_allowed_host_and_scheme(result, allowed_hosts={"site.test"})
    assert url_has_allowed_host_and_scheme(result, allowed_hosts={"site.test"}, require_https=True)


class TestSafeNextUrlProperties:
    @settings(max_examples=400, deadline=None)
    @given(url_like)
    @example("//evil.com")
    @example("/\\evil.com")
    @example("\\\\evil")
    @example("///evil")
    @example("/%2F%2Fevil")
    @example(" //evil.com")
    @example("/\t/evil.com")
    def test_never_an_open_redirect(self, candidate: str) -> None:
        """Whatever comes in, the result is the default or a path that stays on this site."""
        assert_stays_on_site(safe_next_url(candidate, DEFAULT))

    @settings(max_examples=150, deadline=None)
    @given(absolute_urls)
    def test_absolute_and_scheme_relative_urls_refused(self, candidate: str) -> None:
        """Any URL naming a scheme or another host falls back to the default."""
        result = safe_next_url(candidate, DEFAULT)
        assert_stays_on_site(result)
        assert "evil" not in urlsplit(urljoin(SITE, result)).netloc.lower()

    @settings(max_examples=200, deadline=None)
    @given(st.one_of(st.none(), st.integers(), st.binary(), st.lists(st.text()), st.text()))
    def test_never_raises_on_any_type(self, candidate: object) -> None:
        """Non-string input never raises and only ever yields the default or a safe path."""
        result = safe_next_url(candidate, DEFAULT)
        assert isinstance(result, str)
        assert_stays_on_site(result)

    @settings(max_examples=200, deadline=None)
    @given(safe_paths)
    def test_safe_paths_kept_unchanged(self, path: str) -> None:
        """A plain same-site path, query and fragment comes back exactly as given."""
        assert safe_next_url(path, DEFAULT) == path


class TestSafeNextUrlExamples:
    @pytest.mark.parametrize(
        "candidate",
        [
            "//evil.com",
            "//evil.com/path",
            "///evil.com",
            "////evil.com",
            "/\\evil.com",
            "\\\\evil.com",
            "\\/evil.com",
            "https://evil.com",
            "http://evil.com/",
            "https://site.test/account/",
            "HTTPS://evil.com",
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "\t//evil",
            " //evil.com",
            "/\t/evil",
            "/\n/evil",
            "/\r\n/evil",
            "/\x00/evil",
            "/\x7f",
            "evil.com",
            "relative/path",
            "?next=//evil.com",
        ],
    )
    def test_hostile_values_give_default(self, candidate: str) -> None:
        """Known open-redirect payloads and non-absolute-path values fall back to the default."""
        assert safe_next_url(candidate, DEFAULT) == DEFAULT

    @pytest.mark.parametrize("candidate", ["", None, 42, 3.5, b"/home/", ["/home/"], {"/": 1}])
    def test_empty_and_non_string_give_default(self, candidate: object) -> None:
        """Empty, missing and non-string values give the default."""
        assert safe_next_url(candidate, DEFAULT) == DEFAULT

    def test_percent_encoded_slashes_stay_on_site(self) -> None:
        """Percent-encoded slashes are either refused or kept as a path on this site."""
        assert_stays_on_site(safe_next_url("/%2F%2Fevil.com", DEFAULT))
        assert_stays_on_site(safe_next_url("/%5Cevil.com", DEFAULT))

    @pytest.mark.parametrize(
        "path", ["/", "/dashboard/", "/a/b?c=d&e=f", "/page#section", "/caf%C3%A9/", "/@me"]
    )
    def test_same_site_paths_kept(self, path: str) -> None:
        """Ordinary same-site paths are returned unchanged."""
        assert safe_next_url(path, DEFAULT) == path

    def test_oversized_path_gives_default(self) -> None:
        """A path longer than MAX_NEXT_LENGTH is refused."""
        assert safe_next_url("/" + "a" * MAX_NEXT_LENGTH, DEFAULT) == DEFAULT
        assert safe_next_url("/" + "a" * (MAX_NEXT_LENGTH - 1), DEFAULT) != DEFAULT
