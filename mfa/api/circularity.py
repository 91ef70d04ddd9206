"""GraphQL fields of the circularity indicators and the eco-industrial park scorecard.

Every figure carries the ledger entries it was computed from (``flows``, a connection over
``Flow``) so an auditor can page through them and re-add the total.
"""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa
import strawberry
from strawberry.types import Info

from mfa import circularity as circ
from mfa import reads, scorecard
from mfa.api.context import Context
from mfa.api.ids import pk_of
from mfa.api.pages import flow_connection
from mfa.api.types import Connection, Enterprise, Flow, Material, Park, PeriodInput
from mfa.api.types import enterprise as enterprise_type
from mfa.circularity import indicators as ind
from mfa.errors import MfaError
from mfa.period import check_period
from mfa.units import CANONICAL_UNIT

ScopeKindType = strawberry.enum(circ.ScopeKind, name="CircularityScopeKind")
WasteFateType = strawberry.enum(
    circ.WasteFate, description="Where a waste ends (datasets/circularity/waste_fates.csv)."
)
VerdictType = strawberry.enum(scorecard.Verdict, name="EipVerdict")


async def _selection_flows(
    info: Info[Context, None], selection: circ.FlowSelection, first: int, after: str | None
) -> Connection[Flow]:
    return await flow_connection(
        info, reads.FlowFilter(), first=first, after=after, where=selection.conditions
    )


@strawberry.type(
    description="value = numerator / denominator (null when nothing flowed), with the ledger "
    "entries summed into the denominator."
)
class CircularityRatio:
    value: float | None
    numerator: float
    denominator: float
    unit: str
    flow_count: int = strawberry.field(description="Entries summed, reversals included.")
    selection: strawberry.Private[circ.FlowSelection]

    @staticmethod
    def from_domain(ratio: circ.Ratio) -> CircularityRatio:
        return CircularityRatio(
            value=ratio.value,
            numerator=ratio.numerator,
            denominator=ratio.denominator,
            unit=ratio.unit,
            flow_count=ratio.flows.entries,
            selection=ratio.flows,
        )

    @strawberry.field(description="The ledger entries summed into the denominator.")
    async def flows(
        self, info: Info[Context, None], first: int = 50, after: str | None = None
    ) -> Connection[Flow]:
        return await _selection_flows(info, self.selection, first, after)


@strawberry.type(description="WBCSD CTI material indicators (kg) across the scope's boundary.")
class MaterialCircularity:
    circular_inflow: CircularityRatio = strawberry.field(
        description="Σ inflow renewable or secondary / Σ inflow."
    )
    circular_outflow: CircularityRatio = strawberry.field(
        description="Σ outflow × recovery potential × actual recovery / Σ outflow."
    )
    material_circularity: CircularityRatio = strawberry.field(
        description="(M_in·%CI + M_out·%CO) / (M_in + M_out)."
    )


@strawberry.type(description="An energy carrier left out of the energy sums, and why.")
class UnconvertedEnergy:
    material: Material
    quantity: float
    unit: str
    reason: str
    flow_count: int
    selection: strawberry.Private[circ.FlowSelection]

    @strawberry.field
    async def flows(
        self, info: Info[Context, None], first: int = 50, after: str | None = None
    ) -> Connection[Flow]:
        return await _selection_flows(info, self.selection, first, after)


@strawberry.type
class EnergyCircularity:
    renewable_share: CircularityRatio = strawberry.field(
        description="Renewable energy used / energy used (kWh)."
    )
    unconverted: list[UnconvertedEnergy]


@strawberry.type(description="Water circularity (m3) [verify against the CTI guide].")
class WaterCircularity:
    circular_inflow: CircularityRatio = strawberry.field(
        description="Reclaimed or rain water used / water used."
    )
    circular_outflow: CircularityRatio = strawberry.field(
        description="Water leaving reused or treated / water leaving."
    )
    water_circularity: CircularityRatio


@strawberry.type(description="Waste (kg) with one fate.")
class WasteFateTotal:
    fate: WasteFateType  # type: ignore[valid-type]
    quantity: float
    kept_inside: float = strawberry.field(description="Of it, used by enterprises of the park.")
    rules: list[str] = strawberry.field(description="waste_fates.csv rules that decided it.")
    flow_count: int
    selection: strawberry.Private[circ.FlowSelection]

    @strawberry.field
    async def flows(
        self, info: Info[Context, None], first: int = 50, after: str | None = None
    ) -> Connection[Flow]:
        return await _selection_flows(info, self.selection, first, after)


