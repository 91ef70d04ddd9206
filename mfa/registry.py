"""The park's master data: parks, their nodes (enterprises and boundary nodes), materials.

Unlike the ledger these are reference records; they are created here with checks that name
the offending field, and flows refer to them by id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mfa.access import Action, Caller, authorize
from mfa.db import savepoint
from mfa.errors import DuplicateError, MfaError, NotFoundError
from mfa.models import Material, MaterialKind, NodeKind, Park, ParkNode
from mfa.units import Dimension

_CODE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_ISIC = re.compile(r"^\d{4}$")
_HS = re.compile(r"^\d{4}(\.?\d{2}){0,3}$")
_EWC = re.compile(r"^\d{2} \d{2} \d{2}\*?$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")


def slugify(text: str) -> str:
    """A code from a name: 'Saigon Steel Co.' → 'saigon-steel-co'."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:64] or "node"


def _check_code(code: str) -> str:
    if not _CODE.match(code):
        raise MfaError(
            f"code {code!r} must be 1–64 lowercase letters, digits, '.', '_' or '-'",
            field=("code",),
        )
    return code


def _check_name(name: str) -> str:
    if not name.strip():
        raise MfaError("name is empty", field=("name",))
    if len(name) > 200:
        raise MfaError("name is longer than 200 characters", field=("name",))
    return name.strip()


def _optional(value: str | None) -> str | None:
    return value.strip() if value is not None and value.strip() else None


async def _insert(session: AsyncSession, obj: Park | ParkNode | Material, what: str) -> None:
    try:
        async with savepoint(session):
            session.add(obj)
            await session.flush()
    except IntegrityError as exc:
        raise DuplicateError(f"{what} already exists", field=("code",)) from exc


@dataclass(frozen=True, slots=True)
class ParkCreate:
    code: str
    name: str
    country: str
    region: str | None = None
    description: str | None = None


async def create_park(session: AsyncSession, data: ParkCreate, *, caller: Caller) -> Park:
    authorize(caller, Action.ADMINISTER)
    if not _COUNTRY.match(data.country):
        raise MfaError("country must be an ISO 3166-1 alpha-2 code such as VN", field=("country",))
    park = Park(
        code=_check_code(data.code),
        name=_check_name(data.name),
        country=data.country,
        region=_optional(data.region),
        description=_optional(data.description),
    )
    await _insert(session, park, f"a park with code {data.code!r}")
    return park


async def get_park(session: AsyncSession, park_id: int, *, field: str = "park") -> Park:
    park = await session.get(Park, park_id)
    if park is None:
        raise NotFoundError(f"no park with id {park_id}", field=(field,))
    return park


@dataclass(frozen=True, slots=True)
class NodeCreate:
    park_id: int
    name: str
    kind: NodeKind = NodeKind.ENTERPRISE
    code: str | None = None
    isic_code: str | None = None
    tax_id: str | None = None


async def create_node(session: AsyncSession, data: NodeCreate, *, caller: Caller) -> ParkNode:
    """Create an enterprise (which needs its ISIC class) or a boundary node of a park."""
    park = await get_park(session, data.park_id)
    authorize(caller, Action.ADMINISTER, park_id=park.id)
    name = _check_name(data.name)
    isic = _optional(data.isic_code)
    if data.kind is NodeKind.ENTERPRISE:
        if isic is None or not _ISIC.match(isic):
            raise MfaError(
                "an enterprise needs its ISIC Rev.4 class, four digits such as 2410",
                field=("isicCode",),
            )
    elif isic is not None or data.tax_id:
        raise MfaError(
            "boundary nodes have no ISIC class or tax id", field=("isicCode" if isic else "taxId",)
        )
    code = _check_code(data.code) if data.code else slugify(name)
    node = ParkNode(
        park_id=park.id,  # type: ignore[arg-type]
        code=code,
        name=name,
        kind=data.kind,
        isic_code=isic,
        tax_id=_optional(data.tax_id),
    )
    await _insert(session, node, f"a node with code {code!r} in park {park.code!r}")
    return node


@dataclass(frozen=True, slots=True)
class MaterialCreate:
    code: str
    name: str
    kind: MaterialKind
    dimension: Dimension
    hs_code: str | None = None
    ewc_code: str | None = None
    vn_waste_code: str | None = None
    hazardous: bool | None = None
    renewable: bool = False
    secondary: bool = False
    description: str | None = None


async def create_material(
    session: AsyncSession, data: MaterialCreate, *, caller: Caller
) -> Material:
    """Add a material to the catalogue. An EWC code ending in '*' makes it hazardous."""
    authorize(caller, Action.ADMINISTER)
    hs = _optional(data.hs_code)
    if hs is not None and not _HS.match(hs):
        raise MfaError(
            f"HS code {hs!r} must be 4 to 10 digits, e.g. 7204 or 7204.49", field=("hsCode",)
        )
    ewc = _optional(data.ewc_code)
    if ewc is not None and not _EWC.match(ewc):
        raise MfaError(
            f"List of Waste code {ewc!r} must look like '15 01 02' or '14 06 03*'",
            field=("ewcCode",),
        )
    hazardous_by_code = ewc is not None and ewc.endswith("*")
    if data.hazardous is False and hazardous_by_code:
        raise MfaError(f"List of Waste code {ewc!r} marks a hazardous waste", field=("hazardous",))
    if data.kind is MaterialKind.WATER and data.dimension is not Dimension.VOLUME:
        raise MfaError("water is measured by volume", field=("dimension",))
    material = Material(
        code=_check_code(data.code),
        name=_check_name(data.name),
        kind=data.kind,
        dimension=data.dimension,
        hs_code=hs,
        ewc_code=ewc,
        vn_waste_code=_optional(data.vn_waste_code),
        hazardous=bool(data.hazardous) or hazardous_by_code,
        renewable=data.renewable,
        secondary=data.secondary,
        description=_optional(data.description),
    )
    await _insert(session, material, f"a material with code {data.code!r}")
    return material


async def ids_by_code(
    session: AsyncSession, park_id: int | None = None
) -> tuple[dict[str, int], dict[str, int]]:
    """``(node code → id for the park, material code → id)``, for loaders that speak codes."""
    node_table = ParkNode.__table__  # type: ignore[attr-defined]
    material_table = Material.__table__  # type: ignore[attr-defined]
    nodes: dict[str, int] = {}
    if park_id is not None:
        rows = await session.execute(
            sa.select(node_table.c.code, node_table.c.id).where(node_table.c.park_id == park_id)
        )
        nodes = {r.code: r.id for r in rows}
    materials = {
        r.code: r.id
        for r in await session.execute(sa.select(material_table.c.code, material_table.c.id))
    }
    return nodes, materials


async def link_material(
    session: AsyncSession,
    material_id: int,
    *,
    caller: Caller,
    database: str | None,
    code: str | None,
) -> Material:
    """Link a material to an activity of the configured Brightway project, or unlink it.

    Master data, not ledger: the link is replaced. Whether the activity exists is checked when
    a footprint exports the project, which names a missing key.
    """
    authorize(caller, Action.ADMINISTER)
    material = await session.get(Material, material_id)
    if material is None:
        raise NotFoundError(f"no material with id {material_id}", field=("material",))
    if (database is None) != (code is None):
        raise MfaError("give both database and code, or neither", field=("code",))
    for name, value in (("database", database), ("code", code)):
        if value is not None and not (0 < len(value.strip()) <= 200):
            raise MfaError(f"{name} must be 1 to 200 characters", field=(name,))
    material.brightway_database = database.strip() if database else None
    material.brightway_code = code.strip() if code else None
    await session.flush()
    return material
