"""Writing a tidy table as CSV (UTF-8, comma, dot decimals), Excel (xlsx) or Parquet."""

from __future__ import annotations

import io
from enum import StrEnum

import pandas as pd


class ExportFormat(StrEnum):
    CSV = "csv"
    XLSX = "xlsx"
    PARQUET = "parquet"

    @property
    def media_type(self) -> str:
        return _MEDIA_TYPES[self]


_MEDIA_TYPES = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ExportFormat.PARQUET: "application/vnd.apache.parquet",
}


def to_bytes(frame: pd.DataFrame, fmt: ExportFormat, *, sheet: str) -> bytes:
    """The table in ``fmt``. ``sheet`` names the Excel worksheet.

    Floats are written at full precision (CSV uses ``repr``-exact shortest decimals), so a
    figure read back equals the one computed.
    """
    buffer = io.BytesIO()
    if fmt is ExportFormat.CSV:
        buffer.write(frame.to_csv(index=False).encode("utf-8"))
    elif fmt is ExportFormat.XLSX:
        frame.to_excel(buffer, index=False, sheet_name=sheet, engine="openpyxl")
    else:
        frame.to_parquet(buffer, index=False, engine="pyarrow")
    return buffer.getvalue()
