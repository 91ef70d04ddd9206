"""Schemathesis generates queries and mutations from the schema and sends them to the app over
the sample park: whatever they ask, the service never answers 500.

Bounded: a few examples per root field, so the run stays within seconds; SQLite only (the
point is the API's handling of odd input, which does not depend on the database).
"""

from __future__ import annotations

from datetime import date, datetime

import pytest
import schemathesis
from conftest import TESTER, Templates
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.specs.graphql.schemas import GraphQLSchema

from graphql import StringValueNode
from mfa.access import Role
from mfa.app import create_app
from mfa.auth import issue_token
from mfa.settings import Environment, Settings

EXAMPLES_PER_FIELD = 4


def _string(text: str) -> StringValueNode:
    return StringValueNode(value=text)


# The custom scalars travel as strings: well-formed values and arbitrary text alike.
for name, valid in {
    "Decimal": st.decimals(allow_nan=True, allow_infinity=True).map(str),
    "Date": st.dates().map(date.isoformat),
    "DateTime": st.datetimes().map(datetime.isoformat),
}.items():
    schemathesis.graphql.scalar(name, st.one_of(valid, st.text(max_size=20)).map(_string))


@pytest.fixture
def api(templates: dict[str, Templates]) -> tuple[GraphQLSchema, dict[str, str]]:
    """The app over a copy of the sample park on SQLite: the run targets the API layer, and
    one backend suffices for it."""
    url = templates["sqlite"].copy("sample")
    app_settings = Settings(database_url=url, environment=Environment.TEST)
    token, _ = issue_token(
        client_id=TESTER.subject,
        role=Role.OPERATOR,
        park_id=None,
        enterprise_id=None,
        settings=app_settings,
    )
    headers = {"Authorization": f"Bearer {token}"}
    app = create_app(app_settings)
    return schemathesis.graphql.from_asgi("/graphql", app, headers=headers), headers


def test_generated_operations_never_get_a_500(
    api: tuple[GraphQLSchema, dict[str, str]],
) -> None:
    schema, headers = api
    statuses: list[int] = []
    fields = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        fields += 1

        @settings(
            max_examples=EXAMPLES_PER_FIELD,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def run(case: schemathesis.Case) -> None:
            response = case.call(headers=headers)
            statuses.append(response.status_code)
            assert response.status_code < 500, (case.body, response.text)

        run()
    assert fields >= 20  # every root query and mutation field was exercised
    assert len(statuses) >= fields
