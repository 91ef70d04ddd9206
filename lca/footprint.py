"""Footprints of a product, an enterprise or a park for a period, read from the ledger.

The solve is CPU work: callers on an event loop run ``compute`` in a worker thread. Results
are cached by (park, period, ledger version, options); the ledger is append-only, so the
park's newest flow id is a version that any new entry (a reversal too) advances, and a
cached result can never be stale.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from lca.attribution import Attribution, attribute
from lca.characterisation import GwpMethod
from lca.inventory import ActivityKind, Allocation, ParkInventory, build_inventory
from lca.recycling import RecyclingMethod
from mfa.access import Action, Caller, authorize, flow_scope, may, park_reader
from mfa.errors import MfaError, NotFoundError
from mfa.models import Flow, NodeKind, ParkNode


class Subject(StrEnum):
    PRODUCT = "product"
    ENTERPRISE = "enterprise"
    PARK = "park"


@dataclass(frozen=True, slots=True)
class FootprintRequest:
    subject: Subject
    park_id: int
    period_start: date
    period_end: date
    method: GwpMethod = GwpMethod.AR6
    enterprise_id: int | None = None
    material_id: int | None = None
    allocation: Allocation = Allocation.MASS
    recycling: RecyclingMethod = RecyclingMethod.CUT_OFF
    shares: tuple[tuple[int, int, float], ...] = ()
    """User allocation shares: (enterprise id, material id, share)."""

    def share_map(self) -> dict[int, dict[int, float]]:
        shares: dict[int, dict[int, float]] = {}
        for enterprise_id, material_id, share in self.shares:
            shares.setdefault(enterprise_id, {})[material_id] = share
        return shares


@dataclass(frozen=True, slots=True)
class FootprintResult:
    """An attribution and what it rests on: the inventory (activities, missing factors,
    notes) and the demand that was solved, with its declared unit and quantity."""

    request: FootprintRequest
    ledger_version: int
    inventory: ParkInventory
    attribution: Attribution
    declared_unit: str | None
    quantity: float | None

    @property
    def per_declared_unit(self) -> float | None:
        if self.quantity is None or not self.quantity:
            return None
        return self.attribution.footprint.total / self.quantity


async def ledger_version(session: AsyncSession, *, caller: Caller, park_id: int) -> int:
    flow_t = Flow.__table__  # type: ignore[attr-defined]
    version = (
        await session.execute(
            sa.select(sa.func.coalesce(sa.func.max(flow_t.c.id), 0)).where(
                flow_scope(caller, flow_t.c.park_id), flow_t.c.park_id == park_id
            )
        )
    ).scalar_one()
    return int(version)


async def park_of(session: AsyncSession, node_id: int, *, field: str) -> int:
    node_t = ParkNode.__table__  # type: ignore[attr-defined]
    row = (
        await session.execute(
            sa.select(node_t.c.park_id, node_t.c.kind).where(node_t.c.id == node_id)
        )
    ).first()
    if row is None or NodeKind(row.kind) is not NodeKind.ENTERPRISE:
        raise NotFoundError(f"no enterprise with id {node_id}", field=(field,))
    return int(row.park_id)


def authorize_footprint(caller: Caller, request: FootprintRequest) -> None:
    """Raise ``PermissionDeniedError`` unless ``caller`` may see ``request``'s result."""
    shared = (request.enterprise_id, request.material_id) in caller.shares
    if request.subject is Subject.PRODUCT and shared:
        return
    node_id = None if request.subject is Subject.PARK else request.enterprise_id
    authorize(caller, Action.READ, park_id=request.park_id, node_id=node_id)


def sees_breakdown(caller: Caller, request: FootprintRequest) -> bool:
    """Whether ``caller`` may see where ``request``'s figures come from: the enterprises,
    activities, missing factors and supply-chain links behind them.

    Those are the suppliers' books, so they go to whoever may read the subject's books (its
    park's readers, the enterprise itself); a partner reading a product shared with it gets
    the figures only (total, per declared unit, by gas, by scope).
    """
    node_id = None if request.subject is Subject.PARK else request.enterprise_id
    return may(caller, Action.READ, park_id=request.park_id, node_id=node_id)


