"""Mutations: one ``input``, a payload with a nullable result and ``userErrors``.

Each mutation runs in its own transaction; a refused input rolls it back, so the ledger is
exactly as before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any, TypeVar

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info
from strawberry.types.base import get_object_definition
from strawberry.utils.str_converters import to_camel_case

from mfa import ledger, reads, registry
from mfa.api.context import Context
from mfa.api.errors import UserError, user_errors
from mfa.api.ids import pk_of, to_global_id
from mfa.api.queries import NODE_TYPES
from mfa.api.types import (
    BoundaryNode,
    DimensionType,
    Enterprise,
    Flow,
    Material,
    MaterialKindType,
    NodeKindType,
    Park,
    RecordBatch,
    endpoint,
    enterprise,
)
from mfa.errors import MfaError
from mfa.models import NodeKind

V = TypeVar("V")


async def _in_transaction(
    info: Info[Context, None], work: Callable[[AsyncSession], Awaitable[V]]
) -> V:
    async with info.context.write() as session:
        return await work(session)


async def _flow(info: Info[Context, None], pk: int) -> Flow:
    async with info.context.read() as session:
        rows = await reads.flows_by_id(session, [pk], caller=info.context.caller)
    return Flow.from_row(rows[pk])


@strawberry.input
class ParkCreateInput:
    code: str
    name: str
    country: str = strawberry.field(description="ISO 3166-1 alpha-2 code, e.g. VN.")
    region: str | None = None
    description: str | None = None


@strawberry.type
class ParkCreatePayload:
    park: Park | None
    user_errors: list[UserError]


@strawberry.input
class EnterpriseCreateInput:
    park: strawberry.ID
    name: str
    isic_code: str = strawberry.field(description="ISIC Rev.4 class, four digits.")
    code: str | None = strawberry.field(default=None, description="Defaults to a slug of name.")
    tax_id: str | None = None


@strawberry.type
class EnterpriseCreatePayload:
    enterprise: Enterprise | None
    user_errors: list[UserError]


@strawberry.input
class BoundaryNodeCreateInput:
    park: strawberry.ID
    name: str
    kind: NodeKindType  # type: ignore[valid-type]
    code: str | None = None


@strawberry.type
class BoundaryNodeCreatePayload:
    boundary_node: BoundaryNode | None
    user_errors: list[UserError]


@strawberry.input
class MaterialCreateInput:
    code: str
    name: str
    kind: MaterialKindType  # type: ignore[valid-type]
    dimension: DimensionType  # type: ignore[valid-type]
    hs_code: str | None = None
    ewc_code: str | None = strawberry.field(
        default=None, description="'15 01 02'; a trailing '*' marks a hazardous waste."
    )
    vn_waste_code: str | None = None
    hazardous: bool | None = None
    renewable: bool = False
    secondary: bool = False
    description: str | None = None


@strawberry.type
class MaterialCreatePayload:
    material: Material | None
    user_errors: list[UserError]


@strawberry.input(description="Link a material to a Brightway activity; null key unlinks it.")
class MaterialLinkInput:
    material: strawberry.ID
    database: str | None = None
    code: str | None = None


@strawberry.type
class MaterialLinkPayload:
    material: Material | None
    user_errors: list[UserError]


@strawberry.input(description="One report of a flow.")
class FlowRecordInput:
    source: strawberry.ID
    target: strawberry.ID
    material: strawberry.ID
    quantity: Decimal = strawberry.field(description="Non-negative, in `unit`.")
    unit: str = strawberry.field(description="Any unit of the material's dimension: t, m3, MWh.")
    period_start: date
    period_end: date = strawberry.field(description="Inclusive.")
    reporting_party: strawberry.ID | None = strawberry.field(
        default=None,
        description="The enterprise reporting it: source or target. Defaults to the source "
        "if it is an enterprise, else the target.",
    )
    evidence: str | None = strawberry.field(default=None, description="Document number.")
    relative_uncertainty: float | None = None
    value: Decimal | None = strawberry.field(
        default=None, description="Invoiced value of the whole flow (economic allocation)."
    )
    currency: str | None = strawberry.field(default=None, description="ISO 4217, e.g. VND.")

    def to_domain(self) -> ledger.FlowCreate:
        return ledger.FlowCreate(
            source_id=pk_of(self.source, *NODE_TYPES, field="source"),
            target_id=pk_of(self.target, *NODE_TYPES, field="target"),
            material_id=pk_of(self.material, "Material", field="material"),
            quantity=self.quantity,
            unit=self.unit,
            period_start=self.period_start,
            period_end=self.period_end,
            reporting_party_id=(
                pk_of(self.reporting_party, "Enterprise", field="reportingParty")
                if self.reporting_party
                else None
            ),
            evidence=self.evidence,
            relative_uncertainty=self.relative_uncertainty,
            value=self.value,
            currency=self.currency,
        )


def _flow_record_from_input(
    cls: type[FlowRecordInput], value: Mapping[str, Any], _context: object
) -> FlowRecordInput:
    """Build a ``FlowRecordInput`` straight from graphql-core's coerced value.

    Every field is a leaf that graphql-core has already turned into ``str`` / ``Decimal`` /
    ``date`` / ``float``, so strawberry's generic per-field conversion (re-resolving each
    field's type and name for every row: 125–275 µs a row, a quarter of ``flowsRecord``) is
    skipped through its ``from_input`` hook (~15 µs a row, docs/performance.md).
    """
    return cls(**{python: value[name] for name, python in _FLOW_RECORD_FIELDS if name in value})


_FLOW_RECORD_DEFINITION = get_object_definition(FlowRecordInput, strict=True)
_FLOW_RECORD_FIELDS = tuple(
    (field.graphql_name or to_camel_case(field.python_name), field.python_name)
    for field in _FLOW_RECORD_DEFINITION.fields
)
_FLOW_RECORD_DEFINITION.from_input = _flow_record_from_input


@strawberry.type
class FlowRecordPayload:
    flow: Flow | None
    linked: bool = strawberry.field(
        description="True when this report was the other side of a transfer already recorded: "
        "it became that flow's confirmation, and `flow` is the existing entry."
    )
    user_errors: list[UserError]


@strawberry.input
class FlowsRecordInput:
    flows: list[FlowRecordInput]
    idempotency_key: str | None = strawberry.field(
        default=None, description="Repeat a batch with the same key to get its first result."
    )
    source: str | None = strawberry.field(
        default=None, description="Where the rows come from, e.g. an ERP export's name."
    )


def _flows_record_from_input(
    cls: type[FlowsRecordInput], value: Mapping[str, Any], _context: object
) -> FlowsRecordInput:
    """Build the batch and its rows in one pass, skipping strawberry's per-row dispatch."""
    return cls(
        flows=[_flow_record_from_input(FlowRecordInput, row, _context) for row in value["flows"]],
        idempotency_key=value.get("idempotencyKey"),
        source=value.get("source"),
    )


