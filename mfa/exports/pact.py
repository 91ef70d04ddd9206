"""Product footprints as WBCSD PACT ``ProductFootprint`` objects (Technical Specifications,
data model v2.3; REFERENCE.md §6). The specification is not copied here: a test validates our
output against the published OpenAPI schema.

How our figures map (all per declared unit, ``unitaryProductAmount`` = "1"):

* ``declaredUnit``: the product's canonical unit (kg → kilogram, m3 → cubic meter,
  kWh → kilowatt hour, MJ → megajoule).
* ``pCfExcludingBiogenic`` = total − biogenic CO2; ``fossilGhgEmissions`` = the fossil part
  (flows given only as CO2e count as fossil); ``otherBiogenicGhgEmissions`` = biogenic
  non-CO2 (see ``mfa.exports.footprints``). ``pCfIncludingBiogenic`` is left out: it needs
  biogenic removals, which the ledger does not record.
* ``characterizationFactors`` / ``ipccCharacterizationFactorsSources``: the GWP100 table
  used (AR6 or AR5).
* ``crossSectoralStandards`` ``ISO14040-44`` (and the deprecated ``crossSectoralStandardsUsed``
  ``ISO Standard 14044``): the matrix LCA follows ISO 14040/44; we claim no conformance with
  ISO 14067, the GHG Protocol Product Standard or PACT's methodology, none of which was audited.
* ``referencePeriodStart`` / ``End``: the period at 00:00 UTC; PACT's end is exclusive, ours
  inclusive, so End is the day after the period's last day.
* ``primaryDataShare`` = 100 × primary / pCfExcludingBiogenic (emissions the enterprises
  reported); ``secondaryEmissionFactorSources``: the factor sources that contributed.
* ``exemptedEmissionsPercent`` = 0 and an empty description: a footprint whose chain draws
  on an input without a factor is **refused** (``IncompleteFootprintError`` lists them), since
  the share those emissions would take is unknown and no number we could write is true.

Values the standard requires that we cannot know, and what is written instead (each repeated
in the footprint's ``comment``): ``fossilCarbonContent`` and ``biogenicCarbonContent`` "0" (the
catalogue records no carbon content: the value means "not assessed"); ``productCategoryCpc``
"unclassified" (the catalogue holds HS codes, given in ``productClassifications``, not UN CPC);
``packagingEmissionsIncluded`` false (packaging is not modelled apart from other inputs).
``dqi`` is left out (no data quality rating is made), although PACT asks for it from 2025.
``id`` is a name-based UUID (RFC 4122 v5) of the product, period, options and ledger version,
where PACT asks a random v4: the same ledger state exports the same id, so a receiver can tell
a re-export from an update; ``version`` is the ledger version (the park's newest flow id), which
only grows.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Final

from mfa.errors import MfaError
from mfa.exports.footprints import BIOGENIC_CO2, ProductFigures
from mfa.reads import ParkRow

SPEC_VERSION: Final = "2.3.0"
DECLARED_UNITS: Final = {
    "kg": "kilogram",
    "m3": "cubic meter",
    "kWh": "kilowatt hour",
    "MJ": "megajoule",
}
_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "urn:circular-mfa:pact:product-footprint")
_GRID_ORIGIN: Final = "grid factor "
_COMBUSTION_ORIGIN: Final = "IPCC 2006 combustion"
_IPCC_2006: Final = "IPCC 2006 Guidelines for National Greenhouse Gas Inventories, Vol. 2"


class IncompleteFootprintError(MfaError):
    """A footprint that cannot be shared as PACT: it rests on missing factors, or its value
    falls outside what PACT allows."""

    code = "INCOMPLETE_FOOTPRINT"


def decimal(value: float) -> str:
    """A float as a PACT decimal string: shortest exact digits, no exponent."""
    return format(Decimal(repr(value + 0.0)), "f")


def _instant(day: date) -> str:
    return datetime.combine(day, time(), tzinfo=UTC).isoformat().replace("+00:00", "Z")


def _factor_sources(origins: tuple[str, ...]) -> list[dict[str, str]]:
    """PACT ``EmissionFactorDatabases`` from the origins ``lca.inventory`` gives exchanges."""
    found: dict[tuple[str, str], None] = {}
    for origin in origins:
        if origin.startswith(_GRID_ORIGIN):
            year, _, source = origin.removeprefix(_GRID_ORIGIN).partition(": ")
            found[(source or "Vietnam grid emission factor", year)] = None
        elif origin.startswith(_COMBUSTION_ORIGIN):
            found[(_IPCC_2006, "2006")] = None
        else:
            found[(origin, "unversioned")] = None
    return [{"name": name, "version": version} for name, version in found]


def check_complete(p: ProductFigures) -> None:
    """Refuse a footprint PACT cannot carry honestly, naming what is missing."""
    fp = p.result.attribution.footprint
    subject = f"{p.enterprise.code}/{p.material.code}"
    gaps = [f"{m.material_code} ({m.reason}, {m.quantity:g} {m.unit})" for m in p.missing]
    names = {flow.uuid: flow.name for flow in p.result.inventory.flows.values()}
    gaps += [
        f"elementary flow {names.get(flow, flow)} (no GWP100 factor)"
        for flow in fp.uncharacterised_flows
        if names.get(flow) != BIOGENIC_CO2  # neutral by the IPCC methods' convention
    ]
    if gaps:
        raise IncompleteFootprintError(
            f"the footprint of {subject} rests on inputs without a factor: {'; '.join(gaps)}. "
            "PACT needs the share of exempted emissions, which is unknown: add the factors "
            "(datasets/factors) to export it",
            field=("product",),
        )
    if p.result.declared_unit not in DECLARED_UNITS:
        raise IncompleteFootprintError(
            f"{subject} is measured in {p.result.declared_unit!r}, which is no PACT declared "
            f"unit ({', '.join(DECLARED_UNITS.values())})",
            field=("product",),
        )
    if min(fp.total - p.split.biogenic_co2, p.split.fossil) < 0:
        raise IncompleteFootprintError(
            f"the footprint of {subject} is negative; PACT's pCfExcludingBiogenic and "
            "fossilGhgEmissions are ≥ 0",
            field=("product",),
        )


def _boundary(p: ProductFigures) -> str:
    result = p.result
    supply = result.attribution.footprint.supply
    used = [a for a in result.inventory.activities if supply[a.index] > 0]
    inside = sorted({a.enterprise_code for a in used if a.enterprise_code})
    outside = sorted({a.key for a in used if a.enterprise_code is None})
    return (
        f"Cradle-to-gate at the gate of {p.enterprise.code}. Production at the park's "
        f"enterprises {', '.join(inside)}: their recorded inputs, fuel combustion (IPCC 2006 "
        "defaults unless the enterprise reports the gas) and reported emissions. Upstream "
        f"activities outside the park: {', '.join(outside) or 'none'}. Wastes passed between "
        "enterprises carry no burden (cut-off). Distribution, use and end of life excluded."
    )


def _comment(p: ProductFigures, park: ParkRow) -> str:
    result = p.result
    request = result.request
    parts = [
        f"Computed by circular-mfa from the ledger of park {park.code} up to flow id "
        f"{result.ledger_version}, for {p.enterprise.code}'s output of {p.material.code} "
        f"({decimal(p.output)} {result.declared_unit}) from {request.period_start} to "
        f"{request.period_end} inclusive.",
        f"GWP100 {request.method.value}, as implemented in ecoinvent 3.9's LCIA methods "
        "(shipped by bw2io); biogenic CO2 counts as neutral.",
        "primaryDataShare: emissions the enterprises reported in the ledger; combustion, grid "
        "and purchased factors are secondary.",
        "Not assessed: fossilCarbonContent and biogenicCarbonContent (written as 0, the "
        "catalogue records no carbon content), data quality indicators, biogenic removals.",
        "productCategoryCpc: no UN CPC code is recorded ('unclassified').",
    ]
    if result.attribution.footprint.contains_aggregated_co2e:
        parts.append("Part of the total comes from factors given only as CO2e (no gas split).")
    if result.attribution.footprint.avoided:
        parts.append(
            f"Avoided emissions {decimal(result.attribution.footprint.avoided)} kg CO2e per "
            "declared unit are reported beside, not netted."
        )
    parts += [f"Note: {note}." for note in result.inventory.notes]
    return " ".join(parts)


def product_footprint(p: ProductFigures, *, park: ParkRow, created: datetime) -> dict[str, Any]:
    """The PACT ProductFootprint of ``p``; ``IncompleteFootprintError`` when it cannot be."""
    check_complete(p)
    result = p.result
    request = result.request
    fp = result.attribution.footprint
    excluding = fp.total - p.split.biogenic_co2
    key = (
        f"{park.code}/{p.enterprise.code}/{p.material.code}/{request.period_start}/"
        f"{request.period_end}/{request.method.value}/{request.allocation.value}/"
        f"{request.recycling.value}/{result.ledger_version}"
    )
    company_ids = [f"urn:circular-mfa:{park.code}:enterprise:{p.enterprise.code}"]
    if p.enterprise.tax_id:
        company_ids.append(f"urn:circular-mfa:tax-id:{park.country}:{p.enterprise.tax_id}")
    pcf: dict[str, Any] = {
        "declaredUnit": DECLARED_UNITS[result.declared_unit or ""],
        "unitaryProductAmount": "1",
        "pCfExcludingBiogenic": decimal(excluding),
        "fossilGhgEmissions": decimal(p.split.fossil),
        "fossilCarbonContent": "0",
        "biogenicCarbonContent": "0",
        "otherBiogenicGhgEmissions": decimal(p.split.biogenic - p.split.biogenic_co2),
        "characterizationFactors": request.method.value,
        "ipccCharacterizationFactorsSources": [request.method.value],
        "crossSectoralStandardsUsed": ["ISO Standard 14044"],
        "crossSectoralStandards": ["ISO14040-44"],
        "boundaryProcessesDescription": _boundary(p),
        "referencePeriodStart": _instant(request.period_start),
        "referencePeriodEnd": _instant(request.period_end + timedelta(days=1)),
        "geographyCountry": park.country.upper(),
        "exemptedEmissionsPercent": 0,
        "exemptedEmissionsDescription": "",
        "packagingEmissionsIncluded": False,
        "allocationRulesDescription": (
            f"{request.allocation.value.capitalize()} allocation of each enterprise's inputs "
            "and emissions among its products (ISO 14044 §4.3.4.2); "
            f"{request.recycling.value.replace('_', '-')} for recycled inputs and wastes."
        ),
    }
    if excluding > 0:
        pcf["primaryDataShare"] = 100 * p.split.primary / excluding
    sources = _factor_sources(p.split.secondary_sources)
    if sources:
        pcf["secondaryEmissionFactorSources"] = sources
    footprint: dict[str, Any] = {
        "id": str(uuid.uuid5(_NAMESPACE, key)),
        "specVersion": SPEC_VERSION,
        "version": result.ledger_version,
        "created": created.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "status": "Active",
        "companyName": p.enterprise.name,
        "companyIds": company_ids,
        "productDescription": p.material.description
        or f"{p.material.name} ({p.material.kind.value.replace('_', '-')})",
        "productIds": [
            f"urn:circular-mfa:{park.code}:product:{p.enterprise.code}:{p.material.code}"
        ],
        "productCategoryCpc": "unclassified",
        "productNameCompany": p.material.name,
        "comment": _comment(p, park),
        "pcf": pcf,
    }
    if p.material.hs_code:
        footprint["productClassifications"] = [f"urn:circular-mfa:hs:{p.material.hs_code}"]
    return footprint


def footprint_list(
    products: tuple[ProductFigures, ...], *, park: ParkRow, created: datetime
) -> dict[str, Any]:
    """PACT's list body ``{"data": [...]}`` of the products that can be shared, and, beside
    it under ``withheld`` (not a PACT field), each product refused and why."""
    data: list[dict[str, Any]] = []
    withheld: list[dict[str, str]] = []
    for p in products:
        try:
            data.append(product_footprint(p, park=park, created=created))
        except IncompleteFootprintError as exc:
            withheld.append(
                {
                    "enterprise": p.enterprise.code,
                    "material": p.material.code,
                    "reason": exc.message,
                }
            )
    return {"data": data, "withheld": withheld}
