#!/bin/sh
# Checks the alerting rules, their unit tests and the Alertmanager configuration.
# Needs promtool (Prometheus) and amtool (Alertmanager) on PATH; run from anywhere.
# Exits non-zero if a tool is missing or any check fails.
set -u

cd "$(dirname "$0")" || exit 2

for tool in promtool amtool; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "check.sh: $tool not found on PATH (Debian: apt-get install prometheus prometheus-alertmanager)" >&2
		exit 2
	fi
done

status=0
run() {
	echo "+ $*"
	if ! "$@"; then
		echo "check.sh: FAILED: $*" >&2
		status=1
	fi
	echo
}

run promtool check rules alert_rules.yml
run promtool test rules tests/*.yml
run amtool check-config alertmanager.yml

if [ "$status" -eq 0 ]; then
	echo "check.sh: all checks passed"
else
	echo "check.sh: some checks failed" >&2
fi
exit "$status"
