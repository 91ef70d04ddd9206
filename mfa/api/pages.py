"""Resolvers shared by root and nested connections: page-size limits and row mapping."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import ColumnElement
from strawberry.types import Info

from mfa import reads
from mfa.api.context import Context
from mfa.api.ids import after_pk
from mfa.api.types import BoundaryNode, Connection, Enterprise, Flow, connection, endpoint
from mfa.api.types import enterprise as as_enterprise
from mfa.errors import MfaError
from mfa.models import NodeKind


def page_size(info: Info[Context, None], first: int) -> int:
    """Refuse page sizes outside 1..max_page_size (100 by default) instead of clamping."""
    limit = info.context.settings.max_page_size
    if not 1 <= first <= limit:
        raise MfaError(f"first must be between 1 and {limit}, got {first}", field=("first",))
    return first


async def flow_connection(
    info: Info[Context, None],
    flt: reads.FlowFilter,
    *,
    first: int,
    after: str | None,
    where: Callable[[Any], Sequence[ColumnElement[bool]]] | None = None,
) -> Connection[Flow]:
    size = page_size(info, first)
    async with info.context.read() as session:
        page = await reads.flow_page(
            session,
            caller=info.context.caller,
            flt=flt,
            first=size,
            after_id=after_pk(after),
            where=where,
        )
    return connection(page, Flow.from_row)


async def enterprise_page(
    info: Info[Context, None],
    *,
    park_id: int | None,
    first: int,
    after: str | None,
    isic_prefix: str | None = None,
) -> Connection[Enterprise]:
    size = page_size(info, first)
    async with info.context.read() as session:
        page = await reads.node_page(
            session,
            caller=info.context.caller,
            first=size,
            after_id=after_pk(after),
            park_id=park_id,
            kinds=(NodeKind.ENTERPRISE,),
            isic_prefix=isic_prefix,
        )
    return connection(page, as_enterprise)


async def boundary_nodes(info: Info[Context, None], *, park_id: int) -> list[BoundaryNode]:
    kinds = [k for k in NodeKind if k.is_boundary]
    async with info.context.read() as session:
        page = await reads.node_page(
            session, caller=info.context.caller, first=1000, park_id=park_id, kinds=kinds
        )
    return [n for n in map(endpoint, page.items) if isinstance(n, BoundaryNode)]
