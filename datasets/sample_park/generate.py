"""Generate the synthetic sample park: park, nodes, monthly flows of 2025, stock readings.

``python datasets/sample_park/generate.py [OUTPUT_DIR]`` rewrites ``park.csv``, ``nodes.csv``,
``flows.csv``, ``stocks.csv`` and ``planted.json`` in OUTPUT_DIR (default: this folder). The
output depends only on ``SEED`` and the tables below: two runs give byte-identical files.

What is synthetic: the park's enterprises, their names and tax ids (fake 10-digit numbers in the
Dong Nai style, not real registrations), every quantity, stock reading and document number. The
recipes (inputs per tonne of product) are plausible orders of magnitude, not measurements.

What is sourced: the setting (Amata, Bien Hoa, Dong Nai, one of Vietnam's eco-industrial park
pilots), ISIC Rev.4 classes of the enterprises, the HS and EWC codes of the material catalogue
(``datasets/materials/materials.csv``), and the combustion factors used for the CO2, CH4 and N2O
that some enterprises report: IPCC 2006 Guidelines Vol. 2 Tables 2.2/2.3 (kg per TJ) times the
IPCC 2006 default net calorific values (TJ per Gg; Vol. 2 Table 1.2).

How the numbers hang together. Each enterprise has a monthly activity (tonnes of its main
product, m3 of beer, m3 of wastewater treated, kWh generated) and a recipe of lines, each a flow
of ``per_unit`` canonical units (kg, m3, kWh) per unit of activity. One boundary line per
enterprise is its *balancing line*: its quantity is solved so that the monthly mass balance

    residual = inputs − outputs − (closing stock − opening stock)
    relative residual = |residual| / max(inputs, outputs)

over materials of kind product, by_product and waste measured in mass, with every transfer
counted once at the quantity of its first report, lands on a drawn target: 0.4–2.2% for every
(enterprise, month), 12–22% for the planted ones. Wastewater is measured in m3, so it carries no
mass into the balance; the central treatment plant therefore balances its dosed coagulant
against its sludge, a simplification the docstring of ``cetp_month`` repeats.
"""

from __future__ import annotations

import csv
import json
import random
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Literal

SEED = 20251127
YEAR = 2025
MONTHS = tuple(range(1, 13))
HERE = Path(__file__).resolve().parent
CATALOGUE = HERE.parent / "materials" / "materials.csv"

PARK = {
    "code": "amata-dn-synthetic",
    "name": "Amata Bien Hoa (synthetic sample)",
    "country": "VN",
    "region": "Dong Nai",
    "description": (
        "Synthetic sample park modelled on the Amata (Bien Hoa, Dong Nai) eco-industrial park "
        "pilot of the Global Eco-Industrial Parks Programme. Enterprises, names, tax ids and "
        "every quantity are invented by datasets/sample_park/generate.py."
    ),
}

# --- units -------------------------------------------------------------------------------------

UNIT_FACTOR: dict[str, Decimal] = {
    "kg": Decimal(1),
    "t": Decimal(1000),
    "m3": Decimal(1),
    "L": Decimal("0.001"),
    "kWh": Decimal(1),
    "MWh": Decimal(1000),
    "GJ": Decimal(1000) / Decimal("3.6"),
}
"""Canonical units (kg, m3, kWh) per reported unit."""

UNIT_STEP: dict[str, Decimal] = {
    "kg": Decimal(1),
    "t": Decimal("0.001"),
    "m3": Decimal("0.1"),
    "L": Decimal(1),
    "kWh": Decimal(1),
    "MWh": Decimal("0.001"),
    "GJ": Decimal("0.01"),
}
"""Resolution at which each unit is written (a kg figure under 100 kg gets 0.1 kg)."""

# --- combustion factors (IPCC 2006 Vol. 2: Tables 2.2/2.3 per TJ, Table 1.2 NCV) ---------------

NCV_TJ_PER_GG: dict[str, Decimal] = {
    "diesel": Decimal("43.0"),
    "natural-gas": Decimal("48.0"),
    "coal": Decimal("25.8"),
}
EF_KG_PER_TJ: dict[tuple[str, str], Decimal] = {
    ("diesel", "co2-fossil"): Decimal(74_100),
    ("natural-gas", "co2-fossil"): Decimal(56_100),
    ("coal", "co2-fossil"): Decimal(94_600),
    ("coal", "ch4"): Decimal(10),  # manufacturing industries
    ("coal", "n2o"): Decimal("1.5"),
}

# --- seasonality (multipliers by month, January first) -----------------------------------------

SEASONS: dict[str, tuple[float, ...]] = {
    # Tet fell on 29 January 2025: late January and most of February run short.
    "default": (0.93, 0.80, 1.00, 0.98, 1.00, 1.01, 1.02, 1.03, 1.01, 1.04, 1.05, 1.04),
    "beverage": (1.22, 0.78, 0.92, 1.02, 1.05, 1.04, 1.00, 0.97, 0.92, 0.93, 0.98, 1.17),
    "construction": (1.05, 0.80, 1.10, 1.10, 1.05, 0.95, 0.92, 0.90, 0.92, 0.98, 1.05, 1.10),
    "solar": (1.05, 1.12, 1.18, 1.12, 1.00, 0.92, 0.90, 0.90, 0.88, 0.90, 0.95, 1.00),
    "flat": (1.0,) * 12,
}

# --- the park ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Line:
    """A recurring monthly flow: ``per_unit`` canonical units per unit of activity.

    ``direction`` is seen from the enterprise whose recipe holds the line; ``balancing`` marks
    the one boundary line whose quantity closes the mass balance (``per_unit`` is then only its
    nominal size, kept for readers).
    """

    material: str
    direction: Literal["in", "out"]
    partner: str
    per_unit: float
    balancing: bool = False


def IN(material: str, partner: str, per_unit: float, *, balancing: bool = False) -> Line:
    return Line(material, "in", partner, per_unit, balancing)


def OUT(material: str, partner: str, per_unit: float, *, balancing: bool = False) -> Line:
    return Line(material, "out", partner, per_unit, balancing)


@dataclass(frozen=True, slots=True)
class Enterprise:
    """An enterprise of the park with its recipe, reporting habits and stock-keeping."""

    code: str
    name: str
    isic: str
    doc: str
    activity: float
    lines: tuple[Line, ...]
    stocks: tuple[tuple[str, float], ...] = ()
    mass_unit: str = "t"
    energy_unit: str = "MWh"
    volume_unit: str = "m3"
    unit_overrides: tuple[tuple[str, str], ...] = ()
    season: str = "default"
    reports: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Boundary:
    code: str
    kind: str
    name: str


