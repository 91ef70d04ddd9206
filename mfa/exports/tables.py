"""Tidy tables of a park and period: flows, mass balances, circularity indicators, footprints.

Every table has one row per entity × indicator × period, and these leading columns::

    park, period_start, period_end, entity_kind, entity_code, material_code,
    indicator, value, unit, note

``value`` is a float in ``unit``; an unknown figure is an empty value with a ``note`` saying
why, never a zero. The columns after ``note`` trace the figure: flow ids and the nodes a flow
joins, the stock readings a balance used, the method, options and ledger version a footprint
was computed at. Periods are inclusive dates (REFERENCE.md §5), as every ledger read.

* ``flows``: one row per ledger entry (reversals included, so the rows sum to the balances)
  and indicator ``quantity`` (canonical unit) or ``value`` (its currency, when invoiced).
* ``balances``: ``mfa.balance.mass_balance`` of every enterprise, per material line
  (inputs, outputs, opening_stock, closing_stock, stock_change, net) and per group total
  (inputs, outputs, stock_change, residual, throughput, relative_residual, within_tolerance
  and stock_known as 1/0).
* ``indicators``: ``mfa.circularity.circularity`` of the park: the CTI material, energy and
  water ratios (fractions, with numerator, denominator and the ledger entries they sum), waste
  by fate (kg), the MCI of the park, of each enterprise and of each product, energy carriers
  left unconverted, and each assumption the figures rest on (a row with its text as note).
* ``footprints``: the park's GWP100 (total, per scope, avoided, and each enterprise's
  contribution) and each product's per declared unit (total, fossil, biogenic, per scope,
  avoided, primary data share, output), plus one ``input_without_factor`` row per missing
  factor the figure rests on: its emissions are not in the score, and the row says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any, Final

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from lca.footprint import FootprintCache, FootprintResult
from mfa.access import Caller, park_scope
from mfa.balance import BalanceTotal, mass_balance
from mfa.circularity import Scope, ScopeKind, circularity
from mfa.circularity.indicators import Ratio
from mfa.errors import NotFoundError
from mfa.exports.footprints import ProductFigures, Run, park_footprints
from mfa.models import NodeKind, ParkNode
from mfa.period import check_period
from mfa.reads import (
    FlowFilter,
    ParkRow,
    flow_page,
    materials_by_id,
    nodes_by_id,
    park_by_code,
)


class ExportKind(StrEnum):
    FLOWS = "flows"
    BALANCES = "balances"
    INDICATORS = "indicators"
    FOOTPRINTS = "footprints"


LEADING: Final = (
    "park",
    "period_start",
    "period_end",
    "entity_kind",
    "entity_code",
    "material_code",
    "indicator",
    "value",
    "unit",
    "note",
)
TRACE: Final[dict[ExportKind, tuple[str, ...]]] = {
    ExportKind.FLOWS: (
        "flow_id",
        "source",
        "target",
        "reporting_party",
        "reported_quantity",
        "reported_unit",
        "reverses_flow_id",
        "reversed_by_flow_id",
        "batch_id",
        "evidence",
        "recorded_by",
        "recorded_at",
    ),
    ExportKind.BALANCES: (
        "enterprise_id",
        "material_id",
        "group",
        "tolerance",
        "flow_count",
        "opening_stock_on",
        "closing_stock_on",
    ),
    ExportKind.INDICATORS: (
        "enterprise_id",
        "material_id",
        "numerator",
        "denominator",
        "basis_unit",
        "flow_count",
    ),
    ExportKind.FOOTPRINTS: (
        "enterprise_id",
        "material_id",
        "input_code",
        "method",
        "allocation",
        "recycling",
        "ledger_version",
    ),
}
KG_CO2E: Final = "kg CO2e"
_PAGE: Final = 5000
_NO_READING: Final = "no stock reading in force"


@dataclass(frozen=True, slots=True)
class TableRequest:
    """What to export: a kind, a park by code, an inclusive period."""

    kind: ExportKind
    park_code: str
    period_start: date
    period_end: date


def _frame(kind: ExportKind, rows: list[dict[str, Any]]) -> pd.DataFrame:
    columns = [*LEADING, *TRACE[kind]]
    frame = pd.DataFrame(rows, columns=columns)
    frame["value"] = frame["value"].astype("float64")
    for name in columns:
        if name.endswith("_id") or name in ("flow_count", "ledger_version"):
            frame[name] = frame[name].astype("Int64")
    return frame


async def resolve_park(
    session: AsyncSession, code: str, *, caller: Caller, start: date, end: date
) -> ParkRow:
    """The park named by ``code`` (``NotFoundError`` on field ``park``), the period checked."""
    check_period(start, end)
    park = await park_by_code(session, code, caller=caller)
    if park is None:
        raise NotFoundError(f"no park with code {code!r}", field=("park",))
    return park


async def flows_table(
    session: AsyncSession, *, caller: Caller, park: ParkRow, start: date, end: date
) -> pd.DataFrame:
    """Every ledger entry of the park whose period lies in [start, end], in recording order."""
    rows: list[dict[str, Any]] = []
    flt = FlowFilter(park_id=park.id, period_start=start, period_end=end)
    after: int | None = None
    while True:
        page = await flow_page(session, caller=caller, flt=flt, first=_PAGE, after_id=after)
        for f in page.items:
            trace = {
                "flow_id": f.id,
                "source": f.source.code,
                "target": f.target.code,
                "reporting_party": f.reporting_party.code,
                "reported_quantity": f.reported_quantity,
                "reported_unit": f.reported_unit,
                "reverses_flow_id": f.reverses_id,
                "reversed_by_flow_id": f.reversed_by_id,
                "batch_id": f.batch_id,
                "evidence": f.evidence,
                "recorded_by": f.recorded_by,
                "recorded_at": f.recorded_at.isoformat(),
            }
            common = {
                "park": park.code,
                "period_start": f.period_start,
                "period_end": f.period_end,
                "entity_kind": "flow",
                "entity_code": f"{f.source.code}>{f.target.code}",
                "material_code": f.material.code,
                "note": f.reason,
                **trace,
            }
            rows.append({**common, "indicator": "quantity", "value": f.quantity, "unit": f.unit})
            if f.value is not None:
                rows.append({**common, "indicator": "value", "value": f.value, "unit": f.currency})
        if not page.has_next:
            break
        after = page.items[-1].id
    return _frame(ExportKind.FLOWS, rows)


async def _enterprises(session: AsyncSession, *, caller: Caller, park_id: int) -> list[Any]:
    """The enterprises whose books the export covers: an enterprise caller's own, else all
    of the park (``mass_balance`` authorizes each)."""
    node_t = ParkNode.__table__  # type: ignore[attr-defined]
    conditions = [
        park_scope(caller, node_t.c.park_id),
        node_t.c.park_id == park_id,
        node_t.c.kind == NodeKind.ENTERPRISE.value,
    ]
    if caller.enterprise_id is not None:
        conditions.append(node_t.c.id == caller.enterprise_id)
    rows = await session.execute(
        sa.select(node_t.c.id, node_t.c.code).where(*conditions).order_by(node_t.c.code)
    )
    return list(rows)


def _total_rows(total: BalanceTotal) -> list[tuple[str, float | None, str, str | None]]:
    stock_note = None if total.stock_known else "a line that moved has no known stock change"
    relative_note = "nothing flowed" if total.relative_residual is None else None
    return [
        ("inputs", total.inputs, total.unit, None),
        ("outputs", total.outputs, total.unit, None),
        ("stock_change", total.stock_change, total.unit, stock_note),
        ("residual", total.residual, total.unit, stock_note),
        ("throughput", total.throughput, total.unit, None),
        ("relative_residual", total.relative_residual, "1", relative_note),
        ("within_tolerance", float(total.within_tolerance), "boolean", None),
        ("stock_known", float(total.stock_known), "boolean", None),
    ]


async def balances_table(
    session: AsyncSession,
    *,
    caller: Caller,
    park: ParkRow,
    start: date,
    end: date,
    tolerance: float,
) -> pd.DataFrame:
    """The mass balance of every enterprise of the park, per line and per group total."""
    rows: list[dict[str, Any]] = []
    for enterprise in await _enterprises(session, caller=caller, park_id=park.id):
        balance = await mass_balance(
            session,
            caller=caller,
            enterprise_id=enterprise.id,
            period_start=start,
            period_end=end,
            tolerance=tolerance,
        )
        common = {
            "park": park.code,
            "period_start": start,
            "period_end": end,
            "entity_kind": "enterprise",
            "entity_code": enterprise.code,
            "enterprise_id": enterprise.id,
            "tolerance": balance.tolerance,
            "flow_count": balance.flow_count,
        }
        for line in balance.lines:
            unknown = line.stock_change is None
            figures: list[tuple[str, float | None, str | None]] = [
                ("inputs", line.inputs, None),
                ("outputs", line.outputs, None),
                ("opening_stock", line.opening_stock, _NO_READING),
                ("closing_stock", line.closing_stock, _NO_READING),
                ("stock_change", line.stock_change, "opening or closing stock unknown"),
                ("net", line.net, "stock change unknown: counted as 0" if unknown else None),
            ]
            for indicator, value, note in figures:
                rows.append(
                    {
                        **common,
                        "material_code": line.code,
                        "material_id": line.material_id,
                        "group": None if line.group is None else line.group.value,
                        "indicator": indicator,
                        "value": value,
                        "unit": line.unit,
                        "note": note if value is None or indicator == "net" else None,
                        "opening_stock_on": line.opening_stock_on,
                        "closing_stock_on": line.closing_stock_on,
                    }
                )
        for total in (balance.material, balance.water):
            for indicator, value, unit, note in _total_rows(total):
                rows.append(
                    {
                        **common,
                        "material_code": None,
                        "group": total.group.value,
                        "indicator": indicator,
                        "value": value,
                        "unit": unit,
                        "note": note,
                    }
                )
    return _frame(ExportKind.BALANCES, rows)


def _ratio_row(indicator: str, ratio: Ratio) -> dict[str, Any]:
    return {
        "indicator": indicator,
        "value": ratio.value,
        "unit": "1",
        "note": None if ratio.value is not None else "nothing flowed: no ratio",
        "numerator": ratio.numerator,
        "denominator": ratio.denominator,
        "basis_unit": ratio.unit,
        "flow_count": ratio.flows.entries,
    }


async def indicators_table(
    session: AsyncSession, *, caller: Caller, park: ParkRow, start: date, end: date
) -> pd.DataFrame:
    """The park's circularity indicators (see the module docstring)."""
    found = await circularity(
        session,
        caller=caller,
        scope=Scope(ScopeKind.PARK, park.id),
        period_start=start,
        period_end=end,
    )
    enterprise_ids = [e.enterprise_id for e in found.enterprises]
    product_ids = [p.material_id for e in found.enterprises for p in e.products]
    unconverted_ids = [u.material_id for u in found.energy.unconverted]
    nodes = await nodes_by_id(session, enterprise_ids, caller=caller)
    materials = await materials_by_id(session, [*product_ids, *unconverted_ids], caller=caller)
    common = {"park": park.code, "period_start": start, "period_end": end}
    at_park = {**common, "entity_kind": "park", "entity_code": park.code}
    rows = [
        {**at_park, **_ratio_row(name, ratio)}
        for name, ratio in (
            ("circular_inflow", found.material.circular_inflow),
            ("circular_outflow", found.material.circular_outflow),
            ("material_circularity", found.material.material_circularity),
            ("renewable_energy_share", found.energy.renewable_share),
            ("water_circular_inflow", found.water.circular_inflow),
            ("water_circular_outflow", found.water.circular_outflow),
            ("water_circularity", found.water.water_circularity),
            ("waste_kept_inside", found.waste.kept_inside),
        )
    ]
    waste: list[tuple[str, float, str | None]] = [
        ("waste_total", found.waste.total, None),
        ("waste_hazardous", found.waste.hazardous, None),
    ]
    for fate in found.waste.fates:
        rules = "; ".join(fate.rules) or None
        waste.append((f"waste_{fate.fate.value}", fate.quantity, rules))
        waste.append((f"waste_{fate.fate.value}_kept_inside", fate.kept_inside, rules))
    rows += [{**at_park, "indicator": i, "value": v, "unit": "kg", "note": n} for i, v, n in waste]
    no_mci = "no product with a mass output"
    rows.append(
        {
            **at_park,
            "indicator": "mci",
            "value": found.mci,
            "unit": "1",
            "note": no_mci if found.mci is None else None,
        }
    )
    for e in found.enterprises:
        code = nodes[e.enterprise_id].code
        rows.append(
            {
                **common,
                "entity_kind": "enterprise",
                "entity_code": code,
                "enterprise_id": e.enterprise_id,
                "indicator": "mci",
                "value": e.mci,
                "unit": "1",
                "note": no_mci if e.mci is None else None,
            }
        )
        rows += [
            {
                **common,
                "entity_kind": "product",
                "entity_code": code,
                "material_code": materials[p.material_id].code,
                "enterprise_id": e.enterprise_id,
                "material_id": p.material_id,
                "indicator": "mci",
                "value": p.result.mci,
                "unit": "1",
                "note": f"end of life: {p.parameters_source}",
            }
            for p in e.products
        ]
    rows += [
        {
            **at_park,
            "material_code": materials[u.material_id].code,
            "material_id": u.material_id,
            "indicator": "energy_not_converted",
            "value": u.quantity,
            "unit": u.unit,
            "note": u.reason,
            "flow_count": u.flows.entries,
        }
        for u in found.energy.unconverted
    ]
    rows += [
        {**at_park, "indicator": "assumption", "value": None, "unit": None, "note": text}
        for text in found.assumptions
    ]
    return _frame(ExportKind.INDICATORS, rows)


