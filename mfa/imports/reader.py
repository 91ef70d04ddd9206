"""Reading an export file as chunks of text cells, whatever its format and encoding.

The format is told from the file's first bytes, not its name (an xlsx is a ZIP, Parquet
starts with ``PAR1``), and a name that says otherwise is refused. Text files are decoded as
UTF-8 (a byte-order mark is dropped) unless the caller names another encoding: a file that
is not UTF-8 is refused with a hint rather than guessed at, because Windows-1258 and
Windows-1252 decode the same bytes to different, equally plausible, Vietnamese-looking text.
Windows-1258 writes Vietnamese with combining accents; the cells are brought to NFC so that
'ế' read from it equals 'ế' typed anywhere else.

Every cell reaches the validation as ``str`` (numbers and dates of xlsx and Parquet as their
plain text: ``1234.5``, ``2025-01-31``), so one set of checks serves every format.
Chunks keep the file's row numbers as their index (0 for the first row under the header).
"""

from __future__ import annotations

import codecs
import csv
import io
import unicodedata
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import pandas as pd

from mfa.imports.errors import ImportFileError

SAMPLE_BYTES = 64 * 1024
_SEPARATORS = (",", ";", "\t", "|")
_TEXT_SUFFIXES = {".csv", ".txt", ".tsv"}
_XLSX_SUFFIXES = {".xlsx", ".xlsm"}
_PARQUET_SUFFIXES = {".parquet", ".pq"}


class FileFormat(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"
    PARQUET = "parquet"


_FORMAT_NAMES = {
    FileFormat.CSV: "CSV text",
    FileFormat.XLSX: "an Excel workbook (xlsx)",
    FileFormat.PARQUET: "a Parquet file",
}


@dataclass(frozen=True, slots=True)
class TableFile:
    """A file ready to be read: its format and, for text, encoding, separator, decimal mark."""

    path: Path
    name: str
    format: FileFormat
    encoding: str | None = None
    separator: str | None = None
    decimal: str = "."
    sheet: str | None = None
    header: tuple[str, ...] = ()
    rows: int | None = None  # the data rows where the format records them (Parquet)


def _sniff_format(head: bytes, name: str) -> FileFormat:
    if head.startswith(b"PK\x03\x04"):
        found = FileFormat.XLSX
    elif head.startswith(b"PAR1"):
        found = FileFormat.PARQUET
    elif b"\x00" in head and not head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise ImportFileError(
            f"{name!r} is not a table: it holds binary data that is neither an Excel workbook "
            "(xlsx) nor a Parquet file; export the movements as CSV, xlsx or Parquet",
            field=("file",),
        )
    else:
        found = FileFormat.CSV
    suffix = Path(name).suffix.lower()
    expected = (
        FileFormat.CSV
        if suffix in _TEXT_SUFFIXES
        else FileFormat.XLSX
        if suffix in _XLSX_SUFFIXES
        else FileFormat.PARQUET
        if suffix in _PARQUET_SUFFIXES
        else found
    )
    if expected is not found:
        raise ImportFileError(
            f"{name!r} is named as {_FORMAT_NAMES[expected]} but holds {_FORMAT_NAMES[found]}: "
            "rename it to match its content, or export it again",
            field=("file",),
        )
    return found


def _encoding(head: bytes, name: str, requested: str | None) -> str:
    if requested:
        try:
            return codecs.lookup(requested).name
        except LookupError as exc:
            raise ImportFileError(
                f"unknown encoding {requested!r}: use e.g. utf-8 or cp1258", field=("encoding",)
            ) from exc
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError as exc:
        raise _not_utf8(name, head, exc.start) from exc
    return "utf-8"


def _not_utf8(name: str, data: bytes, offset: int) -> ImportFileError:
    line = data[:offset].count(b"\n") + 1 if data else 0
    where = f"line {line}, " if line else ""
    return ImportFileError(
        f"{name!r} is not UTF-8 text ({where}byte 0x{data[offset]:02X} at offset {offset}): "
        "if it was saved by Excel on Vietnamese Windows, import it with encoding cp1258; "
        "or save it again as 'CSV UTF-8'",
        field=("encoding",),
    )


def _separator(first_line: str) -> str:
    """The candidate that splits the header most often (quoted text aside); ',' if none."""
    counts = {s: 0 for s in _SEPARATORS}
    quoted = False
    for char in first_line:
        if char == '"':
            quoted = not quoted
        elif not quoted and char in counts:
            counts[char] += 1
    best = max(_SEPARATORS, key=lambda s: counts[s])
    return best if counts[best] else ","


def open_table(
    path: Path,
    *,
    name: str,
    encoding: str | None = None,
    sheet: str | None = None,
    decimal: str = "auto",
    max_bytes: int,
    required: Sequence[str] = (),
) -> TableFile:
    """Look at the file and decide how to read it; refuse what cannot be read, naming why.

    ``decimal="auto"`` takes ',' for a semicolon-separated file (as Excel writes CSV where the
    decimal mark is a comma) and '.' otherwise. ``required`` helps choose among several
    sheets of a workbook: the only sheet holding all these columns is the one read.
    """
    size = path.stat().st_size
    if size > max_bytes:
        raise ImportFileError(
            f"{name!r} is {size / 2**20:,.1f} MiB; the limit is {max_bytes / 2**20:,.0f} MiB "
            "(setting MFA_IMPORT_MAX_BYTES): split the export by period",
            field=("file",),
        )
    with path.open("rb") as handle:
        head = handle.read(SAMPLE_BYTES)
    if not head.strip():
        raise ImportFileError(f"{name!r} is empty: there is nothing to import", field=("file",))
    kind = _sniff_format(head, name)
    if kind is FileFormat.XLSX:
        chosen, header = _choose_sheet(path, name, sheet, required)
        return TableFile(path, name, kind, sheet=chosen, header=header)
    if kind is FileFormat.PARQUET:
        header, rows = _parquet_shape(path, name)
        return TableFile(path, name, kind, header=header, rows=rows)
    enc = _encoding(head, name, encoding)
    text = head.decode(enc, errors="ignore").lstrip("\ufeff")
    first = next((line for line in text.splitlines() if line.strip()), "")
    sep = _separator(first)
    mark = decimal if decimal != "auto" else ("," if sep == ";" else ".")
    header = tuple(c.strip() for c in next(csv.reader([first], delimiter=sep), []))
    return TableFile(path, name, kind, encoding=enc, separator=sep, decimal=mark, header=header)


def _workbook(path: Path, name: str) -> Any:
    import openpyxl
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        return openpyxl.load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError) as exc:
        raise ImportFileError(
            f"{name!r} is a ZIP archive but not a readable Excel workbook ({exc})",
            field=("file",),
        ) from exc


