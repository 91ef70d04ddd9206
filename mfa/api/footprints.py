"""GraphQL fields of the life-cycle assessment: footprints and the park's emissions.

The solve runs in a worker thread; results are cached per (park, period, ledger version,
options) in the application's ``FootprintCache``, so a new ledger entry in the park makes the
next request compute afresh.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Mapping
from datetime import date

import strawberry
from strawberry.types import Info

from lca import footprint as lca_footprint
from lca.attribution import OUTSIDE_THE_PARK, Scope
from lca.characterisation import GwpMethod
from lca.graph import supply_chain_graph
from lca.inventory import Allocation
from lca.parameters import record_parameters
from lca.recycling import CffParameters, RecyclingMethod
from mfa.api.context import Context
from mfa.api.errors import UserError, user_errors
from mfa.api.ids import pk_of
from mfa.api.types import PeriodInput
from mfa.errors import MfaError

MAX_GRAPH_DEPTH = 10

GwpMethodType = strawberry.enum(GwpMethod, description="IPCC GWP100 factors: AR6 or AR5.")
RecyclingMethodType = strawberry.enum(
    RecyclingMethod, description="Recycling allocation: cut-off, avoided burden, or the PEF CFF."
)
AllocationType = strawberry.enum(
    Allocation, description="How a multi-product enterprise shares its inputs among products."
)


@strawberry.input(description="A user-given allocation share of one product of an enterprise.")
class AllocationShareInput:
    enterprise: strawberry.ID
    material: strawberry.ID
    share: float


def _shares(items: list[AllocationShareInput] | None) -> tuple[tuple[int, int, float], ...]:
    shares = []
    for index, item in enumerate(items or []):
        if not (item.share >= 0 and math.isfinite(item.share)):
            raise MfaError(
                "share must be a finite number ≥ 0", field=("allocationShares", str(index))
            )
        shares.append(
            (
                pk_of(item.enterprise, "Enterprise", field="allocationShares"),
                pk_of(item.material, "Material", field="allocationShares"),
                float(item.share),
            )
        )
    return tuple(sorted(shares))


ScopeType = strawberry.enum(Scope, description="GHG Protocol scope from the asker's view.")


@strawberry.type(description="A part of a footprint, in kg CO2e, and its share of the total.")
class Contribution:
    label: str
    value: float
    share: float | None


@strawberry.type
class ScopeContribution:
    scope: ScopeType  # type: ignore[valid-type]
    value: float


@strawberry.type(description="What the model could not characterise: counted as zero, named.")
class MissingFactor:
    material_code: str
    reason: str
    quantity: float
    unit: str
    enterprises: list[str]


@strawberry.type(description="An activity reached along the supply chain.")
class SupplyGraphNode:
    key: str = strawberry.field(
        description="'production:<enterprise>:<material>', 'purchase:<material>', "
        "'grid:<material>:<year>', 'treatment:<kind>:<material>', or 'demand'."
    )
    depth: int
    supply: float = strawberry.field(description="Units of its product the demand needs.")
    unit: str
    cumulative: float = strawberry.field(description="kg CO2e of it and all upstream.")
    direct: float = strawberry.field(description="kg CO2e emitted by it directly.")


@strawberry.type(description="Product moving from producer to consumer along the chain.")
class SupplyGraphEdge:
    producer: str
    consumer: str
    amount: float
    cumulative: float = strawberry.field(description="The producer's cumulative kg CO2e.")


@strawberry.type(description="Priority-first traversal (bw_graph_tools) down to a cutoff.")
class SupplyGraph:
    total: float
    cutoff: float
    max_depth: int
    nodes: list[SupplyGraphNode]
    edges: list[SupplyGraphEdge]


_DETAIL = (
    "Null for a caller who may not read the subject's books (a partner reading a product shared "
    "with it): it names the suppliers and their emissions."
)


@strawberry.type(description="A cradle-to-gate GWP100 footprint and where it comes from.")
class Footprint:
    subject: str
    period_start: date
    period_end: date
    method: GwpMethodType  # type: ignore[valid-type]
    unit: str = strawberry.field(description="Always kg CO2e.")
    total: float
    avoided: float = strawberry.field(
        description="Avoided emissions (kg CO2e, negative for a credit) from the recycling "
        "allocation chosen: reported beside the total, never netted into it."
    )
    recycling: RecyclingMethodType  # type: ignore[valid-type]
    declared_unit: str | None = strawberry.field(
        description="The product's unit (kg, m3, kWh) for a product footprint."
    )
    per_declared_unit: float | None
    ledger_version: int = strawberry.field(
        description="The park's newest flow id when computed: the result reflects every flow "
        "up to it."
    )
    by_enterprise: list[Contribution] | None = strawberry.field(description=_DETAIL)
    by_activity: list[Contribution] | None = strawberry.field(description=_DETAIL)
    by_gas: list[Contribution]
    by_scope: list[ScopeContribution]
    missing_factors: list[MissingFactor] | None = strawberry.field(description=_DETAIL)
    notes: list[str]
    contains_aggregated_co2e: bool = strawberry.field(
        description="Part of the total comes from factors given only as CO2e (no gas split)."
    )
    result: strawberry.Private[lca_footprint.FootprintResult]
    detail: strawberry.Private[bool]

    @strawberry.field(
        description="The supply chain as edges with amounts and cumulative impact. " + _DETAIL
    )
    async def graph(self, cutoff: float = 0.005, max_depth: int = 5) -> SupplyGraph | None:
        if not self.detail:
            return None
        if not 0 < cutoff < 1:
            raise MfaError("cutoff is a fraction of the total, between 0 and 1", field=("cutoff",))
        if not 1 <= max_depth <= MAX_GRAPH_DEPTH:
            raise MfaError(f"maxDepth must be between 1 and {MAX_GRAPH_DEPTH}", field=("maxDepth",))
        found = await asyncio.to_thread(
            supply_chain_graph,
            self.result.inventory,
            dict(self.result.attribution.footprint.demand),
            method=self.result.request.method,
            cutoff=cutoff,
            max_depth=max_depth,
        )
        return SupplyGraph(
            total=found.total,
            cutoff=found.cutoff,
            max_depth=found.max_depth,
            nodes=[
                SupplyGraphNode(
                    key=n.key,
                    depth=n.depth,
                    supply=n.supply,
                    unit=n.unit,
                    cumulative=n.cumulative,
                    direct=n.direct,
                )
                for n in found.nodes
            ],
            edges=[
                SupplyGraphEdge(
                    producer=e.producer,
                    consumer=e.consumer,
                    amount=e.amount,
                    cumulative=e.cumulative,
                )
                for e in found.edges
            ],
        )


@strawberry.input(one_of=True, description="What to assess: one product, or an enterprise.")
class FootprintSubjectInput:
    product: ProductInput | None = strawberry.UNSET
    enterprise: strawberry.ID | None = strawberry.UNSET


@strawberry.input(description="An enterprise's output of one material.")
class ProductInput:
    enterprise: strawberry.ID
    material: strawberry.ID


def _contributions(values: Mapping[str, float], total: float) -> list[Contribution]:
    ordered = sorted(values.items(), key=lambda item: -abs(item[1]))
    return [
        Contribution(label=label, value=value, share=value / total if total else None)
        for label, value in ordered
    ]


def _to_type(result: lca_footprint.FootprintResult, subject: str, *, detail: bool) -> Footprint:
    attribution = result.attribution
    total = attribution.footprint.total
    request = result.request
    return Footprint(
        subject=subject,
        period_start=request.period_start,
        period_end=request.period_end,
        method=request.method,
        unit="kg CO2e",
        total=total,
        avoided=attribution.footprint.avoided,
        recycling=request.recycling,
        declared_unit=result.declared_unit,
        per_declared_unit=result.per_declared_unit,
        ledger_version=result.ledger_version,
        by_enterprise=_contributions(attribution.by_enterprise, total) if detail else None,
        by_activity=_contributions(attribution.by_activity, total) if detail else None,
        by_gas=_contributions(attribution.by_gas, total),
        by_scope=[ScopeContribution(scope=s, value=v) for s, v in attribution.by_scope.items()],
        missing_factors=[
            MissingFactor(
                material_code=m.material_code,
                reason=m.reason,
                quantity=m.quantity,
                unit=m.unit,
                enterprises=list(m.enterprises),
            )
            for m in result.inventory.missing
        ]
        if detail
        else None,
        notes=list(result.inventory.notes),
        contains_aggregated_co2e=attribution.footprint.contains_aggregated_co2e,
        result=result,
        detail=detail,
    )


async def _run(make: Callable[[], lca_footprint.FootprintResult]) -> lca_footprint.FootprintResult:
    return await asyncio.to_thread(make)


async def _footprint(
    info: Info[Context, None], request: lca_footprint.FootprintRequest, subject: str
) -> Footprint:
    ctx = info.context
    async with ctx.read() as session:
        result = await lca_footprint.footprint(
            session, request, caller=ctx.caller, cache=ctx.footprints, run=_run
        )
    return _to_type(result, subject, detail=lca_footprint.sees_breakdown(ctx.caller, request))


@strawberry.type
class FootprintQuery:
    @strawberry.field(
        description="Cradle-to-gate footprint of a product (per unit and attributed) or of an "
        "enterprise's whole output in a period; cut-off recycling; mass, economic or user "
        "allocation."
    )
    async def footprint(
        self,
        info: Info[Context, None],
        subject: FootprintSubjectInput,
        period: PeriodInput,
        method: GwpMethodType = GwpMethod.AR6,  # type: ignore[valid-type]
        allocation: AllocationType = Allocation.MASS,  # type: ignore[valid-type]
        allocation_shares: list[AllocationShareInput] | None = None,
        recycling: RecyclingMethodType = RecyclingMethod.CUT_OFF,  # type: ignore[valid-type]
    ) -> Footprint:
        if subject.product:
            enterprise_id = pk_of(subject.product.enterprise, "Enterprise", field="enterprise")
            material_id = pk_of(subject.product.material, "Material", field="material")
            kind = lca_footprint.Subject.PRODUCT
            label = f"product of enterprise {enterprise_id}, material {material_id}"
        else:
            enterprise_id = pk_of(str(subject.enterprise), "Enterprise", field="enterprise")
            material_id = None
            kind = lca_footprint.Subject.ENTERPRISE
            label = f"enterprise {enterprise_id}"
        async with info.context.read() as session:
            park_id = await lca_footprint.park_of(session, enterprise_id, field="enterprise")
        request = lca_footprint.FootprintRequest(
            subject=kind,
            park_id=park_id,
            period_start=period.start,
            period_end=period.end,
            method=method,
            enterprise_id=enterprise_id,
            material_id=material_id,
            allocation=allocation,
            shares=_shares(allocation_shares),
            recycling=recycling,
        )
        return await _footprint(info, request, label)

    @strawberry.field(
        description="The park's emissions in a period (production as recorded), by enterprise, "
        f"scope and gas; '{OUTSIDE_THE_PARK}' gathers grid and background purchases."
    )
    async def park_emissions(
        self,
        info: Info[Context, None],
        park: strawberry.ID,
        period: PeriodInput,
        method: GwpMethodType = GwpMethod.AR6,  # type: ignore[valid-type]
        allocation: AllocationType = Allocation.MASS,  # type: ignore[valid-type]
        allocation_shares: list[AllocationShareInput] | None = None,
        recycling: RecyclingMethodType = RecyclingMethod.CUT_OFF,  # type: ignore[valid-type]
    ) -> Footprint:
        request = lca_footprint.FootprintRequest(
            subject=lca_footprint.Subject.PARK,
            park_id=pk_of(park, "Park", field="park"),
            period_start=period.start,
            period_end=period.end,
            method=method,
            allocation=allocation,
            shares=_shares(allocation_shares),
            recycling=recycling,
        )
        return await _footprint(info, request, "park")


@strawberry.input(description="CFF parameters of a material, or of one flow of it.")
class RecyclingParametersSetInput:
    material: strawberry.ID
    flow: strawberry.ID | None = strawberry.field(
        default=None, description="Set for one flow only; otherwise the material's default."
    )
    a: float = strawberry.field(default=0.5, description="A, 0.2–0.8 (0.5 if none applies).")
    b: float = 0.0
    r1: float = strawberry.field(description="R1: recycled content of the input.")
    r2: float = strawberry.field(description="R2: share recycled at end of life.")
    r3: float = 0.0
    qsin_qp: float = 1.0
    qsout_qp: float = 1.0


@strawberry.type
class RecyclingParametersSetPayload:
    recorded: bool
    user_errors: list[UserError]


@strawberry.type
class FootprintMutation:
    @strawberry.mutation(description="Record recycling-allocation parameters; newest in force.")
    async def recycling_parameters_set(
        self, info: Info[Context, None], input: RecyclingParametersSetInput
    ) -> RecyclingParametersSetPayload:
        ctx = info.context
        try:
            parameters = CffParameters(
                r1=input.r1,
                r2=input.r2,
                r3=input.r3,
                a=input.a,
                b=input.b,
                qsin_qp=input.qsin_qp,
                qsout_qp=input.qsout_qp,
            )
            material_id = pk_of(input.material, "Material", field="material")
            flow_id = pk_of(input.flow, "Flow", field="flow") if input.flow else None
            async with ctx.write() as session:
                await record_parameters(
                    session,
                    parameters,
                    caller=ctx.caller,
                    material_id=material_id,
                    flow_id=flow_id,
                )
        except MfaError as exc:
            return RecyclingParametersSetPayload(recorded=False, user_errors=user_errors(exc))
        return RecyclingParametersSetPayload(recorded=True, user_errors=[])
