import os

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example.settings")
application = get_wsgi_application()

# A server does not run system checks: refuse to load without a secret key rather than
# answer every request with an error (manage.py stops on example.E001 instead).
try:
    settings.SECRET_KEY  # noqa: B018  Django refuses to hand out an empty one
except ImproperlyConfigured as exc:
    raise ImproperlyConfigured(
        "Set DJANGO_SECRET_KEY (or DJANGO_DEBUG=1 for development)."
    ) from exc
