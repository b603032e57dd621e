"""The example's WSGI application, plus its static files, for the browser journey only.

gunicorn serves ``example.wsgi.application`` unchanged (DEBUG off, production settings);
the only addition is Django's ``StaticFilesHandler`` in front of it, the handler
``runserver`` uses, so the admin's CSS and JavaScript load (and run under the site's
Content Security Policy) without adding a dependency such as WhiteNoise. It answers
``/static/`` itself; every other request goes through the example's full middleware.
A real deployment serves ``collectstatic`` output from its web server or CDN instead.
"""

from django.contrib.staticfiles.handlers import StaticFilesHandler
from example.wsgi import application as example_application

application = StaticFilesHandler(example_application)
