"""The park's inventory as Brightway matrices, solved with bw2calc, returned as frozen values.

Matrices (bw2calc conventions), for activities j and elementary flows g:

    A[j, j] = 1                     each activity makes one unit of its reference product
    A[i, j] = −a_ij                 a_ij units of product i go into one unit of product j
    B[g, j] = b_gj                  kg of flow g emitted per unit of product j
    C[g, g] = GWP100 of g           kg CO2e per kg (IPCC AR6 or AR5, as bw2io ships them)

For a demand vector d (units of products): supply s = A⁻¹ d, inventory g = B s, score
h = 1ᵀ C B s. The contribution of activity j is Σ_g C[g,g]·B[g,j]·s_j, of gas g is
C[g,g]·(B s)_g; both sum to h exactly. Datapackages are built in memory; no bw2data project.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import bw_processing as bwp
import numpy as np
from numpy.typing import NDArray

from lca.characterisation import CO2E_AGGREGATED, GwpMethod, characterisation_factors
from lca.inventory import AVOIDED_CO2E, ParkInventory


def _bw2calc() -> Any:
    """bw2calc, imported on first use: it imports bw2data, which takes a second and logs its
    data directory to stdout, neither of which the CLI or a schema export should pay for."""
    import bw2calc

    return bw2calc


@dataclass(frozen=True, slots=True)
class Footprint:
    """The result of one demand: the score, and where it comes from, summing exactly to it."""

    method: GwpMethod
    demand: MappingProxyType[int, float]
    total: float
    by_activity: MappingProxyType[int, float]
    by_flow: MappingProxyType[str, float]
    supply: NDArray[np.float64]
    uncharacterised_flows: tuple[str, ...]
    contains_aggregated_co2e: bool
    avoided: float = 0.0
    """Avoided emissions (kg CO2e; negative for a net credit), beside ``total``, not in it."""


def _flow_ids(inventory: ParkInventory) -> dict[str, int]:
    uuids = sorted({x.flow for x in inventory.biosphere})
    return {uuid: index for index, uuid in enumerate(uuids)}


def datapackage(
    inventory: ParkInventory, method: GwpMethod
) -> tuple[bwp.Datapackage, dict[str, int], tuple[str, ...]]:
    """The in-memory datapackage of the inventory, its flow ids, and the uncharacterised flows."""
    n = len(inventory.activities)
    flow_ids = _flow_ids(inventory)
    package = bwp.create_datapackage(sum_intra_duplicates=True)
    diagonal = np.arange(n)
    suppliers = np.array([x.supplier for x in inventory.technosphere], dtype=np.int64)
    consumers = np.array([x.consumer for x in inventory.technosphere], dtype=np.int64)
    indices = np.empty(n + len(suppliers), dtype=bwp.INDICES_DTYPE)
    indices["row"] = np.concatenate([diagonal, suppliers])
    indices["col"] = np.concatenate([diagonal, consumers])
    package.add_persistent_vector(
        matrix="technosphere_matrix",
        name="park-technosphere",
        indices_array=indices,
        data_array=np.concatenate(
            [np.ones(n), np.array([x.amount for x in inventory.technosphere], dtype=float)]
        ),
        flip_array=np.concatenate([np.zeros(n, dtype=bool), np.ones(len(suppliers), dtype=bool)]),
    )
    bio = np.empty(len(inventory.biosphere), dtype=bwp.INDICES_DTYPE)
    bio["row"] = [flow_ids[x.flow] for x in inventory.biosphere]
    bio["col"] = [x.activity for x in inventory.biosphere]
    package.add_persistent_vector(
        matrix="biosphere_matrix",
        name="park-biosphere",
        indices_array=bio,
        data_array=np.array([x.amount for x in inventory.biosphere], dtype=float),
    )
    factors = characterisation_factors(method)
    cf_rows: list[int] = []
    cf_values: list[float] = []
    missing: list[str] = []
    for uuid, index in flow_ids.items():
        if uuid == AVOIDED_CO2E:  # reported beside the score, never in it
            continue
        value = 1.0 if uuid == CO2E_AGGREGATED else factors.get(uuid)
        if value is None:
            missing.append(uuid)
            continue
        cf_rows.append(index)
        cf_values.append(value)
    cf = np.empty(len(cf_rows), dtype=bwp.INDICES_DTYPE)
    cf["row"] = cf_rows
    cf["col"] = cf_rows
    package.add_persistent_vector(
        matrix="characterization_matrix",
        name="park-characterization",
        indices_array=cf,
        data_array=np.array(cf_values, dtype=float),
    )
    return package, flow_ids, tuple(missing)


def calculate(
    inventory: ParkInventory, demand: dict[int, float], *, method: GwpMethod
) -> tuple[Any, dict[str, int], tuple[str, ...]]:
    """A solved and characterised ``bw2calc.LCA`` (for graph traversal), its flow ids and the
    uncharacterised flows. Callers own the mutable LCA object; ``solve`` freezes its results."""
    package, flow_ids, missing = datapackage(inventory, method)
    calculation = _bw2calc().LCA(demand, data_objs=[package])
    calculation.lci()
    calculation.lcia()
    return calculation, flow_ids, missing


def solve(
    inventory: ParkInventory, demand: dict[int, float], *, method: GwpMethod = GwpMethod.AR6
) -> Footprint:
    """Footprint of ``demand`` (activity index → units of its product)."""
    if not demand:
        raise ValueError("demand is empty: name at least one activity")
    if not inventory.biosphere:
        empty: MappingProxyType[int, float] = MappingProxyType({})
        return Footprint(
            method,
            MappingProxyType(dict(demand)),
            0.0,
            empty,
            MappingProxyType({}),
            np.zeros(len(inventory.activities)),
            (),
            False,
        )
    calculation, flow_ids, missing = calculate(inventory, demand, method=method)
    characterised = calculation.characterized_inventory.tocsc()
    column_of = calculation.dicts.activity
    row_of = calculation.dicts.biosphere
    per_activity = np.asarray(characterised.sum(axis=0)).ravel()
    per_flow = np.asarray(characterised.sum(axis=1)).ravel()
    uuid_of = {index: uuid for uuid, index in flow_ids.items()}
    by_activity: dict[int, float] = defaultdict(float)
    for activity in range(len(inventory.activities)):
        if activity in column_of:
            value = float(per_activity[column_of[activity]])
            if value:
                by_activity[activity] += value
    by_flow = {
        uuid_of[flow]: float(per_flow[row_of[flow]])
        for flow in uuid_of
        if flow in row_of and per_flow[row_of[flow]]
    }
    supply = np.zeros(len(inventory.activities))
    for activity, column in column_of.items():
        supply[activity] = calculation.supply_array[column]
    supply.setflags(write=False)
    avoided_row = flow_ids.get(AVOIDED_CO2E)
    avoided = (
        float(calculation.inventory[row_of[avoided_row], :].sum())
        if avoided_row is not None and avoided_row in row_of
        else 0.0
    )
    return Footprint(
        method=method,
        demand=MappingProxyType(dict(demand)),
        total=float(calculation.score),
        by_activity=MappingProxyType(dict(by_activity)),
        by_flow=MappingProxyType(by_flow),
        supply=supply,
        uncharacterised_flows=missing,
        contains_aggregated_co2e=by_flow.get(CO2E_AGGREGATED, 0.0) != 0.0,
        avoided=avoided,
    )
