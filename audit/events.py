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
MFA_ENROLLED = "mfa.enrolled"
MFA_THROTTLED = "mfa.throttled"
MFA_RECOVERY_USED = "mfa.recovery_used"
MFA_DEVICE_REMOVED = "mfa.device_removed"
MFA_RECOVERY_REGENERATED = "mfa.recovery_regenerated"
BACKCHANNEL_LOGOUT = "sso.backchannel_logout"
SESSION_REVALIDATED = "session.revalidated"
SESSION_REVALIDATION_FAILED = "session.revalidation_failed"
SESSION_REFRESH_REFUSED = "session.refresh_refused"
SESSION_ENDED_BY_ADMIN = "session.ended_by_admin"
AUDIT_PRUNED = "audit.pruned"

ALL = (
    LOGIN_SUCCESS, LOGIN_FAILURE, LOGOUT, CLAIMS_CHANGED, SESSION_BINDING_MISMATCH,
    SESSION_EXPIRED, MFA_CHALLENGE, MFA_SUCCESS, MFA_FAILURE, MFA_ENROLLED, MFA_THROTTLED,
    MFA_RECOVERY_USED, MFA_DEVICE_REMOVED, MFA_RECOVERY_REGENERATED, BACKCHANNEL_LOGOUT,
    SESSION_REVALIDATED, SESSION_REVALIDATION_FAILED, SESSION_REFRESH_REFUSED,
    SESSION_ENDED_BY_ADMIN, AUDIT_PRUNED,
)
