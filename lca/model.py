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
from lca.linking import BackgroundKey, LinkedBackground, activity_id, export_background, park_ids


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


@dataclass(frozen=True, slots=True)
class Ids:
    """Integer ids of the park's activities and elementary flows in the matrices.

    Alone, the park numbers activities 0…n−1 and flows 0…k−1. With a linked Brightway
    background (``lca.linking``) the park's activities and its flows unknown to the project
    take ids from ``park_ids`` (clear of bw2data's), its flows known to the project take the
    project's biosphere ids, and a linked purchase is supplied by the project's activity.
    """

    activity: tuple[int, ...]
    supplier: tuple[int, ...]
    flow: MappingProxyType[str, int]
    background: LinkedBackground | None = None


def _ids(inventory: ParkInventory) -> Ids:
    n = len(inventory.activities)
    uuids = sorted({x.flow for x in inventory.biosphere})
    if not inventory.links:
        return Ids(
            tuple(range(n)),
            tuple(range(n)),
            MappingProxyType({uuid: index for index, uuid in enumerate(uuids)}),
        )
    assert inventory.background_project is not None
    keys = {index: BackgroundKey(database, code) for index, database, code in inventory.links}
    background = export_background(
        inventory.background_project, sorted({key.database for key in keys.values()})
    )
    free = park_ids(background, n + len(uuids))
    own = iter(free[n:])
    flows = {
        uuid: background.biosphere_ids[uuid] if uuid in background.biosphere_ids else next(own)
        for uuid in uuids
    }
    return Ids(
        tuple(free[:n]),
        tuple(activity_id(background, keys[j]) if j in keys else free[j] for j in range(n)),
        MappingProxyType(flows),
        background,
    )


def datapackage(
    inventory: ParkInventory, method: GwpMethod, ids: Ids | None = None
) -> tuple[bwp.Datapackage, Ids, tuple[str, ...]]:
    """The inventory's in-memory datapackage, its ids, and the uncharacterised flows.

    With a linked background the characterisation covers the project's flows too.
    """
    ids = ids or _ids(inventory)
    n = len(inventory.activities)
    package = bwp.create_datapackage(sum_intra_duplicates=True)
    diagonal = np.array(ids.activity, dtype=np.int64)
    suppliers = np.array([ids.supplier[x.supplier] for x in inventory.technosphere], dtype=np.int64)
    consumers = np.array([ids.activity[x.consumer] for x in inventory.technosphere], dtype=np.int64)
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
    bio["row"] = [ids.flow[x.flow] for x in inventory.biosphere]
    bio["col"] = [ids.activity[x.activity] for x in inventory.biosphere]
    package.add_persistent_vector(
        matrix="biosphere_matrix",
        name="park-biosphere",
        indices_array=bio,
        data_array=np.array([x.amount for x in inventory.biosphere], dtype=float),
    )
    factors = characterisation_factors(method)
    characterised = dict(ids.flow)
    if ids.background is not None:
        characterised |= dict(ids.background.biosphere_ids)
    cf_rows: list[int] = []
    cf_values: list[float] = []
    missing: list[str] = []
    for uuid, index in characterised.items():
        if uuid == AVOIDED_CO2E:  # reported beside the score, never in it
            continue
        value = 1.0 if uuid == CO2E_AGGREGATED else factors.get(uuid)
        if value is None:
            if uuid in ids.flow:
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
    return package, ids, tuple(missing)


def calculate(
    inventory: ParkInventory, demand: dict[int, float], *, method: GwpMethod
) -> tuple[Any, Ids, tuple[str, ...]]:
    """A solved and characterised ``bw2calc.LCA`` (for graph traversal), its ids and the
    uncharacterised flows. Callers own the mutable LCA object; ``solve`` freezes its results."""
    package, ids, missing = datapackage(inventory, method)
    background = ids.background.datapackages if ids.background is not None else ()
    # Imported here: bw2calc imports bw2data, which takes a second and logs its data folder to
    # stdout, neither of which the CLI or a schema export should pay for.
    from lca.solver import park_lca

    calculation = park_lca(
        [package, *background],
        # a demand on a linked purchase is a demand on the project's activity supplying it
        {ids.supplier[j]: amount for j, amount in demand.items()},
    )
    calculation.lci()
    calculation.lcia()
    return calculation, ids, missing