@strawberry.type(description="Wastes (kg) sent by the scope's enterprises, by fate.")
class WasteByFate:
    unit: str
    total: float
    hazardous: float
    fates: list[WasteFateTotal]
    kept_inside: CircularityRatio = strawberry.field(
        description="Re-used, recycled or recovered for energy inside the park / total."
    )


@strawberry.type(description="Ellen MacArthur MCI of one product, with each term (kg).")
class ProductMci:
    material: Material
    mass: float
    recycled_feedstock: float = strawberry.field(description="F_R")
    reused_feedstock: float = strawberry.field(description="F_U")
    sustainable_bio_feedstock: float = strawberry.field(description="F_S")
    virgin: float = strawberry.field(description="V")
    unrecoverable: float = strawberry.field(description="W0")
    recycling_waste: float = strawberry.field(description="W_C")
    feedstock_waste: float = strawberry.field(description="W_F")
    waste: float = strawberry.field(description="W")
    lfi: float = strawberry.field(description="Linear flow index.")
    utility: float = strawberry.field(description="X")
    mci: float
    parameters_source: str


@strawberry.type(description="An enterprise's mass-weighted MCI.")
class EnterpriseMci:
    enterprise: Enterprise
    mci: float | None
    product_mass: float
    feedstock_mass: float
    products: list[ProductMci]
    enterprise_pk: strawberry.Private[int]
    period_start: strawberry.Private[date]
    period_end: strawberry.Private[date]
    feedstock_ids: strawberry.Private[tuple[int, ...]]
    product_ids: strawberry.Private[tuple[int, ...]]

    @strawberry.field(description="The mass inputs the feedstock shares come from.")
    async def feedstock_flows(
        self, info: Info[Context, None], first: int = 50, after: str | None = None
    ) -> Connection[Flow]:
        return await self._flows(info, reads.Direction.IN, self.feedstock_ids, first, after)

    @strawberry.field(description="The product outputs rated.")
    async def product_flows(
        self, info: Info[Context, None], first: int = 50, after: str | None = None
    ) -> Connection[Flow]:
        return await self._flows(info, reads.Direction.OUT, self.product_ids, first, after)

    async def _flows(
        self,
        info: Info[Context, None],
        direction: reads.Direction,
        materials: tuple[int, ...],
        first: int,
        after: str | None,
    ) -> Connection[Flow]:
        flt = reads.FlowFilter(
            enterprise_id=self.enterprise_pk,
            direction=direction,
            material_ids=materials,
            period_start=self.period_start,
            period_end=self.period_end,
        )
        nothing = None if materials else (lambda _f: [sa.false()])
        return await flow_connection(info, flt, first=first, after=after, where=nothing)


@strawberry.type(description="Circularity indicators of a park, an enterprise or a group.")
class Circularity:
    scope_kind: ScopeKindType  # type: ignore[valid-type]
    park: Park
    enterprises: list[Enterprise] = strawberry.field(
        description="The scope's enterprises; empty for a park (all of its enterprises)."
    )
    period_start: date
    period_end: date
    material: MaterialCircularity
    energy: EnergyCircularity
    water: WaterCircularity
    waste: WasteByFate
    mci: float | None = strawberry.field(description="Mass-weighted MCI of all products.")
    mci_by_enterprise: list[EnterpriseMci]
    assumptions: list[str] = strawberry.field(
        description="Defaults applied and data missing, naming the materials concerned."
    )


@strawberry.input(one_of=True, description="A park, one enterprise, or enterprises of one park.")
class CircularityScopeInput:
    park: strawberry.ID | None = strawberry.UNSET
    enterprise: strawberry.ID | None = strawberry.UNSET
    enterprises: list[strawberry.ID] | None = strawberry.UNSET


def _ratio(r: circ.Ratio) -> CircularityRatio:
    return CircularityRatio.from_domain(r)


