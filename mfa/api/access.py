"""GraphQL of access control: who am I, the audit trail, clients and footprint shares.

``AuditTrail`` is the schema extension that opens each request's ``Trail`` (so every
``authorize`` decision is noted) and stores the request's refusals after it has run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import strawberry
from strawberry.extensions import SchemaExtension
from strawberry.types import Info

from graphql import OperationDefinitionNode
from mfa import audit, auth
from mfa.access import Action, Role, watching
from mfa.api.context import Context
from mfa.api.errors import UserError, user_errors
from mfa.api.ids import after_pk, pk_of, to_global_id
from mfa.api.pages import page_size
from mfa.api.types import Connection, Enterprise, Park, connection
from mfa.api.types import enterprise as enterprise_type
from mfa.errors import MfaError

RoleType = strawberry.enum(Role, description="What an API client may do (see docs).")
ActionType = strawberry.enum(Action, description="What an access decision was about.")


class AuditTrail(SchemaExtension):
    """Notes the request's access decisions on its context's trail; stores its refusals."""

    async def on_execute(self) -> AsyncIterator[None]:
        context = self.execution_context.context
        if not isinstance(context, Context):
            yield
            return
        context.trail.operation = _operation(self.execution_context)
        with watching(context.trail):
            yield
        await audit.store_refusals(context.factory, context.trail)


def _operation(execution: strawberry.types.ExecutionContext) -> str | None:
    """'mutation flowRecord' for the request's document: its operation type and root fields."""
    document = execution.graphql_document
    if document is None:
        return None
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode) and (
            execution.operation_name is None
            or (definition.name is not None and definition.name.value == execution.operation_name)
        ):
            fields = ",".join(
                getattr(s, "name").value  # noqa: B009 (FieldNode; fragments have none at root)
                for s in definition.selection_set.selections
                if hasattr(s, "name")
            )
            return f"{definition.operation.value} {fields}"
    return None


@strawberry.type(description="Who the request is authenticated as.")
class Viewer:
    subject: str = strawberry.field(description="The client id (recorded as `recordedBy`).")
    role: RoleType  # type: ignore[valid-type]
    park: Park | None
    enterprise: Enterprise | None


@strawberry.type(description="A committed write or a refused attempt, in the audit trail.")
class AuditEvent:
    id: strawberry.ID
    at: datetime
    subject: str = strawberry.field(description="Who: the client id, or `cli:<user>`.")
    role: RoleType  # type: ignore[valid-type]
    action: ActionType  # type: ignore[valid-type]
    operation: str | None = strawberry.field(
        description="The GraphQL operation type and root fields, or the CLI command."
    )
    park_id: strawberry.ID | None = strawberry.field(description="The park concerned.")
    node_id: strawberry.ID | None = strawberry.field(
        description="The enterprise in whose name it was done or read, if any."
    )
    allowed: bool = strawberry.field(description="False for a refused attempt.")
    reason: str | None = strawberry.field(description="Why it was refused.")

    @staticmethod
    def from_row(row: audit.AuditEventRow) -> AuditEvent:
        return AuditEvent(
            id=strawberry.ID(to_global_id("AuditEvent", row.id)),
            at=row.at,
            subject=row.subject,
            role=row.role,
            action=row.action,
            operation=row.operation,
            park_id=(
                strawberry.ID(to_global_id("Park", row.park_id))
                if row.park_id is not None
                else None
            ),
            node_id=(
                strawberry.ID(to_global_id("Enterprise", row.node_id))
                if row.node_id is not None
                else None
            ),
            allowed=row.allowed,
            reason=row.reason,
        )


