"""The dotted event vocabulary. New names are added here, never invented at call sites.

``auth.*``, ``session.*``, ``mfa.*`` and ``sso.*`` are security events: they are never
allowed to fail open.
"""

LOGIN_SUCCESS = "auth.login.success"
LOGIN_FAILURE = "auth.login.failure"
LOGOUT = "auth.logout"
CLAIMS_CHANGED = "auth.claims.changed"
SESSION_BINDING_MISMATCH = "session.binding_mismatch"
SESSION_EXPIRED = "session.expired"
MFA_CHALLENGE = "mfa.challenge"
MFA_SUCCESS = "mfa.success"
MFA_FAILURE = "mfa.failure"
BACKCHANNEL_LOGOUT = "sso.backchannel_logout"
AUDIT_PRUNED = "audit.pruned"

ALL = (
    LOGIN_SUCCESS, LOGIN_FAILURE, LOGOUT, CLAIMS_CHANGED, SESSION_BINDING_MISMATCH,
    SESSION_EXPIRED, MFA_CHALLENGE, MFA_SUCCESS, MFA_FAILURE, BACKCHANNEL_LOGOUT, AUDIT_PRUNED,
)