SUPPLIERS_SE = "suppliers-southeast"
SUPPLIERS_MK = "suppliers-mekong"
IMPORTS = "suppliers-import"
FUEL = "fuel-distributors"
WATER = "dn-water-utility"
DOMESTIC = "customers-domestic"
EXPORT = "customers-export"
LANDFILL = "dn-landfill"
INCINERATOR = "licensed-incinerator"
MUNICIPAL_WWTP = "bh-municipal-wwtp"
ATMOSPHERE = "atmosphere"
GRID = "evn-grid"
RECYCLER = "outside-recycler"

BOUNDARY: tuple[Boundary, ...] = (
    Boundary(SUPPLIERS_SE, "supplier", "Outside suppliers, Southeast region"),
    Boundary(SUPPLIERS_MK, "supplier", "Outside suppliers, Mekong Delta"),
    Boundary(IMPORTS, "supplier", "Imported supplies via Cat Lai and Cai Mep ports"),
    Boundary(FUEL, "supplier", "Outside fuel distributors"),
    Boundary(WATER, "supplier", "Outside water utility (Dong Nai)"),
    Boundary(DOMESTIC, "customer", "Customers in Vietnam outside the park"),
    Boundary(EXPORT, "customer", "Export customers"),
    Boundary(LANDFILL, "landfill", "Outside sanitary landfill (Dong Nai)"),
    Boundary(INCINERATOR, "incineration", "Outside licensed industrial waste incinerator"),
    Boundary(
        MUNICIPAL_WWTP, "wastewater_treatment", "Outside municipal wastewater plant (Bien Hoa)"
    ),
    Boundary(ATMOSPHERE, "atmosphere", "Atmosphere"),
    Boundary(GRID, "grid", "National grid (EVN)"),
    Boundary(RECYCLER, "recycler", "Licensed recycler outside the park (Southeast region)"),
)

COLLECTOR = "amata-waste-services"
CETP = "amata-cetp"
SOLAR = "amata-solar"

