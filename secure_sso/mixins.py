"""``StepUpRequiredMixin`` for class-based views."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from secure_sso.decorators import _refusal


class StepUpRequiredMixin:
    """Put first among the bases: ``class ApiKeys(StepUpRequiredMixin, TemplateView)``.

    ``step_up_max_age`` overrides ``STEP_UP_MAX_AGE`` for this view.
    """

    step_up_max_age: int | None = None

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        refusal = _refusal(request, self.step_up_max_age)
        if refusal is not None:
            return refusal
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
