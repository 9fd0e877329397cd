"""Great Expectations suites for the Toast staging tables, run from the pipeline's own tasks.

One suite per staging table. Its expectations are *blocking*: a failure means the partition
can't be trusted as a whole (missing required column, empty or unparseable key ids, key dates
that don't parse, duplicate keys) and nothing of it is staged. Row-level problems never get
here: the parser quarantines them first. Results are kept in `stg_validation_results`.

GX is imported lazily (it costs seconds and ~200 MB): never at DAG parse time.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from dataclasses import dataclass
from functools import cache
from typing import Any

from toast_passkit.toast.exports import ExportFile, Kind
from toast_passkit.toast.parse import ID_PATTERN, ParsedFile

log = logging.getLogger(__name__)
_LOCK = threading.Lock()
MAX_EXAMPLES = 5


class PartitionValidationError(ValueError):
    """A blocking expectation failed: the partition is not staged."""


@dataclass(frozen=True)
class ValidationOutcome:
    """What a suite found in one parsed file."""

    table: str
    suite_name: str
    success: bool
    evaluated: int
    failed: int
    failures: tuple[str, ...]   # human messages naming file, column and example values
    result_json: str


def expectations_for(spec: ExportFile) -> list[Any]:
    """The suite's expectations for one export file (GX expectation objects)."""
    import great_expectations as gx

    exp = gx.expectations
    required = ["source_row"] + [f.name for f in spec.fields if f.required or f.key]
    # One expectation for every required column (cheaper than one per column).
    out: list[Any] = [exp.ExpectTableColumnsToMatchSet(column_set=required, exact_match=False)]
    for f in spec.fields:
        if not f.key:
            continue
        out.append(exp.ExpectColumnValuesToNotBeNull(column=f.name))
        if f.kind is Kind.ID:
            out.append(exp.ExpectColumnValuesToMatchRegex(column=f.name, regex=ID_PATTERN))
    if len(spec.key) == 1:
        out.append(exp.ExpectColumnValuesToBeUnique(column=spec.key[0]))
    elif spec.key:
        out.append(exp.ExpectCompoundColumnsToBeUnique(column_list=list(spec.key)))
    return out


@cache
def _context() -> Any:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    return ctx


def _suite_key(spec: ExportFile) -> tuple:
    """What the suite depends on: header aliases from a column mapping don't change it."""
    return (spec.table, spec.key,
            tuple((f.name, f.kind, f.key, f.required) for f in spec.fields))


@cache
def _validation_definition_for(key: tuple) -> Any:
    import great_expectations as gx

    spec = _SPECS[key]
    ctx = _context()
    suffix = f"{abs(hash(key)):x}"[:8]
    source = ctx.data_sources.add_pandas(name=f"{spec.table}_source_{suffix}")
    asset = source.add_dataframe_asset(name=spec.table)
    batch = asset.add_batch_definition_whole_dataframe(f"{spec.table}_partition")
    suite = ctx.suites.add(gx.ExpectationSuite(name=f"{spec.suite_name}_{suffix}",
                                               expectations=expectations_for(spec)))
    return ctx.validation_definitions.add(
        gx.ValidationDefinition(name=f"{spec.table}_validation_{suffix}", data=batch,
                                suite=suite)
    )


_SPECS: dict[tuple, ExportFile] = {}


def _validation_definition(spec: ExportFile) -> Any:
    key = _suite_key(spec)
    _SPECS.setdefault(key, spec)
    return _validation_definition_for(key)


def validate_parsed(parsed: ParsedFile) -> ValidationOutcome:
    """Run the table's suite over the parsed rows' key columns."""
    spec = parsed.spec
    key_cols = ["source_row"] + [f.name for f in spec.fields if f.key or f.required]
    frame = parsed.rows.select(key_cols).to_pandas()
    with _LOCK:  # GX's ephemeral context is not thread-safe
        definition = _validation_definition(spec)
        result = definition.run(
            batch_parameters={"dataframe": frame},
            result_format={"result_format": "COMPLETE",
                           "unexpected_index_column_names": ["source_row"],
                           "partial_unexpected_count": MAX_EXAMPLES},
        )
    described = result.describe_dict()
    failures = []
    for r in result.results:
        if r.success:
            continue
        cfg = r.expectation_config
        column = (cfg.kwargs.get("column") or cfg.kwargs.get("column_list")
                  or cfg.kwargs.get("column_set"))
        res = r.result or {}
        rows = [int(d.get("source_row")) for d in (res.get("unexpected_index_list") or [])]
        values = (res.get("partial_unexpected_list") or [])[:MAX_EXAMPLES]
        failures.append(
            f"{parsed.source_file}: column {column!r} failed {cfg.type}: "
            f"{res.get('unexpected_count', '?')} value(s), examples {values!r} "
            f"at line(s) {rows[:MAX_EXAMPLES]}"
        )
    stats = described.get("statistics", {})
    return ValidationOutcome(
        table=spec.table, suite_name=spec.suite_name, success=bool(result.success),
        evaluated=int(stats.get("evaluated_expectations", 0)),
        failed=int(stats.get("unsuccessful_expectations", 0)),
        failures=tuple(failures),
        result_json=json.dumps(_slim(described), default=str, sort_keys=True),
    )


def _slim(described: dict[str, Any]) -> dict[str, Any]:
    """Keep what the data team reads; drop full unexpected lists (they repeat the data)."""
    out = {k: v for k, v in described.items() if k != "expectations"}
    out["expectations"] = [
        {"type": e.get("expectation_type") or e.get("type"), "success": e.get("success"),
         "kwargs": e.get("kwargs"),
         "unexpected_count": (e.get("result") or {}).get("unexpected_count"),
         "examples": ((e.get("result") or {}).get("partial_unexpected_list") or [])[:MAX_EXAMPLES]}
        for e in described.get("expectations", [])
    ]
    return out
