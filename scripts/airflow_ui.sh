#!/usr/bin/env bash
# Start or stop the Airflow UI on the embedded default (airflow standalone: api-server on
# :8080, scheduler, dag-processor, triggerer; SQLite metadata; DuckDB warehouse).
# It runs in its own process group so `stop` ends every process it spawned.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/local_env.sh
PIDFILE="$AIRFLOW_HOME/standalone.pid"
LOG="$AIRFLOW_HOME/standalone.log"

case "${1:-start}" in
  start)
    if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
      echo "already running (pid $(cat "$PIDFILE")); UI at http://localhost:8080"; exit 0
    fi
    # Sample data in place and the metadata database ready before the UI comes up.
    # The last 7 business days up to yesterday (restaurant time), so the scheduled run finds
    # its exports; the generator is seeded, so this is the same data on every start.
    start="$(python -c "from datetime import datetime, timedelta; from zoneinfo import ZoneInfo; \
print((datetime.now(ZoneInfo('${AIRFLOW_VAR_TOAST_TIMEZONE:-America/New_York}')) - timedelta(days=7)).date())")"
    python -m toast_passkit.toast.sample_data --root "$TOAST_PASSKIT_VAR_DIR/exports" \
      --locations 3 --days 7 --start "$start" --seed 42 >/dev/null
    python -c "from toast_passkit.devtools import init_airflow_db; init_airflow_db()"
    setsid airflow standalone >"$LOG" 2>&1 < /dev/null &
    echo $! > "$PIDFILE"
    for _ in $(seq 1 90); do
      curl -fsS http://localhost:8080/api/v2/monitor/health >/dev/null 2>&1 && break
      sleep 1
    done
    echo "Airflow UI: http://localhost:8080 (user admin, password in" \
         "$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated); log: $LOG"
    echo "Sample exports for $start and the 6 days after it are in $TOAST_PASSKIT_VAR_DIR/exports."
    echo "Trigger toast_ingest (param business_date), or backfill the week:"
    echo "  source scripts/local_env.sh && airflow backfill create --dag-id toast_ingest \\"
    echo "    --from-date $start --to-date <today> --reprocess-behavior completed"
    ;;
  stop)
    if [ -f "$PIDFILE" ]; then
      pgid="$(cat "$PIDFILE")"
      kill -TERM -- "-$pgid" 2>/dev/null || true
      for _ in $(seq 1 30); do kill -0 -- "-$pgid" 2>/dev/null || break; sleep 1; done
      kill -KILL -- "-$pgid" 2>/dev/null || true
      rm -f "$PIDFILE"
      echo "stopped"
    else
      echo "not running"
    fi
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