def _sheet_header(worksheet: Any) -> tuple[str, ...]:
    for row in worksheet.iter_rows(values_only=True):
        if any(v is not None and str(v).strip() for v in row):
            return tuple("" if v is None else str(v).strip() for v in row)
    return ()


def _has_columns(header: Sequence[str], required: Sequence[str]) -> bool:
    folded = {h.casefold() for h in header}
    return all(r.casefold() in folded for r in required)


def _choose_sheet(
    path: Path, name: str, sheet: str | None, required: Sequence[str]
) -> tuple[str, tuple[str, ...]]:
    book = _workbook(path, name)
    try:
        names = list(book.sheetnames)
        if sheet is not None:
            if sheet not in names:
                raise ImportFileError(
                    f"{name!r} has no sheet {sheet!r}; its sheets are {_quoted(names)}",
                    field=("sheet",),
                )
            return sheet, _sheet_header(book[sheet])
        headers = {n: _sheet_header(book[n]) for n in names}
        if len(names) == 1:
            return names[0], headers[names[0]]
        fitting = [n for n in names if headers[n] and _has_columns(headers[n], required)]
        if len(fitting) == 1:
            return fitting[0], headers[fitting[0]]
        which = "none of them has" if not fitting else f"{_quoted(fitting)} all have"
        raise ImportFileError(
            f"{name!r} has {len(names)} sheets ({_quoted(names)}) and {which} the profile's "
            "columns: name the sheet to import",
            field=("sheet",),
        )
    finally:
        book.close()


