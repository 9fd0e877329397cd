"""Helpers for running the project's DAGs in-process (demo, tests, benchmarks)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from toast_passkit.settings import PROJECT_ROOT

DAGS_DIR = PROJECT_ROOT / "dags"
POOLS = {"warehouse": (1, "Tasks writing to the warehouse (1 slot: DuckDB has one writer)")}


def load_dag(dag_id: str, dags_dir: Path = DAGS_DIR, retries: int | None = None) -> Any:
    """Parse the dags folder as Airflow's DAG processor does and return one DAG."""
    from airflow.dag_processing.dagbag import BundleDagBag

    bag = BundleDagBag(dag_folder=str(dags_dir), bundle_path=dags_dir)
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    dag = bag.dags[dag_id]
    if retries is not None:
        for task in dag.tasks:
            task.retries = retries
    return dag


def init_airflow_db() -> None:
    """Create or upgrade the Airflow metadata database and the project's pools."""
    subprocess.run(["airflow", "db", "migrate"], check=True, stdout=subprocess.DEVNULL)
    for name, (slots, description) in POOLS.items():
        subprocess.run(["airflow", "pools", "set", name, str(slots), description], check=True,
                       stdout=subprocess.DEVNULL)


def run_dag(dag_id: str, **kwargs: Any) -> Any:
    """One in-process DAG run (`dag.test`); raises when the run does not succeed."""
    run = load_dag(dag_id).test(**kwargs)
    if run.state != "success":
        raise RuntimeError(f"{dag_id} run {run.run_id} ended {run.state}")
    return run