def _result_trace(result: FootprintResult) -> dict[str, Any]:
    request = result.request
    return {
        "method": request.method.value,
        "allocation": request.allocation.value,
        "recycling": request.recycling.value,
        "ledger_version": result.ledger_version,
    }


def _product_rows(park: ParkRow, p: ProductFigures) -> list[dict[str, Any]]:
    result = p.result
    fp = result.attribution.footprint
    per = result.declared_unit or ""
    unit = f"{KG_CO2E}/{per}"
    common = {
        "park": park.code,
        "period_start": result.request.period_start,
        "period_end": result.request.period_end,
        "entity_kind": "product",
        "entity_code": p.enterprise.code,
        "material_code": p.material.code,
        "enterprise_id": p.enterprise.id,
        "material_id": p.material.id,
        **_result_trace(result),
    }
    incomplete = "excludes the inputs without factor listed" if p.missing else None
    share = 100 * p.split.primary / fp.total if fp.total > 0 else None
    figures: list[tuple[str, float | None, str, str | None]] = [
        ("output", p.output, per, None),
        ("gwp100", fp.total, unit, incomplete),
        ("gwp100_fossil", p.split.fossil, unit, incomplete),
        ("gwp100_biogenic", p.split.biogenic, unit, incomplete),
        *(
            (f"gwp100_{scope.value}", value, unit, incomplete)
            for scope, value in result.attribution.by_scope.items()
        ),
        ("avoided_gwp100", fp.avoided, unit, "beside the total, not netted into it"),
        ("primary_data_share", share, "%", None if share is not None else "total is not > 0"),
    ]
    rows = [{**common, "indicator": i, "value": v, "unit": u, "note": n} for i, v, u, n in figures]
    rows += [
        {
            **common,
            "indicator": "input_without_factor",
            "input_code": m.material_code,
            "value": m.quantity,
            "unit": m.unit,
            "note": f"{m.reason} (used by {', '.join(m.enterprises)}): not in the score",
        }
        for m in p.missing
    ]
    return rows


