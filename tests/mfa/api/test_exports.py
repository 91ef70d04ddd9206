"""The /exports downloads over the real app: media types, attachment names, figures read back,
arguments refused by name, and what each caller may download."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pandas as pd
import pytest
from conftest import ClientAs, GraphQLClient
from factories import World, make_footprint_world

from mfa.access import SYSTEM, Role
from mfa.db import session_factory, transaction

ROOT = Path(__file__).resolve().parents[3]
PERIOD = "park=fp&start=2025-01-01&end=2025-01-31"
GWP_AR6_CH4_FOSSIL = 29.8  # IPCC AR6 WG1 Table 7.15 (REFERENCE.md §4)


async def _world(gql: GraphQLClient, ore_kg: str | None = None) -> World:
    async with transaction(session_factory(gql.app.state.engine)) as session:
        return await make_footprint_world(session, SYSTEM, ore_kg=ore_kg)


def _grid_factor(year: int) -> float:
    with (ROOT / "datasets" / "factors" / "grid_vn.csv").open() as handle:
        rows = [r for r in csv.DictReader(handle) if int(r["year"]) <= year]
    return float(max(rows, key=lambda r: int(r["year"]))["factor_t_co2_per_mwh"])


async def test_flows_download_as_csv_with_their_quantities(gql: GraphQLClient) -> None:
    await _world(gql)

    response = await gql.http.get(f"/exports/flows.csv?{PERIOD}")

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == (
        'attachment; filename="flows-fp-2025-01-01-2025-01-31.csv"'
    )
    table = pd.read_csv(io.BytesIO(response.content))
    quantities = table[table["indicator"] == "quantity"]
    assert quantities["value"].sum() == 2000 + 0.5 + 10 + 1000 + 1000 + 800  # kWh, kg
    assert set(quantities["unit"]) == {"kWh", "kg"}


async def test_balances_download_as_excel(gql: GraphQLClient) -> None:
    await _world(gql)

    response = await gql.http.get(f"/exports/balances.xlsx?{PERIOD}")

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    table = pd.read_excel(io.BytesIO(response.content), sheet_name="balances")
    stamper = table[(table["entity_code"] == "stamper") & (table["material_code"].notna())]
    figures = stamper.set_index(["material_code", "indicator"])["value"]
    assert figures[("coil", "inputs")] == 1000
    assert figures[("parts", "outputs")] == 800


async def test_footprints_download_as_parquet(gql: GraphQLClient) -> None:
    await _world(gql)

    response = await gql.http.get(f"/exports/footprints.parquet?{PERIOD}")

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/vnd.apache.parquet"
    table = pd.read_parquet(io.BytesIO(response.content))
    g = _grid_factor(2025)
    parts = (1000 * g + (2000 * g + 0.5 * GWP_AR6_CH4_FOSSIL)) / 800
    row = table[(table["entity_code"] == "stamper") & (table["indicator"] == "gwp100")]
    assert row["value"].tolist() == [pytest.approx(parts, rel=1e-9)]


async def test_pact_footprints_of_one_product_and_of_the_park(gql: GraphQLClient) -> None:
    await _world(gql)

    one = await gql.http.get(f"/exports/pact/footprints?{PERIOD}&enterprise=stamper&material=parts")
    every = await gql.http.get(f"/exports/pact/footprints?{PERIOD}")

    assert one.status_code == 200, one.text
    assert one.headers["content-type"] == "application/json"
    assert (
        'filename="pact-fp-stamper-parts-2025-01-01-2025-01-31.json"'
        in (one.headers["content-disposition"])
    )
    assert one.json()["data"]["productNameCompany"] == "Parts"
    assert sorted(p["productNameCompany"] for p in every.json()["data"]) == ["Coil", "Parts"]
    assert every.json()["withheld"] == []


async def test_pact_refuses_a_footprint_resting_on_missing_factors(gql: GraphQLClient) -> None:
    await _world(gql, ore_kg="2000")

    response = await gql.http.get(
        f"/exports/pact/footprints?{PERIOD}&enterprise=stamper&material=parts"
    )

    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["code"] == "INCOMPLETE_FOOTPRINT"
    assert "ore (no cradle-to-gate factor" in error["message"]


@pytest.mark.parametrize(
    ("path", "status", "field"),
    [
        ("/exports/flows.txt?" + PERIOD, 422, "format"),
        ("/exports/flows?" + PERIOD, 422, "format"),
        ("/exports/stocks.csv?" + PERIOD, 422, "kind"),
        ("/exports/pact.json?" + PERIOD, 422, "kind"),
        ("/exports/flows.csv?park=nowhere&start=2025-01-01&end=2025-01-31", 404, "park"),
        ("/exports/flows.csv?park=fp&start=2025-13-01&end=2025-01-31", 422, "start"),
        ("/exports/balances.csv?park=fp&start=2025-02-01&end=2025-01-31", 422, "end"),
        ("/exports/footprints.csv?park=fp&start=2024-01-01&end=2024-01-31", 422, "start"),
        ("/exports/pact/footprints?" + PERIOD + "&enterprise=stamper", 422, "material"),
        (
            "/exports/pact/footprints?" + PERIOD + "&enterprise=nobody&material=parts",
            404,
            "enterprise",
        ),
        ("/exports/pact/footprints?" + PERIOD + "&enterprise=grid&material=parts", 422, "material"),
    ],
)
async def test_bad_arguments_are_refused_naming_the_parameter(
    gql: GraphQLClient, path: str, status: int, field: str
) -> None:
    await _world(gql)

    response = await gql.http.get(path)

    assert response.status_code == status, response.text
    (error,) = response.json()["errors"]
    assert error["field"] == field
    assert error["message"]


async def test_exports_need_credentials(gql: GraphQLClient) -> None:
    await _world(gql)
    response = await gql.http.get(f"/exports/flows.csv?{PERIOD}", headers={"Authorization": ""})
    assert response.status_code == 401


async def test_an_enterprise_downloads_only_its_own_flows_and_books_and_no_park_footprint(
    gql: GraphQLClient, client_as: ClientAs
) -> None:
    world = await _world(gql)
    stamper = await client_as(
        gql, Role.ENTERPRISE, park_id=world.park, enterprise_id=world.nodes["stamper"]
    )

    flows = await gql.http.get(f"/exports/flows.csv?{PERIOD}", headers=stamper.headers)
    books = await gql.http.get(f"/exports/balances.csv?{PERIOD}", headers=stamper.headers)
    park = await gql.http.get(f"/exports/footprints.csv?{PERIOD}", headers=stamper.headers)
    own = await gql.http.get(
        f"/exports/pact/footprints?{PERIOD}&enterprise=stamper&material=parts",
        headers=stamper.headers,
    )

    table = pd.read_csv(io.BytesIO(flows.content))
    assert sorted(zip(table["source"], table["target"], strict=True)) == [
        ("grid", "stamper"),
        ("mill", "stamper"),
        ("stamper", "customer"),
    ]
    assert set(pd.read_csv(io.BytesIO(books.content))["entity_code"]) == {"stamper"}
    assert park.status_code == 403
    assert own.status_code == 200, own.text


async def test_indicators_download_with_an_empty_ratio_left_blank(gql: GraphQLClient) -> None:
    await _world(gql)  # no material enters the park from outside: no circular inflow ratio

    response = await gql.http.get(f"/exports/indicators.csv?{PERIOD}")

    assert response.status_code == 200, response.text
    table = pd.read_csv(io.BytesIO(response.content)).set_index("indicator")
    assert pd.isna(table.loc["circular_inflow", "value"])
    assert table.loc["circular_inflow", "note"] == "nothing flowed: no ratio"
    assert table.loc["circular_outflow", "denominator"] == 800  # the parts sold outside
