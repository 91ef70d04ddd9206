"""Loading the synthetic sample park (``datasets/sample_park``) through the ledger's own writes.

Nothing here bypasses validation: every material, node, flow and stock reading enters as a
partner's would, so the sample also exercises the ledger. Loading is idempotent: a park whose
code already exists is left as it is.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mfa.access import Caller
from mfa.ledger import FlowCreate, StockCreate, record_flows, record_stocks
from mfa.models import BatchKind, Material, MaterialKind, NodeKind, Park, RecordBatch
from mfa.registry import (
    MaterialCreate,
    NodeCreate,
    ParkCreate,
    create_material,
    create_node,
    create_park,
    ids_by_code,
)
from mfa.settings import get_settings
from mfa.units import Dimension

BATCH_ROWS = 5_000


@dataclass(frozen=True, slots=True)
class SampleLoad:
    park_id: int
    loaded: bool
    materials: int = 0
    nodes: int = 0
    flows: int = 0
    stocks: int = 0


def _rows(path: Path) -> Iterator[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        yield from csv.DictReader(handle)


def _optional(value: str | None) -> str | None:
    return value if value else None


def _flag(value: str) -> bool:
    return value.strip().lower() in ("true", "1", "yes")


async def load_materials(session: AsyncSession, path: Path, *, caller: Caller) -> int:
    """Add the catalogue's materials that are not in the database yet; returns how many."""
    existing = set((await session.execute(sa.select(Material.code))).scalars())  # type: ignore[call-overload]
    added = 0
    for row in _rows(path):
        if row["code"] in existing:
            continue
        await create_material(
            session,
            MaterialCreate(
                code=row["code"],
                name=row["name"],
                kind=MaterialKind(row["kind"]),
                dimension=Dimension(row["dimension"]),
                hs_code=_optional(row["hs_code"]),
                ewc_code=_optional(row["ewc_code"]),
                vn_waste_code=_optional(row["vn_waste_code"]),
                hazardous=_flag(row["hazardous"]),
                renewable=_flag(row["renewable"]),
                secondary=_flag(row["secondary"]),
                description=_optional(row["description"]),
            ),
            caller=caller,
        )
        added += 1
    return added


async def load_sample_park(
    session: AsyncSession, *, caller: Caller, datasets: Path | None = None
) -> SampleLoad:
    """Load the catalogue and the sample park in the caller's transaction, once."""
    root = datasets or get_settings().datasets_dir
    park_dir = root / "sample_park"
    (park_row,) = list(_rows(park_dir / "park.csv"))
    existing = (
        await session.execute(sa.select(Park.id).where(Park.code == park_row["code"]))  # type: ignore[call-overload]
    ).scalar()
    if existing is not None:
        return SampleLoad(park_id=existing, loaded=False)
    materials = await load_materials(session, root / "materials" / "materials.csv", caller=caller)
    park = await create_park(
        session,
        ParkCreate(
            code=park_row["code"],
            name=park_row["name"],
            country=park_row["country"],
            region=_optional(park_row["region"]),
            description=_optional(park_row["description"]),
        ),
        caller=caller,
    )
    assert park.id is not None
    nodes = 0
    for row in _rows(park_dir / "nodes.csv"):
        await create_node(
            session,
            NodeCreate(
                park_id=park.id,
                code=row["code"],
                name=row["name"],
                kind=NodeKind(row["kind"]),
                isic_code=_optional(row["isic_code"]),
                tax_id=_optional(row["tax_id"]),
            ),
            caller=caller,
        )
        nodes += 1
    node_ids, material_ids = await ids_by_code(session, park.id)
    flows = [
        FlowCreate(
            source_id=node_ids[row["source"]],
            target_id=node_ids[row["target"]],
            material_id=material_ids[row["material"]],
            quantity=row["quantity"],
            unit=row["unit"],
            period_start=date.fromisoformat(row["period_start"]),
            period_end=date.fromisoformat(row["period_end"]),
            reporting_party_id=node_ids[row["reporting_party"]],
            evidence=_optional(row["evidence"]),
            relative_uncertainty=(
                float(row["relative_uncertainty"]) if row["relative_uncertainty"] else None
            ),
        )
        for row in _rows(park_dir / "flows.csv")
    ]
    for start in range(0, len(flows), BATCH_ROWS):
        await record_flows(
            session,
            flows[start : start + BATCH_ROWS],
            caller=caller,
            kind=BatchKind.SAMPLE,
            source=f"datasets/sample_park/flows.csv rows {start + 1}-"
            f"{min(start + BATCH_ROWS, len(flows))}",
            max_size=BATCH_ROWS,
            tolerance=get_settings().transfer_tolerance,
        )
    stocks = [
        StockCreate(
            enterprise_id=node_ids[row["enterprise"]],
            material_id=material_ids[row["material"]],
            on_date=date.fromisoformat(row["on_date"]),
            quantity=row["quantity"],
            unit=row["unit"],
            evidence=_optional(row["evidence"]),
        )
        for row in _rows(park_dir / "stocks.csv")
    ]
    stock_batch = RecordBatch(
        kind=BatchKind.SAMPLE,
        source="datasets/sample_park/stocks.csv",
        row_count=len(stocks),
        recorded_by=caller.subject,
    )
    session.add(stock_batch)
    await session.flush()
    await record_stocks(session, stocks, caller=caller, batch_id=stock_batch.id)
    return SampleLoad(
        park_id=park.id,
        loaded=True,
        materials=materials,
        nodes=nodes,
        flows=len(flows),
        stocks=len(stocks),
    )