async def footprints_table(
    session: AsyncSession,
    *,
    caller: Caller,
    park: ParkRow,
    start: date,
    end: date,
    cache: FootprintCache,
    run: Run,
) -> pd.DataFrame:
    """The park's footprint and each product's (see the module docstring)."""
    found = await park_footprints(
        session,
        caller=caller,
        park_id=park.id,
        period_start=start,
        period_end=end,
        cache=cache,
        run=run,
    )
    result = found.park
    assert result is not None  # every product was asked for, so the park was solved
    fp = result.attribution.footprint
    common = {
        "park": park.code,
        "period_start": start,
        "period_end": end,
        **_result_trace(result),
    }
    incomplete = "excludes the inputs without factor listed" if result.inventory.missing else None
    park_figures: list[tuple[str, float, str | None]] = [
        ("gwp100", fp.total, incomplete),
        *(
            (f"gwp100_{scope.value}", value, incomplete)
            for scope, value in result.attribution.by_scope.items()
        ),
        ("avoided_gwp100", fp.avoided, "beside the total, not netted into it"),
    ]
    rows: list[dict[str, Any]] = [
        {
            **common,
            "entity_kind": "park",
            "entity_code": park.code,
            "indicator": i,
            "value": v,
            "unit": KG_CO2E,
            "note": n,
        }
        for i, v, n in park_figures
    ]
    rows += [
        {
            **common,
            "entity_kind": "enterprise",
            "entity_code": label,
            "indicator": "gwp100_contribution",
            "value": value,
            "unit": KG_CO2E,
        }
        for label, value in sorted(result.attribution.by_enterprise.items())
    ]
    rows += [
        {
            **common,
            "entity_kind": "park",
            "entity_code": park.code,
            "indicator": "input_without_factor",
            "input_code": m.material_code,
            "value": m.quantity,
            "unit": m.unit,
            "note": f"{m.reason} (used by {', '.join(m.enterprises)}): not in the score",
        }
        for m in result.inventory.missing
    ]
    for product in found.products:
        rows += _product_rows(park, product)
    return _frame(ExportKind.FOOTPRINTS, rows)


async def export_table(
    session: AsyncSession,
    request: TableRequest,
    *,
    caller: Caller,
    tolerance: float,
    cache: FootprintCache,
    run: Run,
) -> pd.DataFrame:
    """The table ``request`` asks for; ``MfaError`` (field ``park`` or the period) if not."""
    start, end = request.period_start, request.period_end
    park = await resolve_park(session, request.park_code, caller=caller, start=start, end=end)
    if request.kind is ExportKind.FLOWS:
        return await flows_table(session, caller=caller, park=park, start=start, end=end)
    if request.kind is ExportKind.INDICATORS:
        return await indicators_table(session, caller=caller, park=park, start=start, end=end)
    if request.kind is ExportKind.BALANCES:
        return await balances_table(
            session, caller=caller, park=park, start=start, end=end, tolerance=tolerance
        )
    return await footprints_table(
        session, caller=caller, park=park, start=start, end=end, cache=cache, run=run
    )
