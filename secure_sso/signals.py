"""Signals that observe sign-in events; policy lives in the adapter, not in receivers.

``sso_login_succeeded(sender, request, user, identity, claims, created)``
    after a verified sign-in, before the redirect.
``sso_login_failed(sender, request, code, status)``
    for every refused callback or sign-in start; ``code`` is an
    :class:`~secure_sso.exceptions.SSOError` code, never a secret.
``sso_logged_out(sender, request, user, provider_logout)``
    after local logout, with whether the browser goes on to the provider.
"""

from django.dispatch import Signal

sso_login_succeeded = Signal()
sso_login_failed = Signal()
sso_logged_out = Signal()

#: ``session_ended(sender, request, event, reason, username)``: a guarded session was ended
#: by the package (``session.binding_mismatch`` or ``session.expired``).
session_ended = Signal()
