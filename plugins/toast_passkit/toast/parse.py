"""Parse one Toast export CSV into typed staging rows plus quarantined (rejected) rows.

Lenient about what Toast really writes (BOM, trailing spaces, `0E-8`, M/D/YY 12-hour dates
as well as the documented `MM/DD/YYYY HH:MM:SS`, renamed or reordered columns), strict about
what matters: a missing required column fails the file; a row that can't be read or typed
is quarantined with its line number, field, value and reason; key fields are left for the
validation suite to judge (an unparseable key fails the whole partition).

Typing runs in an in-memory DuckDB over an Arrow table of strings, so money stays exact.
"""

from __future__ import annotations

import csv
import threading
from dataclasses import dataclass, field
from datetime import date, timedelta

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from toast_passkit.toast.exports import ExportFile, Field, Kind, match_header

TIMESTAMP_FORMATS = [
    "%m/%d/%y %I:%M %p",      # real files: 8/22/24 11:00 AM
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y %H:%M:%S",      # documented: 08/22/2024 13:00:05
    "%m/%d/%y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%y %H:%M",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%m/%d/%y",
    "%m/%d/%Y",
    "%Y-%m-%d",
]
DATE_FORMATS = ["%m/%d/%y", "%m/%d/%Y", "%Y-%m-%d", "%Y%m%d"]
TRUE_VALUES = ("true", "t", "yes", "y", "1")
FALSE_VALUES = ("false", "f", "no", "n", "0")
ID_PATTERN = r"^[0-9]{1,20}$"
# A partition's rows may be dated on the business date or on the next calendar day (the
# business day closes at the closeout hour, 04:00 by default).
PARTITION_DAYS_AFTER = 1
MAX_REJECT_VALUE = 500


class ExportFileError(ValueError):
    """A whole file can't be used: empty, no header, a required column missing."""


@dataclass(frozen=True)
class Reject:
    """One quarantined value: the row is not staged, the reason is kept."""

    source_row: int
    field: str
    value: str | None
    reason: str


@dataclass
class ParsedFile:
    """Typed rows of one export file, its quarantined rows and header facts."""

    spec: ExportFile
    source_file: str
    rows: pa.Table                      # staging columns (without partition/lineage columns)
    raw_keys: pa.Table                  # source_row + raw text of key fields, for messages
    rejects: list[Reject] = field(default_factory=list)
    rows_read: int = 0
    unmapped_columns: list[str] = field(default_factory=list)

    @property
    def rows_rejected(self) -> int:
        return len({r.source_row for r in self.rejects})


def _sql_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _typed_expr(f: Field) -> str:
    raw = f'NULLIF(TRIM("{f.name}"), \'\')'
    match f.kind:
        case Kind.ID:
            # Keys stay text for the validation suite; non-key ids are checked here.
            return raw
        case Kind.TEXT:
            return raw
        case Kind.MONEY:
            return f"TRY_CAST({raw} AS DECIMAL(12,2))"
        case Kind.TAX:
            return f"TRY_CAST({raw} AS DECIMAL(18,8))"
        case Kind.QTY:
            return f"TRY_CAST({raw} AS DECIMAL(12,4))"
        case Kind.INT:
            return f"TRY_CAST(TRY_CAST({raw} AS DECIMAL(18,4)) AS INTEGER)"
        case Kind.BOOL:
            low = f"LOWER({raw})"
            return (f"CASE WHEN {low} IN {TRUE_VALUES} THEN TRUE "
                    f"WHEN {low} IN {FALSE_VALUES} THEN FALSE END")
        case Kind.TIMESTAMP:
            fmts = "[" + ", ".join(_sql_str(x) for x in TIMESTAMP_FORMATS) + "]"
            return f"TRY_STRPTIME({raw}, {fmts})"
        case Kind.DATE:
            fmts = "[" + ", ".join(_sql_str(x) for x in DATE_FORMATS) + "]"
            return f"CAST(TRY_STRPTIME({raw}, {fmts}) AS DATE)"
    raise AssertionError(f.kind)


