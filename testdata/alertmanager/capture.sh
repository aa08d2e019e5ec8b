#!/usr/bin/env bash
# Reproduce the Alertmanager webhook fixtures in this directory end to end:
# build and start the capture sink (capture/main.go), start a real
# Alertmanager with capture.yml, raise/resolve alerts with amtool and the
# API v2, and copy each POST body the sink received, byte for byte, to
# <scenario>.json (request line + headers to <scenario>.json.headers).
# Finally derive v035_firing.json from firing.json (see README.md).
#
# Requirements: prometheus-alertmanager + amtool (Debian package
# prometheus-alertmanager), go, curl, python3. Loopback only.
# Usage: testdata/alertmanager/capture.sh   (from anywhere)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
AM_BIN=${AM_BIN:-prometheus-alertmanager}
AMTOOL_BIN=${AMTOOL_BIN:-amtool}
AM_ADDR=127.0.0.1:19093
SINK_ADDR=127.0.0.1:19095
AM_URL=http://$AM_ADDR
WORK=$(mktemp -d /tmp/am-capture.XXXXXX)
POSTS=$WORK/posts

PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	echo "capture.sh: processes stopped; logs and raw posts kept in $WORK" >&2
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_http() { # url
	local i
	for i in $(seq 1 100); do
		curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "timeout waiting for $1" >&2
	return 1
}

count_posts() { find "$POSTS" -name '*.body' | wc -l; }

# wait_posts N: block until the sink has received N POSTs in total.
wait_posts() {
	local i
	for i in $(seq 1 300); do
		[ "$(count_posts)" -ge "$1" ] && { sleep 0.5; break; }
		sleep 0.1
	done
	if [ "$(count_posts)" -ne "$1" ]; then
		echo "expected $1 posts, have $(count_posts)" >&2
		ls -l "$POSTS" >&2
		exit 1
	fi
}

# take NNN name expected-path: copy POST number NNN to name.json(.headers),
# checking it arrived on the expected webhook URL path.
take() {
	local base=$POSTS/$1 path
	path=$(head -n1 "$base.headers" | cut -d' ' -f2)
	if [ "$path" != "$3" ]; then
		echo "post $1: path $path, expected $3" >&2
		exit 1
	fi
	cp "$base.body" "$HERE/$2.json"
	cp "$base.headers" "$HERE/$2.json.headers"
	echo "captured $2.json ($(wc -c <"$base.body") bytes, POST $path)"
}

# which NNN NNN path: print whichever of the two posts arrived on path.
which_post() {
	local n
	for n in "$1" "$2"; do
		[ "$(head -n1 "$POSTS/$n.headers" | cut -d' ' -f2)" = "$3" ] && { echo "$n"; return; }
	done
	echo "no post on $3 among $1 $2" >&2
	exit 1
}

ts() { date -u -d "$1" +%Y-%m-%dT%H:%M:%S.%3NZ; } # ts '-5 min'
amt() { "$AMTOOL_BIN" --alertmanager.url="$AM_URL" "$@"; }
post_alerts() { # JSON array on stdin -> Alertmanager API v2
	curl -fsS -H 'Content-Type: application/json' --data-binary @- "$AM_URL/api/v2/alerts" >/dev/null
}

"$AM_BIN" --version 2>&1 | tee "$WORK/alertmanager.version"

# 1. Capture sink.
(cd "$HERE" && go build -o "$WORK/capture" capture/main.go)
"$WORK/capture" -addr "$SINK_ADDR" -out "$POSTS" >"$WORK/capture.log" 2>&1 &
PIDS+=($!)
wait_http "http://$SINK_ADDR/"

# 2. Alertmanager: fresh storage, no clustering, loopback only.
"$AM_BIN" \
	--config.file="$HERE/capture.yml" \
	--storage.path="$WORK/data" \
	--web.listen-address="$AM_ADDR" \
	--web.external-url="$AM_URL" \
	--cluster.listen-address= \
	--log.level=debug >"$WORK/alertmanager.log" 2>&1 &
