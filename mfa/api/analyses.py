"""GraphQL types and root fields of the analyses over the ledger: mass balance and chains."""

from __future__ import annotations

from datetime import date

import strawberry
from strawberry.types import Info

from mfa import balance, reads
from mfa import chain as chains
from mfa.api.context import Context
from mfa.api.ids import pk_of
from mfa.api.pages import flow_connection
from mfa.api.queries import NODE_TYPES
from mfa.api.types import Connection, Enterprise, Flow, Material, PeriodInput
from mfa.api.types import enterprise as enterprise_type
from mfa.errors import MfaError

BalanceGroupType = strawberry.enum(balance.BalanceGroup)
ChainDirectionType = strawberry.enum(chains.ChainDirection)


@strawberry.type(description="One material's balance at the enterprise, in `unit`.")
class BalanceLine:
    material: Material
    unit: str
    group: BalanceGroupType | None = strawberry.field(  # type: ignore[valid-type]
        description="The total it counts in; null for energy carriers and emissions."
    )
    inputs: float
    outputs: float
    opening_stock: float | None = strawberry.field(description="Reading before the period.")
    opening_stock_on: date | None
    closing_stock: float | None = strawberry.field(description="Reading at its end.")
    closing_stock_on: date | None
    stock_change: float | None = strawberry.field(description="closing − opening, if known.")
    net: float = strawberry.field(description="inputs − outputs − stockChange.")


@strawberry.type(
    description="residual = inputs − outputs − stockChange; relativeResidual = |residual| / "
    "throughput, throughput = max(inputs, outputs)."
)
class BalanceTotal:
    group: BalanceGroupType  # type: ignore[valid-type]
    unit: str
    inputs: float
    outputs: float
    stock_change: float
    residual: float
    throughput: float
    relative_residual: float | None
    within_tolerance: bool
    stock_known: bool = strawberry.field(
        description="False when a material that moved has no known stock change (counted as 0)."
    )

    @staticmethod
    def from_domain(total: balance.BalanceTotal) -> BalanceTotal:
        return BalanceTotal(
            group=total.group,
            unit=total.unit,
            inputs=total.inputs,
            outputs=total.outputs,
            stock_change=total.stock_change,
            residual=total.residual,
            throughput=total.throughput,
            relative_residual=total.relative_residual,
            within_tolerance=total.within_tolerance,
            stock_known=total.stock_known,
        )


@strawberry.type(description="An enterprise's books for a period: what came in, went out, stayed.")
class MassBalance:
    enterprise: Enterprise
    period_start: date
    period_end: date
    tolerance: float = strawberry.field(description="Largest relativeResidual judged balanced.")
    lines: list[BalanceLine]
    material_total: BalanceTotal = strawberry.field(
        description="Products, by-products and wastes measured by mass (kg): the judged balance."
    )
    water_total: BalanceTotal = strawberry.field(description="Everything measured in m3.")
    flow_count: int = strawberry.field(description="Ledger entries summed, reversals included.")
    enterprise_pk: strawberry.Private[int]

    @strawberry.field(description="The ledger entries this balance sums.")
    async def flows(
        self, info: Info[Context, None], first: int = 50, after: str | None = None
    ) -> Connection[Flow]:
        flt = reads.FlowFilter(
            enterprise_id=self.enterprise_pk,
            period_start=self.period_start,
            period_end=self.period_end,
        )
        return await flow_connection(info, flt, first=first, after=after)


@strawberry.type
class ChainEdge:
    depth: int = strawberry.field(description="1 for a start flow, 2 for the next step...")
    flow: Flow


@strawberry.type(description="Flows reached by following material from the start flows.")
class Chain:
    direction: ChainDirectionType  # type: ignore[valid-type]
    max_depth: int
    period_start: date
    period_end: date
    truncated: bool = strawberry.field(description="More flows continue past maxDepth.")
    edges: list[ChainEdge]


@strawberry.input
class EnterpriseMaterialInput:
    enterprise: strawberry.ID
    material: strawberry.ID


