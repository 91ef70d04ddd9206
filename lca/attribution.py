"""Attribution along the chain: by upstream enterprise, activity, gas and GHG Protocol scope.

From the point of view of enterprise E (or a group: the whole park), with S its activities
and o every other one, the solved supply x of a demand d on E's products splits exactly
(block form of A x = d, d_o = 0):

    x_o = A_oo⁻¹ y,     y = −A_oS x_S     (what E's activities take from outside, first tier)

so the score h = c·B_S x_S + Σ_k c·B_o A_oo⁻¹ y_k for any split y = Σ_k y_k of the first-tier
inputs. The scopes follow that split (GHG Protocol, REFERENCE.md §4):

* scope 1: c·B_S x_S, E's own direct emissions (reported and combustion);
* scope 2: the direct emissions of the first-tier energy suppliers (grid electricity, a
  neighbour's electricity or steam) at the amounts E takes: Σ_j (c·B)_j y_j;
* scope 3 category 3: the rest of the energy inputs' chains, and purchased fuels' upstream;
* scope 3 category 5: waste treatment (landfill, incineration, wastewater, recycler);
* scope 3 category 1: everything else E buys (purchased goods, neighbours' products).

Each part is an LCA solved with bw2calc on the outside system, and the parts sum to the
total (a test checks it to 1e-9).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, replace
from enum import StrEnum
from types import MappingProxyType

from lca.characterisation import GwpMethod, characterisation_factors
from lca.inventory import Activity, ActivityKind, ParkInventory
from lca.model import Footprint, solve
from mfa.models import MaterialKind


class Scope(StrEnum):
    SCOPE_1 = "scope_1"
    SCOPE_2 = "scope_2"
    SCOPE_3_CATEGORY_1 = "scope_3_category_1"
    SCOPE_3_CATEGORY_3 = "scope_3_category_3"
    SCOPE_3_CATEGORY_5 = "scope_3_category_5"


OUTSIDE_THE_PARK = "outside the park"


@dataclass(frozen=True, slots=True)
class Attribution:
    """A footprint and its exact splits; each mapping sums to ``footprint.total``."""

    footprint: Footprint
    enterprise_ids: frozenset[int]
    by_enterprise: MappingProxyType[str, float]
    by_activity: MappingProxyType[str, float]
    by_gas: MappingProxyType[str, float]
    by_scope: MappingProxyType[Scope, float]


def _entry(activity: Activity) -> Scope:
    """The scope 3 category (or energy) through which an outside activity enters E's chain."""
    if activity.kind is ActivityKind.TREATMENT:
        return Scope.SCOPE_3_CATEGORY_5
    if activity.material_kind is MaterialKind.ENERGY:
        return Scope.SCOPE_2
    return Scope.SCOPE_3_CATEGORY_1


def _is_generation(activity: Activity) -> bool:
    """Electricity, steam or heat bought from the grid or a neighbour (not a fuel)."""
    return activity.kind in (ActivityKind.GRID, ActivityKind.PRODUCTION) and activity.unit == (
        "kWh"
    )


def direct_intensity(inventory: ParkInventory, method: GwpMethod) -> dict[int, float]:
    """(c·B)_j: kg CO2e emitted directly per unit of each activity's product."""
    factors = characterisation_factors(method)
    intensity: dict[int, float] = defaultdict(float)
    for exchange in inventory.biosphere:
        intensity[exchange.activity] += factors.get(exchange.flow, 0.0) * exchange.amount
    return intensity


def _outside(inventory: ParkInventory, inside: set[int]) -> ParkInventory:
    """The same inventory without the exchanges touching E's activities (they become idle)."""
    return replace(
        inventory,
        technosphere=tuple(
            x
            for x in inventory.technosphere
            if x.supplier not in inside and x.consumer not in inside
        ),
        biosphere=tuple(x for x in inventory.biosphere if x.activity not in inside),
    )


def attribute(
    inventory: ParkInventory,
    *,
    enterprise_ids: frozenset[int],
    demand: dict[int, float],
    method: GwpMethod = GwpMethod.AR6,
) -> Attribution:
    """The footprint of ``demand`` seen from ``enterprise_ids`` (one enterprise, or every
    enterprise of the park for the park's own view), split every way."""
    footprint = solve(inventory, demand, method=method)
    activities = inventory.activities
    inside = {a.index for a in activities if a.enterprise_id in enterprise_ids}
    intensity = direct_intensity(inventory, method)
    supply = footprint.supply

    first_tier: dict[Scope, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    for x in inventory.technosphere:
        if x.consumer in inside and x.supplier not in inside and supply[x.consumer]:
            first_tier[_entry(activities[x.supplier])][x.supplier] += x.amount * supply[x.consumer]

    by_scope: dict[Scope, float] = dict.fromkeys(Scope, 0.0)
    by_scope[Scope.SCOPE_1] = sum(footprint.by_activity.get(j, 0.0) for j in inside)
    outside = _outside(inventory, inside)
    for entry, amounts in first_tier.items():
        demand_k = {j: q for j, q in amounts.items() if q}
        if not demand_k:
            continue
        chain = solve(outside, demand_k, method=method).total
        if entry is Scope.SCOPE_2:
            generation = sum(
                intensity.get(j, 0.0) * q
                for j, q in demand_k.items()
                if _is_generation(activities[j])
            )
            by_scope[Scope.SCOPE_2] += generation
            by_scope[Scope.SCOPE_3_CATEGORY_3] += chain - generation
        else:
            by_scope[entry] += chain

    by_enterprise: dict[str, float] = defaultdict(float)
    by_activity: dict[str, float] = {}
    for index, value in footprint.by_activity.items():
        activity = activities[index]
        by_enterprise[activity.enterprise_code or OUTSIDE_THE_PARK] += value
        by_activity[activity.key] = value
    names = {flow.uuid: flow.name for flow in inventory.flows.values()}
    by_gas = {names.get(uuid, uuid): value for uuid, value in footprint.by_flow.items()}
    return Attribution(
        footprint=footprint,
        enterprise_ids=enterprise_ids,
        by_enterprise=MappingProxyType(dict(by_enterprise)),
        by_activity=MappingProxyType(by_activity),
        by_gas=MappingProxyType(by_gas),
        by_scope=MappingProxyType(by_scope),
    )
