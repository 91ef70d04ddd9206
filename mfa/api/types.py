"""GraphQL object types of the catalogue and the ledger, built from the read rows.

Nested objects that a page prefetches (a flow's ends, material, confirmation) are plain
attributes; only what a page cannot prefetch (an end's park, a reversal, a batch) goes
through the request's DataLoaders.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Generic, Protocol, TypeVar

import strawberry
from strawberry.types import Info

from mfa import reads
from mfa.api.context import Context
from mfa.api.ids import cursor_for, to_global_id
from mfa.models import BatchKind, ConfirmationStatus, MaterialKind, NodeKind
from mfa.reads import Direction, TransferStatus
from mfa.units import CANONICAL_UNIT, Dimension

T = TypeVar("T")


class _Keyed(Protocol):
    @property
    def id(self) -> int: ...


R = TypeVar("R", bound=_Keyed)

NodeKindType = strawberry.enum(NodeKind, description="What a node of the park's flow network is.")
MaterialKindType = strawberry.enum(MaterialKind, description="What role a material plays.")
DimensionType = strawberry.enum(Dimension, description="Fixes a material's canonical unit.")
BatchKindType = strawberry.enum(BatchKind, description="How a batch of rows entered the ledger.")
ConfirmationStatusType = strawberry.enum(ConfirmationStatus)
TransferStatusType = strawberry.enum(TransferStatus)
DirectionType = strawberry.enum(Direction)


@strawberry.interface(description="An object with a global id, fetchable with `node(id:)`.")
class Node:
    id: strawberry.ID


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class Edge(Generic[T]):
    cursor: str
    node: T


@strawberry.type(description="A page of a list that can grow (Relay connection).")
class Connection(Generic[T]):
    edges: list[Edge[T]]
    nodes: list[T]
    page_info: PageInfo
    total_count: int = strawberry.field(description="How many items match, over all pages.")


def connection(page: reads.Page[R], build: Callable[[R], T]) -> Connection[T]:
    """Map a keyset page of rows to a connection; cursors are the rows' primary keys."""
    nodes = [build(item) for item in page.items]
    cursors = [cursor_for(item.id) for item in page.items]
    return Connection(
        edges=[Edge(cursor=c, node=n) for c, n in zip(cursors, nodes, strict=True)],
        nodes=nodes,
        page_info=PageInfo(
            has_next_page=page.has_next,
            has_previous_page=page.has_previous,
            start_cursor=cursors[0] if cursors else None,
            end_cursor=cursors[-1] if cursors else None,
        ),
        total_count=page.total_count,
    )


@strawberry.type(description="An industrial park: its enterprises and its boundary nodes.")
class Park(Node):
    id: strawberry.ID
    code: str
    name: str
    country: str = strawberry.field(description="ISO 3166-1 alpha-2 code.")
    region: str | None
    description: str | None
    pk: strawberry.Private[int]

    @staticmethod
    def from_row(row: reads.ParkRow) -> Park:
        return Park(
            id=strawberry.ID(to_global_id("Park", row.id)),
            code=row.code,
            name=row.name,
            country=row.country,
            region=row.region,
            description=row.description,
            pk=row.id,
        )

    @strawberry.field(description="The park's enterprises, optionally of one ISIC sector.")
    async def enterprises(
        self,
        info: Info[Context, None],
        first: int = 50,
        after: str | None = None,
        isic_prefix: Annotated[
            str | None, strawberry.argument(description="'24' for basic metals, '2410' a class")
        ] = None,
    ) -> Connection[Enterprise]:
        from mfa.api.pages import enterprise_page

        return await enterprise_page(
            info, park_id=self.pk, first=first, after=after, isic_prefix=isic_prefix
        )

    @strawberry.field(description="Suppliers, customers, landfill, grid... outside the park.")
    async def boundary_nodes(self, info: Info[Context, None]) -> list[BoundaryNode]:
        from mfa.api.pages import boundary_nodes

        return await boundary_nodes(info, park_id=self.pk)


@strawberry.interface(description="A source or target of flows: an enterprise or a boundary node.")
class FlowEndpoint(Node):
    id: strawberry.ID
    code: str
    name: str
    kind: NodeKindType  # type: ignore[valid-type]
    park_pk: strawberry.Private[int]

    @strawberry.field
    async def park(self, info: Info[Context, None]) -> Park:
        row = await info.context.parks.load(self.park_pk)
        assert row is not None
        return Park.from_row(row)