# Activities: t of main product per month unless said otherwise; per_unit in kg, m3 or kWh.
ENTERPRISES: tuple[Enterprise, ...] = (
    # metal and auto parts
    Enterprise(
        code="lt-auto-body",
        name="Long Thanh Auto Body Parts Co., Ltd.",
        isic="2930",
        doc="LTA",
        activity=550,
        lines=(
            IN("steel-coil", IMPORTS, 1280, balancing=True),
            IN("electricity", GRID, 420),
            IN("lpg", FUEL, 6),
            IN("diesel", FUEL, 2),
            IN("fresh-water", WATER, 2.5),
            OUT("auto-components", DOMESTIC, 700),
            OUT("auto-components", EXPORT, 300),
            OUT("steel-scrap", "dn-iron-foundry", 255),
            OUT("contaminated-packaging", INCINERATOR, 0.8),
            OUT("general-waste", COLLECTOR, 4),
            OUT("wastewater", CETP, 2.1),
        ),
        stocks=(("steel-coil", 380_000), ("auto-components", 110_000)),
    ),
    Enterprise(
        code="bh-chassis",
        name="Bien Hoa Chassis Components Co., Ltd.",
        isic="2930",
        doc="BHC",
        activity=300,
        lines=(
            IN("steel-coil", SUPPLIERS_SE, 1000, balancing=True),
            IN("aluminium-castings", "amata-diecast", 120),
            IN("electricity", GRID, 650),
            IN("diesel", FUEL, 1.5),
            IN("fresh-water", WATER, 3.0),
            OUT("auto-components", DOMESTIC, 1000),
            OUT("steel-scrap", "dn-iron-foundry", 90),
            OUT("aluminium-swarf", LANDFILL, 24),
            OUT("surface-treatment-sludge", INCINERATOR, 3),
            OUT("cardboard-waste", COLLECTOR, 3),
            OUT("general-waste", COLLECTOR, 4),
            OUT("wastewater", CETP, 2.5),
        ),
        stocks=(
            ("steel-coil", 160_000),
            ("aluminium-castings", 18_000),
            ("auto-components", 60_000),
        ),
        mass_unit="kg",
        energy_unit="kWh",
    ),
    Enterprise(
        code="dn-iron-foundry",
        name="Dong Nai Iron Foundry JSC",
        isic="2431",
        doc="DIF",
        activity=400,
        lines=(
            IN("pig-iron", IMPORTS, 300, balancing=True),
            IN("steel-scrap", SUPPLIERS_SE, 300),
            IN("electricity", GRID, 650),
            IN("lpg", FUEL, 3),
            IN("fresh-water", WATER, 1.2),
            OUT("iron-castings", DOMESTIC, 900),
            OUT("foundry-slag", "dn-concrete", 55),
            OUT("general-waste", COLLECTOR, 2),
            OUT("wastewater", CETP, 0.95),
        ),
        stocks=(("pig-iron", 100_000), ("iron-castings", 90_000)),
    ),
    Enterprise(
        code="amata-diecast",
        name="Amata Aluminium Die Casting Co., Ltd.",
        isic="2432",
        doc="ADC",
        activity=250,
        lines=(
            IN("aluminium-ingot", IMPORTS, 1000, balancing=True),
            IN("natural-gas", FUEL, 90),
            IN("diesel", FUEL, 1.0),
            IN("electricity", GRID, 900),
            IN("fresh-water", WATER, 1.5),
            OUT("aluminium-castings", DOMESTIC, 800),
            OUT("aluminium-swarf", RECYCLER, 45),
            OUT("general-waste", COLLECTOR, 2),
            OUT("wastewater", CETP, 1.2),
        ),
        stocks=(("aluminium-ingot", 90_000), ("aluminium-castings", 40_000)),
        mass_unit="kg",
        energy_unit="kWh",
        reports=("co2-fossil",),
    ),
    # electrical equipment and electronics
    Enterprise(
        code="sv-motors",
        name="Song Vien Electric Motors Co., Ltd.",
        isic="2710",
        doc="SVM",
        activity=180,
        lines=(
            IN("steel-coil", SUPPLIERS_SE, 620, balancing=True),
            IN("copper-wire", SUPPLIERS_SE, 120),
            IN("electric-cable", "tl-cable", 20),
            IN("iron-castings", "dn-iron-foundry", 220),
            IN("aluminium-castings", "amata-diecast", 80),
            IN("corrugated-boxes", "amata-carton", 40),
            IN("electricity", GRID, 1100),
            IN("lpg", FUEL, 2),
            IN("fresh-water", WATER, 1.5),
            OUT("electric-motors", EXPORT, 1000),
            OUT("steel-scrap", "dn-iron-foundry", 90),
            OUT("copper-scrap", RECYCLER, 6),
            OUT("cardboard-waste", COLLECTOR, 4),
            OUT("general-waste", COLLECTOR, 3),
            OUT("wastewater", CETP, 1.2),
        ),
        stocks=(("steel-coil", 70_000), ("electric-motors", 45_000)),
        mass_unit="kg",
        energy_unit="kWh",
    ),
    Enterprise(
        code="tl-cable",
        name="Tam Long Electric Cable Co., Ltd.",
        isic="2732",
        doc="TLC",
        activity=500,
        lines=(
            IN("copper-wire", IMPORTS, 700, balancing=True),
            IN("pvc-compound", SUPPLIERS_SE, 320),
            IN("electricity", GRID, 380),
            IN("fresh-water", WATER, 2.0),
            OUT("electric-cable", DOMESTIC, 985),
            OUT("copper-scrap", RECYCLER, 15),
            OUT("plastic-packaging-waste", COLLECTOR, 3),
            OUT("cardboard-waste", COLLECTOR, 2),
            OUT("general-waste", COLLECTOR, 2),
            OUT("wastewater", CETP, 1.6),
        ),
        stocks=(("copper-wire", 180_000), ("electric-cable", 200_000)),
    ),
    Enterprise(
        code="amata-pcba",
        name="Amata Circuit Assembly Co., Ltd.",
        isic="2610",
        doc="APC",
        activity=120,
        lines=(
            IN("electronic-components", IMPORTS, 760, balancing=True),
            IN("plastic-moulded-parts", "phuoc-tan-moulding", 250),
            IN("corrugated-boxes", "amata-carton", 80),
            IN("electricity", GRID, 2500),
            IN("diesel", FUEL, 1.0),
            IN("fresh-water", WATER, 6),
            OUT("pcb-assemblies", EXPORT, 1000),
            OUT("plastic-packaging-waste", INCINERATOR, 50),
            OUT("weee", RECYCLER, 12),
            OUT("spent-solvent", INCINERATOR, 4),
            OUT("cardboard-waste", COLLECTOR, 30),
            OUT("general-waste", COLLECTOR, 10),
            OUT("wastewater", CETP, 5),
        ),
        stocks=(("electronic-components", 45_000), ("pcb-assemblies", 20_000)),
        mass_unit="kg",
    ),
    # plastics
    Enterprise(
        code="phuoc-tan-moulding",
        name="Phuoc Tan Injection Moulding Co., Ltd.",
        isic="2220",
        doc="PTM",
        activity=350,
        lines=(
            IN("pp-granules", IMPORTS, 850, balancing=True),
            IN("recycled-pp-granules", "green-polymer", 200),
            IN("colour-masterbatch", SUPPLIERS_SE, 20),
            IN("electricity", GRID, 1300),
            IN("fresh-water", WATER, 1.0),
            OUT("plastic-moulded-parts", DOMESTIC, 920),
            OUT("pp-regrind", "green-polymer", 40),
            OUT("plastic-packaging-waste", COLLECTOR, 4),
            OUT("general-waste", COLLECTOR, 3),
            OUT("wastewater", CETP, 0.8),
        ),
        stocks=(
            ("pp-granules", 140_000),
            ("recycled-pp-granules", 30_000),
            ("plastic-moulded-parts", 60_000),
        ),
    ),
    Enterprise(
        code="an-binh-plastics",
        name="An Binh Plastic Products Co., Ltd.",
        isic="2220",
        doc="ABP",
        activity=200,
        lines=(
            IN("pp-granules", SUPPLIERS_SE, 980, balancing=True),
            IN("colour-masterbatch", SUPPLIERS_SE, 20),
            IN("electricity", GRID, 1250),
            IN("fresh-water", WATER, 0.8),
            OUT("plastic-moulded-parts", DOMESTIC, 960),
            OUT("pp-regrind", "green-polymer", 30),
            OUT("plastic-packaging-waste", COLLECTOR, 4),
            OUT("cardboard-waste", COLLECTOR, 2),
            OUT("general-waste", COLLECTOR, 3),
            OUT("wastewater", CETP, 0.64),
        ),
        stocks=(("pp-granules", 60_000),),
        mass_unit="kg",
        energy_unit="kWh",
    ),
    Enterprise(
        code="green-polymer",
        name="Green Polymer Recycling Co., Ltd.",
        isic="2013",
        doc="GPR",
        activity=120,
        lines=(
            IN("pp-regrind", SUPPLIERS_SE, 800, balancing=True),
            IN("colour-masterbatch", SUPPLIERS_SE, 10),
            IN("electricity", GRID, 550),
            IN("fresh-water", WATER, 3.0),
            OUT("recycled-pp-granules", DOMESTIC, 420),
            OUT("general-waste", COLLECTOR, 30),
            OUT("wastewater", CETP, 2.6),
        ),
        stocks=(("pp-regrind", 50_000), ("recycled-pp-granules", 35_000)),
        energy_unit="kWh",
    ),
    # food and beverage
    Enterprise(
        # activity: m3 of beer
        code="dn-brewery",
        name="Dong Nai Brewery Co., Ltd.",
        isic="1103",
        doc="DNB",
        activity=6000,
        lines=(
            IN("malt", IMPORTS, 112, balancing=True),
            IN("rice", SUPPLIERS_MK, 45),
            IN("electricity", GRID, 95),
            IN("wood-pellets", FUEL, 55),
            IN("fresh-water", WATER, 4.6),
            OUT("beer", DOMESTIC, 1.0),
            OUT("brewers-spent-grain", "long-binh-feed", 150),
            OUT("general-waste", COLLECTOR, 0.8),
            OUT("wastewater", CETP, 3.5),
        ),
        stocks=(("malt", 500_000), ("beer", 1_800)),
        season="beverage",
    ),
    Enterprise(
        code="tan-hiep-noodles",
        name="Tan Hiep Instant Noodle Co., Ltd.",
        isic="1074",
        doc="THN",
        activity=800,
        lines=(
            IN("wheat-flour", SUPPLIERS_SE, 820, balancing=True),
            IN("palm-oil", SUPPLIERS_SE, 200),
            IN("corrugated-boxes", "amata-carton", 60),
            IN("electricity", GRID, 350),
            IN("lpg", FUEL, 40),
            IN("fresh-water", WATER, 5),
            OUT("instant-noodles", DOMESTIC, 780),
            OUT("instant-noodles", EXPORT, 220),
            OUT("food-processing-waste", "long-binh-feed", 30),
            OUT("cardboard-waste", LANDFILL, 12),
            OUT("general-waste", COLLECTOR, 4),
            OUT("wastewater", CETP, 4),
        ),
        stocks=(("wheat-flour", 300_000), ("instant-noodles", 150_000)),
        mass_unit="kg",
        energy_unit="kWh",
    ),
    Enterprise(
        code="long-binh-feed",
        name="Long Binh Animal Feed JSC",
        isic="1080",
        doc="LBF",
        activity=4000,
        lines=(
            IN("maize", SUPPLIERS_MK, 600, balancing=True),
            IN("rice", SUPPLIERS_MK, 150),
            IN("coal", FUEL, 12),
            IN("electricity", GRID, 45),
            IN("fresh-water", WATER, 0.3),
            OUT("animal-feed", DOMESTIC, 1000),
            OUT("general-waste", COLLECTOR, 1),
            OUT("wastewater", CETP, 0.25),
        ),
        stocks=(("maize", 1_500_000), ("animal-feed", 500_000)),
        reports=("co2-fossil",),
    ),
    # textiles
    Enterprise(
        code="amata-dyeing",
        name="Amata Textile Dyeing and Finishing Co., Ltd.",
        isic="1313",
        doc="ATD",
        activity=440,
        lines=(
            IN("greige-fabric", SUPPLIERS_SE, 1040, balancing=True),
            IN("reactive-dyes", IMPORTS, 20),
            IN("textile-auxiliaries", "amata-chem", 50),
            IN("steam", "amata-chem", 3330),
            IN("natural-gas", FUEL, 25),
            IN("electricity", GRID, 900),
            IN("fresh-water", WATER, 70),
            IN("reclaimed-water", CETP, 30),
            OUT("dyed-fabric", EXPORT, 590),
            OUT("contaminated-packaging", INCINERATOR, 3),
            OUT("cardboard-waste", COLLECTOR, 2),
            OUT("general-waste", COLLECTOR, 3),
            OUT("wastewater", CETP, 88),
        ),
        stocks=(("greige-fabric", 220_000), ("dyed-fabric", 120_000)),
        reports=("co2-fossil",),
    ),
    Enterprise(
        code="bh-garment",
        name="Bien Hoa Knitwear Garment Co., Ltd.",
        isic="1410",
        doc="BHG",
        activity=150,
        lines=(
            IN("dyed-fabric", "amata-dyeing", 1200),
            IN("corrugated-boxes", "amata-carton", 50),
            IN("electricity", GRID, 1500),
            IN("diesel", FUEL, 0.5),
            IN("fresh-water", WATER, 12),
            OUT("garments", EXPORT, 1000, balancing=True),
            OUT("textile-offcuts", RECYCLER, 180),
            OUT("general-waste", COLLECTOR, 10),
            OUT("wastewater", CETP, 10),
        ),
        mass_unit="kg",
        energy_unit="kWh",
    ),
    # paper packaging
    Enterprise(
        code="dn-paper",
        name="Dong Nai Containerboard Mill JSC",
        isic="1701",
        doc="DNP",
        activity=3000,
        lines=(
            IN("recovered-paper", SUPPLIERS_SE, 850, balancing=True),
            IN("kraft-pulp", IMPORTS, 200),
            IN("coal", FUEL, 120),
            IN("electricity", GRID, 420),
            IN("fresh-water", WATER, 9),
            OUT("containerboard", DOMESTIC, 750),
            OUT("pulper-rejects", LANDFILL, 45),
            OUT("general-waste", COLLECTOR, 0.5),
            OUT("wastewater", CETP, 7.5),
        ),
        stocks=(("recovered-paper", 1_800_000), ("containerboard", 700_000)),
    ),
    Enterprise(
        code="amata-carton",
        name="Amata Corrugated Carton Co., Ltd.",
        isic="1702",
        doc="ACC",
        activity=700,
        lines=(
            IN("containerboard", "dn-paper", 1080),
            IN("electricity", GRID, 120),
            IN("lpg", FUEL, 15),
            IN("fresh-water", WATER, 0.6),
            OUT("corrugated-boxes", DOMESTIC, 900, balancing=True),
            OUT("cardboard-waste", "dn-paper", 70),
            OUT("general-waste", COLLECTOR, 2),
            OUT("wastewater", CETP, 0.48),
        ),
        stocks=(("containerboard", 250_000), ("corrugated-boxes", 120_000)),
        mass_unit="kg",
    ),
    # chemicals and building materials
    Enterprise(
        code="amata-chem",
        name="Amata Specialty Chemicals Co., Ltd.",
        isic="2029",
        doc="ACH",
        activity=400,
        lines=(
            IN("surfactants", IMPORTS, 1010, balancing=True),
            IN("coal", FUEL, 700),
            IN("electricity", GRID, 150),
            IN("fresh-water", WATER, 4),
            OUT("textile-auxiliaries", DOMESTIC, 940),
            OUT("contaminated-packaging", INCINERATOR, 6),
            OUT("general-waste", COLLECTOR, 2),
            OUT("wastewater", CETP, 3.1),
        ),
        stocks=(("surfactants", 200_000), ("textile-auxiliaries", 150_000), ("coal", 400_000)),
        unit_overrides=(("steam", "GJ"),),
        reports=("co2-fossil", "ch4", "n2o"),
    ),
    Enterprise(
        code="dn-concrete",
        name="Dong Nai Concrete Block Co., Ltd.",
        isic="2395",
        doc="DNC",
        activity=5000,
        lines=(
            IN("crushed-stone", SUPPLIERS_SE, 870, balancing=True),
            IN("cement", SUPPLIERS_SE, 120),
            IN("electricity", GRID, 12),
            IN("diesel", FUEL, 0.6),
            IN("fresh-water", WATER, 0.08),
            OUT("concrete-blocks", DOMESTIC, 1000),
            OUT("general-waste", COLLECTOR, 0.2),
            OUT("wastewater", CETP, 0.062),
        ),
        stocks=(("cement", 300_000), ("concrete-blocks", 2_000_000)),
        season="construction",
    ),
    # park utilities
    Enterprise(
        # activity: m3 of wastewater received; see cetp_month
        code=CETP,
        name="Amata central wastewater treatment plant",
        isic="3700",
        doc="CETP",
        activity=0,
        lines=(
            IN("pac-coagulant", SUPPLIERS_SE, 0.2),
            IN("electricity", GRID, 0.45),
            OUT("wwtp-sludge", LANDFILL, 0.2, balancing=True),
        ),
        energy_unit="kWh",
        season="flat",
    ),
    Enterprise(
        # activity: kWh generated by about 3 MWp of rooftop PV
        code=SOLAR,
        name="Amata Rooftop Solar Co., Ltd.",
        isic="3510",
        doc="ASO",
        activity=360_000,
        lines=(
            OUT("solar-electricity", "lt-auto-body", 0.27),
            OUT("solar-electricity", "amata-pcba", 0.30),
            OUT("solar-electricity", "phuoc-tan-moulding", 0.20),
            OUT("solar-electricity", "amata-carton", 0.15),
            OUT("solar-electricity", GRID, 0.08),
            IN("fresh-water", WATER, 0.0006),
        ),
        energy_unit="kWh",
        volume_unit="L",
        season="solar",
    ),
    Enterprise(
        # activity: kg of waste collected; see collector_month
        code=COLLECTOR,
        name="Amata Waste Collection Services Co., Ltd.",
        isic="3811",
        doc="AWS",
        activity=0,
        lines=(
            IN("diesel", FUEL, 0.025),
            IN("electricity", GRID, 0.008),
            IN("fresh-water", WATER, 0.0003),
            OUT("general-waste", LANDFILL, 0.7, balancing=True),
            OUT("wastewater", CETP, 0.00025),
        ),
        energy_unit="kWh",
        season="flat",
        reports=("co2-fossil",),
    ),
)

