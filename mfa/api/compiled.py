"""Flow pages without per-field execution: a query whose root fields are ``flows`` connections
is compiled once per document into a plan that builds the response dict directly.

graphql-core resolves a 100-flow page field by field (about 4,500 of them, each through
strawberry's wrappers): most of an uncached page's CPU (docs/performance.md). The plan runs
the same root resolver as the executor (``LedgerQuery.flows``: the same SQL, the same
``flow_scope``) and then reads the returned objects' attributes and serialises each leaf with
the schema's own scalar or enum ``serialize``, as the executor's ``complete_leaf_value`` does,
so the answer is the executor's on both backends.

It runs as a schema extension's ``on_execute``, after parsing, validation, the limits and
authentication, and only sets the execution result: the HTTP layer and the response cache
see the same request either way. Anything the compiler does not know (a field with a resolver
of its own, a directive, an unknown root field, a mutation) or anything unusual at run time
(argument errors, a null where the schema forbids one) leaves the request to the executor,
which then answers exactly as without this module.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, cast

import strawberry
from graphql.execution.values import get_argument_values, get_variable_values
from strawberry.extensions import SchemaExtension
from strawberry.types.arguments import convert_arguments
from strawberry.types.base import StrawberryObjectDefinition

from graphql import (
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLEnumType,
    GraphQLInterfaceType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    Undefined,
)

#: How many requests the plan answered ("compiled") and how many it left to the executor
#: ("fallback": compiled, but something unusual at run time). Tests read it.
RUNS: Counter[str] = Counter()

#: Root fields the compiler answers.
ROOT_FIELDS = frozenset({"flows"})

_PLAN_CACHE_SIZE = 256


class _Unsupported(Exception):
    """The compiler does not handle this document or this answer: the executor does."""


Build = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class _RootField:
    key: str
    name: str
    nodes: tuple[FieldNode, ...]
    build: Build | None  # None for __typename


@dataclass(frozen=True, slots=True)
class Plan:
    """A compiled query document: its root fields, each with the builder of its answer."""

    operation: OperationDefinitionNode
    fields: tuple[_RootField, ...]


@dataclass(frozen=True, slots=True)
class _InfoOfContext:
    """What the flow resolvers read of strawberry's ``Info``: the request's context."""

    context: Any


class _Compiler:
    def __init__(self, schema: strawberry.Schema, fragments: dict[str, FragmentDefinitionNode]):
        self.schema = schema
        self.gql: GraphQLSchema = schema._schema
        self.fragments = fragments

    def collect(
        self, runtime: GraphQLObjectType, selection_sets: Sequence[SelectionSetNode]
    ) -> OrderedDict[str, list[FieldNode]]:
        """Fields by response key, in order of first appearance (the executor's CollectFields),
        for a document without directives."""
        fields: OrderedDict[str, list[FieldNode]] = OrderedDict()

        def walk(selection_set: SelectionSetNode) -> None:
            for selection in selection_set.selections:
                if selection.directives:
                    raise _Unsupported("directive")
                if isinstance(selection, FieldNode):
                    key = selection.alias.value if selection.alias else selection.name.value
                    fields.setdefault(key, []).append(selection)
                elif isinstance(selection, InlineFragmentNode):
                    if self.applies(selection.type_condition, runtime):
                        walk(selection.selection_set)
                elif isinstance(selection, FragmentSpreadNode):
                    fragment = self.fragments.get(selection.name.value)
                    if fragment is None or fragment.directives:
                        raise _Unsupported("fragment")
                    if self.applies(fragment.type_condition, runtime):
                        walk(fragment.selection_set)
                else:
                    raise _Unsupported("selection")

        for selection_set in selection_sets:
            walk(selection_set)
        return fields

    def applies(self, condition: Any, runtime: GraphQLObjectType) -> bool:
        if condition is None:
            return True
        named = self.gql.get_type(condition.name.value)
        if named is runtime:
            return True
        if isinstance(named, GraphQLInterfaceType | GraphQLUnionType):
            return self.gql.is_sub_type(named, runtime)
        return False

    def value(self, type_: GraphQLOutputType, nodes: Sequence[FieldNode]) -> Build:
        if isinstance(type_, GraphQLNonNull):
            inner = self.value(type_.of_type, nodes)

            def non_null(value: Any) -> Any:
                if value is None:
                    raise _Unsupported("null in a non-null field")
                return inner(value)

            return non_null
        if isinstance(type_, GraphQLList):
            item = self.value(type_.of_type, nodes)
            return lambda value: None if value is None else [item(v) for v in value]
        if isinstance(type_, GraphQLScalarType | GraphQLEnumType):
            serialize = type_.serialize

            def leaf(value: Any) -> Any:
                if value is None:
                    return None
                serialized = serialize(value)
                if serialized is None or serialized is Undefined:
                    raise _Unsupported("leaf serialised to nothing")
                return serialized

            return leaf
        selection_sets = [n.selection_set for n in nodes if n.selection_set is not None]
        if isinstance(type_, GraphQLObjectType):
            return self.object(type_, selection_sets)
        if isinstance(type_, GraphQLInterfaceType | GraphQLUnionType):
            by_name = {
                t.name: self.object(t, selection_sets) for t in self.gql.get_possible_types(type_)
            }

            def abstract(value: Any) -> Any:
                """The runtime type as strawberry's ``resolve_type`` finds it: by the object's
                own strawberry definition."""
                if value is None:
                    return None
                definition = getattr(value, "__strawberry_definition__", None)
                build = None if definition is None else by_name.get(definition.name)
                if build is None:
                    raise _Unsupported("runtime type")
                return build(value)

            return abstract
        raise _Unsupported("type")

    def definition(self, type_: GraphQLObjectType) -> StrawberryObjectDefinition:
        definition = self.schema.get_type_by_name(type_.name)
        if not isinstance(definition, StrawberryObjectDefinition) or definition.is_graphql_generic:
            raise _Unsupported("not a strawberry object")
        return definition

    def object(self, type_: GraphQLObjectType, selection_sets: Sequence[SelectionSetNode]) -> Build:
        """Plain-attribute fields only: a field with a resolver, arguments, permissions or
        extensions of its own is the executor's."""
        definition = self.definition(type_)
        is_type_of = type_.is_type_of
        by_name = {
            self.schema.config.name_converter.get_graphql_name(f): f for f in definition.fields
        }
        parts: list[tuple[str, Callable[[Any], Any] | None, Build | str]] = []
        for key, nodes in self.collect(type_, selection_sets).items():
            name = nodes[0].name.value
            if name == "__typename":
                parts.append((key, None, type_.name))
                continue
            field = by_name.get(name)
            if (
                field is None
                or field.base_resolver is not None
                or field.arguments
                or field.permission_classes
                or field.extensions
                or any(n.arguments for n in nodes)
            ):
                raise _Unsupported(f"field {type_.name}.{name}")
            parts.append(
                (key, attrgetter(field.python_name), self.value(type_.fields[name].type, nodes))
            )

        def build(value: Any) -> Any:
            if value is None:
                return None
            if is_type_of is not None and not is_type_of(value, cast(Any, None)):  # info unused
                raise _Unsupported("runtime type")
            out = {}
            for key, get, complete in parts:
                if get is None:
                    out[key] = complete
                else:
                    out[key] = complete(get(value))  # type: ignore[operator]
            return out

        return build


def compile_document(
    schema: strawberry.Schema, document: Any, operation_name: str | None
) -> Plan | None:
    """The plan of a query whose root fields are all flow connections (or ``__typename``),
    or None when the executor must answer it."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    if operation_name is None:
        if len(operations) != 1:
            return None
        operation = operations[0]
    else:
        named = [o for o in operations if o.name is not None and o.name.value == operation_name]
        if len(named) != 1:
            return None
        operation = named[0]
    if operation.operation is not OperationType.QUERY or operation.directives:
        return None
    if any(v.directives for v in operation.variable_definitions or ()):
        return None
    compiler = _Compiler(schema, fragments)
    root = compiler.gql.query_type
    assert root is not None
    try:
        collected = compiler.collect(root, [operation.selection_set])
        fields = []
        for key, nodes in collected.items():
            name = nodes[0].name.value
            if name == "__typename":
                fields.append(_RootField(key, name, tuple(nodes), None))
                continue
            if name not in ROOT_FIELDS:
                return None
            fields.append(
                _RootField(key, name, tuple(nodes), compiler.value(root.fields[name].type, nodes))
            )
    except _Unsupported:
        return None
    if all(f.build is None for f in fields):
        return None
    return Plan(operation=operation, fields=tuple(fields))


class CompiledFlowPages(SchemaExtension):
    """Answers compiled flow pages in ``on_execute``; the executor then skips the document.

    Listed last among the schema's extensions, so that the others' ``on_execute`` (the audit
    trail's watch) are entered around it."""

    #: Plans by (schema, document, operation name): the builders hold the schema's types.
    _plans: OrderedDict[tuple[strawberry.Schema, str, str | None], Plan | None] = OrderedDict()

    async def on_execute(self) -> AsyncIterator[None]:
        execution = self.execution_context
        if execution.result is None and execution.query is not None:
            plan = self._plan(execution.schema, execution.query, execution.operation_name)
            if plan is not None:
                data = await _run(plan, execution.schema, execution)
                if data is None:
                    RUNS["fallback"] += 1
                else:
                    RUNS["compiled"] += 1
                    execution.result = ExecutionResult(data=data, errors=None)
        yield

    def _plan(
        self, schema: strawberry.Schema, query: str, operation_name: str | None
    ) -> Plan | None:
        key = (schema, query, operation_name)
        plans = type(self)._plans
        if key in plans:
            plans.move_to_end(key)
            return plans[key]
        document = self.execution_context.graphql_document
        plan = None if document is None else compile_document(schema, document, operation_name)
        plans[key] = plan
        if len(plans) > _PLAN_CACHE_SIZE:
            plans.popitem(last=False)
        return plan


async def _run(plan: Plan, schema: strawberry.Schema, execution: Any) -> dict[str, Any] | None:
    """The answer's ``data``, or None when the executor must answer (argument errors, a
    resolver's error, anything the plan does not expect)."""
    variables = get_variable_values(
        schema._schema, plan.operation.variable_definitions or (), execution.variables or {}
    )
    if isinstance(variables, list):  # errors: the executor reports them
        return None
    root = schema._schema.query_type
    assert root is not None
    info = _InfoOfContext(execution.context)
    # Access decisions noted on the audit trail by an attempt the executor then repeats
    # (a refusal) are taken back, so that the trail stores each once.
    trail = getattr(execution.context, "trail", None)
    noted = len(trail.decisions) if trail is not None else 0
    data: dict[str, Any] = {}
    try:
        for field in plan.fields:
            if field.build is None:
                data[field.key] = root.name
                continue
            strawberry_field = schema.get_field_for_type(field.name, root.name)
            assert strawberry_field is not None
            assert strawberry_field.base_resolver is not None
            arguments = get_argument_values(root.fields[field.name], field.nodes[0], variables)
            kwargs = convert_arguments(
                arguments,
                strawberry_field.arguments,
                scalar_registry=schema.schema_converter.scalar_registry,
                config=schema.config,
            )
            resolve = cast(
                Callable[..., Awaitable[Any]], strawberry_field.base_resolver.wrapped_func
            )
            value = await resolve(None, info, **kwargs)
            data[field.key] = field.build(value)
    except Exception:  # any error is the executor's to report, as it would report it
        if trail is not None:
            del trail.decisions[noted:]
        return None
    return data
