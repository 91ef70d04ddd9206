"""Flow pages without per-field execution: a query whose root fields are ``flows`` connections
is compiled once per document into a plan that builds the response dict directly.

graphql-core resolves a 100-flow page field by field (about 4,500 of them, each through
strawberry's wrappers): most of an uncached page's CPU (docs/performance.md). The plan knows,
for every field of ``Flow`` and the objects under it, which labelled column of the flow page
(``reads.FLOW_COLUMNS``) it reads and how ``types.Flow.from_row`` (and ``Material.from_row``,
``endpoint``) turns that column into the field's value. At run time it checks the arguments
as ``LedgerQuery.flows`` does, reads the page with ``reads.flow_page_columns`` (the same
statement, ``flow_scope`` and count as ``reads.flow_page``, but only the columns the document
selects), and serialises each leaf from the raw row with the schema's own scalar or enum
``serialize``, as the executor's ``complete_leaf_value`` does, so the answer is the executor's
on both backends without building a ``FlowRow`` or a strawberry ``Flow`` per row.

It runs as a schema extension's ``on_execute``, after parsing, validation, the limits and
authentication, and only sets the execution result: the HTTP layer and the response cache
see the same request either way. Anything the compiler does not know (a field with a resolver
of its own, a directive, an unknown root field, a mutation) or anything unusual at run time
(argument errors, a null where the schema forbids one) leaves the request to the executor,
which then answers exactly as without this module.
"""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from operator import attrgetter, itemgetter
from typing import Any, cast

import strawberry
from graphql.execution.values import get_argument_values, get_variable_values
from strawberry.extensions import SchemaExtension
from strawberry.types.arguments import convert_arguments
from strawberry.types.base import StrawberryObjectDefinition
from strawberry.types.field import StrawberryField

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
from mfa import reads
from mfa.api.ids import after_pk, to_global_id
from mfa.api.pages import page_size
from mfa.api.types import Connection, connection
from mfa.models import ConfirmationStatus, MaterialKind, NodeKind
from mfa.units import CANONICAL_UNIT, Dimension

#: How many requests the plan answered ("compiled") and how many it left to the executor
#: ("fallback": compiled, but something unusual at run time). Tests read it.
RUNS: Counter[str] = Counter()

#: Root fields the compiler answers.
ROOT_FIELDS = frozenset({"flows"})

_PLAN_CACHE_SIZE = 256


class _Unsupported(Exception):
    """The compiler does not handle this document or this answer: the executor does."""


Build = Callable[[Any], Any]

#: The arguments of ``LedgerQuery.flows``, which ``_flow_connection`` checks as it does.
_FLOWS_ARGUMENTS = ("filter", "first", "after")

#: Fields whose value is their column's, under the object's prefix (``reads.FLOW_COLUMNS``).
_PLAIN = {
    "Flow": frozenset(
        {
            "quantity",
            "unit",
            "reported_unit",
            "period_start",
            "period_end",
            "evidence",
            "relative_uncertainty",
            "reason",
            "value",
            "currency",
            "recorded_by",
            "recorded_at",
        }
    ),
    "Enterprise": frozenset({"code", "name", "tax_id"}),
    "BoundaryNode": frozenset({"code", "name"}),
    "Material": frozenset(
        {
            "code",
            "name",
            "hs_code",
            "ewc_code",
            "vn_waste_code",
            "hazardous",
            "renewable",
            "secondary",
            "description",
        }
    ),
    "FlowConfirmation": frozenset(
        {
            "quantity",
            "reported_unit",
            "evidence",
            "relative_difference",
            "tolerance",
            "recorded_by",
            "recorded_at",
        }
    ),
}


#: Where a flow's objects sit in its row (``reads.FLOW_COLUMNS``).
_PREFIXES = {"source": "src_", "target": "tgt_", "material": "mat_"}


@dataclass(frozen=True, slots=True)
class _RootField:
    key: str
    name: str
    nodes: tuple[FieldNode, ...]
    build: Build | None  # None for __typename
    columns: tuple[str, ...] = ()  # of reads.FLOW_COLUMNS, for a flows field