def _problem_expr(f: Field, business_date: date) -> str | None:
    """SQL giving a reject reason for this field's value, or NULL when it is fine."""
    if f.key and f.kind in (Kind.ID, Kind.TIMESTAMP, Kind.DATE) and not f.partition_date:
        return None  # judged by the validation suite (blocking)
    raw = f'NULLIF(TRIM("{f.name}"), \'\')'
    typed = f'"{f.name}__typed"'
    cases = []
    if f.not_null:
        cases.append(f"WHEN {raw} IS NULL THEN 'empty value'")
    if f.kind is Kind.ID:
        cases.append(f"WHEN {raw} IS NOT NULL AND NOT regexp_matches({raw}, '{ID_PATTERN}') "
                     "THEN 'not a Toast id (digits only)'")
    elif f.kind is not Kind.TEXT and not f.key:
        cases.append(f"WHEN {raw} IS NOT NULL AND {typed} IS NULL "
                     f"THEN 'not a valid {f.kind.value}'")
    if f.non_negative:
        cases.append(f"WHEN {typed} < 0 THEN 'negative amount'")
    if f.partition_date:
        first = business_date.isoformat()
        last = (business_date + timedelta(days=PARTITION_DAYS_AFTER)).isoformat()
        cases.append(
            f"WHEN {typed} IS NOT NULL AND (CAST({typed} AS DATE) < DATE '{first}' "
            f"OR CAST({typed} AS DATE) > DATE '{last}') "
            f"THEN 'date outside business date {first}'"
        )
    if not cases:
        return None
    return "CASE " + " ".join(cases) + " END"


def _decode_lines(data: bytes, source_file: str) -> tuple[list[tuple[int, str]], list[Reject]]:
    """Physical lines (1-based numbers) as text; lines that are not UTF-8 are quarantined."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        text = data.decode("utf-8")
        return list(enumerate(text.splitlines(keepends=True), start=1)), []
    except UnicodeDecodeError:
        pass
    lines: list[tuple[int, str]] = []
    rejects: list[Reject] = []
    for number, chunk in enumerate(data.splitlines(keepends=True), start=1):
        try:
            lines.append((number, chunk.decode("utf-8")))
        except UnicodeDecodeError as exc:
            if number == 1:
                raise ExportFileError(f"{source_file}: header line is not UTF-8 ({exc})") from exc
            value = chunk.decode("utf-8", errors="replace")[:MAX_REJECT_VALUE]
            rejects.append(Reject(number, "*", value, f"invalid UTF-8 bytes at {exc.start}"))
    return lines, rejects


def parse_export(spec: ExportFile, data: bytes, *, source_file: str,
                 business_date: date) -> ParsedFile:
    """Parse one export file's bytes. Raises ExportFileError when the file is unusable."""
    if not data.strip():
        raise ExportFileError(f"{source_file}: file is empty (no header row)")
    lines, rejects = _decode_lines(data, source_file)
    header_number, header_text = lines[0]
    header = next(csv.reader([header_text]))
    match = match_header(spec, header)
    if match.missing_required:
        raise ExportFileError(
            f"{source_file}: required column(s) missing: {', '.join(match.missing_required)} "
            f"(header has: {', '.join(h.strip() for h in header)})"
        )

    width = len(header)
    good: list[list[str]] = []
    source_rows: list[int] = []
    seen: dict[tuple[str, ...], int] = {}
    rows_read = 0
    body = lines[1:]
    reader = csv.reader(text for _, text in body)
    line_numbers = [n for n, _ in body]
    consumed = 0
    for record in reader:
        start = line_numbers[consumed] if consumed < len(line_numbers) else header_number + 1
        consumed = reader.line_num
        if not record or (len(record) == 1 and not record[0].strip()):
            continue  # blank line
        rows_read += 1
        if len(record) != width:
            is_last = consumed >= len(line_numbers)
            why = "truncated last line" if is_last and len(record) < width else "malformed line"
            rejects.append(Reject(start, "*", ",".join(record)[:MAX_REJECT_VALUE],
                                  f"{why}: {len(record)} fields, header has {width}"))
            continue
        first = seen.setdefault(tuple(record), start)
        if first != start:
            rejects.append(Reject(start, "*", None, f"duplicate of line {first}"))
            continue
        good.append(record)
        source_rows.append(start)
    # Transpose once (C speed) instead of appending field by field.
    transposed = list(zip(*good, strict=True)) if good else [()] * width
    columns = {name: transposed[pos] for name, pos in match.positions.items()}
    rows_read += sum(1 for r in rejects if "UTF-8" in r.reason)

    raw = pa.table({"source_row": pa.array(source_rows, pa.int32()),
                    **{name: pa.array(list(values), pa.string())
                       for name, values in columns.items()}})
    rows, key_raw, typed_rejects = _type_rows(spec, raw, match.positions, business_date)
    rejects.extend(typed_rejects)
    return ParsedFile(spec=spec, source_file=source_file, rows=rows, raw_keys=key_raw,
                      rejects=sorted(rejects, key=lambda r: (r.source_row, r.field)),
                      rows_read=rows_read, unmapped_columns=match.unmapped)


