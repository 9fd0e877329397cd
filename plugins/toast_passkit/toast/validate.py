"""Great Expectations suites for the Toast staging tables, run from the pipeline's own tasks.

One suite per staging table. Its expectations are *blocking*: a failure means the partition
can't be trusted as a whole (missing required column, empty or unparseable key ids, key dates
that don't parse, duplicate keys) and nothing of it is staged. Row-level problems never get
here: the parser quarantines them first. Results are kept in `stg_validation_results`.

A backfill validates many business dates of one table in one suite run: the rows carry a
`business_date` column, keys must be unique per business date (a Payment Id legitimately
reappears in a later day's export), and each failure is mapped back to the business date
and lines it came from, so only the partitions whose rows failed are held back.

GX is imported lazily (it costs seconds and ~200 MB): never at DAG parse time.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from toast_passkit.toast.exports import ExportFile, Kind
from toast_passkit.toast.parse import ID_PATTERN, ParsedFile

log = logging.getLogger(__name__)
_LOCK = threading.Lock()
MAX_EXAMPLES = 5
PARTITION_COLUMN = "business_date"


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


def expectations_for(spec: ExportFile, *, per_business_date: bool = False) -> list[Any]:
    """The suite's expectations for one export file (GX expectation objects).

    With `per_business_date` the rows hold several business dates (a backfill batch) and the
    key must be unique within each date rather than over all rows.
    """
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
    key = [PARTITION_COLUMN, *spec.key] if per_business_date and spec.key else list(spec.key)
    if len(key) == 1:
        out.append(exp.ExpectColumnValuesToBeUnique(column=key[0]))
    elif key:
        out.append(exp.ExpectCompoundColumnsToBeUnique(column_list=key))
    return out


@cache
def _context() -> Any:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    ctx = gx.get_context(mode="ephemeral")
    ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    return ctx


def _suite_key(spec: ExportFile, per_business_date: bool) -> tuple:
    """What the suite depends on: header aliases from a column mapping don't change it."""
    return (spec.table, spec.key, per_business_date,
            tuple((f.name, f.kind, f.key, f.required) for f in spec.fields))


@cache
def _validation_definition_for(key: tuple) -> Any:
    import great_expectations as gx

    spec, per_business_date = _SPECS[key]
    ctx = _context()
    suffix = f"{abs(hash(key)):x}"[:8]
    source = ctx.data_sources.add_pandas(name=f"{spec.table}_source_{suffix}")
    asset = source.add_dataframe_asset(name=spec.table)
    batch = asset.add_batch_definition_whole_dataframe(f"{spec.table}_partition")
    suite = ctx.suites.add(gx.ExpectationSuite(
        name=f"{spec.suite_name}_{suffix}",
        expectations=expectations_for(spec, per_business_date=per_business_date)))
    return ctx.validation_definitions.add(
        gx.ValidationDefinition(name=f"{spec.table}_validation_{suffix}", data=batch,
                                suite=suite)
    )


_SPECS: dict[tuple, tuple[ExportFile, bool]] = {}


def _validation_definition(spec: ExportFile, per_business_date: bool) -> Any:
    key = _suite_key(spec, per_business_date)
    _SPECS.setdefault(key, (spec, per_business_date))
    return _validation_definition_for(key)


def validate_parsed(parsed: ParsedFile) -> ValidationOutcome:
    """Run the table's suite over one parsed file's key columns."""
    return validate_partitions([parsed])[0]


def validate_partitions(files: Sequence[ParsedFile]) -> list[ValidationOutcome]:
    """Run the table's suite once over parsed files of one table, one per business date.

    Returns one outcome per file, judged on that file's rows only: a failure names the
    file, column, example values and lines. One file gets the single-partition suite.
    """
    spec = files[0].spec
    per_business_date = len(files) > 1
    with _LOCK:  # GX's ephemeral context is not thread-safe
        definition = _validation_definition(spec, per_business_date)
        result = definition.run(
            batch_parameters={"dataframe": _key_frame(files)},
            result_format={"result_format": "COMPLETE",
                           "unexpected_index_column_names": [PARTITION_COLUMN, "source_row"],
                           "partial_unexpected_count": MAX_EXAMPLES},
        )
    return [_outcome(spec, result, p.source_file, _partition_key(p)) for p in files]


def _partition_key(parsed: ParsedFile) -> str:
    return parsed.business_date.isoformat() if parsed.business_date else ""


