#!/usr/bin/env bash
# Fuzz every operation of the served OpenAPI spec, anonymously and as a signed-in resident; fail on any
# 5xx or any response that breaks its documented schema.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${SANDAN_VENV:-.venv}
port=${FUZZ_PORT:-5731}
wechat_port=${FUZZ_WECHAT_PORT:-5732}
work=$(mktemp -d)

SANDAN_INSTANCE_DIR="$work" "$venv/bin/sandan" demo --port "$port" --wechat-port "$wechat_port" \
  >"$work/demo.log" 2>&1 &
demo=$!
trap 'kill -TERM $demo 2>/dev/null; wait $demo 2>/dev/null || true; rm -rf "$work"' EXIT

base="http://127.0.0.1:$port"
for _ in $(seq 1 120); do
  curl -fsS "$base/readyz" >/dev/null 2>&1 && break
  kill -0 $demo 2>/dev/null || { cat "$work/demo.log"; exit 1; }
  sleep 0.5
done
curl -fsS "$base/readyz"; echo

code=$(curl -fsS -X POST -H 'Content-Type: application/json' -d '{"openid": "demo-resident-1"}' \
  "http://127.0.0.1:$wechat_port/_mock/login-code" | "$venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["code"])')
token=$(curl -fsS -X POST -H 'Content-Type: application/json' -d "{\"code\": \"$code\"}" "$base/api/v1/auth/login" \
  | "$venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

run() {
  "$venv/bin/schemathesis" run "$base/api/openapi.json" \
    --checks not_a_server_error,response_schema_conformance \
    --max-examples "${FUZZ_EXAMPLES:-25}" --seed 20261125 --request-timeout 10 "$@"
}
echo "--- anonymous caller"
run
echo "--- signed-in resident"
# Signing out would end the session the rest of the run needs.
run -H "Authorization: Bearer $token" --exclude-path /api/v1/auth/logout
