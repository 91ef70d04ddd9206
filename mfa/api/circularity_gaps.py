"""GraphQL fields of the circularity gaps, the symbiosis opportunities and the what-if scenarios.

Thin resolvers: parse the arguments, call ``mfa.gaps`` / ``mfa.symbiosis`` / ``mfa.scenarios``,
map the frozen results. The nodes, materials and flows a page names are loaded through the
request's DataLoaders in one batch each, so a page costs the same statements whatever its size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from typing import TypeVar

import strawberry
from strawberry.types import Info

from mfa import gaps as gap_domain
from mfa import scenarios as scenario_domain
from mfa import symbiosis as symbiosis_domain
from mfa.api.context import Context
from mfa.api.errors import UserError, user_errors
from mfa.api.ids import after_pk, cursor_for, pk_of, to_global_id
from mfa.api.pages import page_size
from mfa.api.types import (
    BoundaryNode,
    Connection,
    Edge,
    Enterprise,
    Flow,
    Material,
    Node,
    NodeKindType,
    PageInfo,
    Park,
    PeriodInput,
    endpoint,
)
from mfa.errors import MfaError
from mfa.models import ScenarioChangeKind

S = TypeVar("S")
T = TypeVar("T")

GapKindType = strawberry.enum(
    gap_domain.GapKind, description="Why an item is on the auditor's list (see circularityGaps)."
)
ScenarioChangeKindType = strawberry.enum(
    ScenarioChangeKind,
    description="REROUTE_WASTE: a waste goes to a neighbour in place of its virgin input; "
    "SOLAR_FOR_GRID: rooftop solar replaces grid electricity; WATER_REUSE: reused wastewater "
    "replaces a water withdrawal.",
)


def _page(
    items: Sequence[S], build: Callable[[S], T], *, first: int, after: str | None
) -> Connection[T]:
    """A Relay page over a list computed whole; cursors are 1-based positions in it."""
    start = after_pk(after) or 0
    chosen = items[start : start + first]
    edges = [Edge(cursor=cursor_for(start + i + 1), node=build(x)) for i, x in enumerate(chosen)]
    return Connection(
        edges=edges,
        nodes=[e.node for e in edges],
        page_info=PageInfo(
            has_next_page=start + first < len(items),
            has_previous_page=start > 0,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
        total_count=len(items),
    )


async def _endpoints(
    info: Info[Context, None], ids: set[int]
) -> dict[int, Enterprise | BoundaryNode]:
    ordered = sorted(ids)
    rows = await info.context.nodes.load_many(ordered)
    return {pk: endpoint(row) for pk, row in zip(ordered, rows, strict=True) if row is not None}


async def _materials(info: Info[Context, None], ids: set[int]) -> dict[int, Material]:
    ordered = sorted(ids)
    rows = await info.context.materials.load_many(ordered)
    return {
        pk: Material.from_row(row) for pk, row in zip(ordered, rows, strict=True) if row is not None
    }


@strawberry.type(description="A named figure of a gap, e.g. residual 1234.5 kg.")
class GapFigure:
    name: str
    value: float
    unit: str


@strawberry.type(description="One item of the auditor's list: what, who, how much, and why.")
class CircularityGap:
    kind: GapKindType  # type: ignore[valid-type]
    period_start: date
    period_end: date
    enterprises: list[Enterprise] = strawberry.field(
        description="The enterprises involved: the books' owner, both sides of a transfer, the "
        "waste producer then its possible buyers, or those whose flows lack a factor."
    )
    boundary_nodes: list[BoundaryNode] = strawberry.field(
        description="The landfill or incinerator a waste is sent to, if any."
    )
    materials: list[Material]
    quantity: float = strawberry.field(
        description="The gap's size in `unit`: residual, transfer, waste disposed, quantity "
        "without a factor."
    )
    unit: str
    reason: str = strawberry.field(description="Why it is a gap, with its figures.")
    figures: list[GapFigure]
    flows: list[Flow] = strawberry.field(description="The ledger entries of a transfer gap.")


@strawberry.type
class GapCount:
    kind: GapKindType  # type: ignore[valid-type]
    count: int


@strawberry.type(description="The park's circularity gaps for a period, ordered by kind and size.")
class CircularityGaps:
    period_start: date
    period_end: date
    balance_tolerance: float = strawberry.field(
        description="Largest relative mass-balance residual judged balanced (per month)."
    )
    kinds: list[GapKindType]  # type: ignore[valid-type]
    counts: list[GapCount]
    result: strawberry.Private[gap_domain.GapList]

    @strawberry.field(description="The items, in order.")
    async def gaps(
        self, info: Info[Context, None], first: int = 50, after: str | None = None
    ) -> Connection[CircularityGap]:
        size = page_size(info, first)
        start = after_pk(after) or 0
        shown = self.result.gaps[start : start + size]
        nodes = await _endpoints(info, {n for g in shown for n in g.nodes})
        materials = await _materials(info, {m for g in shown for m in g.materials})
        flow_ids = sorted({f for g in shown for f in g.flow_ids})
        flow_rows = dict(zip(flow_ids, await info.context.flows.load_many(flow_ids), strict=True))

        def build(g: gap_domain.Gap) -> CircularityGap:
            ends = [nodes[n] for n in g.nodes if n in nodes]
            return CircularityGap(
                kind=g.kind,
                period_start=g.period_start,
                period_end=g.period_end,
                enterprises=[n for n in ends if isinstance(n, Enterprise)],
                boundary_nodes=[n for n in ends if isinstance(n, BoundaryNode)],
                materials=[materials[m] for m in g.materials if m in materials],
                quantity=g.quantity,
                unit=g.unit,
                reason=g.reason,
                figures=[GapFigure(name=x.name, value=x.value, unit=x.unit) for x in g.figures],
                flows=[Flow.from_row(r) for f in g.flow_ids if (r := flow_rows[f]) is not None],
            )

        return _page(self.result.gaps, build, first=size, after=after)


@strawberry.type
class Money:
    amount: float
    currency: str = strawberry.field(description="ISO 4217 code.")


def _money(items: Sequence[symbiosis_domain.Money]) -> list[Money]:
    return [Money(amount=m.amount, currency=m.currency) for m in items]


@strawberry.type(
    description="A waste sent to disposal that a neighbour could use in place of a virgin "
    "input: what could move per year and what it would avoid. Alternatives sharing a waste "
    "or a purchase are not additive."
)
class SymbiosisOpportunity:
    rank: int = strawberry.field(description="1 = largest tonnage that could move per year.")
    producer: Enterprise
    waste: Material
    disposal: BoundaryNode
    disposal_kind: NodeKindType  # type: ignore[valid-type]
    buyer: Enterprise
    virgin_material: Material
    ewc_code: str
    hs_heading: str
    crosswalk_note: str
    disposed_in_period: float = strawberry.field(description="kg of the waste disposed.")
    bought_in_period: float = strawberry.field(description="kg of virgin material bought.")
    disposed_overlapping: float = strawberry.field(
        description="kg disposed in periods when the buyer also bought."
    )
    bought_overlapping: float = strawberry.field(
        description="kg bought in periods when the waste was also disposed."
    )
    movable_per_year: float = strawberry.field(
        description="min(disposedOverlapping, boughtOverlapping) × 365 / days, kg/yr."
    )
    virgin_avoided_per_year: float = strawberry.field(description="kg/yr (1 kg replaces 1 kg).")
    disposal_avoided_per_year: float = strawberry.field(description="kg/yr.")
    virgin_factor: float | None = strawberry.field(
        description="Cradle-to-gate kg CO2e per kg of the virgin material, if sourced."
    )
    disposal_factor: float | None = strawberry.field(description="kg CO2e per kg disposed.")
    reprocessing_factor: float | None = strawberry.field(
        description="kg CO2e per kg of waste made usable."
    )
    co2e_avoided_per_year: float | None = strawberry.field(
        description="movablePerYear × (virgin + disposal − reprocessing factor), kg CO2e/yr; "
        "reported beside footprints, never netted; null when a factor is missing."
    )
    missing_factors: list[str]
    cost_saved_per_year: list[Money] = strawberry.field(
        description="movablePerYear × (recorded purchase price + recorded disposal fee)."
    )
    cost_not_counted: list[str] = strawberry.field(description="Prices not recorded, and why.")


@strawberry.type(description="Ranked waste-to-input matches of a park for a period.")
class SymbiosisOpportunities:
    period_start: date
    period_end: date
    days: int
    assumptions: list[str]
    result: strawberry.Private[symbiosis_domain.Opportunities]

    @strawberry.field(description="The opportunities, by rank.")
    async def opportunities(
        self, info: Info[Context, None], first: int = 50, after: str | None = None
    ) -> Connection[SymbiosisOpportunity]:
        size = page_size(info, first)
        start = after_pk(after) or 0
        shown = [o.match for o in self.result.items[start : start + size]]
        nodes = await _endpoints(
            info,
            {x for m in shown for x in (m.producer_id, m.buyer_id, m.disposal_node_id)},
        )
        materials = await _materials(
            info, {x for m in shown for x in (m.waste_material_id, m.virgin_material_id)}
        )

        def build(o: symbiosis_domain.Opportunity) -> SymbiosisOpportunity:
            m = o.match
            producer, buyer, disposal = (
                nodes[m.producer_id],
                nodes[m.buyer_id],
                nodes[m.disposal_node_id],
            )
            assert isinstance(producer, Enterprise)
            assert isinstance(buyer, Enterprise)
            assert isinstance(disposal, BoundaryNode)
            return SymbiosisOpportunity(
                rank=o.rank,
                producer=producer,
                waste=materials[m.waste_material_id],
                disposal=disposal,
                disposal_kind=m.disposal_kind,
                buyer=buyer,
                virgin_material=materials[m.virgin_material_id],
                ewc_code=m.substitute.ewc_code,
                hs_heading=m.substitute.hs_heading,
                crosswalk_note=m.substitute.note,
                disposed_in_period=m.disposed_total,
                bought_in_period=m.bought_total,
                disposed_overlapping=m.disposed,
                bought_overlapping=m.bought,
                movable_per_year=o.movable_per_year,
                virgin_avoided_per_year=o.virgin_avoided_per_year,
                disposal_avoided_per_year=o.disposal_avoided_per_year,
                virgin_factor=o.virgin_factor,
                disposal_factor=o.disposal_factor,
                reprocessing_factor=o.reprocessing_factor,
                co2e_avoided_per_year=o.co2e_avoided_per_year,
                missing_factors=list(o.missing_factors),
                cost_saved_per_year=_money(o.cost_saved_per_year),
                cost_not_counted=list(o.cost_not_counted),
            )

        return _page(self.result.items, build, first=size, after=after)


@strawberry.type
class CircularityGapsQuery:
    @strawberry.field(
        description="The park's circularity gaps for a period: books that do not balance "
        "(judged per calendar month), transfers one-sided or mismatched, waste disposed while "
        "a neighbour buys virgin material it could replace, flows without an emission factor."
    )
    async def circularity_gaps(
        self,
        info: Info[Context, None],
        park: strawberry.ID,
        period: PeriodInput,
        kinds: list[GapKindType] | None = None,  # type: ignore[valid-type]
    ) -> CircularityGaps:
        ctx = info.context
        park_id = pk_of(park, "Park", field="park")
        async with ctx.read() as session:
            result = await gap_domain.circularity_gaps(
                session,
                caller=ctx.caller,
                park_id=park_id,
                period_start=period.start,
                period_end=period.end,
                balance_tolerance=ctx.settings.balance_tolerance,
                kinds=set(kinds) if kinds else None,
            )
        return CircularityGaps(
            period_start=result.period_start,
            period_end=result.period_end,
            balance_tolerance=result.balance_tolerance,
            kinds=list(result.kinds),
            counts=[
                GapCount(kind=k, count=sum(1 for g in result.gaps if g.kind is k))
                for k in result.kinds
            ],
            result=result,
        )

    @strawberry.field(
        description="Waste sent to landfill or incineration matched with neighbours' virgin "
        "purchases it could replace, with yearly tonnage, CO2e and cost avoided, ranked."
    )
    async def symbiosis_opportunities(
        self, info: Info[Context, None], park: strawberry.ID, period: PeriodInput
    ) -> SymbiosisOpportunities:
        ctx = info.context
        async with ctx.read() as session:
            result = await symbiosis_domain.symbiosis_opportunities(
                session,
                caller=ctx.caller,
                park_id=pk_of(park, "Park", field="park"),
                period_start=period.start,
                period_end=period.end,
            )
        return SymbiosisOpportunities(
            period_start=result.period_start,
            period_end=result.period_end,
            days=result.days,
            assumptions=list(result.assumptions),
            result=result,
        )


@strawberry.input(description="One change of a scenario, applied to `share` of a baseline flow.")
class ScenarioChangeInput:
    kind: ScenarioChangeKindType  # type: ignore[valid-type]
    enterprise: strawberry.ID = strawberry.field(
        description="The waste producer, or the enterprise using grid power or water."
    )
    share: float = strawberry.field(description="Fraction of the baseline flow, 0 < share ≤ 1.")
    material: strawberry.ID | None = strawberry.field(
        default=None,
        description="The waste (REROUTE_WASTE) or water material (WATER_REUSE); for "
        "SOLAR_FOR_GRID, one grid material (all by default).",
    )
    partner: strawberry.ID | None = strawberry.field(
        default=None, description="REROUTE_WASTE: the neighbour receiving the waste."
    )
    replaced_material: strawberry.ID | None = strawberry.field(
        default=None, description="REROUTE_WASTE: the neighbour's virgin input it replaces."
    )

    def to_domain(self, index: int) -> scenario_domain.ChangeCreate:
        def material(value: str | None, name: str) -> int | None:
            if value is None:
                return None
            return pk_of(value, "Material", field=name)

        try:
            return scenario_domain.ChangeCreate(
                kind=ScenarioChangeKind(self.kind),
                enterprise_id=pk_of(self.enterprise, "Enterprise", field="enterprise"),
                share=self.share,
                material_id=material(self.material, "material"),
                partner_id=(
                    pk_of(self.partner, "Enterprise", field="partner") if self.partner else None
                ),
                replaced_material_id=material(self.replaced_material, "replacedMaterial"),
            )
        except MfaError as exc:
            raise exc.at("changes", str(index)) from None


@strawberry.input
class ScenarioCreateInput:
    park: strawberry.ID
    name: str = strawberry.field(description="Unique within the park.")
    period: PeriodInput = strawberry.field(description="The period whose flows it changes.")
    changes: list[ScenarioChangeInput]
    description: str | None = None


@strawberry.type
class ScenarioChange:
    position: int
    kind: ScenarioChangeKindType  # type: ignore[valid-type]
    enterprise: Enterprise
    share: float
    material: Material | None
    partner: Enterprise | None
    replaced_material: Material | None


@strawberry.type(
    description="A named what-if: changes to a period's flows. The ledger is untouched."
)
class Scenario(Node):
    id: strawberry.ID
    name: str
    description: str | None
    period_start: date
    period_end: date
    created_by: str
    park: Park
    changes: list[ScenarioChange]


async def _scenario(info: Info[Context, None], s: scenario_domain.StoredScenario) -> Scenario:
    nodes = await _endpoints(
        info,
        {c.enterprise_id for c in s.changes} | {c.partner_id for c in s.changes if c.partner_id},
    )
    materials = await _materials(
        info,
        {m for c in s.changes for m in (c.material_id, c.replaced_material_id) if m is not None},
    )
    park = await info.context.parks.load(s.park_id)
    assert park is not None

    def enterprise(pk: int | None) -> Enterprise | None:
        node = nodes.get(pk) if pk is not None else None
        return node if isinstance(node, Enterprise) else None

    return Scenario(
        id=strawberry.ID(to_global_id("Scenario", s.id)),
        name=s.name,
        description=s.description,
        period_start=s.period_start,
        period_end=s.period_end,
        created_by=s.created_by,
        park=Park.from_row(park),
        changes=[
            ScenarioChange(
                position=i,
                kind=c.kind,
                enterprise=nodes[c.enterprise_id],  # type: ignore[arg-type]
                share=c.share,
                material=materials.get(c.material_id) if c.material_id else None,
                partner=enterprise(c.partner_id),
                replaced_material=(
                    materials.get(c.replaced_material_id) if c.replaced_material_id else None
                ),
            )
            for i, c in enumerate(s.changes)
        ],
    )


async def scenario_node(info: Info[Context, None], pk: int) -> Scenario | None:
    """``node(id:)`` of a scenario: None when there is none (or the caller may not see it)."""
    try:
        async with info.context.read() as session:
            stored = await scenario_domain.get_scenario(session, pk, caller=info.context.caller)
    except MfaError:
        return None
    return await _scenario(info, stored)


@strawberry.type(
    description="Changes against the baseline (negative = less): kg CO2e, kg of virgin "
    "material bought, kg of waste to landfill or incineration, m3 of water withdrawn, m3 of "
    "wastewater sent out, and cost per currency."
)
class ScenarioEffect:
    co2e: float = strawberry.field(
        description="kg CO2e; counts only the terms whose factor exists (see missingFactors)."
    )
    virgin_material: float
    waste_to_disposal: float
    water_withdrawn: float
    wastewater: float
    cost: list[Money]

    @staticmethod
    def from_domain(e: scenario_domain.EffectValue) -> ScenarioEffect:
        return ScenarioEffect(
            co2e=e.co2e,
            virgin_material=e.virgin_material,
            waste_to_disposal=e.waste_to_disposal,
            water_withdrawn=e.water_withdrawn,
            wastewater=e.wastewater,
            cost=_money(e.cost),
        )


@strawberry.type
class EnterpriseScenarioEffect:
    enterprise: Enterprise
    period: ScenarioEffect
    per_year: ScenarioEffect


@strawberry.type(description="One change as evaluated: the baseline it acts on, what it moves.")
class ScenarioChangeResult:
    position: int
    kind: ScenarioChangeKindType  # type: ignore[valid-type]
    baseline: float
    moved: float
    unit: str
    missing_factors: list[str]
    notes: list[str]


@strawberry.type(description="A scenario against its period's baseline, per enterprise and park.")
class ScenarioEvaluation:
    scenario: Scenario
    days: int
    solutions: int = strawberry.field(description="Number of changes.")
    summary: str = strawberry.field(
        description="'N solutions saving X VND/yr, Y t CO2e/yr, ... m3 wastewater/yr'."
    )
    changes: list[ScenarioChangeResult]
    enterprises: list[EnterpriseScenarioEffect]
    park: ScenarioEffect
    park_per_year: ScenarioEffect
    missing_factors: list[str]
    notes: list[str]


@strawberry.type
class ScenarioCreatePayload:
    scenario: Scenario | None
    user_errors: list[UserError]


@strawberry.input
class ScenarioEvaluateInput:
    scenario: strawberry.ID


@strawberry.type
class ScenarioEvaluatePayload:
    evaluation: ScenarioEvaluation | None
    user_errors: list[UserError]


@strawberry.type
class ScenarioMutation:
    @strawberry.mutation(description="Store a named what-if scenario; the ledger is untouched.")
    async def scenario_create(
        self, info: Info[Context, None], input: ScenarioCreateInput
    ) -> ScenarioCreatePayload:
        ctx = info.context
        try:
            data = scenario_domain.ScenarioCreate(
                park_id=pk_of(input.park, "Park", field="park"),
                name=input.name,
                description=input.description,
                period_start=input.period.start,
                period_end=input.period.end,
                changes=tuple(c.to_domain(i) for i, c in enumerate(input.changes)),
            )
            async with ctx.write() as session:
                stored = await scenario_domain.create_scenario(session, data, caller=ctx.caller)
        except MfaError as exc:
            return ScenarioCreatePayload(scenario=None, user_errors=user_errors(exc))
        return ScenarioCreatePayload(scenario=await _scenario(info, stored), user_errors=[])

    @strawberry.mutation(
        description="Evaluate a stored scenario against the ledger as it stands: the change in "
        "CO2e, virgin material, waste to disposal, water and cost, per enterprise and park."
    )
    async def scenario_evaluate(
        self, info: Info[Context, None], input: ScenarioEvaluateInput
    ) -> ScenarioEvaluatePayload:
        ctx = info.context
        try:
            scenario_id = pk_of(input.scenario, "Scenario", field="scenario")
            async with ctx.read() as session:
                result = await scenario_domain.evaluate_scenario(
                    session, scenario_id, caller=ctx.caller
                )
        except MfaError as exc:
            return ScenarioEvaluatePayload(evaluation=None, user_errors=user_errors(exc))
        nodes = await _endpoints(info, {e.enterprise_id for e in result.enterprises})
        return ScenarioEvaluatePayload(
            evaluation=ScenarioEvaluation(
                scenario=await _scenario(info, result.scenario),
                days=result.days,
                solutions=len(result.changes),
                summary=result.summary,
                changes=[
                    ScenarioChangeResult(
                        position=c.position,
                        kind=c.kind,
                        baseline=c.baseline,
                        moved=c.moved,
                        unit=c.unit,
                        missing_factors=list(c.missing),
                        notes=list(c.notes),
                    )
                    for c in result.changes
                ],
                enterprises=[
                    EnterpriseScenarioEffect(
                        enterprise=nodes[e.enterprise_id],  # type: ignore[arg-type]
                        period=ScenarioEffect.from_domain(e.period),
                        per_year=ScenarioEffect.from_domain(e.per_year),
                    )
                    for e in result.enterprises
                ],
                park=ScenarioEffect.from_domain(result.park),
                park_per_year=ScenarioEffect.from_domain(result.park_per_year),
                missing_factors=list(result.missing),
                notes=list(result.notes),
            ),
            user_errors=[],
        )