get_object_definition(FlowsRecordInput, strict=True).from_input = _flows_record_from_input


@strawberry.type
class FlowsRecordPayload:
    batch: RecordBatch | None
    flow_ids: list[strawberry.ID] | None = strawberry.field(
        description="The flow each input row became, in input order."
    )
    recorded_count: int = strawberry.field(description="New ledger entries.")
    linked_count: int = strawberry.field(description="Rows that confirmed existing transfers.")
    replayed: bool
    user_errors: list[UserError]


@strawberry.input
class FlowReverseInput:
    flow: strawberry.ID
    reason: str
    evidence: str | None = None


@strawberry.type
class FlowReversePayload:
    reversal: Flow | None
    flow: Flow | None
    user_errors: list[UserError]


@strawberry.input
class FlowConfirmInput:
    flow: strawberry.ID
    quantity: Decimal | None = strawberry.field(
        default=None, description="The counterparty's figure; omit to accept the recorded one."
    )
    unit: str | None = None
    reporting_party: strawberry.ID | None = None
    evidence: str | None = None


@strawberry.type
class FlowConfirmPayload:
    flow: Flow | None
    user_errors: list[UserError]


@strawberry.input
class StockRecordInput:
    enterprise: strawberry.ID
    material: strawberry.ID
    on_date: date = strawberry.field(description="Stock at the end of this day.")
    quantity: Decimal
    unit: str
    evidence: str | None = None


@strawberry.type
class StockRecordPayload:
    recorded: bool
    user_errors: list[UserError]