def solve(
    inventory: ParkInventory, demand: dict[int, float], *, method: GwpMethod = GwpMethod.AR6
) -> Footprint:
    """Footprint of ``demand`` (activity index → units of its product)."""
    if not demand:
        raise ValueError("demand is empty: name at least one activity")
    if not inventory.biosphere and not inventory.links:  # nothing is emitted anywhere
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
    calculation, ids, missing = calculate(inventory, demand, method=method)
    characterised = calculation.characterized_inventory.tocsc()
    column_of = calculation.dicts.activity
    row_of = calculation.dicts.biosphere
    per_activity = np.asarray(characterised.sum(axis=0)).ravel()
    per_flow = np.asarray(characterised.sum(axis=1)).ravel()
    flow_ids = dict(ids.flow)
    if ids.background is not None:
        flow_ids = dict(ids.background.biosphere_ids) | flow_ids
    uuid_of = {index: uuid for uuid, index in flow_ids.items()}
    by_activity: dict[int, float] = defaultdict(float)
    for activity in range(len(inventory.activities)):
        if ids.activity[activity] in column_of:
            value = float(per_activity[column_of[ids.activity[activity]]])
            if value:
                by_activity[activity] += value

    by_flow = {
        uuid_of[flow]: float(per_flow[row_of[flow]])
        for flow in uuid_of
        if flow in row_of and per_flow[row_of[flow]]
    }
    supply = np.zeros(len(inventory.activities))
    for activity, identifier in enumerate(ids.activity):
        if identifier in column_of:
            supply[activity] = calculation.supply_array[column_of[identifier]]
    supply.setflags(write=False)
    avoided_row = ids.flow.get(AVOIDED_CO2E)
    avoided = (
        float(calculation.inventory[row_of[avoided_row], :].sum())
        if avoided_row is not None and avoided_row in row_of
        else 0.0
    )
    total = float(calculation.score)
    if ids.background is not None:  # re-solves the LCA object: after reading its results
        _add_background(by_activity, calculation, ids, inventory, demand, float(per_activity.sum()))
    return Footprint(
        method=method,
        demand=MappingProxyType(dict(demand)),
        total=total,
        by_activity=MappingProxyType(dict(by_activity)),
        by_flow=MappingProxyType(by_flow),
        supply=supply,
        uncharacterised_flows=missing,
        contains_aggregated_co2e=by_flow.get(CO2E_AGGREGATED, 0.0) != 0.0,
        avoided=avoided,
    )


def _add_background(
    by_activity: dict[int, float],
    calculation: Any,
    ids: Ids,
    inventory: ParkInventory,
    demand: dict[int, float],
    total: float,
) -> None:
    """Book the background's share on the linked purchases that bring it in.

    The project supplies the park only through linked purchases, so its share of the score,
    total − Σ park columns, splits exactly among them by their linked activity's cumulative
    score per unit × the park's demand on it (one extra solve per linked activity).
    """
    park = sum(by_activity.values())
    linked = {j: ids.supplier[j] for j, _, _ in inventory.links}
    demand_on: dict[int, float] = defaultdict(float)
    for j in linked:
        demand_on[j] += demand.get(j, 0.0)
    supply = calculation.supply_array
    column_of = calculation.dicts.activity
    for x in inventory.technosphere:
        if x.supplier in linked and ids.activity[x.consumer] in column_of:
            demand_on[x.supplier] += x.amount * supply[column_of[ids.activity[x.consumer]]]
    shares: dict[int, float] = {}
    for j, amount in demand_on.items():
        if amount:
            calculation.lci({linked[j]: 1.0})
            calculation.lcia()
            shares[j] = amount * float(calculation.score)
    for j, value in shares.items():
        by_activity[j] += value
    booked = sum(shares.values())
    if abs(park + booked - total) > 1e-9 * max(1.0, abs(total)):
        raise RuntimeError("background contributions do not add up to the score")
