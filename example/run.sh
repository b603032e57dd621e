#!/usr/bin/env bash
# Runs the example site (README: `make run`). With no provider configured (OIDC_ISSUER /
# AUTH0_DOMAIN unset) it also starts the local development provider (example/devidp) on
# its pinned Node.js and wires the two.
#
#   VENV          the virtual environment made by `make run` (default: .venv at the
#                 repository's root); a relative path is taken from where you typed it.
#   EXAMPLE_PORT  the example site's port (default 8000; when 8000 is taken, the next
#                 free one is used and printed). A port you set must be free.
#   DEVIDP_PORT   the development provider's port (default 9000, same rule).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
venv="${VENV:-$root/.venv}"
[[ "$venv" == /* ]] || venv="$PWD/$venv"  # before any cd: relative to the caller
py="$venv/bin/python"
node="$here/devidp/node_modules/.bin/node"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

if [[ ! -x "$py" ]]; then
  echo "run.sh: no Python at $py: run \`make run\` from the repository's root (it creates .venv)" >&2
  exit 1
fi

export DJANGO_DEBUG="${DJANGO_DEBUG:-1}"
port="$("$py" "$here/free_port.py" EXAMPLE_PORT 8000 "example site")"

if [[ -z "${OIDC_ISSUER:-}" && -z "${AUTH0_DOMAIN:-}" ]]; then
  idp_port="$("$py" "$here/free_port.py" DEVIDP_PORT 9000 "development provider")"
  if [[ ! -x "$node" || ! -d "$here/devidp/node_modules/oidc-provider" ]]; then
    npm ci --prefix "$here/devidp" --no-audit --no-fund --loglevel=error
  fi
  echo "No OIDC_ISSUER/AUTH0_DOMAIN set: starting the local development provider on 127.0.0.1:$idp_port"
  OIDC_CLIENT_ID="example-local"
  OIDC_CLIENT_SECRET="$("$py" -c 'import secrets; print(secrets.token_urlsafe(32))')"
  accounts="$(mktemp)"
  # The login name "admin" gets the "admins" group, which the example maps to staff.
  printf '{"admin": {"groups": ["admins"], "given_name": "Ada", "family_name": "Admin"}}' > "$accounts"
  # The development provider may call the example back on loopback (back-channel logout).
  export DEVIDP_PORT="$idp_port" DEVIDP_ACCOUNTS="$accounts" DEVIDP_ALLOW_LOOPBACK_CALLS=1
  DEVIDP_CLIENTS="$("$py" - "$port" "$OIDC_CLIENT_ID" "$OIDC_CLIENT_SECRET" <<'PY'
import json, sys
port, cid, secret = sys.argv[1:]
hosts = ["127.0.0.1", "localhost"]
print(json.dumps([{
    "client_id": cid,
    "client_secret": secret,
    "redirect_uris": [f"http://{h}:{port}/sso/callback/" for h in hosts],
    "post_logout_redirect_uris": [f"http://{h}:{port}/sso/logout/complete/" for h in hosts],
    # Signing out at the provider ends the example's session through this call.
    "backchannel_logout_uri": f"http://127.0.0.1:{port}/sso/backchannel-logout/",
    "backchannel_logout_session_required": True,
}]))
PY
)"
  export DEVIDP_CLIENTS
  ready_file="$(mktemp)"
  "$node" "$here/devidp/server.mjs" > "$ready_file" &
  pids+=($!)
  for _ in $(seq 300); do
    grep -q '"ready"' "$ready_file" && break
    kill -0 "${pids[-1]}" 2>/dev/null || { echo "development provider failed to start" >&2; exit 1; }
    sleep 0.1
  done
  grep -q '"ready"' "$ready_file" || { echo "development provider did not start" >&2; exit 1; }
  echo "Development provider ready: http://127.0.0.1:$idp_port/  (sign out there: http://127.0.0.1:$idp_port/session/end)"
  export OIDC_ISSUER="http://127.0.0.1:$idp_port" OIDC_CLIENT_ID OIDC_CLIENT_SECRET
  export SECURE_SSO_DEVELOPMENT=1 OIDC_GROUPS_SCOPE=1
fi

cd "$here"
"$py" manage.py migrate --no-input
echo
echo "Example site: http://127.0.0.1:$port/  (sign in with any login name; 'admin' is staff)"
"$py" manage.py runserver "127.0.0.1:$port"