def _key_frame(files: Sequence[ParsedFile]) -> Any:
    """The key and required columns of every file, with the file's business date."""
    spec = files[0].spec
    key_cols = ["source_row"] + [f.name for f in spec.fields if f.key or f.required]
    frame = pa.concat_tables([p.rows.select(key_cols) for p in files])
    file_of_row = np.repeat(np.arange(len(files), dtype=np.int32),
                            [p.rows.num_rows for p in files])
    business_dates = pa.array([_partition_key(p) for p in files], pa.string()).take(file_of_row)
    # Categorical: GX fingerprints the whole frame, and hashing repeated strings (or Decimal
    # objects) is slow; a category hashes its codes. The suite checks only the presence of
    # the required columns that are not keys, so those are dictionary-encoded too (same
    # values); key columns keep their plain type for the null, regex and unique checks.
    keys = {f.name for f in spec.fields if f.key}
    for index, name in enumerate(frame.column_names):
        if name not in keys and name != "source_row":
            frame = frame.set_column(index, name, pc.dictionary_encode(frame.column(name)))
    return frame.append_column(PARTITION_COLUMN,
                               pc.dictionary_encode(business_dates)).to_pandas(
        date_as_object=False)


@dataclass(frozen=True)
class _Finding:
    """One expectation's result restricted to one partition's rows."""

    type: str
    kwargs: dict[str, Any]
    success: bool
    unexpected_count: Any
    examples: list[Any]
    lines: list[int]


def _findings(result: Any, partition: str) -> list[_Finding]:
    """Each expectation's result for one partition, from the whole run's unexpected rows.

    Row-level expectations list every unexpected row with its business date and line; an
    expectation without such a list (a missing column, an error) fails every partition.
    """
    out = []
    for r in result.results:
        res = r.result or {}
        cfg = r.expectation_config
        rows = res.get("unexpected_index_list")
        if r.success or not _rows_name_partitions(rows, res.get("unexpected_count")):
            lines = [int(row["source_row"]) for row in rows or [] if "source_row" in row]
            out.append(_Finding(cfg.type, cfg.kwargs, bool(r.success),
                                res.get("unexpected_count"),
                                (res.get("partial_unexpected_list") or [])[:MAX_EXAMPLES],
                                lines[:MAX_EXAMPLES]))
            continue
        mine = [row for row in rows if str(row[PARTITION_COLUMN]) == partition]
        out.append(_Finding(cfg.type, cfg.kwargs, not mine, len(mine),
                            [_example(row, cfg.kwargs) for row in mine[:MAX_EXAMPLES]],
                            [int(row["source_row"]) for row in mine[:MAX_EXAMPLES]]))
    return out


def _rows_name_partitions(rows: list[dict[str, Any]] | None, unexpected_count: Any) -> bool:
    """The unexpected rows are all listed, each with its business date and line."""
    return (rows is not None and len(rows) == unexpected_count
            and all(PARTITION_COLUMN in row and "source_row" in row for row in rows))


def _columns(kwargs: dict[str, Any]) -> Any:
    """The checked column(s), without the business date a batch adds to the key."""
    column = kwargs.get("column") or kwargs.get("column_list") or kwargs.get("column_set")
    if isinstance(column, list) and PARTITION_COLUMN in column and len(column) > 1:
        rest = [c for c in column if c != PARTITION_COLUMN]
        return rest[0] if len(rest) == 1 else rest
    return column


def _example(row: dict[str, Any], kwargs: dict[str, Any]) -> Any:
    """The offending value: one column's value, or the key columns' values by name."""
    columns = _columns(kwargs)
    if isinstance(columns, str):
        return row.get(columns)
    return {c: row.get(c) for c in columns or []}


def _outcome(spec: ExportFile, result: Any, source_file: str,
             partition: str) -> ValidationOutcome:
    findings = _findings(result, partition)
    failures = tuple(
        f"{source_file}: column {_columns(f.kwargs)!r} failed {f.type}: "
        f"{f.unexpected_count if f.unexpected_count is not None else '?'} value(s), "
        f"examples {f.examples!r} at line(s) {f.lines}"
        for f in findings if not f.success
    )
    return ValidationOutcome(
        table=spec.table, suite_name=spec.suite_name, success=not failures,
        evaluated=len(findings), failed=len(failures), failures=failures,
        result_json=json.dumps(_slim(result, findings), default=str, sort_keys=True),
    )


def _slim(result: Any, findings: list[_Finding]) -> dict[str, Any]:
    """What the data team reads, for one partition; the full unexpected lists are dropped."""
    from great_expectations.util import convert_to_json_serializable

    passed = sum(f.success for f in findings)
    return convert_to_json_serializable({
        "success": passed == len(findings),
        "statistics": {
            "evaluated_expectations": len(findings), "successful_expectations": passed,
            "unsuccessful_expectations": len(findings) - passed,
            "success_percent": passed / len(findings) * 100 if findings else None,
        },
        "expectations": [
            {"type": f.type, "success": f.success, "kwargs": f.kwargs,
             "unexpected_count": f.unexpected_count, "examples": f.examples}
            for f in findings
        ],
        "result_url": result.result_url,
    })