class _Columns:
    """The labelled columns (``reads.FLOW_COLUMNS``) one flows field reads, in fetch order;
    ``id`` first, for the cursors."""

    def __init__(self) -> None:
        self.labels: list[str] = ["id"]

    def get(self, label: str, convert: Callable[[Any], Any] | None = None) -> Build:
        """A getter of this column's value from a row, converted as ``from_row`` converts it."""
        if label not in reads.FLOW_COLUMNS:
            raise _Unsupported(f"column {label}")
        if label not in self.labels:
            self.labels.append(label)
        index = self.labels.index(label)
        if convert is None:
            return itemgetter(index)
        return lambda row: convert(row[index])


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
        self.columns = _Columns()

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

    def leaf(self, type_: GraphQLOutputType, get: Build | None) -> Build:
        """A scalar's or an enum's value serialised with the schema's ``serialize``, as the
        executor's ``complete_leaf_value``; ``get`` reads it from a row (None: the value is
        given). One closure per leaf: a page serialises a few thousand."""
        non_null = isinstance(type_, GraphQLNonNull)
        named = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
        if not isinstance(named, GraphQLScalarType | GraphQLEnumType):
            raise _Unsupported("not a leaf")
        serialize = named.serialize

        def leaf(value: Any) -> Any:
            if get is not None:
                value = get(value)
            if value is None:
                if non_null:
                    raise _Unsupported("null in a non-null field")
                return None
            serialized = serialize(value)
            if serialized is None or serialized is Undefined:
                raise _Unsupported("leaf serialised to nothing")
            return serialized

        return leaf

    def value(self, type_: GraphQLOutputType, nodes: Sequence[FieldNode]) -> Build:
        if isinstance(type_, GraphQLNonNull) and isinstance(
            type_.of_type, GraphQLScalarType | GraphQLEnumType
        ):
            return self.leaf(type_, None)
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
            return self.leaf(type_, None)
        selection_sets = [n.selection_set for n in nodes if n.selection_set is not None]
        if isinstance(type_, GraphQLObjectType) and type_.name == "Flow":
            return self.row_object(type_, selection_sets, "")  # the connection's rows
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

    def fields(
        self, type_: GraphQLObjectType, selection_sets: Sequence[SelectionSetNode]
    ) -> list[tuple[str, list[FieldNode], StrawberryField | None]]:
        """The selected fields by response key, each with its strawberry field (None for
        ``__typename``). Plain fields only: a field with a resolver, arguments, permissions
        or extensions of its own is the executor's."""
        definition = self.definition(type_)
        by_name = {
            self.schema.config.name_converter.get_graphql_name(f): f for f in definition.fields
        }
        selected: list[tuple[str, list[FieldNode], StrawberryField | None]] = []
        for key, nodes in self.collect(type_, selection_sets).items():
            name = nodes[0].name.value
            if name == "__typename":
                selected.append((key, nodes, None))
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
            selected.append((key, nodes, field))
        return selected

    def object(self, type_: GraphQLObjectType, selection_sets: Sequence[SelectionSetNode]) -> Build:
        """An object read by attributes (the connection, its edges and page info)."""
        is_type_of = type_.is_type_of
        parts: list[tuple[str, Callable[[Any], Any] | None, Build | str]] = []
        for key, nodes, field in self.fields(type_, selection_sets):
            if field is None:
                parts.append((key, None, type_.name))
                continue
            parts.append(
                (
                    key,
                    attrgetter(field.python_name),
                    self.value(type_.fields[nodes[0].name.value].type, nodes),
                )
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

    def row_object(
        self, type_: GraphQLObjectType, selection_sets: Sequence[SelectionSetNode], prefix: str
    ) -> Build:
        """An object read from a flow page's row: the flow (prefix ""), an end ("src_",
        "tgt_"), its material ("mat_") or confirmation ("conf_")."""
        parts: list[tuple[str, Build | None, str]] = []
        for key, nodes, field in self.fields(type_, selection_sets):
            if field is None:
                parts.append((key, None, type_.name))
            else:
                field_type = type_.fields[nodes[0].name.value].type
                parts.append(
                    (key, self.row_field(type_.name, field, field_type, nodes, prefix), "")
                )

        def build(row: Any) -> Any:
            return {key: name if get is None else get(row) for key, get, name in parts}

        return build

    def row_field(
        self,
        owner: str,
        field: StrawberryField,
        type_: GraphQLOutputType,
        nodes: Sequence[FieldNode],
        prefix: str,
    ) -> Build:
        """The value of ``owner.field`` from a row, as ``Flow.from_row``, ``endpoint``,
        ``Material.from_row`` and the executor make it; anything unknown is the executor's."""
        column = self.columns.get
        name = field.python_name
        getter: Build
        if name in _PLAIN.get(owner, ()):
            getter = column(prefix + name)
        elif name == "id" and owner in ("Flow", "Material", "Enterprise", "BoundaryNode"):
            getter = column(f"{prefix}id", lambda pk: to_global_id(owner, pk))
        elif name == "reported_quantity" and owner in ("Flow", "FlowConfirmation"):
            getter = column(f"{prefix}reported_quantity", Decimal)
        elif (owner, name) == ("Flow", "transfer_status"):
            getter = self.transfer_status()
        elif (owner, name) in (("Flow", "source"), ("Flow", "target"), ("Flow", "material")):
            return self.row_value(type_, nodes, _PREFIXES[name])
        elif (owner, name) == ("Flow", "confirmation"):
            present = column("conf_id")
            return self.row_value(type_, nodes, "conf_", lambda row: present(row) is not None)
        elif (owner, name) == ("Flow", "reporting_party"):
            return self.party(type_, nodes, "reporting_party_id", "src_", "tgt_")
        elif (owner, name) == ("FlowConfirmation", "reporting_party"):
            return self.party(type_, nodes, "conf_reporting_party_id", "tgt_", "src_")
        elif name == "kind" and owner in ("Enterprise", "BoundaryNode"):
            getter = column(f"{prefix}kind", NodeKind)
        elif (owner, name) == ("Enterprise", "isic_code"):
            getter = column(f"{prefix}isic_code", lambda code: code or "")
        elif (owner, name) == ("Material", "kind"):
            getter = column("mat_kind", MaterialKind)
        elif (owner, name) == ("Material", "dimension"):
            getter = column("mat_dimension", Dimension)
        elif (owner, name) == ("Material", "canonical_unit"):
            getter = column("mat_dimension", lambda d: CANONICAL_UNIT[Dimension(d)])
        elif (owner, name) == ("Material", "brightway_activity"):
            database = column("mat_brightway_database")
            return self.row_value(type_, nodes, "mat_", lambda row: bool(database(row)))
        elif (owner, name) == ("BrightwayKey", "database"):
            getter = column("mat_brightway_database")
        elif (owner, name) == ("BrightwayKey", "code"):
            getter = column("mat_brightway_code", lambda code: code or "")
        elif (owner, name) == ("FlowConfirmation", "status"):
            getter = column("conf_status", ConfirmationStatus)
        else:
            raise _Unsupported(f"field {owner}.{name}")
        return self.leaf(type_, getter)

    def row_value(
        self,
        type_: GraphQLOutputType,
        nodes: Sequence[FieldNode],
        prefix: str,
        present: Callable[[Any], bool] | None = None,
    ) -> Build:
        """An object under the flow, in the row at ``prefix``; None where ``present`` says
        the row has none (no confirmation, no Brightway activity)."""
        if isinstance(type_, GraphQLNonNull):
            inner = self.row_value(type_.of_type, nodes, prefix, present)

            def non_null(row: Any) -> Any:
                value = inner(row)
                if value is None:
                    raise _Unsupported("null in a non-null field")
                return value

            return non_null
        selection_sets = [n.selection_set for n in nodes if n.selection_set is not None]
        if isinstance(type_, GraphQLObjectType):
            build = self.row_object(type_, selection_sets, prefix)
        elif isinstance(type_, GraphQLInterfaceType) and prefix in ("src_", "tgt_"):
            build = self.endpoint(type_, selection_sets, prefix)
        else:
            raise _Unsupported("type")
        if present is None:
            return build
        return lambda row: build(row) if present(row) else None

    def endpoint(
        self, type_: GraphQLInterfaceType, selection_sets: Sequence[SelectionSetNode], prefix: str
    ) -> Build:
        """A flow's end as ``types.endpoint`` types it: an ``Enterprise`` when its kind is
        ``ENTERPRISE``, else a ``BoundaryNode``."""
        by_name = {
            t.name: self.row_object(t, selection_sets, prefix)
            for t in self.gql.get_possible_types(type_)
        }
        if set(by_name) != {"Enterprise", "BoundaryNode"}:
            raise _Unsupported("runtime type")
        enterprise, boundary = by_name["Enterprise"], by_name["BoundaryNode"]
        kind = self.columns.get(f"{prefix}kind", NodeKind)
        return lambda row: enterprise(row) if kind(row) is NodeKind.ENTERPRISE else boundary(row)

    def party(
        self,
        type_: GraphQLOutputType,
        nodes: Sequence[FieldNode],
        reporter: str,
        first: str,
        other: str,
    ) -> Build:
        """The end whose id is ``reporter``'s (``first`` when it is first's, else ``other``),
        an ``Enterprise`` as ``Flow.from_row`` asserts; any other end is the executor's."""
        column = self.columns.get
        reporter_id, first_id = column(reporter), column(f"{first}id")
        kinds = column(f"{first}kind", NodeKind), column(f"{other}kind", NodeKind)
        builds = self.row_value(type_, nodes, first), self.row_value(type_, nodes, other)

        def pick(row: Any) -> Any:
            which = 0 if reporter_id(row) == first_id(row) else 1
            if kinds[which](row) is not NodeKind.ENTERPRISE:
                raise _Unsupported("a reporting party that is no enterprise")
            return builds[which](row)

        return pick

    def transfer_status(self) -> Build:
        column = self.columns.get
        reverses, reversed_by = column("reverses_id"), column("reversed_by_id")
        source_kind, target_kind = column("src_kind", NodeKind), column("tgt_kind", NodeKind)
        confirmation = column("conf_id")
        status = column("conf_status", ConfirmationStatus)
        return lambda row: reads.transfer_status(
            reverses_id=reverses(row),
            reversed_by_id=reversed_by(row),
            source_kind=source_kind(row),
            target_kind=target_kind(row),
            confirmation_status=None if confirmation(row) is None else status(row),
        )


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
            resolver = schema.get_field_for_type(name, root.name)
            if resolver is None or tuple(a.python_name for a in resolver.arguments) != (
                _FLOWS_ARGUMENTS
            ):
                return None
            compiler.columns = _Columns()
            build = compiler.value(root.fields[name].type, nodes)
            columns = tuple(compiler.columns.labels)
            fields.append(_RootField(key, name, tuple(nodes), build, columns))
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
            arguments = get_argument_values(root.fields[field.name], field.nodes[0], variables)
            kwargs = convert_arguments(
                arguments,
                strawberry_field.arguments,
                scalar_registry=schema.schema_converter.scalar_registry,
                config=schema.config,
            )
            value = await _flow_connection(info, field.columns, **kwargs)
            data[field.key] = field.build(value)
    except Exception:  # any error is the executor's to report, as it would report it
        if trail is not None:
            del trail.decisions[noted:]
        return None
    return data


def _row(row: Any) -> Any:
    return row


async def _flow_connection(
    info: _InfoOfContext,
    columns: tuple[str, ...],
    *,
    filter: Any,
    first: int,
    after: str | None,
) -> Connection[Any]:
    """What ``LedgerQuery.flows`` answers (``FlowFilter.to_domain``, ``page_size``,
    ``after_pk``, then the page in the caller's scope, as ``pages.flow_connection``), with
    each node the raw row of ``columns`` instead of a ``Flow``."""
    flt = filter.to_domain() if filter is not None else reads.FlowFilter()
    size = page_size(cast(Any, info), first)
    async with info.context.read() as session:
        page = await reads.flow_page_columns(
            session,
            columns,
            caller=info.context.caller,
            flt=flt,
            first=size,
            after_id=after_pk(after),
        )
    return connection(page, _row)
