"""The query cost limit: expensive fields (chain traversal, LCA solves) are priced before
anything runs, and a document whose price exceeds ``Settings.max_query_cost`` is refused.

The price of a document is the sum over the fields it selects of

    cost(field) = weight(field) × scale(field) × Π first(enclosing connections)

* ``weight`` comes from ``FIELD_COSTS`` (``"Type.field"`` keys); fields not listed cost 0,
  except connections (fields taking ``first``), which cost 1, the statement that fetches them;
* ``scale`` is the value of the argument named by ``FieldCost.scale_by`` (e.g. a traversal's
  ``maxDepth``), or 1;
* each enclosing connection multiplies by its ``first``: a field under ``flows(first: 100)``
  is resolved for up to 100 nodes.

Arguments given as variables are priced with the request's values, missing ones with their
default. Fragments are priced where they are spread; a fragment naming an interface is priced
with that interface's fields. The table is data: an engineer adding an expensive field adds a
line to ``FIELD_COSTS`` (a test checks every key names a field of the schema).

Depth, token and alias limits are strawberry's own extensions, set in ``mfa.api.schema``; page
sizes are enforced where each connection resolves (``mfa.api.pages.page_size``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from graphql.pyutils import Undefined
from strawberry.extensions import SchemaExtension

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    get_named_type,
    value_from_ast_untyped,
)


@dataclass(frozen=True, slots=True)
class FieldCost:
    """The weight of one field; with ``scale_by``, multiplied by that integer argument."""

    weight: int
    scale_by: str | None = None


# Weights are rough relative prices, 1 = one SQL statement. An LCA solve (build the technosphere
# of a park, factorise, attribute) is ~50-100 statements' worth of time; a chain walk issues
# one statement per level; a supply-graph traversal repeats a solve's attribution.
FIELD_COSTS: dict[str, FieldCost] = {
    "Query.chain": FieldCost(10, scale_by="maxDepth"),
    "Query.footprint": FieldCost(50),
    "Query.parkEmissions": FieldCost(100),
    "Footprint.graph": FieldCost(10, scale_by="maxDepth"),
    # a park-year is a few statements that each scan the year's flows (docs/performance.md)
    "Query.circularity": FieldCost(20),
    "Query.eipScorecard": FieldCost(30),
}

CONNECTION_WEIGHT = FieldCost(1)
PAGE_ARGUMENT = "first"


def _argument_values(
    node: FieldNode, variables: Mapping[str, Any], defaults: Mapping[str, Any]
) -> dict[str, Any]:
    values = dict(defaults)
    for argument in node.arguments or ():
        if isinstance(argument.value, VariableNode):
            name = argument.value.name.value
            if name in variables:
                values[argument.name.value] = variables[name]
        else:
            values[argument.name.value] = value_from_ast_untyped(argument.value)
    return values


def _as_int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 1


class _Pricer:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: Mapping[str, FragmentDefinitionNode],
        variables: Mapping[str, Any],
        costs: Mapping[str, FieldCost],
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.costs = costs

    def price(
        self,
        selections: SelectionSetNode | None,
        parent: GraphQLNamedType | None,
        multiplier: int,
        spread: frozenset[str] = frozenset(),
    ) -> int:
        if selections is None or not isinstance(parent, GraphQLObjectType | GraphQLInterfaceType):
            return 0
        total = 0
        for selection in selections.selections or ():
            if isinstance(selection, FieldNode):
                total += self._field(selection, parent, multiplier, spread)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = self.schema.get_type(condition.name.value) if condition else parent
                total += self.price(selection.selection_set, target, multiplier, spread)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in spread:  # unknown or cyclic: validation refuses
                    continue
                target = self.schema.get_type(fragment.type_condition.name.value)
                total += self.price(fragment.selection_set, target, multiplier, spread | {name})
        return total

    def _field(
        self,
        node: FieldNode,
        parent: GraphQLObjectType | GraphQLInterfaceType,
        multiplier: int,
        spread: frozenset[str],
    ) -> int:
        definition = parent.fields.get(node.name.value)
        if definition is None:  # __typename, or a field validation will refuse
            return 0
        defaults = {
            name: argument.default_value
            for name, argument in definition.args.items()
            if argument.default_value is not Undefined
        }
        arguments = _argument_values(node, self.variables, defaults)
        is_connection = PAGE_ARGUMENT in definition.args
        cost = self.costs.get(f"{parent.name}.{node.name.value}")
        if cost is None and is_connection:
            cost = CONNECTION_WEIGHT
        own = 0
        if cost is not None:
            scale = _as_int(arguments.get(cost.scale_by)) if cost.scale_by else 1
            own = cost.weight * scale * multiplier
        inner = multiplier * _as_int(arguments.get(PAGE_ARGUMENT)) if is_connection else multiplier
        child = get_named_type(definition.type)
        return own + self.price(node.selection_set, child, inner, spread)


def query_cost(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any] | None = None,
    costs: Mapping[str, FieldCost] = FIELD_COSTS,
) -> int:
    """The price of ``operation`` by the formula in this module's docstring."""
    given = {
        d.variable.name.value: value_from_ast_untyped(d.default_value)
        for d in operation.variable_definitions or ()
        if d.default_value is not None
    }
    given.update(variables or {})
    root = schema.get_root_type(operation.operation)
    return _Pricer(schema, fragments, given, costs).price(operation.selection_set, root, 1)


class QueryCostLimiter(SchemaExtension):
    """Refuses, before execution, an operation whose price exceeds ``max_cost``.

    Runs in the validation step, after the parser: the refusal is a validation error (no
    ``data``; HTTP 422 with ``application/graphql-response+json``).
    """

    def __init__(self, *, max_cost: int) -> None:
        self.max_cost = max_cost

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None:
            fragments = {
                d.name.value: d
                for d in document.definitions
                if isinstance(d, FragmentDefinitionNode)
            }
            operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
            wanted = context.operation_name
            for operation in operations:
                if wanted is not None and (
                    operation.name is None or operation.name.value != wanted
                ):
                    continue
                cost = query_cost(
                    context.schema._schema, operation, fragments, context.variables or {}
                )
                if cost > self.max_cost:
                    error = GraphQLError(
                        f"the operation costs {cost}, more than the limit of {self.max_cost}: "
                        "ask for fewer items per page (first), a smaller maxDepth, or fewer "
                        "footprints per request",
                        nodes=[operation],
                        extensions={"code": "QUERY_TOO_COSTLY", "cost": cost},
                    )
                    context.pre_execution_errors = [*(context.pre_execution_errors or []), error]
        yield