async def _to_type(info: Info[Context, None], result: circ.Circularity) -> Circularity:
    ctx = info.context
    scope = result.scope
    members = [
        enterprise_type(n) for n in await ctx.nodes.load_many(list(scope.enterprise_ids)) if n
    ]
    park = await ctx.parks.load(scope.park_id)
    assert park is not None
    material_ids = {u.material_id for u in result.energy.unconverted} | {
        p.material_id for e in result.enterprises for p in e.products
    }
    materials = dict(
        zip(material_ids, await ctx.materials.load_many(list(material_ids)), strict=True)
    )
    nodes = await ctx.nodes.load_many([e.enterprise_id for e in result.enterprises])

    def product(p: ind.ProductMci) -> ProductMci:
        r = p.result
        row = materials[p.material_id]
        assert row is not None
        return ProductMci(
            material=Material.from_row(row),
            mass=r.inputs.mass,
            recycled_feedstock=r.inputs.recycled_feedstock,
            reused_feedstock=r.inputs.reused_feedstock,
            sustainable_bio_feedstock=r.inputs.sustainable_bio_feedstock,
            virgin=r.virgin,
            unrecoverable=r.unrecoverable,
            recycling_waste=r.recycling_waste,
            feedstock_waste=r.feedstock_waste,
            waste=r.waste,
            lfi=r.lfi,
            utility=r.utility,
            mci=r.mci,
            parameters_source=p.parameters_source,
        )

    def enterprise_mci(e: ind.EnterpriseMci, node: reads.NodeRow) -> EnterpriseMci:
        return EnterpriseMci(
            enterprise=enterprise_type(node),
            enterprise_pk=e.enterprise_id,
            mci=e.mci,
            product_mass=e.product_mass,
            feedstock_mass=e.feedstock_mass,
            products=[product(p) for p in e.products],
            period_start=result.period_start,
            period_end=result.period_end,
            feedstock_ids=e.feedstock_material_ids,
            product_ids=tuple(p.material_id for p in e.products),
        )

    unconverted = []
    for u in result.energy.unconverted:
        row = materials[u.material_id]
        assert row is not None
        unconverted.append(
            UnconvertedEnergy(
                material=Material.from_row(row),
                quantity=u.quantity,
                unit=u.unit,
                reason=u.reason,
                flow_count=u.flows.entries,
                selection=u.flows,
            )
        )
    m, w, waste = result.material, result.water, result.waste
    return Circularity(
        scope_kind=scope.kind,
        park=Park.from_row(park),
        enterprises=members,
        period_start=result.period_start,
        period_end=result.period_end,
        material=MaterialCircularity(
            circular_inflow=_ratio(m.circular_inflow),
            circular_outflow=_ratio(m.circular_outflow),
            material_circularity=_ratio(m.material_circularity),
        ),
        energy=EnergyCircularity(
            renewable_share=_ratio(result.energy.renewable_share), unconverted=unconverted
        ),
        water=WaterCircularity(
            circular_inflow=_ratio(w.circular_inflow),
            circular_outflow=_ratio(w.circular_outflow),
            water_circularity=_ratio(w.water_circularity),
        ),
        waste=WasteByFate(
            unit="kg",
            total=waste.total,
            hazardous=waste.hazardous,
            fates=[
                WasteFateTotal(
                    fate=t.fate,
                    quantity=t.quantity,
                    kept_inside=t.kept_inside,
                    rules=list(t.rules),
                    flow_count=t.flows.entries,
                    selection=t.flows,
                )
                for t in waste.fates
            ],
            kept_inside=_ratio(waste.kept_inside),
        ),
        mci=result.mci,
        mci_by_enterprise=[
            enterprise_mci(e, node)
            for e, node in zip(result.enterprises, nodes, strict=True)
            if node is not None
        ],
        assumptions=list(result.assumptions),
    )


@strawberry.type(description="A criterion of datasets/eip_criteria.csv.")
class EipCriterion:
    id: str
    category: str
    topic: str
    indicator: str
    comparator: str
    threshold: float | None = strawberry.field(description="The file's; null: the park sets it.")
    unit: str
    source: str


@strawberry.type(description="A criterion judged: MET, NOT_MET or CANNOT_JUDGE (see missing).")
class EipEvaluation:
    criterion: EipCriterion
    value: float | None
    threshold: float | None = strawberry.field(description="The threshold in force.")
    threshold_set_by_park: bool
    verdict: VerdictType  # type: ignore[valid-type]
    basis: str = strawberry.field(description="How the value is computed.")
    missing: str | None = strawberry.field(description="What prevents judging, if anything.")


@strawberry.type(
    description="A symbiosis link in force: residue, secondary content, energy or "
    "water moved between two enterprises of the park."
)
class EipSymbiosisLink:
    source: Enterprise
    target: Enterprise
    material: Material
    quantity: float
    unit: str
    flow_count: int


