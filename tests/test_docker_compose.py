"""docker-compose.yaml is loadable and wires the production shape (no Docker engine here)."""

from __future__ import annotations

from pathlib import Path

import yaml

COMPOSE = Path(__file__).resolve().parents[1] / "docker-compose.yaml"


def test_compose_has_the_production_services_and_settings() -> None:
    spec = yaml.safe_load(COMPOSE.read_text())
    services = spec["services"]
    assert {"postgres", "redis", "airflow-apiserver", "airflow-scheduler",
            "airflow-dag-processor", "airflow-worker", "airflow-triggerer",
            "airflow-init"} <= set(services)
    worker = services["airflow-worker"]["environment"]
    assert worker["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert worker["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
    assert '"conn_type": "postgres"' in worker["AIRFLOW_CONN_TOAST_WAREHOUSE"]
    for name in ("airflow-apiserver", "airflow-scheduler", "airflow-worker"):
        mounts = services[name]["volumes"]
        assert {"./dags:/opt/airflow/dags", "./plugins:/opt/airflow/plugins",
                "./include:/opt/airflow/include"} <= set(mounts), name
        # One JWT secret shared by every component, as Airflow 3 requires.
        env = services[name]["environment"]
        assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == worker["AIRFLOW__API_AUTH__JWT_SECRET"]
    assert "pools set warehouse" in "\n".join(services["airflow-init"]["command"])