@strawberry.type(description="An enterprise inside the park; it keeps books.")
class Enterprise(FlowEndpoint):
    isic_code: str = strawberry.field(description="ISIC Rev.4 class of its activity.")
    tax_id: str | None


@strawberry.type(description="A node outside the park: supplier, customer, landfill, grid...")
class BoundaryNode(FlowEndpoint):
    pass


def endpoint(row: reads.NodeRow) -> Enterprise | BoundaryNode:
    if row.kind is NodeKind.ENTERPRISE:
        return Enterprise(
            id=strawberry.ID(to_global_id("Enterprise", row.id)),
            code=row.code,
            name=row.name,
            kind=row.kind,
            park_pk=row.park_id,
            isic_code=row.isic_code or "",
            tax_id=row.tax_id,
        )
    return BoundaryNode(
        id=strawberry.ID(to_global_id("BoundaryNode", row.id)),
        code=row.code,
        name=row.name,
        kind=row.kind,
        park_pk=row.park_id,
    )


def enterprise(row: reads.NodeRow) -> Enterprise:
    built = endpoint(row)
    assert isinstance(built, Enterprise)
    return built


@strawberry.type(description="An activity of a Brightway project, by key.")
class BrightwayKey:
    database: str
    code: str


@strawberry.type(description="A material of the catalogue, with its classification codes.")
class Material(Node):
    id: strawberry.ID
    code: str
    name: str
    kind: MaterialKindType  # type: ignore[valid-type]
    dimension: DimensionType  # type: ignore[valid-type]
    canonical_unit: str = strawberry.field(description="kg, m3 or kWh: the unit of quantities.")
    hs_code: str | None = strawberry.field(description="Harmonized System code.")
    ewc_code: str | None = strawberry.field(description="European List of Waste code.")
    vn_waste_code: str | None = strawberry.field(description="Vietnam's waste list code.")
    hazardous: bool
    renewable: bool
    secondary: bool = strawberry.field(description="Reused or recycled (non-virgin) content.")
    description: str | None
    brightway_activity: BrightwayKey | None = strawberry.field(
        description="The Brightway activity purchases of it are linked to, if any."
    )

    @staticmethod
    def from_row(row: reads.MaterialRow) -> Material:
        return Material(
            id=strawberry.ID(to_global_id("Material", row.id)),
            code=row.code,
            name=row.name,
            kind=row.kind,
            dimension=row.dimension,
            canonical_unit=CANONICAL_UNIT[row.dimension],
            hs_code=row.hs_code,
            ewc_code=row.ewc_code,
            vn_waste_code=row.vn_waste_code,
            hazardous=row.hazardous,
            renewable=row.renewable,
            secondary=row.secondary,
            description=row.description,
            brightway_activity=(
                BrightwayKey(database=row.brightway_database, code=row.brightway_code or "")
                if row.brightway_database
                else None
            ),
        )


@strawberry.type(description="The counterparty's report of a transfer.")
class FlowConfirmation:
    reporting_party: Enterprise
    quantity: float = strawberry.field(description="In the flow's canonical unit.")
    reported_quantity: Decimal
    reported_unit: str
    evidence: str | None
    status: ConfirmationStatusType  # type: ignore[valid-type]
    relative_difference: float = strawberry.field(
        description="|q_flow − q_confirmation| / max(q_flow, q_confirmation)."
    )
    tolerance: float = strawberry.field(description="Tolerance in force when it was recorded.")
    recorded_by: str
    recorded_at: datetime


@strawberry.type(description="A group of rows recorded together, with who sent them and when.")
class RecordBatch(Node):
    id: strawberry.ID
    kind: BatchKindType  # type: ignore[valid-type]
    source: str | None
    idempotency_key: str | None
    row_count: int
    recorded_by: str
    recorded_at: datetime
    pk: strawberry.Private[int]

    @staticmethod
    def from_row(row: reads.BatchRow) -> RecordBatch:
        return RecordBatch(
            id=strawberry.ID(to_global_id("RecordBatch", row.id)),
            kind=row.kind,
            source=row.source,
            idempotency_key=row.idempotency_key,
            row_count=row.row_count,
            recorded_by=row.recorded_by,
            recorded_at=row.recorded_at,
            pk=row.id,
        )

    @strawberry.field(description="The flows this batch recorded (not the confirmations).")
    async def flows(
        self, info: Info[Context, None], first: int = 50, after: str | None = None
    ) -> Connection[Flow]:
        from mfa.api.pages import flow_connection

        return await flow_connection(
            info, reads.FlowFilter(batch_id=self.pk), first=first, after=after
        )


