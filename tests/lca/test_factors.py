"""Background factors read from datasets/factors, against figures computed by hand.

Independent figures from ../shared/domain/REFERENCE.md §4 (IPCC 2006 Vol. 2; Vietnam's
Department of Climate Change): emissions per kg of fuel = NCV [TJ/Gg] × EF [kg/TJ] / 1e6.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lca import factors
from lca.characterisation import elementary_flows
from lca.errors import FactorDataError, MissingFactorError
from mfa.settings import Settings

PER_KG = {
    "diesel": {
        "co2-fossil": 43.0 * 74_100 / 1e6,  # 3.1863
        "ch4": 43.0 * 3 / 1e6,  # 0.000129
        "n2o": 43.0 * 0.6 / 1e6,  # 0.0000258
    },
    "natural-gas": {
        "co2-fossil": 48.0 * 56_100 / 1e6,  # 2.6928
        "ch4": 48.0 * 1 / 1e6,  # 0.000048
        "n2o": 48.0 * 0.1 / 1e6,  # 0.0000048
    },
    "coal": {
        "co2-fossil": 25.8 * 94_600 / 1e6,  # 2.44068
        "ch4": 25.8 * 10 / 1e6,  # 0.000258, manufacturing industries (Table 2.3)
        "n2o": 25.8 * 1.5 / 1e6,  # 0.0000387
    },
}


@pytest.mark.parametrize("fuel", sorted(PER_KG))
def test_combustion_emissions_per_kg_follow_ipcc_2006(fuel: str) -> None:
    combustion = factors.combustion_factors(fuel)
    assert combustion is not None
    assert combustion.emissions_per_kg() == pytest.approx(PER_KG[fuel], rel=1e-12)
    assert combustion.missing == ()
    assert "IPCC 2006" in combustion.source


@pytest.mark.parametrize(
    ("fuel", "co2"), [("diesel", 3.1863), ("natural-gas", 2.6928), ("coal", 2.44068)]
)
def test_the_worked_co2_figures(fuel: str, co2: float) -> None:
    combustion = factors.combustion_factors(fuel)
    assert combustion is not None
    assert combustion.emissions_per_kg()["co2-fossil"] == pytest.approx(co2, rel=1e-12)


def test_every_computed_gas_has_an_elementary_flow() -> None:
    flows = elementary_flows()
    for fuel in PER_KG:
        combustion = factors.combustion_factors(fuel)
        assert combustion is not None
        assert set(combustion.emissions_per_kg()) <= set(flows)


@pytest.mark.parametrize("fuel", ["lpg", "wood-pellets", "heavy-fuel-oil", "steel-coil"])
def test_fuels_without_a_sourced_calorific_value_or_unknown_give_none(fuel: str) -> None:
    # LPG and wood pellets have a CO2 factor but no NCV in REFERENCE.md: nothing is computed.
    assert factors.combustion_factors(fuel) is None


@pytest.mark.parametrize(
    ("year", "used", "factor"),
    [(2018, 2018, 0.9130), (2021, 2021, 0.7221), (2023, 2023, 0.6592)],
)
def test_grid_factor_of_a_published_year(year: int, used: int, factor: float) -> None:
    grid = factors.grid_factor(year)
    assert (grid.year_used, grid.kg_co2_per_kwh, grid.is_fallback) == (used, factor, False)
    assert "Department of Climate Change" in grid.source


def test_grid_factor_after_the_last_published_year_falls_back_and_says_so() -> None:
    grid = factors.grid_factor(2025)
    assert grid.year_requested == 2025
    assert grid.year_used == 2023
    assert grid.is_fallback
    assert grid.kg_co2_per_kwh == 0.6592  # t CO2/MWh = kg CO2/kWh


def test_grid_factor_before_the_first_published_year_raises() -> None:
    with pytest.raises(MissingFactorError, match=r"2017.*2018") as error:
        factors.grid_factor(2017)
    assert error.value.code == "MISSING_FACTOR"
    assert factors.MissingFactorError is MissingFactorError  # callers catch it via factors


def test_purchased_material_without_a_sourced_factor_is_none_not_zero() -> None:
    assert factors.purchased_factor("steel-coil") is None
    assert factors.purchased_factor("no-such-material") is None


# --- parsing, on made-up files (the numbers below are test fixtures, not data) ---------------


@pytest.fixture
def made_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "factors"
    folder.mkdir()
    monkeypatch.setattr(factors, "get_settings", lambda: Settings(datasets_dir=tmp_path))
    return folder


def test_a_sourced_purchase_row_is_read_with_its_source(made_up: Path) -> None:
    (made_up / "purchased_materials.csv").write_text(
        "material,kg_co2e_per_unit,unit,source,note\ncement,0.5,kg,Test fixture,made up\n",
        encoding="utf-8",
    )
    assert factors.purchased_factor("cement") == factors.PurchasedFactor(
        material="cement", kg_co2e_per_unit=0.5, unit="kg", source="Test fixture", note="made up"
    )


def test_biogenic_fuel_books_its_co2_as_biogenic_and_names_missing_gases(made_up: Path) -> None:
    (made_up / "combustion_ipcc2006.csv").write_text(
        "fuel,ncv_tj_per_gg,co2_kg_per_tj,ch4_kg_per_tj,n2o_kg_per_tj,co2_biogenic,source\n"
        "wood-pellets,10.0,100000,,,true,Test fixture\n",
        encoding="utf-8",
    )
    wood = factors.combustion_factors("wood-pellets")
    assert wood is not None
    assert wood.emissions_per_kg() == pytest.approx({"co2-biogenic": 10.0 * 100_000 / 1e6})
    assert wood.missing == ("ch4", "n2o")


def test_bad_rows_are_reported_together_with_their_lines(made_up: Path) -> None:
    (made_up / "grid_vn.csv").write_text(
        "year,factor_t_co2_per_mwh,source\n2020,abc,x\n2021,0.7,x\nlast,0.6,x\n",
        encoding="utf-8",
    )
    with pytest.raises(FactorDataError, match=r"line 2: .*line 4: "):
        factors.grid_factor(2021)