def _quoted(names: Sequence[str]) -> str:
    return ", ".join(repr(n) for n in names)


def _parquet_shape(path: Path, name: str) -> tuple[tuple[str, ...], int]:
    """The columns and the number of rows, from the file's metadata. (A CSV file's or a
    sheet's rows are known only once they are read.)"""
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        return tuple(parquet.schema_arrow.names), parquet.metadata.num_rows
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError... on a damaged file
        raise ImportFileError(f"{name!r} is not a readable Parquet file ({exc})") from exc


def _cell(value: object) -> str:
    """A typed cell (xlsx, Parquet) as the plain text a CSV export would carry."""
    if value is None:
        return ""
    if isinstance(value, float):
        if value != value:  # NaN: an empty cell
            return ""
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else str(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


def _frame(rows: list[Sequence[object]], columns: Sequence[str], first: int) -> pd.DataFrame:
    width = len(columns)
    cells = [[_cell(v) for v in (list(r) + [None] * width)[:width]] for r in rows]
    return pd.DataFrame(cells, columns=list(columns), index=range(first, first + len(rows)))


def read_chunks(table: TableFile, *, chunk_rows: int) -> Iterator[pd.DataFrame]:
    """The file's rows as DataFrames of ``str`` cells, ``chunk_rows`` at a time."""
    if table.format is FileFormat.CSV:
        yield from _csv_chunks(table, chunk_rows)
    elif table.format is FileFormat.XLSX:
        yield from _xlsx_chunks(table, chunk_rows)
    else:
        yield from _parquet_chunks(table, chunk_rows)


def _csv_chunks(table: TableFile, chunk_rows: int) -> Iterator[pd.DataFrame]:
    assert table.encoding is not None
    assert table.separator is not None
    normalise = not table.encoding.startswith("utf")
    try:
        reader = pd.read_csv(
            table.path,
            sep=table.separator,
            encoding=table.encoding,
            dtype=str,
            keep_default_na=False,
            na_filter=False,
            chunksize=chunk_rows,
            engine="c",
        )
        with reader:
            for chunk in reader:
                chunk.columns = [str(c).strip().lstrip("\ufeff") for c in chunk.columns]
                if normalise:
                    for column in chunk.columns:
                        chunk[column] = chunk[column].map(_nfc)
                yield chunk
    except UnicodeDecodeError as exc:
        raise ImportFileError(
            f"{table.name!r} is not {table.encoding} text further on ({exc.reason} at byte "
            f"0x{exc.object[exc.start]:02X}): save it again in one encoding",
            field=("encoding",),
        ) from exc
    except pd.errors.EmptyDataError:
        return
    except pd.errors.ParserError as exc:
        raise ImportFileError(
            f"{table.name!r} is not a consistent {table.separator!r}-separated table: {exc}",
            field=("file",),
        ) from exc


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _xlsx_chunks(table: TableFile, chunk_rows: int) -> Iterator[pd.DataFrame]:
    book = _workbook(table.path, table.name)
    try:
        rows = book[table.sheet].iter_rows(values_only=True)
        for row in rows:  # skip to the header
            if any(v is not None and str(v).strip() for v in row):
                break
        columns = table.header
        buffered: list[Sequence[object]] = []
        first = 0
        for row in rows:
            if not any(v is not None and str(v).strip() for v in row):
                continue
            buffered.append(row)
            if len(buffered) == chunk_rows:
                yield _frame(buffered, columns, first)
                first += len(buffered)
                buffered = []
        if buffered:
            yield _frame(buffered, columns, first)
    finally:
        book.close()


def _parquet_chunks(table: TableFile, chunk_rows: int) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    first = 0
    for batch in pq.ParquetFile(table.path).iter_batches(batch_size=chunk_rows):
        rows = batch.to_pylist()
        yield _frame([list(r.values()) for r in rows], table.header, first)
        first += len(rows)


def rejected_csv(path: Path) -> io.TextIOWrapper:
    """Open the file that collects rejected rows (UTF-8 with BOM, so Excel reads it right)."""
    return path.open("w", encoding="utf-8-sig", newline="")
