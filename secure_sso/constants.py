"""Names stored in sessions and claims this package treats specially."""

SESSION_PENDING_KEY = "_secure_sso_pending"
SESSION_VALIDATED_KEY = "_secure_sso_validated"
SESSION_LOGOUT_STATE_KEY = "_secure_sso_logout_state"
SESSION_ISSUER_KEY = "_secure_sso_iss"
SESSION_SUBJECT_KEY = "_secure_sso_sub"
SESSION_AUTH_TIME_KEY = "_secure_sso_auth_time"

#: Claims that describe the token rather than the user; never copied from userinfo
#: over the ID token's, and never kept as "last verified claims".
PROTOCOL_CLAIMS = frozenset(
    {"iss", "aud", "azp", "exp", "iat", "nbf", "nonce", "at_hash", "c_hash", "s_hash",
     "jti", "sid", "auth_time", "acr", "amr"}
)
#: Protocol claims dropped before claims are stored.
TRANSIENT_CLAIMS = frozenset({"nonce", "at_hash", "c_hash", "s_hash", "jti", "exp", "iat", "nbf"})
