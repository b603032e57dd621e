"""Structured logging: one redacted line per event, the request's context, valid JSON."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from django.http import HttpResponse
from django.test import RequestFactory
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from structlog.testing import capture_logs

from audit import events, logs, record
from audit.middleware import AuditContextMiddleware
from audit.redaction import REDACTED, is_secret_name
from tests.strategies_audit import record_calls, rolled_back

SECRET = "hunter2-s3cr3t-value"  # noqa: S105
JWT = (
    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
    "c2lnbmF0dXJlLXNpZ25hdHVyZQ"
)
MIDDLEWARE_AFTER = "secure_sso.middleware.TransportMiddleware"


@pytest.fixture
def with_middleware(settings: Any) -> None:
    middleware = list(settings.MIDDLEWARE)
    middleware.insert(middleware.index(MIDDLEWARE_AFTER) + 1,
                      "audit.middleware.AuditContextMiddleware")
    settings.MIDDLEWARE = middleware


def lines_of(stream: io.StringIO) -> list[str]:
    return [line for line in stream.getvalue().splitlines() if line.strip()]


@pytest.fixture
def log_output(request: pytest.FixtureRequest) -> Iterator[io.StringIO]:
    """structlog and the three loggers configured as README says, writing to a buffer."""
    json_mode = getattr(request, "param", True)
    saved = structlog.get_config()
    config = logs.logging_config(json=json_mode)
    formatter_options = dict(config["formatters"]["structlog"])
    formatter = formatter_options.pop("()")(**formatter_options)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    previous = {}
    for name in logs.LOGGER_NAMES:
        target = logging.getLogger(name)
        previous[name] = (target.level, target.propagate, list(target.handlers))
        target.handlers = [handler]
        target.setLevel(logging.INFO)
        target.propagate = False
    logs.configure_structlog(json=json_mode)
    try:
        yield stream
    finally:
        structlog.reset_defaults()
        structlog.configure(**saved)
        for name, (level, propagate, handlers) in previous.items():
            target = logging.getLogger(name)
            target.level, target.propagate, target.handlers = level, propagate, handlers


@pytest.mark.django_db
class TestOneLinePerEvent:
    @hypothesis_settings(max_examples=40, deadline=None,
                         suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(call=record_calls())
    def test_exactly_one_line(self, call: dict[str, Any]) -> None:
        """Any record() call logs exactly one line: its name, outcome, reason, seq, no secret."""
        with rolled_back(), capture_logs() as captured:
            event = record(**call)
        [line] = captured
        assert line["event"] == event.event_type == call["event_type"][:64]
        assert (line["outcome"], line["reason"], line["seq"]) == (
            event.outcome, event.reason, event.seq)
        for name in call:
            if is_secret_name(name) and name not in {"event_type", "outcome", "reason"}:
                assert line.get(name, line.get(f"detail_{name}")) == REDACTED

    def test_secrets_never_logged(self) -> None:
        """Secret-named details and JWT-shaped values are redacted in the log line too."""
        with capture_logs() as captured:
            record(events.LOGIN_FAILURE, outcome="failure", reason="state_mismatch",
                   code=SECRET, nested={"refresh_token": SECRET}, hint=JWT)
        [line] = captured
        assert SECRET not in repr(line) and JWT not in repr(line)
        assert (line["code"], line["nested"], line["hint"]) == (
            REDACTED, {"refresh_token": REDACTED}, REDACTED)

    def test_failed_write_logged_once(self, settings: Any) -> None:
        """A dropped fail-open event still gives one line, flagged audit_write_failed."""
        settings.SECURE_SSO_AUDIT = {"SIGNING_KEYS": {}, "FAIL_OPEN_EVENTS": ["app.view"]}
        with capture_logs() as captured:
            record("app.view")
        assert [(c["event"], c["audit_write_failed"]) for c in captured] == [("app.view", True)]


@pytest.mark.django_db
class TestDuringRequest:
    def test_request_context_in_json_line(
        self, with_middleware: None, log_output: io.StringIO, client: Any,
        django_user_model: Any,
    ) -> None:
        """A failed password sign-in logs one JSON line with the request's id, path and method."""
        django_user_model.objects.create_user("staffer", password="right", is_staff=True)
        response = client.post("/admin/login/?next=/admin/&token=" + SECRET,
                               {"username": "staffer", "password": SECRET})
        request_id = response["X-Request-ID"]
        assert len(request_id) == 32
        parsed = [json.loads(line) for line in lines_of(log_output)]
        [line] = [p for p in parsed if p["event"] == events.LOGIN_FAILURE]
        assert line["request_id"] == request_id
        assert (line["http_method"], line["path"]) == ("POST", "/admin/login/")
        assert line["method"] == "password"
        assert (line["outcome"], line["reason"], line["level"]) == (
            "failure", "invalid_credentials", "info")
        assert line["logger"] == "audit" and line["timestamp"].endswith("Z")
        assert SECRET not in log_output.getvalue()

    def test_stdlib_lines_get_context(
        self, with_middleware: None, log_output: io.StringIO, client: Any
    ) -> None:
        """secure_sso's standard-library warnings carry the request id too, as JSON."""
        response = client.get("/sso/callback/", {"state": "x", "code": SECRET})
        parsed = [json.loads(line) for line in lines_of(log_output)]
        warnings = [p for p in parsed if p["logger"].startswith(("secure_sso", "django.security"))]
        assert warnings, parsed
        assert all(p["request_id"] == response["X-Request-ID"] for p in warnings)
        assert SECRET not in log_output.getvalue()


