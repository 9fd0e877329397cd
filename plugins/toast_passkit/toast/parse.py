"""Parse Toast export CSVs into typed staging rows plus quarantined (rejected) rows.

Lenient about what Toast really writes (BOM, trailing spaces, `0E-8`, M/D/YY 12-hour dates
as well as the documented `MM/DD/YYYY HH:MM:SS`, renamed or reordered columns), strict about
what matters: a missing required column fails the file; a row that can't be read or typed
is quarantined with its line number, field, value and reason; key fields are left for the
validation suite to judge (an unparseable key fails the whole partition).

Two steps, so a backfill pays the per-query cost once per batch rather than once per file:
`read_export` splits one file into raw text rows (Python's csv module, exact line numbers);
`type_exports` types the raw rows of any number of files of one kind in one in-memory DuckDB
query over Arrow tables of strings, so money stays exact. `parse_export` is both for one file.
"""

from __future__ import annotations

import csv
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import cache

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from toast_passkit.toast.exports import ExportFile, Field, HeaderMatch, Kind, match_header

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
# Columns added to a typing batch: which file a row came from, and that file's business date.
_FILE_INDEX = "__file_index"
_BUSINESS_DATE = "__business_date"


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
class RawExport:
    """One export file read as text: its rows' raw strings, before typing."""

    spec: ExportFile
    source_file: str
    business_date: date
    raw: pa.Table                       # source_row + one string column per field present
    rejects: list[Reject] = field(default_factory=list)
    rows_read: int = 0
    unmapped_columns: list[str] = field(default_factory=list)


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
    business_date: date | None = None   # the partition the file was exported for

    @property
    def rows_rejected(self) -> int:
        return len({r.source_row for r in self.rejects})


def parse_export(spec: ExportFile, data: bytes, *, source_file: str,
                 business_date: date) -> ParsedFile:
    """Parse one export file's bytes. Raises ExportFileError when the file is unusable."""
    raw = read_export(spec, data, source_file=source_file, business_date=business_date)
    return type_exports([raw])[0]


# -- reading: bytes -> raw text rows with their line numbers -----------------------------------

def read_export(spec: ExportFile, data: bytes, *, source_file: str,
                business_date: date) -> RawExport:
    """Split one export file into raw rows; unreadable lines are quarantined.

    Raises ExportFileError when the file is unusable (empty, no header, required column missing).
    """
    if not data.strip():
        raise ExportFileError(f"{source_file}: file is empty (no header row)")
    lines = _plain_lines(data)
    raw = _read_plain(spec, lines, source_file, business_date) if lines else None
    return raw if raw is not None else _read_any(spec, data, source_file, business_date)


# Characters that make a line more than one comma-split record: quoting (a quoted value may
# hold commas or line breaks), NUL, and the line breaks str.splitlines knows but csv doesn't.
_NOT_PLAIN = ('"', "\x00", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028",
              "\u2029")


def _plain_lines(data: bytes) -> list[str] | None:
    """The file's lines when each line is one record split on commas, else None."""
    try:
        text = _without_bom(data).decode("utf-8")
    except UnicodeDecodeError:
        return None
    if any(c in text for c in _NOT_PLAIN):
        return None
    return text.splitlines()


def _read_plain(spec: ExportFile, lines: list[str], source_file: str,
                business_date: date) -> RawExport | None:
    """Read a plain file in Arrow (no Python per line); None unless every line is a clean row.

    In a file without quotes the csv module's record is exactly the line split on commas,
    so the result is what `_read_any` gives. Blank, short, long or duplicate lines send the
    file to `_read_any`, which words their rejects.
    """
    header = lines[0].split(",")
    match = _match_required(spec, header, source_file)
    body = pa.array(lines[1:], pa.string())
    records = pc.split_pattern(body, ",")
    if not _clean_rows(body, records, len(header)):
        return None
    first_line = 2  # the header is line 1
    raw = pa.table({
        "source_row": pa.array(np.arange(first_line, first_line + len(body), dtype=np.int32)),
        **{name: pc.list_element(records, pos) for name, pos in match.positions.items()},
    })
    return RawExport(spec=spec, source_file=source_file, business_date=business_date, raw=raw,
                     rows_read=len(body), unmapped_columns=match.unmapped)


def _clean_rows(body: pa.Array, records: pa.Array, width: int) -> bool:
    """Every line has the header's width (so none is blank) and no line repeats another."""
    if width < 2:
        return False  # a blank line would pass for a one-column row
    if not len(body):
        return True
    lengths = pc.min_max(pc.list_value_length(records)).as_py()
    return (lengths == {"min": width, "max": width}
            and pc.count_distinct(body).as_py() == len(body))


def _read_any(spec: ExportFile, data: bytes, source_file: str,
              business_date: date) -> RawExport:
    """Read any file with Python's csv module, line by line, quarantining what can't be read."""
    lines, rejects = _decode_lines(data, source_file)
    header = next(csv.reader([lines[0][1]]))
    match = _match_required(spec, header, source_file)
    good, source_rows, record_rejects, rows_read = _read_records(lines, len(header))
    rejects.extend(record_rejects)
    rows_read += sum(1 for r in rejects if "UTF-8" in r.reason)
    return RawExport(spec=spec, source_file=source_file, business_date=business_date,
                     raw=_raw_table(good, source_rows, match, len(header)), rejects=rejects,
                     rows_read=rows_read, unmapped_columns=match.unmapped)