COLLECTOR_FORWARDING: dict[str, tuple[tuple[str, float], ...]] = {
    "cardboard-waste": (("dn-paper", 0.8), (RECYCLER, 0.2)),
    "plastic-packaging-waste": ((RECYCLER, 1.0),),
}
"""Share of each material the collector received in a month that it delivers to each node."""

CETP_DISCHARGE_SHARE = 0.985
"""Treated water leaving the central plant per m3 received; the rest leaves with the sludge
or evaporates."""

# --- planted features --------------------------------------------------------------------------

MISMATCHED: tuple[tuple[str, str, str, int], ...] = (
    ("lt-auto-body", "dn-iron-foundry", "steel-scrap", 3),
    ("dn-brewery", "long-binh-feed", "brewers-spent-grain", 6),
    ("amata-dyeing", CETP, "wastewater", 7),
    ("dn-paper", "amata-carton", "containerboard", 9),
    ("amata-chem", "amata-dyeing", "steam", 11),
)
"""Transfers whose receiver reports a figure 5–15% away from the sender's."""

SENDER_ONLY: tuple[tuple[str, str, str, int], ...] = (
    ("sv-motors", "dn-iron-foundry", "steel-scrap", 2),
    (COLLECTOR, "dn-paper", "cardboard-waste", 5),
    (SOLAR, "phuoc-tan-moulding", "solar-electricity", 8),
)
RECEIVER_ONLY: tuple[tuple[str, str, str, int], ...] = (
    ("green-polymer", "phuoc-tan-moulding", "recycled-pp-granules", 10),
    ("tan-hiep-noodles", "long-binh-feed", "food-processing-waste", 12),
)

