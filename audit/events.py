"""The dotted event vocabulary. New names are added here, never invented at call sites."""

LOGIN_SUCCESS = "auth.login.success"
LOGIN_FAILURE = "auth.login.failure"
LOGOUT = "auth.logout"
SESSION_BINDING_MISMATCH = "session.binding_mismatch"
SESSION_EXPIRED = "session.expired"
