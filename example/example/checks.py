"""The example's own start-up check: a site without a secret key must not serve."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register
from django.core.exceptions import ImproperlyConfigured

E001 = "DJANGO_SECRET_KEY is not set."
E001_HINT = (
    "Set DJANGO_SECRET_KEY to a random value (python -c 'import secrets; "
    "print(secrets.token_urlsafe(50))'), or DJANGO_DEBUG=1 for local development."
)


@register()
def check_secret_key(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    try:
        present = bool(settings.SECRET_KEY)
    except ImproperlyConfigured:  # Django refuses to hand out an empty SECRET_KEY
        present = False
    return [] if present else [Error(E001, hint=E001_HINT, id="example.E001")]
