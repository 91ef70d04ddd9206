"""PACT ProductFootprints: valid against the published v2 OpenAPI schema, figures as worked by
hand, and refused (never zeroed) when the chain rests on a missing factor.

The schema is read from ``MFA_PACT_SPEC``, else ``<repo>/../shared/pact/openapi-v2.yaml``,
else ``/work/shared/pact/openapi-v2.yaml`` (WBCSD's licence keeps it out of the repository);
without it the schema tests skip, except under ``CI=true`` where they fail.
"""

from __future__ import annotations

import csv
import os
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from factories import make_footprint_world
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from sqlalchemy.ext.asyncio import AsyncSession

from lca.footprint import FootprintCache
from mfa.access import Caller
from mfa.exports.footprints import ProductFigures, park_footprints
from mfa.exports.pact import IncompleteFootprintError, footprint_list, product_footprint
from mfa.reads import ParkRow, park_by_code

ROOT = Path(__file__).resolve().parents[3]
JAN = (date(2025, 1, 1), date(2025, 1, 31))
CREATED = datetime(2025, 2, 3, 4, 5, 6, tzinfo=UTC)
GWP_AR6_CH4_FOSSIL = 29.8  # IPCC AR6 WG1 Table 7.15 (REFERENCE.md §4)
SPEC_URI = "urn:wbcsd:pact:openapi-v2"


def spec_path() -> Path | None:
    """Where the PACT OpenAPI document is, by the order in the module docstring."""
    given = os.environ.get("MFA_PACT_SPEC")
    candidates = [Path(given)] if given else []
    candidates += [
        ROOT.parent / "shared/pact/openapi-v2.yaml",
        Path("/work/shared/pact/openapi-v2.yaml"),
    ]
    return next((path for path in candidates if path.is_file()), None)


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    """A validator of ``#/components/schemas/ProductFootprint`` whose ``$ref``s resolve inside
    the whole OpenAPI document (OpenAPI 3.1 schemas are JSON Schema 2020-12)."""
    path = spec_path()
    if path is None:
        reason = "PACT OpenAPI spec not found (set MFA_PACT_SPEC)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(SPEC_URI, resource)
    schema = {"$ref": f"{SPEC_URI}#/components/schemas/ProductFootprint"}
    return jsonschema.Draft202012Validator(
        schema, registry=registry, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )


async def _run(make):  # type: ignore[no-untyped-def]
    return make()


async def _figures(
    session: AsyncSession, caller: Caller, ore_kg: str | None = None
) -> tuple[ParkRow, dict[str, ProductFigures]]:
    await make_footprint_world(session, caller, ore_kg=ore_kg)
    park = await park_by_code(session, "fp", caller=caller)
    assert park is not None
    found = await park_footprints(
        session,
        caller=caller,
        park_id=park.id,
        period_start=JAN[0],
        period_end=JAN[1],
        cache=FootprintCache(),
        run=_run,
    )
    return park, {p.material.code: p for p in found.products}


def _grid_factor(year: int) -> tuple[int, float]:
    with (ROOT / "datasets" / "factors" / "grid_vn.csv").open() as handle:
        rows = [r for r in csv.DictReader(handle) if int(r["year"]) <= year]
    row = max(rows, key=lambda r: int(r["year"]))
    return int(row["year"]), float(row["factor_t_co2_per_mwh"])


async def test_product_footprint_is_valid_pact_with_the_figures_worked_by_hand(
    session: AsyncSession, caller: Caller, validator: jsonschema.protocols.Validator
) -> None:
    park, products = await _figures(session, caller)

    pf = product_footprint(products["parts"], park=park, created=CREATED)

    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(pf)]
    assert errors == []
    year, g = _grid_factor(2025)
    ch4 = 0.5 * GWP_AR6_CH4_FOSSIL
    parts = (1000 * g + 1000 * (2000 * g + ch4) / 1000) / 800  # kg CO2e per kg of parts
    pcf = pf["pcf"]
    assert pcf["declaredUnit"] == "kilogram"
    assert pcf["unitaryProductAmount"] == "1"
    assert float(pcf["pCfExcludingBiogenic"]) == pytest.approx(parts, rel=1e-12)
    assert float(pcf["fossilGhgEmissions"]) == pytest.approx(parts, rel=1e-12)
    assert float(pcf["otherBiogenicGhgEmissions"]) == 0.0
    assert pcf["primaryDataShare"] == pytest.approx(100 * (ch4 / 800) / parts, rel=1e-9)
    assert pcf["referencePeriodStart"] == "2025-01-01T00:00:00Z"
    assert pcf["referencePeriodEnd"] == "2025-02-01T00:00:00Z"  # PACT's end is exclusive
    assert pcf["characterizationFactors"] == "AR6"
    assert pcf["ipccCharacterizationFactorsSources"] == ["AR6"]
    assert pcf["geographyCountry"] == "VN"
    assert pcf["exemptedEmissionsPercent"] == 0
    assert {s["version"] for s in pcf["secondaryEmissionFactorSources"]} == {str(year)}
    assert pf["companyName"] == "Stamper Co."
    assert pf["productClassifications"] == ["urn:circular-mfa:hs:8708"]
    assert pf["created"] == "2025-02-03T04:05:06Z"
    assert "not assessed" in pf["comment"].lower()
    mill = product_footprint(products["coil"], park=park, created=CREATED)
    assert "urn:circular-mfa:tax-id:VN:3600000001" in mill["companyIds"]


async def test_the_same_ledger_state_exports_the_same_id(
    session: AsyncSession, caller: Caller
) -> None:
    park, products = await _figures(session, caller)
    first = product_footprint(products["parts"], park=park, created=CREATED)
    again = product_footprint(products["parts"], park=park, created=datetime.now(UTC))
    other = product_footprint(products["coil"], park=park, created=CREATED)
    assert first["id"] == again["id"] != other["id"]
    assert uuid.UUID(first["id"]).version == 5
    assert first["version"] == products["parts"].result.ledger_version > 0


async def test_validator_resolves_references_and_rejects_a_broken_footprint(
    session: AsyncSession, caller: Caller, validator: jsonschema.protocols.Validator
) -> None:
    park, products = await _figures(session, caller)
    good = product_footprint(products["parts"], park=park, created=CREATED)
    bad_urn = {**good, "companyIds": ["stamper"]}  # Urn is a $ref'd pattern
    bad_unit = {**good, "pcf": {**good["pcf"], "declaredUnit": "pound"}}  # inside CarbonFootprint
    no_pcf = {k: v for k, v in good.items() if k != "pcf"}
    for broken in (bad_urn, bad_unit, no_pcf):
        assert not validator.is_valid(broken)


async def test_a_chain_with_a_missing_factor_is_refused_not_zeroed(
    session: AsyncSession, caller: Caller
) -> None:
    park, products = await _figures(session, caller, ore_kg="2000")

    with pytest.raises(IncompleteFootprintError) as refused:
        product_footprint(products["parts"], park=park, created=CREATED)

    assert "ore (no cradle-to-gate factor, 2000 kg)" in refused.value.message
    assert refused.value.field == ("product",)
    listed = footprint_list(tuple(products.values()), park=park, created=CREATED)
    assert listed["data"] == []
    assert sorted(w["material"] for w in listed["withheld"]) == ["coil", "parts"]


def test_spec_is_found_through_the_environment_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    given = tmp_path / "spec.yaml"
    given.write_text("openapi: 3.1.0\n")
    monkeypatch.setenv("MFA_PACT_SPEC", str(given))
    assert spec_path() == given