PIDS+=($!)
wait_http "$AM_URL/-/ready"

# 3. Scenarios. Each uses its own alertname, i.e. its own group, and we wait
#    for the expected notification(s) before starting the next one.

# firing.json / resolved.json: one critical alert, then the same alert resolved.
START=$(ts '-3 min')
FIRING_ARGS=(
	HighErrorRate severity=critical team=platform job=api
	instance=api-1.prod.example.internal:8080
	--annotation=summary='High HTTP 5xx error rate on api-1'
	--annotation=description='5.2% of requests to api-1.prod.example.internal:8080 failed with a 5xx status over the last 5 minutes (threshold 5%).'
	--annotation=runbook_url='https://runbooks.example.com/alerts/HighErrorRate?team=platform&env=prod'
	--generator-url='http://prometheus.example.internal:9090/graph?g0.expr=job%3Aerror_ratio%3Arate5m%7Bjob%3D%22api%22%7D+%3E+0.05&g0.tab=1'
	--start="$START"
)
amt alert add "${FIRING_ARGS[@]}"
wait_posts 1
take 001 firing /bearer

amt alert add "${FIRING_ARGS[@]}" --end="$(ts now)"
wait_posts 2
take 002 resolved /bearer

# Alertmanager flushes a new group immediately (skipping group_wait) when its
# first alert's startsAt is older than group_wait. For the multi-alert groups
# startsAt is therefore "now", so that group_wait (1s) collects the whole batch
# into the first notification.

# partial_resolved.json: 3 alerts in one group, then 1 of them resolved.
START=$(ts now)
backend() { # instance [endsAt]
	printf '{"labels":{"alertname":"BackendUnhealthy","severity":"warning","team":"platform","job":"lb","instance":"%s"},' "$1"
	printf '"annotations":{"summary":"Backend %s failing health checks"},' "$1"
	printf '"generatorURL":"http://prometheus.example.internal:9090/graph?g0.expr=up%%7Bjob%%3D%%22lb%%22%%7D+%%3D%%3D+0&g0.tab=1",'
	printf '"startsAt":"%s"' "$START"
	[ -n "${2:-}" ] && printf ',"endsAt":"%s"' "$2"
	printf '}'
}
printf '[%s,%s,%s]' "$(backend backend-a:8080)" "$(backend backend-b:8080)" "$(backend backend-c:8080)" | post_alerts
wait_posts 3
take 003 partial_initial_3_firing /bearer
printf '[%s]' "$(backend backend-b:8080 "$(ts now)")" | post_alerts
wait_posts 4
take 004 partial_resolved /bearer

# group_50.json / group_50_truncated.json: 50 alerts in one group, delivered to
# two webhooks of one receiver (the second with max_alerts: 5).
START=$(ts now)
{
	printf '['
	for i in $(seq 1 50); do
		[ "$i" -gt 1 ] && printf ','
		printf '{"labels":{"alertname":"FleetNodeDown","severity":"critical","team":"platform","job":"node","instance":"node-%02d.prod.example.internal:9100"},' "$i"
		printf '"annotations":{"summary":"Node node-%02d is down"},' "$i"
		printf '"generatorURL":"http://prometheus.example.internal:9090/graph?g0.expr=up%%7Bjob%%3D%%22node%%22%%7D+%%3D%%3D+0&g0.tab=1",'
		printf '"startsAt":"%s"}' "$START"
	done
	printf ']'
} | post_alerts
wait_posts 6
take "$(which_post 005 006 /fleet)" group_50 /fleet
take "$(which_post 005 006 /fleet-truncated)" group_50_truncated /fleet-truncated

