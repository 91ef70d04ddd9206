"""The supply-chain graph of a footprint, from bw_graph_tools' priority-first traversal.

Each node is an activity reached along the chain (a park enterprise's product, a purchase,
grid electricity, a treatment), with the amount supplied to the demand and its cumulative
impact (kg CO2e of everything upstream of it, itself included). The traversal follows the
highest scores first and stops at nodes whose cumulative impact is below ``cutoff`` × total
or deeper than ``max_depth``; loops are handled by visiting each activity once
(``SameNodeEachVisitGraphTraversal``), so the exact totals stay with ``lca.model``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from lca.characterisation import GwpMethod
from lca.inventory import ParkInventory
from lca.model import calculate

ROOT = -1


@dataclass(frozen=True, slots=True)
class GraphNode:
    activity: int | None
    key: str
    depth: int
    supply: float
    unit: str
    cumulative: float
    direct: float


@dataclass(frozen=True, slots=True)
class GraphEdge:
    """``amount`` units of the producer's product go to the consumer (keys as on the nodes)."""

    producer: str
    consumer: str
    amount: float
    cumulative: float


@dataclass(frozen=True, slots=True)
class SupplyGraph:
    total: float
    cutoff: float
    max_depth: int
    nodes: tuple[GraphNode, ...]
    edges: tuple[GraphEdge, ...]


def supply_chain_graph(
    inventory: ParkInventory,
    demand: dict[int, float],
    *,
    method: GwpMethod = GwpMethod.AR6,
    cutoff: float = 0.005,
    max_depth: int = 5,
) -> SupplyGraph:
    """The traversal's nodes and edges; node ids are activity indexes, ``ROOT`` the demand."""
    if not 0 < cutoff < 1:
        raise ValueError("cutoff is a fraction of the total score, between 0 and 1")
    if max_depth < 1:
        raise ValueError("max_depth must be at least 1")
    from bw_graph_tools.graph_traversal import (
        GraphTraversalSettings,
        SameNodeEachVisitGraphTraversal,
    )

    calculation, ids, _ = calculate(inventory, demand, method=method)
    index_of = {identifier: j for j, identifier in enumerate(ids.activity)}
    total = float(calculation.score)
    if total == 0:
        return SupplyGraph(total, cutoff, max_depth, (), ())
    traversal = SameNodeEachVisitGraphTraversal(
        calculation,
        GraphTraversalSettings(cutoff=cutoff, max_depth=max_depth, separate_biosphere_flows=False),
    )
    with warnings.catch_warnings():  # low coverage at a tight cutoff is expected, and shown
        warnings.simplefilter("ignore")
        traversal.traverse()
    activities = inventory.activities

    def key(identifier: int) -> str:
        if identifier == ROOT:
            return "demand"
        if identifier in index_of:
            return activities[index_of[identifier]].key
        return f"brightway:{identifier}"  # an activity of the linked background

    nodes = []
    for unique_id, node in traversal.nodes.items():
        identifier = ROOT if unique_id == ROOT else node.activity_datapackage_id
        activity = index_of.get(identifier)
        nodes.append(
            GraphNode(
                activity=activity,
                key=key(identifier),
                depth=node.depth,
                supply=float(node.supply_amount),
                unit="" if activity is None else activities[activity].unit,
                cumulative=float(node.cumulative_score),
                direct=float(node.direct_emissions_score),
            )
        )
    by_unique = traversal.nodes
    edges = tuple(
        GraphEdge(
            producer=key(by_unique[e.producer_unique_id].activity_datapackage_id),
            consumer=(
                key(ROOT)
                if e.consumer_unique_id == ROOT
                else key(by_unique[e.consumer_unique_id].activity_datapackage_id)
            ),
            amount=float(e.amount),
            cumulative=float(by_unique[e.producer_unique_id].cumulative_score),
        )
        for e in traversal.edges
        if e.producer_unique_id in by_unique
    )
    return SupplyGraph(total, cutoff, max_depth, tuple(nodes), edges)
