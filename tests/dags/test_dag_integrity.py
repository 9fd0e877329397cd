"""Every DAG imports without secrets or a database, and follows the project's rules."""

from __future__ import annotations

from pathlib import Path

import pytest

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dag_bag():
    from airflow.dag_processing.dagbag import BundleDagBag

    return BundleDagBag(dag_folder=str(DAGS_DIR), bundle_path=DAGS_DIR)


def test_dags_import_without_errors(dag_bag) -> None:
    assert dag_bag.import_errors == {}
    assert "toast_ingest" in dag_bag.dags


def test_every_dag_has_docs_tags_and_retries(dag_bag) -> None:
    for dag_id, dag in dag_bag.dags.items():
        assert dag.tags, dag_id
        assert dag.doc_md and len(dag.doc_md) > 100, dag_id
        for task in dag.tasks:
            assert task.retries >= 1, f"{dag_id}.{task.task_id} has no retries"


def test_ingest_dag_processes_a_business_day_interval(dag_bag) -> None:
    dag = dag_bag.dags["toast_ingest"]
    from airflow.sdk import CronDataIntervalTimetable

    assert isinstance(dag.timetable, CronDataIntervalTimetable)
    ingest = dag.get_task("ingest_location")
    assert ingest.pool == "warehouse"