UNBALANCED: tuple[tuple[str, int], ...] = (
    ("tan-hiep-noodles", 4),
    ("amata-diecast", 9),
    ("bh-garment", 11),
)
"""(enterprise, month) pairs whose books miss 12–22% (the figure is drawn at run time)."""

SYMBIOSIS_LINKS: tuple[tuple[str, str, str], ...] = (
    ("lt-auto-body", "dn-iron-foundry", "steel-scrap"),
    ("bh-chassis", "dn-iron-foundry", "steel-scrap"),
    ("sv-motors", "dn-iron-foundry", "steel-scrap"),
    ("dn-iron-foundry", "dn-concrete", "foundry-slag"),
    ("phuoc-tan-moulding", "green-polymer", "pp-regrind"),
    ("an-binh-plastics", "green-polymer", "pp-regrind"),
    ("green-polymer", "phuoc-tan-moulding", "recycled-pp-granules"),
    ("amata-carton", "dn-paper", "cardboard-waste"),
    (COLLECTOR, "dn-paper", "cardboard-waste"),
    ("dn-brewery", "long-binh-feed", "brewers-spent-grain"),
    ("tan-hiep-noodles", "long-binh-feed", "food-processing-waste"),
    (CETP, "amata-dyeing", "reclaimed-water"),
    ("amata-chem", "amata-dyeing", "steam"),
    (SOLAR, "lt-auto-body", "solar-electricity"),
    (SOLAR, "amata-pcba", "solar-electricity"),
    (SOLAR, "phuoc-tan-moulding", "solar-electricity"),
    (SOLAR, "amata-carton", "solar-electricity"),
)

LANDFILLED_WHILE_NEIGHBOUR_BUYS_VIRGIN: tuple[tuple[str, str, str, str, str], ...] = (
    # waste producer, waste, disposal node, buyer of the virgin substitute, virgin material
    ("amata-pcba", "plastic-packaging-waste", INCINERATOR, "phuoc-tan-moulding", "pp-granules"),
    ("tan-hiep-noodles", "cardboard-waste", LANDFILL, "dn-paper", "kraft-pulp"),
    ("bh-chassis", "aluminium-swarf", LANDFILL, "amata-diecast", "aluminium-ingot"),
)

# --- documents ---------------------------------------------------------------------------------

