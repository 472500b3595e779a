#!/usr/bin/env bash
# Nightly: collect incrementally, then refresh the report. Quiet unless something is wrong:
# cron mails whatever this prints, and the exit status is non-zero when a source failed.
set -euo pipefail
cd "$(dirname "$0")"

# Tokens from a root-only file that cron can read; never from the config.
set -a; . /etc/deliverypulse/tokens.env; set +a

data=/var/lib/deliverypulse/data
status=0
# --wait: if last night's run is somehow still going, wait up to 30 minutes for it.
deliverypulse collect --config deliverypulse.toml --wait 1800 > /var/log/deliverypulse/last.log || status=$?
# Report even when one source failed: the others' data is fresh and still worth showing.
deliverypulse report "$data" -o /var/www/delivery/report.html > /dev/null
exit "$status"