def _decode_lines(data: bytes, source_file: str) -> tuple[list[tuple[int, str]], list[Reject]]:
    """Physical lines (1-based numbers) as text; lines that are not UTF-8 are quarantined."""
    data = _without_bom(data)
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


def _without_bom(data: bytes) -> bytes:
    return data[3:] if data.startswith(b"\xef\xbb\xbf") else data


def _match_required(spec: ExportFile, header: list[str], source_file: str) -> HeaderMatch:
    match = match_header(spec, header)
    if match.missing_required:
        raise ExportFileError(
            f"{source_file}: required column(s) missing: {', '.join(match.missing_required)} "
            f"(header has: {', '.join(h.strip() for h in header)})"
        )
    return match


def _read_records(lines: list[tuple[int, str]], width: int,
                  ) -> tuple[list[list[str]], list[int], list[Reject], int]:
    """Body records that have the header's width, each first seen once, with start lines."""
    body = lines[1:]
    records = list(csv.reader(text for _, text in body))
    if len(records) == len(body) and _clean_records(records, width):
        # As many records as lines: each record is one line (the common case, no loop).
        return records, [n for n, _ in body], [], len(records)
    return _read_records_one_by_one(lines, width)


def _clean_records(records: list[list[str]], width: int) -> bool:
    """Every record has the header's width (so none is blank) and none repeats another."""
    return (width > 1 and all(n == width for n in map(len, records))
            and len(set(map(tuple, records))) == len(records))


def _read_records_one_by_one(lines: list[tuple[int, str]], width: int,
                             ) -> tuple[list[list[str]], list[int], list[Reject], int]:
    """The general case: blank, malformed, duplicate and multi-line records, line by line."""
    header_number = lines[0][0]
    body = lines[1:]
    line_numbers = [n for n, _ in body]
    reader = csv.reader(text for _, text in body)
    good: list[list[str]] = []
    source_rows: list[int] = []
    rejects: list[Reject] = []
    seen: dict[tuple[str, ...], int] = {}
    rows_read = consumed = 0
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
    return good, source_rows, rejects, rows_read


def _raw_table(good: list[list[str]], source_rows: list[int], match: HeaderMatch,
               width: int) -> pa.Table:
    # Transpose once (C speed) instead of appending field by field.
    transposed = list(zip(*good, strict=True)) if good else [()] * width
    return pa.table({"source_row": pa.array(source_rows, pa.int32()),
                     **{name: pa.array(transposed[pos], pa.string())
                        for name, pos in match.positions.items()}})


# -- typing: raw text rows -> typed rows + row-level rejects, one query per batch -------------

def type_exports(raws: Sequence[RawExport]) -> list[ParsedFile]:
    """Type the raw rows of files of one kind, one DuckDB query per column layout.

    Each file keeps its own business date for the date-window check, its own line numbers
    and rejects; the result lists one ParsedFile per input, in input order.
    """
    layouts: dict[tuple[str, ...], list[int]] = {}
    for i, raw in enumerate(raws):
        layouts.setdefault(tuple(raw.raw.column_names), []).append(i)
    parsed: list[ParsedFile | None] = [None] * len(raws)
    for indexes in layouts.values():
        group = [raws[i] for i in indexes]
        for i, typed in zip(indexes, _type_batch(group), strict=True):
            parsed[i] = typed
    return [p for p in parsed if p is not None]


_LOCAL = threading.local()


@cache
def _database() -> duckdb.DuckDBPyConnection:
    """One in-memory DuckDB for the process: opening one costs more than typing a file.

    One thread: typing runs beside the ingest's main thread (see ingest.py), which it should
    not crowd out; a query over a month of one location's files takes well under a second.
    """
    return duckdb.connect(config={"threads": 1})


def _duck() -> duckdb.DuckDBPyConnection:
    """This thread's connection to the in-memory DuckDB (a cursor costs next to nothing)."""
    con = getattr(_LOCAL, "con", None)
    if con is None:
        con = _LOCAL.con = _database().cursor()
    return con


def _type_batch(raws: list[RawExport]) -> list[ParsedFile]:
    """Type every column and find every row-level problem of same-layout files in one query."""
    spec = raws[0].spec
    present = [f for f in spec.fields if f.name in raws[0].raw.column_names]
    result = _run_typing_query(present, _batch_table(raws))
    rejects, accepted = _typed_rejects(present, result)
    kept = result.filter(accepted) if rejects else result
    bounds = np.searchsorted(kept.column(_FILE_INDEX).to_numpy(), np.arange(len(raws) + 1))
    rejects_by_file: dict[int, list[Reject]] = {}
    for index, reject in rejects:
        rejects_by_file.setdefault(index, []).append(reject)
    out = []
    for i, raw in enumerate(raws):
        rows = kept.slice(bounds[i], bounds[i + 1] - bounds[i])
        file_rejects = raw.rejects + rejects_by_file.get(i, [])
        out.append(ParsedFile(
            spec=spec, source_file=raw.source_file, business_date=raw.business_date,
            rows=_staging_columns(spec, rows, present),
            raw_keys=rows.select(["source_row", *(f.name for f in present if f.key)]),
            rejects=sorted(file_rejects, key=lambda r: (r.source_row, r.field)),
            rows_read=raw.rows_read, unmapped_columns=raw.unmapped_columns,
        ))
    return out