DOC_UNCERTAINTY: dict[str, str] = {
    "INV": "",  # supplier or partner invoice
    "GRN": "",  # goods received note
    "EVN": "",  # utility bill, revenue meter
    "DN": "0.02",  # delivery note
    "WB": "0.02",  # weighbridge ticket
    "MTR": "0.02",  # own meter reading
    "WTR": "0.02",  # water bill
    "HWM": "0.05",  # hazardous waste manifest
    "LOG": "0.1",  # collection log, estimated from bin counts
    "GHG": "0.1",  # emission calculation sheet
}

# --- the generator -----------------------------------------------------------------------------

BALANCE_KINDS = frozenset({"product", "by_product", "waste"})


@dataclass(frozen=True, slots=True)
class Material:
    code: str
    kind: str
    dimension: str
    hazardous: bool

    @property
    def in_mass_balance(self) -> bool:
        return self.kind in BALANCE_KINDS and self.dimension == "mass"


@dataclass(slots=True)
class Report:
    """One row of flows.csv."""

    source: str
    target: str
    material: str
    month: int
    amount: Decimal
    unit: str
    reporter: str
    evidence: str
    uncertainty: str

    @property
    def canonical(self) -> Decimal:
        return self.amount * UNIT_FACTOR[self.unit]

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.source, self.target, self.material, self.month)


@dataclass(frozen=True, slots=True)
class Reading:
    """One row of stocks.csv, keyed in ``Book.stocks`` by (enterprise, material, date)."""

    amount: Decimal
    unit: str
    evidence: str

    @property
    def canonical(self) -> Decimal:
        return self.amount * UNIT_FACTOR[self.unit]


@dataclass(slots=True)
class Book:
    """Everything generated so far; ``first`` holds the first report of every flow."""

    rng: random.Random
    materials: dict[str, Material]
    first: list[Report] = field(default_factory=list)
    second: list[Report] = field(default_factory=list)
    stocks: dict[tuple[str, str, date], Reading] = field(default_factory=dict)
    serials: dict[tuple[str, str, int], int] = field(default_factory=lambda: defaultdict(int))
    residuals: dict[tuple[str, int], float] = field(default_factory=dict)

    def evidence(self, enterprise: str, doc: str, month: int) -> str:
        self.serials[enterprise, doc, month] += 1
        serial = self.serials[enterprise, doc, month]
        return f"{BY_CODE[enterprise].doc}/{doc}/{YEAR % 100:02d}{month:02d}/{serial:04d}"


BY_CODE: dict[str, Enterprise] = {e.code: e for e in ENTERPRISES}
ORDER: dict[str, int] = {e.code: i for i, e in enumerate(ENTERPRISES)}


def load_catalogue(path: Path = CATALOGUE) -> dict[str, Material]:
    with path.open(newline="", encoding="utf-8") as handle:
        return {
            row["code"]: Material(
                row["code"], row["kind"], row["dimension"], row["hazardous"] == "true"
            )
            for row in csv.DictReader(handle)
        }


