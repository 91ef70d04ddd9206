"""Every format reads back with pandas to the same table: figures, units, notes, ids, dates."""

from __future__ import annotations

import io
from datetime import date

import pandas as pd
import pytest
from factories import make_footprint_world
from sqlalchemy.ext.asyncio import AsyncSession

from mfa.access import Caller
from mfa.exports.formats import ExportFormat, to_bytes
from mfa.exports.tables import balances_table, flows_table, resolve_park

JAN = (date(2025, 1, 1), date(2025, 1, 31))


def _read(content: bytes, fmt: ExportFormat) -> pd.DataFrame:
    if fmt is ExportFormat.CSV:
        return pd.read_csv(io.BytesIO(content))
    if fmt is ExportFormat.XLSX:
        return pd.read_excel(io.BytesIO(content), sheet_name="balances", engine="openpyxl")
    return pd.read_parquet(io.BytesIO(content))


def _text(column: pd.Series) -> list[str]:  # type: ignore[type-arg]
    """Cells as text, dates as ISO days, blanks as '' (each reader spells them its way)."""
    return [
        "" if pd.isna(v) else v.date().isoformat() if isinstance(v, pd.Timestamp) else str(v)
        for v in column
    ]


@pytest.mark.parametrize("fmt", list(ExportFormat))
async def test_balance_table_round_trips_through_each_format(
    session: AsyncSession, caller: Caller, fmt: ExportFormat
) -> None:
    await make_footprint_world(session, caller)
    park = await resolve_park(session, "fp", caller=caller, start=JAN[0], end=JAN[1])
    table = await balances_table(
        session, caller=caller, park=park, start=JAN[0], end=JAN[1], tolerance=0.02
    )
    assert table["value"].isna().any()  # unknown stocks: the blanks must survive too

    back = _read(to_bytes(table, fmt, sheet="balances"), fmt)

    assert list(back.columns) == list(table.columns)
    assert len(back) == len(table)
    pd.testing.assert_series_equal(back["value"], table["value"], check_names=False)
    for name in ("entity_code", "material_code", "indicator", "unit", "note", "period_start"):
        assert _text(back[name]) == _text(table[name]), name
    assert [int(v) for v in back["enterprise_id"]] == [int(v) for v in table["enterprise_id"]]


async def test_parquet_keeps_types_an_auditor_joins_on(
    session: AsyncSession, caller: Caller
) -> None:
    await make_footprint_world(session, caller)
    park = await resolve_park(session, "fp", caller=caller, start=JAN[0], end=JAN[1])
    table = await flows_table(session, caller=caller, park=park, start=JAN[0], end=JAN[1])

    back = pd.read_parquet(io.BytesIO(to_bytes(table, ExportFormat.PARQUET, sheet="flows")))

    assert str(back["flow_id"].dtype) == "Int64"
    assert back["period_start"].tolist() == table["period_start"].tolist() == [JAN[0]] * 6
    assert back["value"].sum() == 2000 + 0.5 + 10 + 1000 + 1000 + 800


def test_media_types_name_each_format() -> None:
    assert ExportFormat.CSV.media_type.startswith("text/csv")
    assert ExportFormat.XLSX.media_type.endswith("spreadsheetml.sheet")
    assert ExportFormat.PARQUET.media_type == "application/vnd.apache.parquet"
