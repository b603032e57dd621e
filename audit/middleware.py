"""Request context for every log line written while a request is handled.

``AuditContextMiddleware`` binds ``request_id``, ``client_ip``, ``http_method`` and ``path``
as structlog context variables (merged into each line by
:func:`audit.logs.structlog_processors`), removes them when the response is ready, and
sends the request id back as ``X-Request-ID`` so a person reporting a problem can quote
it. The request id and client IP are the ones :func:`audit.record` stores
(:mod:`audit.context`: ``REMOTE_ADDR`` unless a trusted proxy header is configured).

Put it early in ``MIDDLEWARE``, straight after ``secure_sso.middleware.TransportMiddleware``,
so that everything below it (sessions, authentication, the session guard, views) logs
with the request's context::

    MIDDLEWARE = [
        "secure_sso.middleware.TransportMiddleware",
        "audit.middleware.AuditContextMiddleware",
        "django.middleware.security.SecurityMiddleware",
        ...
    ]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextvars import Token
from typing import Any

import structlog
from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase

from audit.context import client_ip, request_id

REQUEST_ID_RESPONSE_HEADER = "X-Request-ID"


class AuditContextMiddleware:
    """Bind the request's context for structlog; answer with ``X-Request-ID``."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        tokens = self.bind(request)
        try:
            response = self.get_response(request)
        finally:
            structlog.contextvars.reset_contextvars(**tokens)
        return self.process_response(request, response)

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        tokens = self.bind(request)
        try:
            response = await self.get_response(request)
        finally:
            structlog.contextvars.reset_contextvars(**tokens)
        return self.process_response(request, response)

    @staticmethod
    def bind(request: HttpRequest) -> Mapping[str, Token[Any]]:
        # Only the path: a query string may carry a code, a state or a token. "http_method",
        # not "method": audit events use "method" for how someone signed in (sso, password).
        return structlog.contextvars.bind_contextvars(
            request_id=request_id(request),
            client_ip=client_ip(request),
            http_method=request.method,
            path=request.path,
        )

    @staticmethod
    def process_response(request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        response[REQUEST_ID_RESPONSE_HEADER] = request_id(request)
        return response
