"""``@step_up_required``: protect one view; works bare or called, on sync and async views."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponseRedirect

from secure_sso.stepup import has_recent_step_up, step_up_redirect_url


def _refusal(request: HttpRequest, max_age: int | None) -> Any:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if has_recent_step_up(request, max_age):
        return None
    return HttpResponseRedirect(step_up_redirect_url(request))


def step_up_required(
    view: Callable[..., Any] | None = None, *, max_age: int | None = None
) -> Any:
    """Require a step-up made within ``max_age`` seconds (default ``STEP_UP_MAX_AGE``).

    Anonymous users are sent to sign in first. Usage::

        @step_up_required
        def api_keys(request): ...

        @step_up_required(max_age=60)
        async def delete_account(request): ...
    """

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        if iscoroutinefunction(func):

            @wraps(func)
            async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                refusal = await sync_to_async(_refusal)(request, max_age)
                if refusal is not None:
                    return refusal
                return await func(request, *args, **kwargs)

            return async_wrapper

        @wraps(func)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            refusal = _refusal(request, max_age)
            if refusal is not None:
                return refusal
            return func(request, *args, **kwargs)

        return wrapper

    return decorate(view) if view is not None else decorate