class TestRenderers:
    def test_json_parses(self, log_output: io.StringIO) -> None:
        """JSON mode: every line is a JSON object with timestamp, level and redacted fields."""
        structlog.get_logger("audit").info("something", token=SECRET, n=1)
        logging.getLogger("django.security").warning("odd %s", "request")
        first, second = (json.loads(line) for line in lines_of(log_output))
        assert (first["event"], first["token"], first["n"], first["level"]) == (
            "something", REDACTED, 1, "info")
        assert (second["event"], second["level"]) == ("odd request", "warning")

    def test_exceptions_without_locals(self, log_output: io.StringIO) -> None:
        """An exception is logged as structured frames without local variables."""
        token = SECRET  # noqa: F841  a local variable that must not be logged
        try:
            raise ValueError("boom")
        except ValueError:
            structlog.get_logger("audit").exception("failed")
        [line] = (json.loads(line) for line in lines_of(log_output))
        assert line["exception"][0]["exc_type"] == "ValueError"
        assert SECRET not in log_output.getvalue()

    @pytest.mark.parametrize("log_output", [False], indirect=True)
    def test_console(self, log_output: io.StringIO) -> None:
        """Console mode: a readable line with the event name, secrets redacted."""
        structlog.get_logger("audit").info("something", password=SECRET)
        [line] = lines_of(log_output)
        assert "something" in line and REDACTED in line and SECRET not in line

    def test_default_follows_debug(self, settings: Any) -> None:
        """JSON unless DEBUG: the default of configure_structlog."""
        settings.DEBUG = True
        assert logs._default_json() is False
        settings.DEBUG = False
        assert logs._default_json() is True

    def test_logging_config_shape(self) -> None:
        """LOGGING routes exactly the three loggers, not propagating, through one handler."""
        config = logs.logging_config(json=True)
        assert set(config["loggers"]) == {"audit", "secure_sso", "django.security"}
        assert all(c == {"handlers": ["structlog"], "level": "INFO", "propagate": False}
                   for c in config["loggers"].values())
        assert config["disable_existing_loggers"] is False


class TestMiddleware:
    def test_binds_and_clears(self, rf: RequestFactory) -> None:
        """Context is bound while the view runs and gone afterwards; the header is set."""
        seen: dict[str, Any] = {}

        def view(request: Any) -> HttpResponse:
            seen.update(structlog.contextvars.get_contextvars())
            return HttpResponse("ok")

        request = rf.get("/some/path/?code=" + SECRET, REMOTE_ADDR="198.51.100.9")
        response = AuditContextMiddleware(view)(request)
        assert seen == {"request_id": response["X-Request-ID"], "client_ip": "198.51.100.9",
                        "http_method": "GET", "path": "/some/path/"}
        assert structlog.contextvars.get_contextvars() == {}

    def test_cleared_after_exception(self, rf: RequestFactory) -> None:
        """A view that raises does not leave its context behind."""

        def view(request: Any) -> HttpResponse:
            raise RuntimeError("boom")

        with pytest.raises(RuntimeError):
            AuditContextMiddleware(view)(rf.get("/"))
        assert structlog.contextvars.get_contextvars() == {}

    def test_keeps_outer_context(self, rf: RequestFactory) -> None:
        """Context bound outside the request (e.g. by a worker) is restored, not wiped."""
        structlog.contextvars.bind_contextvars(worker="w1")
        try:
            AuditContextMiddleware(lambda r: HttpResponse())(rf.get("/"))
            assert structlog.contextvars.get_contextvars() == {"worker": "w1"}
        finally:
            structlog.contextvars.clear_contextvars()

    def test_request_id_header(self, settings: Any, rf: RequestFactory) -> None:
        """A trusted proxy's request id is reused and echoed."""
        settings.SECURE_SSO_AUDIT = {**settings.SECURE_SSO_AUDIT,
                                     "REQUEST_ID_HEADER": "HTTP_X_REQUEST_ID"}
        response = AuditContextMiddleware(lambda r: HttpResponse())(
            rf.get("/", HTTP_X_REQUEST_ID="edge-42"))
        assert response["X-Request-ID"] == "edge-42"

    def test_async(self, rf: RequestFactory) -> None:
        """Under ASGI the middleware is a coroutine and binds the same context."""
        seen: dict[str, Any] = {}

        async def view(request: Any) -> HttpResponse:
            seen.update(structlog.contextvars.get_contextvars())
            return HttpResponse("ok")

        middleware = AuditContextMiddleware(view)
        assert asyncio.iscoroutinefunction(middleware.__acall__)
        response = asyncio.run(middleware(rf.get("/a/", REMOTE_ADDR="192.0.2.5")))
        assert seen["path"] == "/a/" and seen["client_ip"] == "192.0.2.5"
        assert seen["request_id"] == response["X-Request-ID"]
