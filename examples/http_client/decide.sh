#!/usr/bin/env sh
# Ask Warden about one refund with curl, then report the outcome of running it.
#   WARDEN_URL=http://127.0.0.1:8787 WARDEN_KEY=wdn_ag_... sh decide.sh
set -eu
url=${WARDEN_URL:-http://127.0.0.1:8787}

decision=$(curl -sS "$url/v1/decide" \
  -H "authorization: Bearer $WARDEN_KEY" -H 'content-type: application/json' \
  -d '{"agent": "refund_autopilot", "tool": "create_refund", "run_id": "run_curl_1",
       "step": 0, "args": {"order_id": "ord_123456", "amount_usd": 30, "reason": "damaged"},
       "context": {"customer_tier": "pro"}}')
echo "$decision"

# allowed: run the tool yourself, then tell Warden what happened
action=$(printf '%s' "$decision" | sed -n 's/.*"action_id": *"\([^"]*\)".*/\1/p')
curl -sS "$url/v1/actions/$action/outcome" \
  -H "authorization: Bearer $WARDEN_KEY" -H 'content-type: application/json' \
  -d '{"ok": true, "result": {"refund_id": "re_ord_123456"}}'
echo
