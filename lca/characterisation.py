"""GWP100 characterisation factors and the elementary flows the park's emissions map to.

Factors are read at run time from the LCIA data the installed bw2io ships
(``bw2io/data/lcia/lcia_39_ecoinvent.zip``: ecoinvent 3.9's implementation of the methods,
one ``data.json`` listing every method with its ``exchanges``), never copied into the
repository. A factor is kg CO2-eq per kg of the elementary flow, keyed by the flow's biosphere3
UUID (the ecoinvent elementary-flow identifier), so results interoperate with any Brightway or
ecoinvent project. A flow the method does not list has factor 0, as in Brightway: ecoinvent's
IPCC 2021 and IPCC 2013 GWP100 methods do not list ``Carbon dioxide, non-fossil`` (biogenic CO2
counts as neutral).

The material catalogue's emissions map to elementary flows through
``datasets/factors/elementary_flows.csv``. Where a source gives only a CO2-equivalent total, the
model uses one aggregated pseudo-flow, ``GWP100, CO2-equivalent`` (``CO2E_AGGREGATED``), which
is ours, not biosphere3's: its factor is 1 in every GWP100 method, and results that contain it
must say so, since its value already fixed a choice of GWP table.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import uuid
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Final, TypeVar

from lca.errors import FactorDataError
from mfa.settings import get_settings

AGGREGATED_CO2E_NAME: Final = "GWP100, CO2-equivalent"
CO2E_AGGREGATED: Final = "3eaa5ccd-574b-5d20-9a27-cbe76d90f8cb"
"""UUID of the aggregated pseudo-flow: ``uuid5(NAMESPACE_URL, "urn:circular-mfa:elementary-flow:
GWP100, CO2-equivalent")`` (a test recomputes it). Fixed, so stored results stay comparable."""

CO2_FOSSIL: Final = "349b29d1-3e58-4c66-98b9-9d1a076efd2e"
"""biosphere3 ``Carbon dioxide, fossil`` to air (unspecified): the flow grid factors are
expressed in. A test pins it to the ``co2-fossil`` row of ``elementary_flows.csv``."""

_T = TypeVar("_T")
_LCIA_ARCHIVE = ("lcia", "lcia_39_ecoinvent.zip")
_GWP_UNIT = "kg CO2-Eq"


class GwpMethod(StrEnum):
    """The IPCC assessment report whose GWP100 values characterise the inventory."""

    AR6 = "AR6"
    AR5 = "AR5"

    @property
    def brightway_name(self) -> tuple[str, str, str]:
        """The method's name in bw2io's LCIA data (and in a Brightway project)."""
        return _METHOD_NAMES[self]


_METHOD_NAMES: Final[Mapping[GwpMethod, tuple[str, str, str]]] = {
    GwpMethod.AR6: ("IPCC 2021", "climate change", "global warming potential (GWP100)"),
    GwpMethod.AR5: ("IPCC 2013", "climate change", "global warming potential (GWP100)"),
}


@dataclass(frozen=True, slots=True)
class ElementaryFlow:
    """An elementary flow in kg: a biosphere3 flow, or our aggregated CO2-equivalent flow.

    ``subcompartment`` is ecoinvent's spelling (``unspecified``); ``categories`` is
    Brightway's, which drops ``unspecified``: ``("air",)``.
    """

    material: str | None
    uuid: str
    name: str
    compartment: str
    subcompartment: str
    database: str = "biosphere3"

    @property
    def categories(self) -> tuple[str, ...]:
        if self.subcompartment in ("", "unspecified"):
            return (self.compartment,)
        return (self.compartment, self.subcompartment)

    @property
    def key(self) -> tuple[str, str]:
        """The Brightway key, ``(database, code)``."""
        return (self.database, self.uuid)


AGGREGATED_CO2E: Final = ElementaryFlow(
    material=None,
    uuid=CO2E_AGGREGATED,
    name=AGGREGATED_CO2E_NAME,
    compartment="air",
    subcompartment="unspecified",
    database="circular-mfa",
)


def bw2io_data_dir() -> Path:
    """The ``data`` folder of the installed bw2io, found without importing bw2io.

    Importing bw2io imports bw2data, which opens a Brightway project directory and takes about
    1.5 s; reading two of its data files needs neither.
    """
    spec = importlib.util.find_spec("bw2io")
    if spec is None or not spec.submodule_search_locations:
        raise FactorDataError("bw2io is not installed: install the project's dependencies")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


@cache
def _gwp_tables() -> Mapping[GwpMethod, Mapping[str, float]]:
    """Every GwpMethod's factors, from one read of the 40 MB LCIA file."""
    path = bw2io_data_dir().joinpath(*_LCIA_ARCHIVE)
    try:
        with zipfile.ZipFile(path) as archive, archive.open("data.json") as stream:
            methods = json.load(stream)
    except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        raise FactorDataError(f"cannot read bw2io's LCIA data at {path}: {exc}") from exc
    wanted = {name: method for method, name in _METHOD_NAMES.items()}
    tables: dict[GwpMethod, Mapping[str, float]] = {}
    for entry in methods:
        method = wanted.get(tuple(entry["name"]))
        if method is None:
            continue
        if entry["unit"] != _GWP_UNIT:
            raise FactorDataError(
                f"{method.brightway_name} is in {entry['unit']!r}, expected {_GWP_UNIT!r}"
            )
        factors = {
            str(exchange["input"][1]): float(exchange["amount"])
            for exchange in entry["exchanges"]
            if exchange["input"][0] == "biosphere3"
        }
        factors[CO2E_AGGREGATED] = 1.0
        tables[method] = MappingProxyType(factors)
    if missing := [m.brightway_name for m in GwpMethod if m not in tables]:
        raise FactorDataError(f"bw2io's LCIA data at {path} lacks {missing}: upgrade bw2io")
    return MappingProxyType(tables)


def characterisation_factors(method: GwpMethod = GwpMethod.AR6) -> Mapping[str, float]:
    """biosphere3 UUID → GWP100 in kg CO2-eq per kg, for ``method`` (read-only).

    Includes ``CO2E_AGGREGATED`` → 1.0. Flows the method omits are absent: their factor is 0.
    The first call in a process unzips and parses bw2io's 40 MB ``data.json``: measured at
    1.7 s on an idle 2-vCPU development machine, 3-5 s wall (2.3-2.9 s CPU) when it was busy;
    later calls, for either method, are a cached dictionary lookup.
    """
    return _gwp_tables()[method]


def read_rows(path: Path, parse: Callable[[dict[str, str]], _T]) -> list[_T]:
    """Every row of the CSV file ``path`` parsed by ``parse``, for the ``datasets/factors`` files.

    Bad rows (``parse`` raising ``KeyError`` or ``ValueError``) are collected and reported
    together with their line numbers in one ``FactorDataError``.
    """
    try:
        with path.open(newline="", encoding="utf-8") as stream:
            rows = list(csv.DictReader(stream))
    except OSError as exc:
        raise FactorDataError(f"cannot read {path}: {exc}") from exc
    parsed: list[_T] = []
    errors: list[str] = []
    for number, row in enumerate(rows, start=2):
        try:
            parsed.append(parse(row))
        except (KeyError, ValueError) as exc:
            errors.append(f"line {number}: {exc}")
    if errors:
        raise FactorDataError(f"{path.name}: " + "; ".join(errors))
    return parsed


def _elementary_flow(row: dict[str, str]) -> ElementaryFlow:
    return ElementaryFlow(
        material=row["material"],
        uuid=str(uuid.UUID(row["biosphere3_uuid"])),
        name=row["name"],
        compartment=row["compartment"],
        subcompartment=row["subcompartment"],
    )


@cache
def _elementary_flows(path: Path) -> Mapping[str, ElementaryFlow]:
    flows = read_rows(path, _elementary_flow)
    by_material = {flow.material: flow for flow in flows if flow.material}
    if len(by_material) != len(flows):
        raise FactorDataError(f"{path.name}: a material is blank or appears twice")
    return MappingProxyType(by_material)


def elementary_flows() -> dict[str, ElementaryFlow]:
    """Emission material code → its biosphere3 elementary flow (``elementary_flows.csv``)."""
    path = get_settings().datasets_dir / "factors" / "elementary_flows.csv"
    return dict(_elementary_flows(path))
