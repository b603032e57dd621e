"""Signals that observe sign-in events; policy lives in the adapter, not in receivers.

``sso_login_succeeded(sender, request, user, identity, claims, created)``
    after a verified sign-in, before the redirect.
``sso_login_failed(sender, request, code, status)``
    for every refused callback or sign-in start; ``code`` is an
    :class:`~secure_sso.exceptions.SSOError` code, never a secret.
``sso_logged_out(sender, request, user, provider_logout)``
    after local logout, with whether the browser goes on to the provider.
``sso_step_up_succeeded(sender, request, user, claims, method)``
    after the provider proved a fresh second factor for the signed-in account
    (``method="provider"``), once the session is marked; a receiver that raises
    undoes the step-up, which is then refused.
``sso_step_up_failed(sender, request, code, status, method)``
    instead of ``sso_login_failed`` when a provider step-up is refused at any step.
"""

from django.dispatch import Signal

sso_login_succeeded = Signal()
sso_login_failed = Signal()
sso_logged_out = Signal()
sso_step_up_succeeded = Signal()
sso_step_up_failed = Signal()

#: ``session_ended(sender, request, event, reason, username)``: a guarded session was ended
#: by the package (``session.binding_mismatch`` or ``session.expired``).
session_ended = Signal()

#: ``backchannel_logout(sender, request, issuer, subject, sid, sessions)``: a valid logout
#: token ended ``sessions`` (a list of ``(user, session_key)``; empty when none matched).
backchannel_logout = Signal()
#: ``backchannel_logout_refused(sender, request, code)``: a logout token was refused.
backchannel_logout_refused = Signal()
#: ``tokens_refreshed(sender, request, user)``: the session's tokens were refreshed.
tokens_refreshed = Signal()
#: ``session_revalidated(sender, request, user, method)``: the provider confirmed the
#: session's account is still signed in and allowed (``method``: "refresh" or "prompt_none").
session_revalidated = Signal()