def _batch_table(raws: list[RawExport]) -> pa.Table:
    """The raw rows of every file, tagged with the file's index and business date."""
    tagged = []
    for i, raw in enumerate(raws):
        n = raw.raw.num_rows
        tagged.append(raw.raw
                      .append_column(_FILE_INDEX, pa.array(np.full(n, i, np.int32)))
                      .append_column(_BUSINESS_DATE, pa.array(
                          np.full(n, np.datetime64(raw.business_date, "D")), pa.date32())))
    # One chunk: DuckDB then returns the rows in this order (see _run_typing_query).
    return pa.concat_tables(tagged).combine_chunks()


def _run_typing_query(present: list[Field], raw: pa.Table) -> pa.Table:
    problems = {f.name: expr for f in present if (expr := _problem_expr(f)) is not None}
    typed = ", ".join(f'{_typed_expr(f)} AS "{f.name}__typed"' for f in present)
    checks = "".join(f', {expr} AS "{name}__problem"' for name, expr in problems.items())
    con = _duck()
    con.register("raw_rows", raw)
    try:
        # No ORDER BY: sorting every column costs more than the typing, and DuckDB keeps the
        # insertion order of a one-chunk table; _in_file_order checks, sorting if it did not.
        result = con.sql(
            f"SELECT * , {checks[2:] or 'NULL AS _none'} FROM "
            f"(SELECT *, {typed} FROM raw_rows) typed"
        ).to_arrow_table()
    finally:
        con.unregister("raw_rows")
    return result if _in_file_order(result) else result.sort_by(
        [(_FILE_INDEX, "ascending"), ("source_row", "ascending")])


def _in_file_order(rows: pa.Table) -> bool:
    """Rows are ordered by file, then line (each file's lines are unique and increasing)."""
    order = (rows.column(_FILE_INDEX).to_numpy().astype(np.int64) << 32) + rows.column(
        "source_row").to_numpy()
    return bool(np.all(order[1:] > order[:-1]))


def _typed_rejects(present: list[Field], result: pa.Table,
                   ) -> tuple[list[tuple[int, Reject]], pa.Array]:
    """(file index, reject) for every problem the query found, and the mask of clean rows."""
    rejects: list[tuple[int, Reject]] = []
    accepted = pa.array(np.ones(result.num_rows, np.bool_))
    for f in present:
        if f"{f.name}__problem" not in result.column_names:
            continue
        reasons = result.column(f"{f.name}__problem")
        if reasons.null_count == len(reasons):
            continue
        bad = pc.is_valid(reasons)
        accepted = pc.and_(accepted, pc.invert(bad))
        for index, row, value, reason in zip(
            *(pc.filter(result.column(c), bad).to_pylist()
              for c in (_FILE_INDEX, "source_row", f.name)),
            pc.filter(reasons, bad).to_pylist(), strict=True,
        ):
            rejects.append((index, Reject(row, f.name, value, reason)))
    return rejects, accepted


def _staging_columns(spec: ExportFile, rows: pa.Table, present: list[Field]) -> pa.Table:
    names = {f.name for f in present}
    columns = {"source_row": rows.column("source_row")}
    for f in spec.fields:
        if f.name in names:
            columns[f.name] = rows.column(f"{f.name}__typed")
        else:  # an absent optional column becomes NULLs of the right type
            columns[f.name] = pa.nulls(rows.num_rows, _ARROW_TYPES[f.kind])
    return pa.table(columns)


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


def _problem_expr(f: Field) -> str | None:
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
        # Per row: each row is judged against its own file's business date.
        cases.append(
            f"WHEN {typed} IS NOT NULL AND date_diff('day', {_BUSINESS_DATE}, "
            f"CAST({typed} AS DATE)) NOT BETWEEN 0 AND {PARTITION_DAYS_AFTER} "
            f"THEN 'date outside business date ' || CAST({_BUSINESS_DATE} AS VARCHAR)"
        )
    if not cases:
        return None
    return "CASE " + " ".join(cases) + " END"


_ARROW_TYPES = {
    Kind.ID: pa.string(), Kind.TEXT: pa.string(), Kind.MONEY: pa.decimal128(12, 2),
    Kind.TAX: pa.decimal128(18, 8), Kind.QTY: pa.decimal128(12, 4), Kind.INT: pa.int32(),
    Kind.BOOL: pa.bool_(), Kind.TIMESTAMP: pa.timestamp("us"), Kind.DATE: pa.date32(),
}