def month_end(month: int, year: int = YEAR) -> date:
    """Last day of ``month``; month 0 is December of the previous year."""
    if month == 0:
        return date(year - 1, 12, 31)
    following = date(year + month // 12, month % 12 + 1, 1)
    return following - timedelta(days=1)


def quantize(canonical: Decimal | float, unit: str) -> Decimal:
    """The figure a reporter writes for ``canonical`` (kg, m3, kWh) in ``unit``."""
    amount = Decimal(str(canonical)) / UNIT_FACTOR[unit]
    step = UNIT_STEP[unit]
    if unit == "kg" and amount < 100:
        step = Decimal("0.1")
    written = amount.quantize(step)
    if written <= 0:
        raise ValueError(f"{canonical} is too small to write in {unit}")
    return written


def unit_for(reporter: str, material: Material) -> str:
    enterprise = BY_CODE[reporter]
    override = dict(enterprise.unit_overrides).get(material.code)
    if override:
        return override
    if material.dimension == "volume":
        return enterprise.volume_unit
    if material.dimension == "energy":
        return enterprise.energy_unit
    if material.hazardous or material.code in ("ch4", "n2o"):
        return "kg"
    return enterprise.mass_unit


def is_enterprise(code: str) -> bool:
    return code in BY_CODE


def sender_doc(material: Material, target: str) -> str:
    """Document behind the first report of a flow leaving an enterprise."""
    if is_enterprise(target):
        if material.code == "general-waste":
            return "LOG"
        if material.kind == "energy":
            return "INV"
        if material.dimension == "volume" or material.kind == "water":
            return "MTR"
        return "DN" if material.kind == "product" else "WB"
    if target == ATMOSPHERE:
        return "GHG"
    if target == GRID:
        return "EVN"
    if target == MUNICIPAL_WWTP:
        return "MTR"
    if target in (DOMESTIC, EXPORT):
        return "DN"
    return "HWM" if material.hazardous else "WB"


def receiver_doc(material: Material, source: str) -> str:
    """Document behind the report of a flow entering an enterprise."""
    if source == GRID:
        return "EVN"
    if source == WATER:
        return "WTR"
    if not is_enterprise(source):
        return "INV"
    if material.dimension != "mass":
        return "MTR"
    return "WB" if material.kind in ("waste", "by_product") else "GRN"


def report(
    book: Book, source: str, target: str, material_code: str, month: int, canonical: float
) -> Report:
    """Record the first report of a flow: the sender's, unless only the receiver reports it."""
    material = book.materials[material_code]
    key = (source, target, material_code, month)
    if is_enterprise(source) and key not in RECEIVER_ONLY:
        reporter, doc = source, sender_doc(material, target)
    else:
        reporter, doc = target, receiver_doc(material, source)
    unit = unit_for(reporter, material)
    row = Report(
        source,
        target,
        material_code,
        month,
        quantize(canonical, unit),
        unit,
        reporter,
        book.evidence(reporter, doc, month),
        DOC_UNCERTAINTY[doc],
    )
    if any(other.key == row.key for other in book.first if other.month == month):
        raise ValueError(f"{row.key} is reported twice as a first report")
    book.first.append(row)
    return row


def ends(enterprise: Enterprise, line: Line) -> tuple[str, str]:
    """(source, target) of a recipe line."""
    if line.direction == "in":
        return line.partner, enterprise.code
    return enterprise.code, line.partner


def emit_line(book: Book, enterprise: Enterprise, line: Line, month: int, level: float) -> None:
    quantity = line.per_unit * level * book.rng.uniform(0.97, 1.03)
    report(book, *ends(enterprise, line), line.material, month, quantity)


def emit_recipe(book: Book, enterprise: Enterprise, month: int, level: float) -> None:
    for line in enterprise.lines:
        if not line.balancing:
            emit_line(book, enterprise, line, month, level)


def received(book: Book, code: str, month: int, material: str | None = None) -> dict[str, float]:
    """Canonical quantity of each material first reported as entering ``code`` in ``month``."""
    totals: dict[str, float] = defaultdict(float)
    for row in book.first:
        if row.month == month and row.target == code and material in (None, row.material):
            totals[row.material] += float(row.canonical)
    return totals


def producers_month(book: Book, month: int) -> None:
    for enterprise in ENTERPRISES:
        if enterprise.code in (COLLECTOR, CETP):
            continue
        season = SEASONS[enterprise.season][month - 1]
        level = enterprise.activity * season * book.rng.uniform(0.96, 1.04)
        emit_recipe(book, enterprise, month, level)


def collector_month(book: Book, month: int) -> None:
    """The collector forwards what it received: cardboard and plastics to recyclers, the rest
    (general waste, the balancing line) to the landfill. Its activity is the kg collected."""
    collector = BY_CODE[COLLECTOR]
    intake = received(book, COLLECTOR, month)
    emit_recipe(book, collector, month, sum(intake.values()))
    for material, shares in COLLECTOR_FORWARDING.items():
        for target, share in shares:
            quantity = intake[material] * share * book.rng.uniform(0.97, 1.03)
            report(book, COLLECTOR, target, material, month, quantity)


def cetp_month(book: Book, month: int) -> None:
    """The central plant treats the wastewater it received and discharges what it does not
    reclaim to the municipal plant.

    Its mass balance sees only the dosed coagulant (in) and the sludge (out): the solids the
    wastewater brings are invisible to a balance whose wastewater is measured in m3, so the
    sludge figure here is what closes that balance, not a model of sludge production.
    """
    plant = BY_CODE[CETP]
    inflow = received(book, CETP, month, "wastewater")["wastewater"]
    emit_recipe(book, plant, month, inflow)
    reclaimed = sum(
        float(row.canonical)
        for row in book.first
        if row.month == month and row.source == CETP and row.material == "reclaimed-water"
    )
    discharge = inflow * CETP_DISCHARGE_SHARE * book.rng.uniform(0.995, 1.005) - reclaimed
    report(book, CETP, MUNICIPAL_WWTP, "wastewater", month, discharge)


def emissions_month(book: Book, month: int) -> None:
    """Reported combustion emissions = Σ fuel (kg) × NCV (TJ/Gg) × factor (kg/TJ) / 10^6."""
    for enterprise in ENTERPRISES:
        if not enterprise.reports:
            continue
        fuels = [
            row
            for row in book.first
            if row.month == month
            and row.target == enterprise.code
            and row.material in NCV_TJ_PER_GG
        ]
        for gas in enterprise.reports:
            kg = sum(
                (
                    row.canonical * NCV_TJ_PER_GG[row.material] * EF_KG_PER_TJ[row.material, gas]
                    for row in fuels
                ),
                Decimal(0),
            ) / Decimal(1_000_000)
            report(book, enterprise.code, ATMOSPHERE, gas, month, float(kg))


def stock_readings(book: Book) -> None:
    """Month-end readings from 2024-12-31 to 2025-12-31 within ±15% of a typical level."""
    for enterprise in ENTERPRISES:
        for material_code, typical in enterprise.stocks:
            material = book.materials[material_code]
            unit = unit_for(enterprise.code, material)
            for month in (0, *MONTHS):
                on = month_end(month)
                book.stocks[enterprise.code, material_code, on] = Reading(
                    quantize(typical * book.rng.uniform(0.85, 1.15), unit),
                    unit,
                    f"{enterprise.doc}/STK/{on:%y%m%d}",
                )


def mass_terms(book: Book, code: str, month: int) -> tuple[Decimal, Decimal, Decimal]:
    """(inputs, outputs, stock change) of ``code`` in ``month``, in kg, as the service counts."""
    inputs = outputs = change = Decimal(0)
    for row in book.first:
        if row.month != month or not book.materials[row.material].in_mass_balance:
            continue
        if row.target == code:
            inputs += row.canonical
        elif row.source == code:
            outputs += row.canonical
    for material_code, _ in BY_CODE[code].stocks:
        if book.materials[material_code].in_mass_balance:
            closing = book.stocks[code, material_code, month_end(month)].canonical
            opening = book.stocks[code, material_code, month_end(month - 1)].canonical
            change += closing - opening
    return inputs, outputs, change


def relative_residual(inputs: Decimal, outputs: Decimal, change: Decimal) -> float:
    """(inputs − outputs − change) / max(inputs, outputs), signed; 0 when nothing moved."""
    scale = max(inputs, outputs)
    return 0.0 if scale == 0 else float((inputs - outputs - change) / scale)


def solve_balancing(
    direction: Literal["in", "out"], inputs: float, outputs: float, change: float, rho: float
) -> float:
    """Quantity of the balancing line that makes inputs − outputs − change = rho·max(in, out).

    Each branch first assumes inputs are the larger side and falls back when they are not.
    """
    if direction == "in":
        total = (outputs + change) / (1 - rho)
        if total < outputs:
            total = outputs + change + rho * outputs
        return total - inputs
    total = inputs - change - rho * inputs
    if total > inputs:
        total = (inputs - change) / (1 + rho)
    return total - outputs


def target_residual(rng: random.Random, code: str, month: int) -> float:
    if (code, month) in UNBALANCED:
        return rng.uniform(0.12, 0.22)
    magnitude = rng.uniform(0.004, 0.022)
    return magnitude if rng.random() < 0.8 else -magnitude


def balance_month(book: Book, month: int) -> None:
    """Write every enterprise's balancing line for ``month`` and check the residual it gives."""
    for enterprise in ENTERPRISES:
        line = next((line for line in enterprise.lines if line.balancing), None)
        if line is None:
            continue
        rho = target_residual(book.rng, enterprise.code, month)
        inputs, outputs, change = mass_terms(book, enterprise.code, month)
        quantity = solve_balancing(
            line.direction, float(inputs), float(outputs), float(change), rho
        )
        if quantity <= 0:
            raise ValueError(
                f"{enterprise.code} {month}: balancing line would be {quantity:.0f} kg"
            )
        report(book, *ends(enterprise, line), line.material, month, quantity)
        achieved = relative_residual(*mass_terms(book, enterprise.code, month))
        if abs(achieved - rho) > 0.001:
            raise ValueError(f"{enterprise.code} {month}: residual {achieved} instead of {rho}")
        book.residuals[enterprise.code, month] = achieved


def confirmations(book: Book) -> None:
    """The receiver's report of every transfer, except those planted as one-sided."""
    mismatched = set(MISMATCHED)
    one_sided = set(SENDER_ONLY) | set(RECEIVER_ONLY)
    for row in list(book.first):
        if not (is_enterprise(row.source) and is_enterprise(row.target)) or row.key in one_sided:
            continue
        if row.key in mismatched:
            factor = 1 + book.rng.choice((-1, 1)) * book.rng.uniform(0.05, 0.15)
        elif book.rng.random() < 0.55:
            factor = 1.0
        else:
            factor = 1 + book.rng.uniform(-0.004, 0.004)
        material = book.materials[row.material]
        unit = unit_for(row.target, material)
        doc = receiver_doc(material, row.source)
        book.second.append(
            Report(
                row.source,
                row.target,
                row.material,
                row.month,
                quantize(row.canonical * Decimal(str(factor)), unit),
                unit,
                row.target,
                book.evidence(row.target, doc, row.month),
                DOC_UNCERTAINTY[doc],
            )
        )


def generate(rng: random.Random, materials: dict[str, Material]) -> Book:
    book = Book(rng=rng, materials=materials)
    stock_readings(book)
    for month in MONTHS:
        producers_month(book, month)
        collector_month(book, month)
        cetp_month(book, month)
        emissions_month(book, month)
        balance_month(book, month)
    confirmations(book)
    return book


# --- output ------------------------------------------------------------------------------------


def tax_id(rng: random.Random) -> str:
    """A fake 10-digit tax id: Dong Nai prefix 36, an unassigned-looking block, a mod-11 digit."""
    weights = (31, 29, 23, 19, 17, 13, 7, 5, 3)
    while True:
        body = "3699" + "".join(str(rng.randrange(10)) for _ in range(5))
        check = 10 - sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11
        if check < 10:
            return body + str(check)


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def flow_rows(book: Book) -> list[list[str]]:
    """First reports of a month by reporter, then the receivers' second reports."""
    rows: list[list[str]] = []
    for month in MONTHS:
        start, end = date(YEAR, month, 1).isoformat(), month_end(month).isoformat()
        for group in (book.first, book.second):
            month_rows = [r for r in group if r.month == month]
            month_rows.sort(key=lambda r: ORDER[r.reporter])
            rows.extend(
                [
                    r.source,
                    r.target,
                    r.material,
                    format(r.amount, "f"),
                    r.unit,
                    start,
                    end,
                    r.reporter,
                    r.evidence,
                    r.uncertainty,
                ]
                for r in month_rows
            )
    return rows


def stock_rows(book: Book) -> list[list[str]]:
    return [
        [enterprise, material, on.isoformat(), format(r.amount, "f"), r.unit, r.evidence]
        for (enterprise, material, on), r in book.stocks.items()
    ]


def node_rows(rng: random.Random) -> list[list[str]]:
    rows = [[e.code, "enterprise", e.name, e.isic, tax_id(rng)] for e in ENTERPRISES]
    rows += [[b.code, b.kind, b.name, "", ""] for b in BOUNDARY]
    return rows


def planted(book: Book) -> dict[str, object]:
    by_key = {r.key: r for r in book.first}
    second = {r.key: r for r in book.second}

    def period(month: int) -> str:
        return date(YEAR, month, 1).isoformat()

    def difference(key: tuple[str, str, str, int]) -> float:
        a, b = by_key[key].canonical, second[key].canonical
        return round(float(abs(a - b) / max(a, b)), 4)

    return {
        "description": (
            "Features planted in the synthetic sample park that later analyses must find. "
            "Generated by datasets/sample_park/generate.py."
        ),
        "seed": SEED,
        "symbiosis_links": [
            {"source": s, "target": t, "material": m} for s, t, m in SYMBIOSIS_LINKS
        ],
        "landfilled_while_neighbour_buys_virgin": [
            {
                "waste_producer": producer,
                "waste_material": waste,
                "disposal_node": disposal,
                "buyer": buyer,
                "virgin_material": virgin,
            }
            for producer, waste, disposal, buyer, virgin in LANDFILLED_WHILE_NEIGHBOUR_BUYS_VIRGIN
        ],
        "mismatched_transfers": [
            {
                "source": s,
                "target": t,
                "material": m,
                "period_start": period(month),
                "relative_difference": difference((s, t, m, month)),
            }
            for s, t, m, month in MISMATCHED
        ],
        "unconfirmed_transfers": [
            {
                "source": s,
                "target": t,
                "material": m,
                "period_start": period(month),
                "reported_by": who,
            }
            for who, keys in (("source", SENDER_ONLY), ("target", RECEIVER_ONLY))
            for s, t, m, month in keys
        ],
        "unbalanced": [
            {
                "enterprise": code,
                "period_start": period(month),
                "relative_residual": round(book.residuals[code, month], 4),
            }
            for code, month in UNBALANCED
        ],
        "mass_balance_exempt": [SOLAR],
        "emission_reporters": [
            {"enterprise": e.code, "gases": list(e.reports)} for e in ENTERPRISES if e.reports
        ],
    }


def main(out_dir: Path = HERE) -> None:
    rng = random.Random(SEED)
    out_dir.mkdir(parents=True, exist_ok=True)
    nodes = node_rows(rng)
    book = generate(rng, load_catalogue())
    write_csv(out_dir / "park.csv", list(PARK), [list(PARK.values())])
    write_csv(out_dir / "nodes.csv", ["code", "kind", "name", "isic_code", "tax_id"], nodes)
    write_csv(
        out_dir / "flows.csv",
        [
            "source",
            "target",
            "material",
            "quantity",
            "unit",
            "period_start",
            "period_end",
            "reporting_party",
            "evidence",
            "relative_uncertainty",
        ],
        flow_rows(book),
    )
    write_csv(
        out_dir / "stocks.csv",
        ["enterprise", "material", "on_date", "quantity", "unit", "evidence"],
        stock_rows(book),
    )
    text = json.dumps(planted(book), indent=2, ensure_ascii=False) + "\n"
    (out_dir / "planted.json").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
