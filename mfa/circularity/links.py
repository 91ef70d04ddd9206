"""Industrial-symbiosis links in force in a park over a period, and who takes part.

A link is a transfer between two enterprises of the park of a material that is a waste, a
by-product, secondary (recycled or reused) content, an energy carrier or water: a residue or a
utility put to use by a neighbour, the exchanges symbiosis catalogues record (REFERENCE.md §7).
A sale of an ordinary product is not a link, and neither is handing waste to a waste-service
enterprise (collection, sewerage: the rules marked ``collected`` in ``waste_fates.csv``): that
is disposal, whatever happens next. A link counts when its net quantity over the period
(reversals netted) is positive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from mfa.access import Action, Caller, authorize, flow_scope, park_scope
from mfa.circularity.parameters import WasteFateRule, is_waste_service, waste_fate_rules
from mfa.models import Material, MaterialKind, NodeKind, ParkNode
from mfa.period import check_period
from mfa.reads import flow_t

material_t = Material.__table__  # type: ignore[attr-defined]
node_t = ParkNode.__table__  # type: ignore[attr-defined]

_LINK_KINDS = (
    MaterialKind.WASTE.value,
    MaterialKind.BY_PRODUCT.value,
    MaterialKind.ENERGY.value,
    MaterialKind.WATER.value,
)


@dataclass(frozen=True, slots=True)
class SymbiosisLink:
    """Net quantity (canonical unit) of ``material_id`` moved between two enterprises."""

    source_id: int
    target_id: int
    material_id: int
    quantity: float
    entries: int


@dataclass(frozen=True, slots=True)
class Participation:
    """The park's enterprises, those at either end of a flow of the period, and the links.

    ``participants`` are the enterprises at either end of a link; ``share`` = participants /
    enterprises (None for a park without enterprises).
    """

    park_id: int
    period_start: date
    period_end: date
    enterprises: int
    reporting: int
    links: tuple[SymbiosisLink, ...]

    @property
    def participants(self) -> frozenset[int]:
        return frozenset(i for link in self.links for i in (link.source_id, link.target_id))

    @property
    def share(self) -> float | None:
        return len(self.participants) / self.enterprises if self.enterprises else None

    @property
    def reporting_share(self) -> float | None:
        return self.reporting / self.enterprises if self.enterprises else None


async def participation(
    session: AsyncSession,
    *,
    caller: Caller,
    park_id: int,
    period_start: date,
    period_end: date,
    fate_rules: tuple[WasteFateRule, ...] | None = None,
) -> Participation:
    """Links and counts of park ``park_id`` over the period: three statements."""
    check_period(period_start, period_end)
    authorize(caller, Action.READ, park_id=park_id)
    rules = waste_fate_rules() if fate_rules is None else fate_rules
    f = flow_t.alias("f")
    src = node_t.alias("src")
    tgt = node_t.alias("tgt")
    in_period = (
        flow_scope(caller, f.c.park_id),
        f.c.park_id == park_id,
        f.c.period_start >= period_start,
        f.c.period_end <= period_end,
    )
    enterprise = NodeKind.ENTERPRISE.value
    rows = await session.execute(
        sa.select(
            f.c.source_id,
            f.c.target_id,
            f.c.material_id,
            tgt.c.isic_code,
            sa.func.sum(f.c.quantity).label("quantity"),
            sa.func.count().label("entries"),
        )
        .select_from(
            f.join(src, src.c.id == f.c.source_id)
            .join(tgt, tgt.c.id == f.c.target_id)
            .join(material_t, material_t.c.id == f.c.material_id)
        )
        .where(
            *in_period,
            src.c.kind == enterprise,
            tgt.c.kind == enterprise,
            sa.or_(material_t.c.kind.in_(_LINK_KINDS), material_t.c.secondary.is_(True)),
        )
        .group_by(f.c.source_id, f.c.target_id, f.c.material_id, tgt.c.isic_code)
    )
    links = tuple(
        SymbiosisLink(r.source_id, r.target_id, r.material_id, float(r.quantity), int(r.entries))
        for r in rows
        if float(r.quantity) > 0 and not is_waste_service(rules, r.isic_code)
    )
    enterprises = (
        await session.execute(
            sa.select(sa.func.count()).where(
                park_scope(caller, node_t.c.park_id),
                node_t.c.park_id == park_id,
                node_t.c.kind == enterprise,
            )
        )
    ).scalar_one()

    def flows_at(end: Any) -> sa.Exists:
        return sa.exists().where(
            end == node_t.c.id,
            flow_scope(caller, f.c.park_id),
            f.c.period_start >= period_start,
            f.c.period_end <= period_end,
        )

    # one index probe per enterprise and end (ix_flow_source_period, ix_flow_target_period)
    reporting = (
        await session.execute(
            sa.select(sa.func.count()).where(
                park_scope(caller, node_t.c.park_id),
                node_t.c.park_id == park_id,
                node_t.c.kind == enterprise,
                sa.or_(flows_at(f.c.source_id), flows_at(f.c.target_id)),
            )
        )
    ).scalar_one()
    return Participation(
        park_id=park_id,
        period_start=period_start,
        period_end=period_end,
        enterprises=int(enterprises),
        reporting=int(reporting),
        links=tuple(sorted(links, key=lambda k: (k.source_id, k.target_id, k.material_id))),
    )