def compute(request: FootprintRequest, inventory: ParkInventory, version: int) -> FootprintResult:
    """Solve and attribute (CPU-bound; run it off the event loop)."""
    activities = inventory.activities
    production = [a for a in activities if a.kind is ActivityKind.PRODUCTION]
    operating = [*production, *(a for a in activities if a.kind is ActivityKind.OPERATION)]
    declared_unit: str | None = None
    quantity: float | None = None
    if request.subject is Subject.PRODUCT:
        found = [
            a
            for a in production
            if a.enterprise_id == request.enterprise_id and a.material_id == request.material_id
        ]
        if not found:
            raise MfaError(
                "the enterprise output none of that material in the period: no product to assess",
                field=("subject", "product"),
            )
        (activity,) = found
        demand = {activity.index: 1.0}
        declared_unit, quantity = activity.unit, 1.0
        inside = frozenset({activity.enterprise_id or 0})
    elif request.subject is Subject.ENTERPRISE:
        own = [a for a in operating if a.enterprise_id == request.enterprise_id]
        if not own:
            raise MfaError(
                "the enterprise output no product in the period: nothing to assess",
                field=("subject", "enterprise"),
            )
        demand = {a.index: a.output for a in own}
        inside = frozenset({request.enterprise_id or 0})
    else:
        demand = _net_output(inventory)
        inside = frozenset(a.enterprise_id for a in operating if a.enterprise_id is not None)
        if not demand:
            raise MfaError("no production recorded in the park for the period", field=("period",))
    attribution = attribute(inventory, enterprise_ids=inside, demand=demand, method=request.method)
    return FootprintResult(request, version, inventory, attribution, declared_unit, quantity)


def _net_output(inventory: ParkInventory) -> dict[int, float]:
    """d = A·q: what leaves the park's production, so that the supply equals production q."""
    own = (ActivityKind.PRODUCTION, ActivityKind.OPERATION)
    net = {a.index: a.output for a in inventory.activities if a.kind in own}
    for x in inventory.technosphere:
        if x.supplier in net and x.consumer in net:
            net[x.supplier] -= x.amount * inventory.activities[x.consumer].output
    return {i: q for i, q in net.items() if abs(q) > 1e-12}


class FootprintCache:
    """A small thread-safe LRU of results keyed by (request, ledger version)."""

    def __init__(self, size: int = 64) -> None:
        self._size = size
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[FootprintRequest, int], FootprintResult] = OrderedDict()

    def __len__(self) -> int:
        return len(self._items)

    def get(self, request: FootprintRequest, version: int) -> FootprintResult | None:
        with self._lock:
            result = self._items.get((request, version))
            if result is not None:
                self._items.move_to_end((request, version))
            return result

    def put(self, result: FootprintResult) -> None:
        with self._lock:
            self._items[(result.request, result.ledger_version)] = result
            while len(self._items) > self._size:
                self._items.popitem(last=False)


async def footprint(
    session: AsyncSession,
    request: FootprintRequest,
    *,
    caller: Caller,
    cache: FootprintCache,
    run: Callable[[Callable[[], FootprintResult]], Awaitable[FootprintResult]],
) -> FootprintResult:
    """The cached result for the park's current ledger version, or a fresh one.

    ``run`` executes the CPU-bound solve (``asyncio.to_thread`` on the request path).

    Who may see it: a park's footprint, whoever reads the whole park; an enterprise's, the
    enterprise and its park's readers; a product's, those and the partners it was shared with.
    The solve itself reads the whole park (a product carries its suppliers' burdens), as a
    park reader acting for the caller; only the published figures reach the caller.
    """
    authorize_footprint(caller, request)
    reader = park_reader(caller, request.park_id)
    version = await ledger_version(session, caller=reader, park_id=request.park_id)
    cached = cache.get(request, version)
    if cached is not None:
        return cached
    inventory = await build_inventory(
        session,
        caller=reader,
        park_id=request.park_id,
        period_start=request.period_start,
        period_end=request.period_end,
        allocation=request.allocation,
        shares=request.share_map(),
        recycling=request.recycling,
    )
    result = await run(lambda: compute(request, inventory, version))
    cache.put(result)
    return result