@strawberry.type
class AccessQuery:
    @strawberry.field(description="The identity this request is authenticated as.")
    async def viewer(self, info: Info[Context, None]) -> Viewer:
        caller = info.context.caller
        park = await info.context.parks.load(caller.park_id) if caller.park_id else None
        node = await info.context.nodes.load(caller.enterprise_id) if caller.enterprise_id else None
        return Viewer(
            subject=caller.subject,
            role=caller.role,
            park=Park.from_row(park) if park else None,
            enterprise=enterprise_type(node) if node else None,
        )

    @strawberry.field(
        description="The audit trail of a park (every park's for the operator, park omitted), "
        "oldest first: auditors, park administrators and the operator."
    )
    async def audit_events(
        self,
        info: Info[Context, None],
        park: strawberry.ID | None = None,
        subject: str | None = None,
        refused_only: bool = False,
        first: int = 50,
        after: str | None = None,
    ) -> Connection[AuditEvent]:
        size = page_size(info, first)
        park_id = pk_of(park, "Park", field="park") if park else None
        async with info.context.read() as session:
            page = await audit.event_page(
                session,
                caller=info.context.caller,
                park_id=park_id,
                first=size,
                after_id=after_pk(after),
                subject=subject,
                refused_only=refused_only,
            )
        return connection(page, AuditEvent.from_row)


@strawberry.input(description="A new API client; its secret is returned once.")
class ApiClientCreateInput:
    name: str
    role: RoleType  # type: ignore[valid-type]
    park: strawberry.ID | None = strawberry.field(
        default=None, description="Required for every role but OPERATOR."
    )
    enterprise: strawberry.ID | None = strawberry.field(
        default=None, description="Required for the ENTERPRISE role."
    )


@strawberry.type(description="Credentials, shown once: only a hash of the secret is kept.")
class ApiCredentials:
    client_id: str
    client_secret: str = strawberry.field(description="For POST /auth/token.")
    api_key: str = strawberry.field(description="For the X-API-Key header.")
    role: RoleType  # type: ignore[valid-type]


@strawberry.type
class ApiClientCreatePayload:
    credentials: ApiCredentials | None
    user_errors: list[UserError]


@strawberry.input(description="Let a partner client read the footprint of one product.")
class FootprintShareCreateInput:
    enterprise: strawberry.ID
    material: strawberry.ID
    partner: str = strawberry.field(description="The partner's client id.")


@strawberry.type
class FootprintShareCreatePayload:
    shared: bool
    user_errors: list[UserError]


@strawberry.type
class AccessMutation:
    @strawberry.mutation(
        description="Issue credentials: park administrators for their park's enterprises, "
        "auditors and partners; the operator for any role."
    )
    async def api_client_create(
        self, info: Info[Context, None], input: ApiClientCreateInput
    ) -> ApiClientCreatePayload:
        ctx = info.context
        try:
            data = auth.ClientCreate(
                name=input.name,
                role=input.role,
                park_id=pk_of(input.park, "Park", field="park") if input.park else None,
                enterprise_id=(
                    pk_of(input.enterprise, "Enterprise", field="enterprise")
                    if input.enterprise
                    else None
                ),
            )
            async with ctx.write() as session:
                issued = await auth.create_client(session, data, caller=ctx.caller)
        except MfaError as exc:
            return ApiClientCreatePayload(credentials=None, user_errors=user_errors(exc))
        return ApiClientCreatePayload(
            credentials=ApiCredentials(
                client_id=issued.client_id,
                client_secret=issued.client_secret,
                api_key=issued.api_key,
                role=issued.role,
            ),
            user_errors=[],
        )

    @strawberry.mutation(description="An enterprise shares a product's footprint with a partner.")
    async def footprint_share_create(
        self, info: Info[Context, None], input: FootprintShareCreateInput
    ) -> FootprintShareCreatePayload:
        ctx = info.context
        try:
            enterprise_id = pk_of(input.enterprise, "Enterprise", field="enterprise")
            material_id = pk_of(input.material, "Material", field="material")
            async with ctx.write() as session:
                await auth.share_footprint(
                    session,
                    caller=ctx.caller,
                    enterprise_id=enterprise_id,
                    material_id=material_id,
                    partner_client_id=input.partner,
                )
        except MfaError as exc:
            return FootprintShareCreatePayload(shared=False, user_errors=user_errors(exc))
        return FootprintShareCreatePayload(shared=True, user_errors=[])
