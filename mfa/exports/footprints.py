"""The figures an export needs from a footprint: the park's, and every product's, per unit.

A product footprint (``lca.footprint``, subject ``PRODUCT``) is solved for one declared unit
(1 kg, 1 m3, 1 kWh) of an enterprise's output in the period. On top of it this module splits
the score the ways partners ask for (all in kg CO2e per declared unit):

    fossil   = Σ_g c_g·(B s)_g over every flow g but the biogenic ones
    biogenic = Σ_g c_g·(B s)_g over flows named "…, non-fossil" (biosphere3's naming),
               of which biogenic CO2 is "Carbon dioxide, non-fossil"
    primary  = Σ_x c_g(x)·b_x·s_j(x) over biosphere exchanges x reported by an enterprise

with c_g the GWP100 factor (1 for the aggregated CO2-equivalent flow), b_x the exchange per
unit of its activity j and s_j the solved supply. fossil + biogenic = the total. Flows given
only as CO2e (purchased factors) cannot be split and count as fossil, the conservative side.
"Primary" follows the PACT Methodology's meaning: emissions measured at the enterprise and
recorded in the ledger (the atmosphere node). Combustion computed from metered fuel with IPCC
default factors, grid factors and purchased factors are secondary.

A missing factor (``lca.inventory.MissingFactor``) concerns a product when one of the
enterprises it names has an activity the product's chain draws on (supply > 0): inputs are
allocated to every product of an enterprise, so each product carries its share.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from lca.characterisation import CO2E_AGGREGATED, characterisation_factors
from lca.footprint import (
    FootprintCache,
    FootprintRequest,
    FootprintResult,
    Subject,
    footprint,
)
from lca.inventory import AVOIDED_CO2E, ActivityKind, MissingFactor
from lca.recycling import RecyclingMethod
from mfa.access import Caller
from mfa.reads import MaterialRow, NodeRow, materials_by_id, nodes_by_id

Run = Callable[[Callable[[], FootprintResult]], Awaitable[FootprintResult]]

BIOGENIC_CO2 = "Carbon dioxide, non-fossil"
"""biosphere3's biogenic CO2: the IPCC GWP100 methods leave it out (neutral)."""
REPORTED_ORIGIN = "reported by "
"""Prefix ``lca.inventory`` gives the origin of an emission an enterprise reported."""


@dataclass(frozen=True, slots=True)
class Split:
    """A footprint's score split by carbon origin and data source (kg CO2e, same basis)."""

    fossil: float
    biogenic: float
    biogenic_co2: float
    """The part of ``biogenic`` from biogenic CO2 (0 under IPCC GWP100: counted neutral)."""
    primary: float
    secondary_sources: tuple[str, ...]
    """Origins of the secondary factors that contributed (grid, combustion, purchases)."""


@dataclass(frozen=True, slots=True)
class ProductFigures:
    """One product's footprint per declared unit, with what it rests on."""

    result: FootprintResult
    enterprise: NodeRow
    material: MaterialRow
    output: float
    """The enterprise's output of the product in the period, in declared units."""
    split: Split
    missing: tuple[MissingFactor, ...]
    """The missing factors its chain draws on: their emissions are not in the score."""


@dataclass(frozen=True, slots=True)
class ParkFootprints:
    """The park's emissions in the period and every product's footprint."""

    park: FootprintResult | None
    """None when only some products were asked for (a caller may see those, not the park)."""
    products: tuple[ProductFigures, ...]


def split(result: FootprintResult) -> Split:
    """Fossil / biogenic / primary parts of ``result`` (see the module docstring)."""
    fp = result.attribution.footprint
    names = {flow.uuid: flow.name for flow in result.inventory.flows.values()}
    biogenic = sum(v for g, v in fp.by_flow.items() if "non-fossil" in names.get(g, ""))
    biogenic_co2 = sum(v for g, v in fp.by_flow.items() if names.get(g, "") == BIOGENIC_CO2)
    factors = characterisation_factors(result.request.method)
    primary = 0.0
    sources: set[str] = set()
    for x in result.inventory.biosphere:
        if x.flow == AVOIDED_CO2E:
            continue
        factor = 1.0 if x.flow == CO2E_AGGREGATED else factors.get(x.flow, 0.0)
        contribution = factor * x.amount * float(fp.supply[x.activity])
        if not contribution:
            continue
        if x.origin.startswith(REPORTED_ORIGIN):
            primary += contribution
        else:
            sources.add(x.origin)
    return Split(
        fossil=fp.total - biogenic,
        biogenic=biogenic,
        biogenic_co2=biogenic_co2,
        primary=primary,
        secondary_sources=tuple(sorted(sources)),
    )


def missing_in_chain(result: FootprintResult) -> tuple[MissingFactor, ...]:
    """The inventory's missing factors that concern the solved demand's chain."""
    supply = result.attribution.footprint.supply
    active = {
        a.enterprise_code
        for a in result.inventory.activities
        if a.enterprise_code is not None and supply[a.index] > 0
    }
    return tuple(m for m in result.inventory.missing if active.intersection(m.enterprises))


async def park_footprints(
    session: AsyncSession,
    *,
    caller: Caller,
    park_id: int,
    period_start: date,
    period_end: date,
    cache: FootprintCache,
    run: Run,
    products: tuple[tuple[int, int], ...] | None = None,
) -> ParkFootprints:
    """The park's emissions and the footprint of each product, or only the footprints of
    ``products`` (enterprise id, material id); AR6, mass allocation, cut-off (the API's
    defaults). ``lca.footprint.footprint`` authorizes each.

    Raises ``MfaError`` (field ``period``) when the park produced nothing in the period, and
    (field ``subject.product``) when a requested product was not output in it.
    """

    def request(subject: Subject, enterprise: int | None, material: int | None) -> FootprintRequest:
        return FootprintRequest(
            subject=subject,
            park_id=park_id,
            period_start=period_start,
            period_end=period_end,
            enterprise_id=enterprise,
            material_id=material,
            recycling=RecyclingMethod.CUT_OFF,
        )

    park = None
    if products is None:
        park = await footprint(
            session, request(Subject.PARK, None, None), caller=caller, cache=cache, run=run
        )
        products = tuple(
            (a.enterprise_id, a.material_id)
            for a in park.inventory.activities
            if a.kind is ActivityKind.PRODUCTION
            and a.enterprise_id is not None
            and a.material_id is not None
        )
    nodes = await nodes_by_id(session, [e for e, _ in products], caller=caller)
    materials = await materials_by_id(session, [m for _, m in products], caller=caller)
    figures = []
    for enterprise_id, material_id in products:
        result = await footprint(
            session,
            request(Subject.PRODUCT, enterprise_id, material_id),
            caller=caller,
            cache=cache,
            run=run,
        )
        (activity,) = (
            a
            for a in result.inventory.activities
            if a.kind is ActivityKind.PRODUCTION
            and (a.enterprise_id, a.material_id) == (enterprise_id, material_id)
        )
        figures.append(
            ProductFigures(
                result=result,
                enterprise=nodes[enterprise_id],
                material=materials[material_id],
                output=activity.output,
                split=split(result),
                missing=missing_in_chain(result),
            )
        )
    return ParkFootprints(park=park, products=tuple(figures))