@strawberry.type(description="One ledger entry: a quantity of a material from source to target.")
class Flow(Node):
    id: strawberry.ID
    source: FlowEndpoint
    target: FlowEndpoint
    material: Material
    quantity: float = strawberry.field(
        description="In the material's canonical unit; negative for a reversal."
    )
    unit: str = strawberry.field(description="The canonical unit: kg, m3 or kWh.")
    reported_quantity: Decimal = strawberry.field(description="The figure as reported.")
    reported_unit: str
    period_start: date
    period_end: date = strawberry.field(description="Inclusive.")
    reporting_party: Enterprise
    evidence: str | None = strawberry.field(description="Document number of the evidence.")
    relative_uncertainty: float | None = strawberry.field(
        description="Relative standard uncertainty, 0.05 for ±5%."
    )
    reason: str | None = strawberry.field(description="Why a reversal was recorded.")
    value: float | None = strawberry.field(description="Invoiced value of the whole flow.")
    currency: str | None = strawberry.field(description="ISO 4217 code of value.")
    recorded_by: str
    recorded_at: datetime
    transfer_status: TransferStatusType  # type: ignore[valid-type]
    confirmation: FlowConfirmation | None = strawberry.field(
        description="The counterparty's newest report of this transfer."
    )
    reverses_pk: strawberry.Private[int | None]
    reversed_by_pk: strawberry.Private[int | None]
    batch_pk: strawberry.Private[int | None]

    @staticmethod
    def from_row(row: reads.FlowRow) -> Flow:
        source, target = endpoint(row.source), endpoint(row.target)
        reporter = source if row.reporting_party_id == row.source.id else target
        assert isinstance(reporter, Enterprise)
        confirmation = None
        if row.confirmation is not None:
            c = row.confirmation
            confirming = target if c.reporting_party_id == row.target.id else source
            assert isinstance(confirming, Enterprise)
            confirmation = FlowConfirmation(
                reporting_party=confirming,
                quantity=c.quantity,
                reported_quantity=Decimal(c.reported_quantity),
                reported_unit=c.reported_unit,
                evidence=c.evidence,
                status=c.status,
                relative_difference=c.relative_difference,
                tolerance=c.tolerance,
                recorded_by=c.recorded_by,
                recorded_at=c.recorded_at,
            )
        return Flow(
            id=strawberry.ID(to_global_id("Flow", row.id)),
            source=source,
            target=target,
            material=Material.from_row(row.material),
            quantity=row.quantity,
            unit=row.unit,
            reported_quantity=Decimal(row.reported_quantity),
            reported_unit=row.reported_unit,
            period_start=row.period_start,
            period_end=row.period_end,
            reporting_party=reporter,
            evidence=row.evidence,
            relative_uncertainty=row.relative_uncertainty,
            reason=row.reason,
            value=row.value,
            currency=row.currency,
            recorded_by=row.recorded_by,
            recorded_at=row.recorded_at,
            transfer_status=row.transfer_status,
            confirmation=confirmation,
            reverses_pk=row.reverses_id,
            reversed_by_pk=row.reversed_by_id,
            batch_pk=row.batch_id,
        )

    @strawberry.field(description="The entry this reversal cancels.")
    async def reverses(self, info: Info[Context, None]) -> Flow | None:
        return await _flow_by_pk(info, self.reverses_pk)

    @strawberry.field(description="The reversal that cancels this entry, if any.")
    async def reversed_by(self, info: Info[Context, None]) -> Flow | None:
        return await _flow_by_pk(info, self.reversed_by_pk)

    @strawberry.field(description="The batch (API batch, import, sample) that recorded it.")
    async def batch(self, info: Info[Context, None]) -> RecordBatch | None:
        if self.batch_pk is None:
            return None
        row = await info.context.batches.load(self.batch_pk)
        return None if row is None else RecordBatch.from_row(row)


async def _flow_by_pk(info: Info[Context, None], pk: int | None) -> Flow | None:
    if pk is None:
        return None
    row = await info.context.flows.load(pk)
    return None if row is None else Flow.from_row(row)


@strawberry.input(description="An inclusive range of dates.")
class PeriodInput:
    start: date
    end: date
