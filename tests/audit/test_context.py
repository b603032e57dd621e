"""What a request tells an event: the cached client IP and the quick request id (issue #8)."""

from __future__ import annotations

import uuid

from django.test import RequestFactory
from hypothesis import given
from hypothesis import strategies as st

from audit import context


class TestRequestId:
    @given(raw=st.binary(min_size=16, max_size=16))
    def test_same_hex_as_uuid4(self, raw: bytes) -> None:
        """The same 16 random bytes give uuid.UUID(bytes=..., version=4).hex."""
        assert context.uuid4_hex(raw) == uuid.UUID(bytes=raw, version=4).hex

    def test_new_ids_are_version_4(self) -> None:
        """Fresh ids are 32 hex digits of a version 4, RFC 4122 UUID, and differ."""
        ids = {context.new_request_id() for _ in range(100)}
        assert len(ids) == 100
        for value in ids:
            parsed = uuid.UUID(hex=value)
            assert len(value) == 32
            assert (parsed.version, parsed.variant) == (4, uuid.RFC_4122)


class TestClientIpCache:
    @given(candidate=st.text(max_size=80) | st.ip_addresses().map(str))
    def test_cached_equals_parsed(self, candidate: str) -> None:
        """Whatever REMOTE_ADDR holds, the cached answer is the parsed one."""
        request = RequestFactory().get("/", REMOTE_ADDR=candidate)
        assert context.client_ip(request) == context._parse_ip(candidate)
        assert context.client_ip(request) == context._parse_ip(candidate)  # from the cache

    def test_long_values_not_cached(self) -> None:
        """A value longer than any address is parsed without entering the cache."""
        context._normalised_ip.cache_clear()
        padded = " " * 100 + "192.0.2.1"
        request = RequestFactory().get("/", REMOTE_ADDR=padded)
        assert context.client_ip(request) == "192.0.2.1"
        assert context._normalised_ip.cache_info().currsize == 0

    def test_zone_and_brackets(self) -> None:
        """Brackets and an IPv6 zone id are dropped, as before the cache."""
        request = RequestFactory().get("/", REMOTE_ADDR="[fe80::1%eth0]")
        assert context.client_ip(request) == "fe80::1"