@strawberry.type
class RegistryMutation:
    @strawberry.mutation
    async def park_create(
        self, info: Info[Context, None], input: ParkCreateInput
    ) -> ParkCreatePayload:
        data = registry.ParkCreate(
            code=input.code,
            name=input.name,
            country=input.country,
            region=input.region,
            description=input.description,
        )
        try:
            park = await _in_transaction(
                info, lambda s: registry.create_park(s, data, caller=info.context.caller)
            )
        except MfaError as exc:
            return ParkCreatePayload(park=None, user_errors=user_errors(exc))
        row = await info.context.parks.load(park.id or 0)
        assert row is not None
        return ParkCreatePayload(park=Park.from_row(row), user_errors=[])

    @strawberry.mutation
    async def enterprise_create(
        self, info: Info[Context, None], input: EnterpriseCreateInput
    ) -> EnterpriseCreatePayload:
        try:
            data = registry.NodeCreate(
                park_id=pk_of(input.park, "Park", field="park"),
                name=input.name,
                kind=NodeKind.ENTERPRISE,
                code=input.code,
                isic_code=input.isic_code,
                tax_id=input.tax_id,
            )
            node = await _in_transaction(
                info, lambda s: registry.create_node(s, data, caller=info.context.caller)
            )
        except MfaError as exc:
            return EnterpriseCreatePayload(enterprise=None, user_errors=user_errors(exc))
        row = await info.context.nodes.load(node.id or 0)
        assert row is not None
        return EnterpriseCreatePayload(enterprise=enterprise(row), user_errors=[])

    @strawberry.mutation
    async def boundary_node_create(
        self, info: Info[Context, None], input: BoundaryNodeCreateInput
    ) -> BoundaryNodeCreatePayload:
        try:
            if input.kind is NodeKind.ENTERPRISE:
                raise MfaError("use enterpriseCreate for enterprises", field=("kind",))
            data = registry.NodeCreate(
                park_id=pk_of(input.park, "Park", field="park"),
                name=input.name,
                kind=input.kind,
                code=input.code,
            )
            node = await _in_transaction(
                info, lambda s: registry.create_node(s, data, caller=info.context.caller)
            )
        except MfaError as exc:
            return BoundaryNodeCreatePayload(boundary_node=None, user_errors=user_errors(exc))
        row = await info.context.nodes.load(node.id or 0)
        assert row is not None
        built = endpoint(row)
        assert isinstance(built, BoundaryNode)
        return BoundaryNodeCreatePayload(boundary_node=built, user_errors=[])

    @strawberry.mutation
    async def material_create(
        self, info: Info[Context, None], input: MaterialCreateInput
    ) -> MaterialCreatePayload:
        data = registry.MaterialCreate(
            code=input.code,
            name=input.name,
            kind=input.kind,
            dimension=input.dimension,
            hs_code=input.hs_code,
            ewc_code=input.ewc_code,
            vn_waste_code=input.vn_waste_code,
            hazardous=input.hazardous,
            renewable=input.renewable,
            secondary=input.secondary,
            description=input.description,
        )
        try:
            material = await _in_transaction(
                info, lambda s: registry.create_material(s, data, caller=info.context.caller)
            )
        except MfaError as exc:
            return MaterialCreatePayload(material=None, user_errors=user_errors(exc))
        row = await info.context.materials.load(material.id or 0)
        assert row is not None
        return MaterialCreatePayload(material=Material.from_row(row), user_errors=[])


@strawberry.type
class MaterialLinkMutation:
    @strawberry.mutation(description="Link a material to an activity of the Brightway project.")
    async def material_link(
        self, info: Info[Context, None], input: MaterialLinkInput
    ) -> MaterialLinkPayload:
        try:
            material_id = pk_of(input.material, "Material", field="material")
            await _in_transaction(
                info,
                lambda s: registry.link_material(
                    s,
                    material_id,
                    caller=info.context.caller,
                    database=input.database,
                    code=input.code,
                ),
            )
        except MfaError as exc:
            return MaterialLinkPayload(material=None, user_errors=user_errors(exc))
        async with info.context.read() as session:
            rows = await reads.materials_by_id(session, [material_id], caller=info.context.caller)
        return MaterialLinkPayload(material=Material.from_row(rows[material_id]), user_errors=[])