@strawberry.type(description="The park judged against the eco-industrial park criteria.")
class EipScorecard:
    park: Park
    period_start: date
    period_end: date
    evaluations: list[EipEvaluation]
    enterprise_count: int
    symbiosis_participant_count: int
    symbiosis_links: list[EipSymbiosisLink]
    circularity: Circularity


@strawberry.input(description="A park's own threshold for a criterion, replacing the file's.")
class EipThresholdInput:
    criterion: str
    threshold: float


async def _scorecard_type(info: Info[Context, None], result: scorecard.Scorecard) -> EipScorecard:
    ctx = info.context
    links = result.participation.links
    ends = await ctx.nodes.load_many([i for k in links for i in (k.source_id, k.target_id)])
    nodes = {n.id: n for n in ends if n is not None}
    rows = await ctx.materials.load_many([k.material_id for k in links])
    materials = {m.id: m for m in rows if m is not None}
    indicators = await _to_type(info, result.circularity)
    return EipScorecard(
        park=indicators.park,
        period_start=result.period_start,
        period_end=result.period_end,
        evaluations=[
            EipEvaluation(
                criterion=EipCriterion(
                    id=e.criterion.id,
                    category=e.criterion.category,
                    topic=e.criterion.topic,
                    indicator=e.criterion.indicator,
                    comparator=e.criterion.comparator,
                    threshold=e.criterion.threshold,
                    unit=e.criterion.unit,
                    source=e.criterion.source,
                ),
                value=e.value,
                threshold=e.threshold,
                threshold_set_by_park=e.threshold_set_by_park,
                verdict=e.verdict,
                basis=e.basis,
                missing=e.missing,
            )
            for e in result.evaluations
        ],
        enterprise_count=result.participation.enterprises,
        symbiosis_participant_count=len(result.participation.participants),
        symbiosis_links=[
            EipSymbiosisLink(
                source=enterprise_type(nodes[k.source_id]),
                target=enterprise_type(nodes[k.target_id]),
                material=Material.from_row(materials[k.material_id]),
                quantity=k.quantity,
                unit=CANONICAL_UNIT[materials[k.material_id].dimension],
                flow_count=k.entries,
            )
            for k in links
            if k.source_id in nodes and k.target_id in nodes and k.material_id in materials
        ],
        circularity=indicators,
    )


@strawberry.type
class CircularityQuery:
    @strawberry.field(
        description="WBCSD CTI, MCI and waste-by-fate indicators of a park, an enterprise or a "
        "group of enterprises over a period, each with the flows it was computed from."
    )
    async def circularity(
        self, info: Info[Context, None], scope: CircularityScopeInput, period: PeriodInput
    ) -> Circularity:
        ctx = info.context
        check_period(period.start, period.end)
        if scope.park:
            park_id, enterprise_ids = pk_of(scope.park, "Park", field="park"), []
        elif scope.enterprise:
            park_id, enterprise_ids = (
                None,
                [pk_of(scope.enterprise, "Enterprise", field="enterprise")],
            )
        else:
            if not scope.enterprises:
                raise MfaError("give at least one enterprise", field=("scope", "enterprises"))
            park_id = None
            enterprise_ids = [
                pk_of(e, "Enterprise", field="enterprises") for e in scope.enterprises
            ]
        async with ctx.read() as session:
            resolved = await circ.resolve_scope(
                session, caller=ctx.caller, park_id=park_id, enterprise_ids=enterprise_ids
            )
            result = await circ.circularity(
                session,
                caller=ctx.caller,
                scope=resolved,
                period_start=period.start,
                period_end=period.end,
            )
        return await _to_type(info, result)

    @strawberry.field(
        description="The park judged against datasets/eip_criteria.csv: Vietnam's decree "
        "criteria and the international framework's environmental topics."
    )
    async def eip_scorecard(
        self,
        info: Info[Context, None],
        park: strawberry.ID,
        period: PeriodInput,
        thresholds: list[EipThresholdInput] | None = None,
    ) -> EipScorecard:
        ctx = info.context
        park_id = pk_of(park, "Park", field="park")
        given: dict[str, float] = {}
        for t in thresholds or []:
            if t.criterion in given:
                raise MfaError(
                    f"criterion {t.criterion!r} is given more than once", field=("thresholds",)
                )
            given[t.criterion] = t.threshold
        async with ctx.read() as session:
            result = await scorecard.scorecard(
                session,
                caller=ctx.caller,
                park_id=park_id,
                period_start=period.start,
                period_end=period.end,
                thresholds=given,
            )
        return await _scorecard_type(info, result)
