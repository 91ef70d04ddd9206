"""Small factories for the tests: a park with a few enterprises, boundary nodes and materials."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from mfa.access import Caller
from mfa.ledger import FlowCreate, record_flows
from mfa.models import MaterialKind, NodeKind
from mfa.registry import (
    MaterialCreate,
    NodeCreate,
    ParkCreate,
    create_material,
    create_node,
    create_park,
)
from mfa.units import Dimension

JAN = (date(2025, 1, 1), date(2025, 1, 31))
FEB = (date(2025, 2, 1), date(2025, 2, 28))


@dataclass
class World:
    """Ids of what ``make_world`` created, by code."""

    park: int
    nodes: dict[str, int] = field(default_factory=dict)
    materials: dict[str, int] = field(default_factory=dict)

    def flow(
        self,
        source: str,
        target: str,
        material: str,
        quantity: Decimal | float | str,
        unit: str = "kg",
        period: tuple[date, date] = JAN,
        reporter: str | None = None,
        **extra: object,
    ) -> FlowCreate:
        return FlowCreate(
            source_id=self.nodes[source],
            target_id=self.nodes[target],
            material_id=self.materials[material],
            quantity=quantity,
            unit=unit,
            period_start=period[0],
            period_end=period[1],
            reporting_party_id=self.nodes[reporter] if reporter else None,
            **extra,  # type: ignore[arg-type]
        )


MATERIALS = [
    ("steel-coil", "Steel coil", MaterialKind.PRODUCT, Dimension.MASS, "7208", None),
    ("steel-scrap", "Steel scrap", MaterialKind.WASTE, Dimension.MASS, "7204", "12 01 01"),
    ("parts", "Stamped parts", MaterialKind.PRODUCT, Dimension.MASS, "8708", None),
    ("electricity", "Electricity", MaterialKind.ENERGY, Dimension.ENERGY, None, None),
    ("water", "Fresh water", MaterialKind.WATER, Dimension.VOLUME, None, None),
    ("wastewater", "Wastewater", MaterialKind.WASTE, Dimension.VOLUME, None, None),
    ("solvent", "Spent solvent", MaterialKind.WASTE, Dimension.MASS, None, "14 06 03*"),
]

NODES = [
    ("mill", "Steel mill", NodeKind.ENTERPRISE, "2410"),
    ("stamper", "Stamping works", NodeKind.ENTERPRISE, "2592"),
    ("assembler", "Assembler", NodeKind.ENTERPRISE, "2930"),
    ("supplier", "Outside suppliers", NodeKind.SUPPLIER, None),
    ("customer", "Customers outside", NodeKind.CUSTOMER, None),
    ("landfill", "Landfill", NodeKind.LANDFILL, None),
    ("grid", "National grid", NodeKind.GRID, None),
]


async def make_world(session: AsyncSession, caller: Caller, code: str = "test-park") -> World:
    park = await create_park(
        session, ParkCreate(code=code, name=f"Park {code}", country="VN"), caller=caller
    )
    assert park.id is not None
    world = World(park=park.id)
    for node_code, name, kind, isic in NODES:
        node = await create_node(
            session,
            NodeCreate(park_id=park.id, code=node_code, name=name, kind=kind, isic_code=isic),
            caller=caller,
        )
        assert node.id is not None
        world.nodes[node_code] = node.id
    for mat_code, name, mkind, dim, hs, ewc in MATERIALS:
        if code != "test-park":
            mat_code = f"{code}-{mat_code}"
        material = await create_material(
            session,
            MaterialCreate(
                code=mat_code, name=name, kind=mkind, dimension=dim, hs_code=hs, ewc_code=ewc
            ),
            caller=caller,
        )
        assert material.id is not None
        world.materials[mat_code.removeprefix(f"{code}-")] = material.id
    return world


FOOTPRINT_FLOWS = [
    ("grid", "mill", "electricity", "2", "MWh"),
    ("mill", "atmosphere", "ch4", "0.5", "kg"),
    ("mill", "atmosphere", "co2-biogenic", "10", "kg"),
    ("mill", "stamper", "coil", "1000", "kg"),
    ("grid", "stamper", "electricity", "1", "MWh"),
    ("stamper", "customer", "parts", "800", "kg"),
]
"""A chain whose every input has a factor (January 2025)::

    grid ─2 MWh─▶ mill ─coil 1000 kg─▶ stamper ─parts 800 kg─▶ customer
    mill ─CH4 0.5 kg, biogenic CO2 10 kg─▶ atmosphere          grid ─1 MWh─▶ stamper
"""


async def make_footprint_world(
    session: AsyncSession, caller: Caller, *, ore_kg: str | None = None
) -> World:
    """``FOOTPRINT_FLOWS`` in a park ``fp``; ``ore_kg`` adds ore bought from outside by the
    mill, which has no cradle-to-gate factor. Material codes are global: one world per
    database."""
    park = await create_park(
        session, ParkCreate(code="fp", name="Footprint park", country="VN"), caller=caller
    )
    assert park.id is not None
    world = World(park=park.id)
    for node_code, kind, isic, tax_id in [
        ("grid", NodeKind.GRID, None, None),
        ("supplier", NodeKind.SUPPLIER, None, None),
        ("mill", NodeKind.ENTERPRISE, "2410", "3600000001"),
        ("stamper", NodeKind.ENTERPRISE, "2592", None),
        ("customer", NodeKind.CUSTOMER, None, None),
        ("atmosphere", NodeKind.ATMOSPHERE, None, None),
    ]:
        node = await create_node(
            session,
            NodeCreate(
                park_id=park.id,
                code=node_code,
                name=f"{node_code.capitalize()} Co.",
                kind=kind,
                isic_code=isic,
                tax_id=tax_id,
            ),
            caller=caller,
        )
        assert node.id is not None
        world.nodes[node_code] = node.id
    for mat_code, mkind, dim, hs in [
        ("electricity", MaterialKind.ENERGY, Dimension.ENERGY, None),
        ("ch4", MaterialKind.EMISSION, Dimension.MASS, None),
        ("co2-biogenic", MaterialKind.EMISSION, Dimension.MASS, None),
        ("coil", MaterialKind.PRODUCT, Dimension.MASS, "7208"),
        ("parts", MaterialKind.PRODUCT, Dimension.MASS, "8708"),
        ("ore", MaterialKind.PRODUCT, Dimension.MASS, None),
    ]:
        material = await create_material(
            session,
            MaterialCreate(
                code=mat_code, name=mat_code.capitalize(), kind=mkind, dimension=dim, hs_code=hs
            ),
            caller=caller,
        )
        assert material.id is not None
        world.materials[mat_code] = material.id
    rows = list(FOOTPRINT_FLOWS)
    if ore_kg is not None:
        rows.append(("supplier", "mill", "ore", ore_kg, "kg"))
    await record_flows(
        session, [world.flow(s, t, m, q, u) for s, t, m, q, u in rows], caller=caller
    )
    return world