@strawberry.type
class LedgerMutation:
    @strawberry.mutation(description="Record one flow; the other side's report confirms it.")
    async def flow_record(
        self, info: Info[Context, None], input: FlowRecordInput
    ) -> FlowRecordPayload:
        ctx = info.context
        try:
            entry = input.to_domain()
            recorded = await _in_transaction(
                info,
                lambda s: ledger.record_flow(
                    s, entry, caller=ctx.caller, tolerance=ctx.settings.transfer_tolerance
                ),
            )
        except MfaError as exc:
            return FlowRecordPayload(flow=None, linked=False, user_errors=user_errors(exc))
        return FlowRecordPayload(
            flow=await _flow(info, recorded.flow_id), linked=recorded.linked, user_errors=[]
        )

    @strawberry.mutation(description="Record a batch of flows, all or nothing.")
    async def flows_record(
        self, info: Info[Context, None], input: FlowsRecordInput
    ) -> FlowsRecordPayload:
        ctx = info.context
        try:
            entries = []
            for index, row in enumerate(input.flows):
                try:
                    entries.append(row.to_domain())
                except MfaError as exc:
                    raise exc.at("flows", str(index)) from None

            async def record(session: AsyncSession) -> tuple[ledger.BatchRecorded, reads.BatchRow]:
                """The batch is read back in the transaction that records it: an answer built
                after the commit could fail (the database going down between the two) and
                tell the client nothing was recorded when it was."""
                recorded = await ledger.record_flows(
                    session,
                    entries,
                    caller=ctx.caller,
                    source=input.source,
                    idempotency_key=input.idempotency_key,
                    max_size=ctx.settings.max_batch_size,
                    tolerance=ctx.settings.transfer_tolerance,
                )
                rows = await reads.batches_by_id(session, [recorded.batch_id], caller=ctx.caller)
                return recorded, rows[recorded.batch_id]

            result, batch = await _in_transaction(info, record)
        except MfaError as exc:
            return FlowsRecordPayload(
                batch=None,
                flow_ids=None,
                recorded_count=0,
                linked_count=0,
                replayed=False,
                user_errors=user_errors(exc),
            )
        linked = sum(1 for e in result.entries if e.linked)
        return FlowsRecordPayload(
            batch=RecordBatch.from_row(batch),
            flow_ids=[strawberry.ID(to_global_id("Flow", e.flow_id)) for e in result.entries],
            recorded_count=len(result.entries) - linked,
            linked_count=linked,
            replayed=result.replayed,
            user_errors=[],
        )

    @strawberry.mutation(description="Cancel a flow with a reversing entry; nothing is deleted.")
    async def flow_reverse(
        self, info: Info[Context, None], input: FlowReverseInput
    ) -> FlowReversePayload:
        ctx = info.context
        try:
            flow_id = pk_of(input.flow, "Flow", field="flow")
            reversal_id = await _in_transaction(
                info,
                lambda s: ledger.reverse_flow(
                    s, flow_id, caller=ctx.caller, reason=input.reason, evidence=input.evidence
                ),
            )
        except MfaError as exc:
            return FlowReversePayload(reversal=None, flow=None, user_errors=user_errors(exc))
        return FlowReversePayload(
            reversal=await _flow(info, reversal_id),
            flow=await _flow(info, flow_id),
            user_errors=[],
        )

    @strawberry.mutation(description="The counterparty confirms (or disputes) a transfer.")
    async def flow_confirm(
        self, info: Info[Context, None], input: FlowConfirmInput
    ) -> FlowConfirmPayload:
        ctx = info.context
        try:
            flow_id = pk_of(input.flow, "Flow", field="flow")
            reporter = (
                pk_of(input.reporting_party, "Enterprise", field="reportingParty")
                if input.reporting_party
                else None
            )
            await _in_transaction(
                info,
                lambda s: ledger.confirm_flow(
                    s,
                    flow_id,
                    caller=ctx.caller,
                    quantity=input.quantity,
                    unit=input.unit,
                    reporting_party_id=reporter,
                    evidence=input.evidence,
                    tolerance=ctx.settings.transfer_tolerance,
                ),
            )
        except MfaError as exc:
            return FlowConfirmPayload(flow=None, user_errors=user_errors(exc))
        return FlowConfirmPayload(flow=await _flow(info, flow_id), user_errors=[])

    @strawberry.mutation(description="Record the stock of a material held at the end of a day.")
    async def stock_record(
        self, info: Info[Context, None], input: StockRecordInput
    ) -> StockRecordPayload:
        ctx = info.context
        try:
            entry = ledger.StockCreate(
                enterprise_id=pk_of(input.enterprise, "Enterprise", field="enterprise"),
                material_id=pk_of(input.material, "Material", field="material"),
                on_date=input.on_date,
                quantity=input.quantity,
                unit=input.unit,
                evidence=input.evidence,
            )
            await _in_transaction(
                info, lambda s: ledger.record_stocks(s, [entry], caller=ctx.caller)
            )
        except MfaError as exc:
            return StockRecordPayload(recorded=False, user_errors=user_errors(exc))
        return StockRecordPayload(recorded=True, user_errors=[])
