# Environment of the embedded default: Airflow home, SQLite metadata, DuckDB warehouse and
# sample exports, all under var/ inside the project. Sourced by `make demo` and `make ui`.
# A value already set in the environment (e.g. from your .env) wins.
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VAR="${TOAST_PASSKIT_VAR_DIR:-$ROOT/var}"
export TOAST_PASSKIT_VAR_DIR="$VAR"
export PATH="$ROOT/.venv/bin:$PATH"
export AIRFLOW_HOME="${AIRFLOW_HOME:-$VAR/airflow}"
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-sqlite:///$AIRFLOW_HOME/airflow.db}"
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$ROOT/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
export AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="${AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL:-30}"
export GX_ANALYTICS_ENABLED=False
export PYTHONPATH="$ROOT/plugins:$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export AIRFLOW_CONN_TOAST_WAREHOUSE="${AIRFLOW_CONN_TOAST_WAREHOUSE:-{\"conn_type\": \"duckdb\", \"host\": \"$VAR/warehouse.duckdb\"}}"
export AIRFLOW_CONN_TOAST_EXPORTS="${AIRFLOW_CONN_TOAST_EXPORTS:-{\"conn_type\": \"fs\", \"extra\": {\"path\": \"$VAR/exports\"}}}"
export AIRFLOW_VAR_TOAST_ARCHIVE_ROOT="${AIRFLOW_VAR_TOAST_ARCHIVE_ROOT:-$VAR/archive}"
mkdir -p "$AIRFLOW_HOME"
