"""The schema: root types composed from one class per domain, with limits and caches on.

``python -m mfa.api.schema`` prints the SDL committed at ``graphql/schema.graphql``.
"""

from __future__ import annotations

import strawberry
from strawberry.extensions import (
    AddValidationRules,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig

from mfa.api.access import AccessMutation, AccessQuery, AuditTrail
from mfa.api.analyses import AnalysisQuery
from mfa.api.circularity import CircularityQuery
from mfa.api.circularity_gaps import CircularityGapsQuery, ScenarioMutation
from mfa.api.compiled import CompiledFlowPages
from mfa.api.errors import ErrorPolicy
from mfa.api.footprints import FootprintMutation, FootprintQuery
from mfa.api.imports import ImportMutation, ImportQuery
from mfa.api.limits import QueryCostLimiter
from mfa.api.mutations import LedgerMutation, MaterialLinkMutation, RegistryMutation
from mfa.api.queries import CatalogueQuery, LedgerQuery
from mfa.api.types import BoundaryNode, Enterprise, Flow, Material, Park, RecordBatch
from mfa.settings import Settings, get_settings


@strawberry.type
class Query(
    CatalogueQuery,
    LedgerQuery,
    AnalysisQuery,
    FootprintQuery,
    CircularityGapsQuery,
    CircularityQuery,
    AccessQuery,
    ImportQuery,
):
    pass


@strawberry.type
class Mutation(
    RegistryMutation,
    MaterialLinkMutation,
    LedgerMutation,
    FootprintMutation,
    ScenarioMutation,
    AccessMutation,
    ImportMutation,
):
    pass


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    settings = settings or get_settings()
    # The limiters' validation rules are built once per schema: a limiter built per request
    # makes new rule classes, and ValidationCache keys on the rules, so it never hit.
    depth = QueryDepthLimiter(max_depth=settings.max_query_depth).validation_rules
    aliases = MaxAliasesLimiter(max_alias_count=settings.max_query_aliases).validation_rules
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        types=[Park, Enterprise, BoundaryNode, Material, Flow, RecordBatch],
        config=StrawberryConfig(auto_camel_case=True),
        # Factories: each request gets fresh extension instances; the parser and validation
        # caches live at module level, so they are shared across requests all the same.
        extensions=[
            lambda: ParserCache(maxsize=256),
            lambda: ValidationCache(maxsize=256),
            lambda: AddValidationRules(depth),
            lambda: MaxTokensLimiter(max_token_count=settings.max_query_tokens),
            lambda: AddValidationRules(aliases),
            # After ValidationCache, whose on_validate has run by then (see QueryCostLimiter).
            lambda: QueryCostLimiter(max_cost=settings.max_query_cost),
            ErrorPolicy,
            AuditTrail,
            # Last: answers flow pages inside the others' on_execute (mfa.api.compiled).
            *([CompiledFlowPages] if settings.compiled_flow_pages else []),
        ],
    )


def export_sdl() -> str:
    """The schema in GraphQL's own language, as committed in ``graphql/schema.graphql``."""
    return build_schema(Settings()).as_str() + "\n"


if __name__ == "__main__":
    print(export_sdl(), end="")