_LOCAL = threading.local()


def _duck() -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB per thread: opening one per file costs more than the parse."""
    con = getattr(_LOCAL, "con", None)
    if con is None:
        con = _LOCAL.con = duckdb.connect()
    return con


def _type_rows(spec: ExportFile, raw: pa.Table, positions: dict[str, int],
               business_date: date) -> tuple[pa.Table, pa.Table, list[Reject]]:
    """Type every column and find every row-level problem in one DuckDB query."""
    present = [f for f in spec.fields if f.name in positions]
    problems = {f.name: expr for f in present
                if (expr := _problem_expr(f, business_date)) is not None}
    typed = ", ".join(f'{_typed_expr(f)} AS "{f.name}__typed"' for f in present)
    checks = "".join(f', {expr} AS "{name}__problem"' for name, expr in problems.items())
    con = _duck()
    con.register("raw_rows", raw)
    try:
        result = con.sql(
            f"SELECT * , {checks[2:] or 'NULL AS _none'} FROM "
            f"(SELECT *, {typed} FROM raw_rows) typed ORDER BY source_row"
        ).to_arrow_table()
    finally:
        con.unregister("raw_rows")

    rejects: list[Reject] = []
    accepted = pa.array([True] * result.num_rows, pa.bool_())
    for name in problems:
        reasons = result.column(f"{name}__problem")
        if reasons.null_count == len(reasons):
            continue
        bad = pc.is_valid(reasons)
        accepted = pc.and_(accepted, pc.invert(bad))
        for row, value, reason in zip(
            pc.filter(result.column("source_row"), bad).to_pylist(),
            pc.filter(result.column(name), bad).to_pylist(),
            pc.filter(reasons, bad).to_pylist(), strict=True,
        ):
            rejects.append(Reject(row, name, value, reason))
    kept = result.filter(accepted) if rejects else result

    columns = {"source_row": kept.column("source_row")}
    for f in spec.fields:
        if f.name in positions:
            columns[f.name] = kept.column(f"{f.name}__typed")
        else:  # an absent optional column becomes NULLs of the right type
            columns[f.name] = pa.nulls(kept.num_rows, _ARROW_TYPES[f.kind])
    rows = pa.table(columns)
    key_fields = [f.name for f in spec.fields if f.key and f.name in positions]
    key_raw = kept.select(["source_row", *key_fields])
    return rows, key_raw, rejects


_ARROW_TYPES = {
    Kind.ID: pa.string(), Kind.TEXT: pa.string(), Kind.MONEY: pa.decimal128(12, 2),
    Kind.TAX: pa.decimal128(18, 8), Kind.QTY: pa.decimal128(12, 4), Kind.INT: pa.int32(),
    Kind.BOOL: pa.bool_(), Kind.TIMESTAMP: pa.timestamp("us"), Kind.DATE: pa.date32(),
}
