"""Root query fields of the catalogue and the ledger: parse arguments, call the domain, map."""

from __future__ import annotations

from typing import Annotated

import strawberry
from strawberry.types import Info

from mfa import reads
from mfa.api.context import Context
from mfa.api.ids import after_pk, decode_global_id, pk_of
from mfa.api.pages import enterprise_page, flow_connection, page_size
from mfa.api.types import (
    Connection,
    DirectionType,
    Enterprise,
    Flow,
    Material,
    MaterialKindType,
    Node,
    Park,
    PeriodInput,
    RecordBatch,
    connection,
    endpoint,
)
from mfa.errors import MfaError
from mfa.reads import Direction

NODE_TYPES = ("Enterprise", "BoundaryNode")


@strawberry.input(description="Which flows to list; every condition given must hold.")
class FlowFilter:
    park: strawberry.ID | None = None
    enterprise: strawberry.ID | None = strawberry.field(
        default=None, description="Flows into or out of this enterprise (see direction)."
    )
    direction: DirectionType = Direction.ANY  # type: ignore[valid-type]
    materials: list[strawberry.ID] | None = None
    kinds: list[MaterialKindType] | None = None  # type: ignore[valid-type]
    period: PeriodInput | None = strawberry.field(
        default=None, description="Flows whose period lies inside this one."
    )
    include_reversed: bool = strawberry.field(
        default=True, description="False hides reversals and the entries they cancel."
    )

    def to_domain(self) -> reads.FlowFilter:
        if self.period is not None and self.period.end < self.period.start:
            raise MfaError("period ends before it starts", field=("filter", "period", "end"))
        return reads.FlowFilter(
            park_id=pk_of(self.park, "Park", field="park") if self.park else None,
            enterprise_id=(
                pk_of(self.enterprise, "Enterprise", field="enterprise")
                if self.enterprise
                else None
            ),
            direction=self.direction,
            material_ids=tuple(
                pk_of(m, "Material", field="materials") for m in self.materials or ()
            ),
            kinds=tuple(self.kinds or ()),
            period_start=self.period.start if self.period else None,
            period_end=self.period.end if self.period else None,
            include_reversed=self.include_reversed,
        )


async def resolve_node(info: Info[Context, None], global_id: str) -> Node | None:
    decoded = decode_global_id(global_id)
    if decoded is None:
        return None
    type_name, pk = decoded
    ctx = info.context
    if type_name == "Park":
        park = await ctx.parks.load(pk)
        return None if park is None else Park.from_row(park)
    if type_name in NODE_TYPES:
        node = await ctx.nodes.load(pk)
        if node is None:
            return None
        built = endpoint(node)
        return built if type(built).__name__ == type_name else None
    if type_name == "Material":
        material = await ctx.materials.load(pk)
        return None if material is None else Material.from_row(material)
    if type_name == "Flow":
        flow = await ctx.flows.load(pk)
        return None if flow is None else Flow.from_row(flow)
    if type_name == "RecordBatch":
        batch = await ctx.batches.load(pk)
        return None if batch is None else RecordBatch.from_row(batch)
    if type_name == "Scenario":
        from mfa.api.circularity_gaps import scenario_node  # imports this module's types

        return await scenario_node(info, pk)
    if type_name == "ImportJob":
        from mfa.api.imports import import_job_node

        return await import_job_node(info, pk)
    return None


@strawberry.type
class CatalogueQuery:
    @strawberry.field(description="Fetch any object by its global id.")
    async def node(self, info: Info[Context, None], id: strawberry.ID) -> Node | None:
        return await resolve_node(info, id)

    @strawberry.field
    async def parks(
        self, info: Info[Context, None], first: int = 50, after: str | None = None
    ) -> Connection[Park]:
        size = page_size(info, first)
        async with info.context.read() as session:
            page = await reads.park_page(
                session, caller=info.context.caller, first=size, after_id=after_pk(after)
            )
        return connection(page, Park.from_row)

    @strawberry.field(description="One park, by id or by code.")
    async def park(
        self,
        info: Info[Context, None],
        id: strawberry.ID | None = None,
        code: str | None = None,
    ) -> Park | None:
        if (id is None) == (code is None):
            raise MfaError("give either id or code", field=("id",))
        if id is not None:
            row = await info.context.parks.load(pk_of(id, "Park", field="id"))
        else:
            async with info.context.read() as session:
                row = await reads.park_by_code(session, code or "", caller=info.context.caller)
        return None if row is None else Park.from_row(row)

    @strawberry.field(description="Enterprises, of one park or all, optionally of one sector.")
    async def enterprises(
        self,
        info: Info[Context, None],
        park: strawberry.ID | None = None,
        isic_prefix: Annotated[
            str | None, strawberry.argument(description="'24' for basic metals, '2410' a class")
        ] = None,
        first: int = 50,
        after: str | None = None,
    ) -> Connection[Enterprise]:
        park_id = pk_of(park, "Park", field="park") if park else None
        return await enterprise_page(
            info, park_id=park_id, first=first, after=after, isic_prefix=isic_prefix
        )

    @strawberry.field(description="The material catalogue.")
    async def materials(
        self,
        info: Info[Context, None],
        kinds: list[MaterialKindType] | None = None,  # type: ignore[valid-type]
        search: Annotated[
            str | None,
            strawberry.argument(description="Part of a code or name, or an HS / EWC prefix."),
        ] = None,
        first: int = 50,
        after: str | None = None,
    ) -> Connection[Material]:
        size = page_size(info, first)
        async with info.context.read() as session:
            page = await reads.material_page(
                session,
                caller=info.context.caller,
                first=size,
                after_id=after_pk(after),
                kinds=tuple(kinds or ()),
                search=search,
            )
        return connection(page, Material.from_row)


@strawberry.type
class LedgerQuery:
    @strawberry.field(description="Ledger entries in recording order, filtered.")
    async def flows(
        self,
        info: Info[Context, None],
        filter: FlowFilter | None = None,
        first: int = 50,
        after: str | None = None,
    ) -> Connection[Flow]:
        flt = filter.to_domain() if filter is not None else reads.FlowFilter()
        return await flow_connection(info, flt, first=first, after=after)