@strawberry.input(
    one_of=True,
    description="Where a chain starts: a flow, or an enterprise's "
    "flows of a material (out of it downstream, into it upstream).",
)
class ChainStartInput:
    flow: strawberry.ID | None = strawberry.UNSET
    enterprise_material: EnterpriseMaterialInput | None = strawberry.UNSET


@strawberry.type
class AnalysisQuery:
    @strawberry.field(description="An enterprise's mass balance for a period.")
    async def mass_balance(
        self, info: Info[Context, None], enterprise: strawberry.ID, period: PeriodInput
    ) -> MassBalance:
        ctx = info.context
        enterprise_id = pk_of(enterprise, "Enterprise", field="enterprise")
        async with ctx.read() as session:
            result = await balance.mass_balance(
                session,
                caller=ctx.caller,
                enterprise_id=enterprise_id,
                period_start=period.start,
                period_end=period.end,
                tolerance=ctx.settings.balance_tolerance,
            )
        node = await ctx.nodes.load(enterprise_id)
        materials = await ctx.materials.load_many([line.material_id for line in result.lines])
        assert node is not None
        return MassBalance(
            enterprise=enterprise_type(node),
            period_start=result.period_start,
            period_end=result.period_end,
            tolerance=result.tolerance,
            lines=[
                BalanceLine(
                    material=Material.from_row(row),
                    unit=line.unit,
                    group=line.group,
                    inputs=line.inputs,
                    outputs=line.outputs,
                    opening_stock=line.opening_stock,
                    opening_stock_on=line.opening_stock_on,
                    closing_stock=line.closing_stock,
                    closing_stock_on=line.closing_stock_on,
                    stock_change=line.stock_change,
                    net=line.net,
                )
                for line, row in zip(result.lines, materials, strict=True)
                if row is not None
            ],
            material_total=BalanceTotal.from_domain(result.material),
            water_total=BalanceTotal.from_domain(result.water),
            flow_count=result.flow_count,
            enterprise_pk=enterprise_id,
        )

    @strawberry.field(
        description="Follow material downstream (who received it, what they made, where that "
        "went) or upstream, to a depth limit."
    )
    async def chain(
        self,
        info: Info[Context, None],
        start: ChainStartInput,
        direction: ChainDirectionType = chains.ChainDirection.DOWNSTREAM,  # type: ignore[valid-type]
        max_depth: int = 3,
        period: PeriodInput | None = None,
    ) -> Chain:
        ctx = info.context
        limit = ctx.settings.max_chain_depth
        if not 1 <= max_depth <= limit:
            raise MfaError(f"maxDepth must be between 1 and {limit}", field=("maxDepth",))
        async with ctx.read() as session:
            if start.flow:
                start_ids = [pk_of(start.flow, "Flow", field="start")]
            else:
                if not start.enterprise_material or period is None:
                    raise MfaError(
                        "starting from an enterprise and a material needs a period",
                        field=("period",),
                    )
                start_ids = await chains.output_flow_ids(
                    session,
                    caller=ctx.caller,
                    enterprise_id=pk_of(
                        start.enterprise_material.enterprise, *NODE_TYPES, field="enterprise"
                    ),
                    material_id=pk_of(
                        start.enterprise_material.material, "Material", field="material"
                    ),
                    direction=direction,
                    period_start=period.start,
                    period_end=period.end,
                )
                if not start_ids:
                    raise MfaError(
                        "no flows of that material for that enterprise in the period",
                        field=("start",),
                    )
            found = await chains.follow_chain(
                session,
                caller=ctx.caller,
                start_flow_ids=start_ids,
                direction=direction,
                max_depth=max_depth,
                period_start=period.start if period else None,
                period_end=period.end if period else None,
            )
            rows = await reads.flows_by_id(
                session, [e.flow_id for e in found.edges], caller=ctx.caller
            )
        return Chain(
            direction=found.direction,
            max_depth=found.max_depth,
            period_start=found.period_start,
            period_end=found.period_end,
            truncated=found.truncated,
            edges=[
                ChainEdge(depth=e.depth, flow=Flow.from_row(rows[e.flow_id]))
                for e in found.edges
                if e.flow_id in rows
            ],
        )
