"""Background factors shipped in ``datasets/factors``: the grid, fuel combustion, purchases.

Each loader returns frozen values carrying their source, read once per process from the data
package (``mfa.settings.get_settings().datasets_dir``). Nothing here invents a number: a year,
fuel or material the files do not cover is reported as missing (``MissingFactorError`` or
``None``), and the caller lists it rather than counting it as zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Final

from lca.characterisation import CO2_FOSSIL, CO2E_AGGREGATED, read_rows
from lca.errors import FactorDataError, MissingFactorError
from lca.recycling import MaterialEmissions
from mfa.settings import get_settings

__all__ = [
    "CO2E_AGGREGATED",
    "CO2_FOSSIL",
    "CombustionFactor",
    "GridFactor",
    "MissingFactorError",
    "PurchasedFactor",
    "combustion_factors",
    "grid_factor",
    "purchased_factor",
    "recycling_emissions",
]

GG_PER_KG: Final = 1e-6
_PURCHASE_UNITS = frozenset({"kg", "m3", "kWh"})


@dataclass(frozen=True, slots=True)
class GridFactor:
    """Vietnam's grid emission factor applied to electricity of ``year_requested``.

    ``year_used`` is the latest published year at or before it; when they differ the result
    must say so (no factor is published for the later year in our source).
    ``kg_co2_per_kwh`` is fossil CO2 (``CO2_FOSSIL``): t CO2/MWh = 1000 kg / 1000 kWh, so the
    published number carries over unchanged.
    """

    year_requested: int
    year_used: int
    kg_co2_per_kwh: float
    source: str

    @property
    def is_fallback(self) -> bool:
        return self.year_used != self.year_requested


@dataclass(frozen=True, slots=True)
class CombustionFactor:
    """IPCC 2006 default stationary-combustion factors of one fuel, net calorific basis.

    ``ncv_tj_per_gg`` is the net calorific value (TJ per Gg of fuel); the ``*_kg_per_tj`` are kg
    of gas per TJ of fuel burnt. ``None`` marks a value our source does not give: a gas without
    a factor is not computed (``missing`` names it); a fuel without an NCV gives nothing at all,
    and ``combustion_factors`` does not return it. ``co2_biogenic`` books the CO2 as
    ``co2-biogenic`` instead of ``co2-fossil``.
    """

    fuel: str
    ncv_tj_per_gg: float | None
    co2_kg_per_tj: float | None
    ch4_kg_per_tj: float | None
    n2o_kg_per_tj: float | None
    co2_biogenic: bool
    source: str

    @property
    def missing(self) -> tuple[str, ...]:
        """Gas material codes the source gives no factor for (not counted, not zero)."""
        return tuple(gas for gas, value in self._per_tj() if value is None)

    def emissions_per_kg(self) -> dict[str, float]:
        """Gas material code → kg emitted per kg of fuel burnt.

        e = NCV [TJ/Gg] × 1e-6 [Gg/kg] × EF [kg/TJ] = kg gas per kg fuel. Diesel CO2:
        43.0 TJ/Gg × 74,100 kg/TJ = 3,186,300 kg/Gg = 3.1863 kg/kg. Gases with no factor are
        left out (see ``missing``); without an NCV this raises ``MissingFactorError``.
        """
        if self.ncv_tj_per_gg is None:
            raise MissingFactorError(
                f"{self.fuel} has no net calorific value in combustion_ipcc2006.csv: add the "
                "IPCC 2006 Vol. 2 Table 1.2 value with its source",
                field=("fuel",),
            )
        ncv = self.ncv_tj_per_gg
        return {gas: ncv * GG_PER_KG * ef for gas, ef in self._per_tj() if ef is not None}

    def _per_tj(self) -> tuple[tuple[str, float | None], ...]:
        co2 = "co2-biogenic" if self.co2_biogenic else "co2-fossil"
        return (
            (co2, self.co2_kg_per_tj),
            ("ch4", self.ch4_kg_per_tj),
            ("n2o", self.n2o_kg_per_tj),
        )


@dataclass(frozen=True, slots=True)
class PurchasedFactor:
    """Cradle-to-gate GWP100 of a material bought from outside the park, per canonical unit.

    Given as a CO2-equivalent total, so it is booked on the aggregated flow ``CO2E_AGGREGATED``.
    """

    material: str
    kg_co2e_per_unit: float
    unit: str
    source: str
    note: str


def grid_factor(year: int) -> GridFactor:
    """The grid factor for electricity of ``year``: that year's, else the latest before it.

    Raises ``MissingFactorError`` when no factor is published at or before ``year``.
    """
    table = _grid_table(_path("grid_vn.csv"))
    published = [y for y in table if y <= year]
    if not published:
        raise MissingFactorError(
            f"no Vietnam grid emission factor at or before {year}: the earliest in "
            f"datasets/factors/grid_vn.csv is {min(table, default='none')}; add the published "
            "value with its source",
            field=("year",),
        )
    used = max(published)
    factor, source = table[used]
    return GridFactor(year_requested=year, year_used=used, kg_co2_per_kwh=factor, source=source)


def combustion_factors(fuel_code: str) -> CombustionFactor | None:
    """The combustion factors of fuel material ``fuel_code``, or ``None`` when unusable.

    ``None`` means the fuel is not in ``combustion_ipcc2006.csv`` or its row lacks the net
    calorific value (LPG, wood pellets: our source gives none), so no emission can be
    computed: report the fuel as lacking a factor.
    """
    factor = _combustion_table(_path("combustion_ipcc2006.csv")).get(fuel_code)
    return factor if factor is not None and factor.ncv_tj_per_gg is not None else None


def purchased_factor(material_code: str) -> PurchasedFactor | None:
    """The cradle-to-gate factor of a purchased material, or ``None``: report it as missing."""
    return _purchased_table(_path("purchased_materials.csv")).get(material_code)


def recycling_emissions(material_code: str) -> MaterialEmissions | None:
    """Per-unit emissions a recycling allocation needs for a material, or ``None`` (missing)."""
    return _recycling_table(_path("recycling_emissions.csv")).get(material_code)


def _path(name: str) -> Path:
    return get_settings().datasets_dir / "factors" / name


def _optional(value: str) -> float | None:
    return float(value) if value.strip() else None


def _unique(path: Path, keys: Sequence[object]) -> None:
    if repeated := sorted({str(k) for k in keys if keys.count(k) > 1}):
        raise FactorDataError(f"{path.name}: {', '.join(repeated)} listed more than once")


@cache
def _grid_table(path: Path) -> Mapping[int, tuple[float, str]]:
    rows = read_rows(
        path, lambda r: (int(r["year"]), float(r["factor_t_co2_per_mwh"]), r["source"])
    )
    _unique(path, [year for year, _, _ in rows])
    return MappingProxyType({year: (factor, source) for year, factor, source in rows})


def _combustion_row(row: dict[str, str]) -> CombustionFactor:
    if row["co2_biogenic"] not in ("true", "false"):
        raise ValueError(f"co2_biogenic {row['co2_biogenic']!r} is neither true nor false")
    return CombustionFactor(
        fuel=row["fuel"],
        ncv_tj_per_gg=_optional(row["ncv_tj_per_gg"]),
        co2_kg_per_tj=_optional(row["co2_kg_per_tj"]),
        ch4_kg_per_tj=_optional(row["ch4_kg_per_tj"]),
        n2o_kg_per_tj=_optional(row["n2o_kg_per_tj"]),
        co2_biogenic=row["co2_biogenic"] == "true",
        source=row["source"],
    )


@cache
def _combustion_table(path: Path) -> Mapping[str, CombustionFactor]:
    rows = read_rows(path, _combustion_row)
    _unique(path, [r.fuel for r in rows])
    return MappingProxyType({r.fuel: r for r in rows})


def _purchased_row(row: dict[str, str]) -> PurchasedFactor:
    if row["unit"] not in _PURCHASE_UNITS:
        raise ValueError(f"unit {row['unit']!r} is not one of {sorted(_PURCHASE_UNITS)}")
    if not row["source"].strip():
        raise ValueError(f"{row['material']} has no source")
    return PurchasedFactor(
        material=row["material"],
        kg_co2e_per_unit=float(row["kg_co2e_per_unit"]),
        unit=row["unit"],
        source=row["source"],
        note=row["note"],
    )


@cache
def _purchased_table(path: Path) -> Mapping[str, PurchasedFactor]:
    rows = read_rows(path, _purchased_row)
    _unique(path, [r.material for r in rows])
    return MappingProxyType({r.material: r for r in rows})


def _recycling_row(row: dict[str, str]) -> tuple[str, MaterialEmissions]:
    if not row["source"].strip():
        raise ValueError(f"{row['material']} has no source")
    return row["material"], MaterialEmissions(
        e_v=float(row["e_v"]),
        e_recycled=float(row["e_recycled"]),
        e_recycling_eol=float(row["e_recycling_eol"]),
        e_v_substituted=_optional(row["e_v_substituted"]),
        e_disposal=float(row["e_disposal"]),
    )


@cache
def _recycling_table(path: Path) -> Mapping[str, MaterialEmissions]:
    rows = read_rows(path, _recycling_row)
    _unique(path, [material for material, _ in rows])
    return MappingProxyType(dict(rows))