# unicode_multiline.json: non-ASCII label/annotation values, emoji, and a
# multi-line description containing quotes, a tab and HTML-special characters.
# Sent through the API v2 because amtool's key=value parser rejects
# unescaped double quotes in annotation values.
python3 - "$(ts '-4 min')" <<'PY' | post_alerts
import json, sys
print(json.dumps([{
    "labels": {
        "alertname": "PaymentOverload",
        "severity": "critical",
        "team": "platform",
        "service": "Zahlungsdienst – 決済サービス",
        "site": "München",
        "owner": "Jürgen 👷",
        "instance": "pay-1.prod.example.internal:8443",
    },
    "annotations": {
        "summary": "Überlast – 負荷 🔥 on Zahlungsdienst",
        "description": "Queue depth > 10 000 jobs (Warteschlange voll).\n"
                       "負荷が高い — p99 latency 2.5 s ≥ SLO 1 s.\n"
                       "\"quoted\" & <tagged> text\twith a tab.\n"
                       "🚨 Escalate if not resolved in 15 min ✅",
        "runbook_url": "https://runbooks.example.com/alerts/PaymentOverload?lang=de&site=M%C3%BCnchen",
    },
    "generatorURL": "http://prometheus.example.internal:9090/graph?g0.expr=payment_queue_depth+%3E+10000&g0.tab=1",
    "startsAt": sys.argv[1],
}], ensure_ascii=False))
PY
wait_posts 7
take 007 unicode_multiline /bearer

# business_warning_basic_auth.json: a warning for team=business, routed via a
# child route to the receiver that uses basic auth.
amt alert add CheckoutConversionDrop severity=warning team=business \
	instance='shop-web:443' job=shop \
	--annotation=summary='Checkout conversion dropped 30% below the weekly baseline' \
	--annotation=dashboard='https://grafana.example.com/d/checkout/conversion' \
	--start="$(ts '-10 min')"
wait_posts 8
take 008 business_warning_basic_auth /basic

# 4. Derive the Alertmanager 0.35 variant of firing.json (see README.md).
python3 - "$HERE/firing.json" "$HERE/v035_firing.json" <<'PY'
import sys
src, dst = sys.argv[1], sys.argv[2]
b = open(src, "rb").read()
# 0.35 template.Data field order: receiver, status, alerts,
# notification_reason, groupLabels, commonLabels, commonAnnotations,
# routeLabels, externalURL, then version, groupKey, truncatedAlerts.
edits = [
    (b',"groupLabels":', b',"notification_reason":"first notification","groupLabels":'),
    (b',"externalURL":', b',"routeLabels":{"env":"prod","pager":"platform-oncall"},"externalURL":'),
]
for old, new in edits:
    assert b.count(old) == 1, old
    b = b.replace(old, new)
open(dst, "wb").write(b)
PY
echo "derived v035_firing.json"

# 5. Sanity checks: valid JSON, version 4, and the expected shape per scenario
#    (status, number of firing/resolved alerts, truncatedAlerts).
python3 - "$HERE" <<'PY'
import json, os, sys
d = sys.argv[1]
want = {  # file: (status, firing, resolved, truncatedAlerts)
    "firing.json": ("firing", 1, 0, 0),
    "resolved.json": ("resolved", 0, 1, 0),
    "partial_initial_3_firing.json": ("firing", 3, 0, 0),
    "partial_resolved.json": ("firing", 2, 1, 0),
    "group_50.json": ("firing", 50, 0, 0),
    "group_50_truncated.json": ("firing", 5, 0, 45),
    "unicode_multiline.json": ("firing", 1, 0, 0),
    "business_warning_basic_auth.json": ("firing", 1, 0, 0),
    "v035_firing.json": ("firing", 1, 0, 0),
}
for name, (status, nf, nr, trunc) in want.items():
    m = json.load(open(os.path.join(d, name), "rb"))
    st = [a["status"] for a in m["alerts"]]
    got = (m["status"], st.count("firing"), st.count("resolved"), m["truncatedAlerts"])
    assert m["version"] == "4", name
    assert got == (status, nf, nr, trunc), (name, got)
print("all fixtures: valid JSON, version 4, expected alert counts")
PY
