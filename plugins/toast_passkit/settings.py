"""Pipeline settings: validated once, from Airflow Variables or environment, with defaults.

Every setting has an Airflow Variable name (set in the UI or as `AIRFLOW_VAR_<NAME>`); the
README and `.env.example` list them. Connections (warehouse, export source, PassKit) are
Airflow connections, not settings.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

PROJECT_ROOT = Path(__file__).resolve().parents[2]
VAR_DIR = Path(os.environ.get("TOAST_PASSKIT_VAR_DIR", PROJECT_ROOT / "var"))


class PipelineSettings(BaseModel):
    """What a deployment can set without touching code."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    archive_root: Path = Field(default=VAR_DIR / "archive",
                               description="Variable toast_archive_root: raw export archive")
    location_ids: list[str] | None = Field(
        default=None, description="Variable toast_location_ids: JSON list or comma-separated; "
        "unset = every location folder found in the export source")
    column_mapping: dict[str, dict[str, list[str]]] = Field(
        default_factory=dict, description="Variable toast_column_mapping: extra header names")
    program_file: Path = Field(default=PROJECT_ROOT / "include" / "program.example.yaml",
                               description="Variable loyalty_program_file: the program YAML")
    timezone: str = Field(default="America/New_York",
                          description="Variable toast_timezone: restaurant-local time zone")

    @field_validator("location_ids", mode="before")
    @classmethod
    def _locations(cls, value: Any) -> Any:
        if isinstance(value, str):
            from toast_passkit.toast.sources import parse_location_list

            return parse_location_list(value)
        return value

    @field_validator("column_mapping", mode="before")
    @classmethod
    def _mapping(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value


VARIABLES = {
    "archive_root": "toast_archive_root",
    "location_ids": "toast_location_ids",
    "column_mapping": "toast_column_mapping",
    "program_file": "loyalty_program_file",
    "timezone": "toast_timezone",
}


def load_settings() -> PipelineSettings:
    """Settings from Airflow Variables (which also read `AIRFLOW_VAR_*` env vars)."""
    from airflow.sdk import Variable

    values = {}
    for field_name, var_name in VARIABLES.items():
        value = Variable.get(var_name, default=None)
        if value not in (None, ""):
            values[field_name] = value
    return PipelineSettings(**values)


def timezone_at_parse_time() -> str:
    """The restaurant time zone for schedules, read from the environment (no DB at parse)."""
    return os.environ.get("AIRFLOW_VAR_TOAST_TIMEZONE", "America/New_York")
