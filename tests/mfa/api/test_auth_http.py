"""Authentication over HTTP: the OAuth 2.0 token endpoint, bearer tokens, API keys, 401s."""

from __future__ import annotations

import base64
import time

import httpx
import jwt
import pytest
from conftest import GraphQLClient
from pydantic import ValidationError

from mfa.access import SYSTEM, Role
from mfa.auth import ClientCreate, IssuedCredentials, create_client
from mfa.db import session_factory, transaction
from mfa.registry import ParkCreate, create_park
from mfa.settings import Environment, Settings

VIEWER = {"query": "{ viewer { subject role } }"}
FORM = "application/x-www-form-urlencoded"


async def _auditor(gql: GraphQLClient) -> IssuedCredentials:
    async with transaction(session_factory(gql.app.state.engine)) as session:
        park = await create_park(session, ParkCreate("p", "Park", "VN"), caller=SYSTEM)
        return await create_client(
            session, ClientCreate("Park auditor", Role.AUDITOR, park.id), caller=SYSTEM
        )


def _anonymous(gql: GraphQLClient) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=gql.app), base_url="http://test")


async def test_client_credentials_in_the_body_give_a_bearer_token(gql: GraphQLClient) -> None:
    issued = await _auditor(gql)
    async with _anonymous(gql) as http:
        response = await http.post(
            "/auth/token",
            data={
                "grant_type": "client_credentials",
                "client_id": issued.client_id,
                "client_secret": issued.client_secret,
            },
        )
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"
        body = response.json()
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] == gql.app.state.settings.token_lifetime
        claims = jwt.decode(body["access_token"], options={"verify_signature": False})
        assert claims["exp"] - claims["iat"] == body["expires_in"]
        viewer = await http.post(
            "/graphql", json=VIEWER, headers={"Authorization": f"Bearer {body['access_token']}"}
        )
    assert viewer.json()["data"]["viewer"] == {"subject": issued.client_id, "role": "AUDITOR"}


async def test_client_credentials_as_http_basic_give_a_token(gql: GraphQLClient) -> None:
    issued = await _auditor(gql)
    basic = base64.b64encode(f"{issued.client_id}:{issued.client_secret}".encode()).decode()
    async with _anonymous(gql) as http:
        response = await http.post(
            "/auth/token",
            content="grant_type=client_credentials",
            headers={"Authorization": f"Basic {basic}", "Content-Type": FORM},
        )
    assert response.status_code == 200
    assert response.json()["token_type"] == "Bearer"


async def test_the_token_endpoint_refuses_bad_requests_as_rfc_6749_says(
    gql: GraphQLClient,
) -> None:
    issued = await _auditor(gql)
    good = {"client_id": issued.client_id, "client_secret": issued.client_secret}
    async with _anonymous(gql) as http:
        wrong = await http.post(
            "/auth/token",
            data={**good, "grant_type": "client_credentials", "client_secret": "nope"},
        )
        grant = await http.post("/auth/token", data={**good, "grant_type": "password"})
        missing = await http.post("/auth/token", data=good)
        as_json = await http.post("/auth/token", json={**good, "grant_type": "client_credentials"})
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")
    assert "WWW-Authenticate" in wrong.headers
    assert (grant.status_code, grant.json()["error"]) == (400, "unsupported_grant_type")
    assert (missing.status_code, missing.json()["error"]) == (400, "invalid_request")
    assert (as_json.status_code, as_json.json()["error"]) == (400, "invalid_request")


async def test_an_api_key_authenticates_each_request(gql: GraphQLClient) -> None:
    issued = await _auditor(gql)
    async with _anonymous(gql) as http:
        ok = await http.post("/graphql", json=VIEWER, headers={"X-API-Key": issued.api_key})
        bad = await http.post(
            "/graphql", json=VIEWER, headers={"X-API-Key": f"{issued.client_id}.wrong"}
        )
    assert ok.json()["data"]["viewer"]["role"] == "AUDITOR"
    assert bad.status_code == 401


async def test_without_valid_credentials_nothing_but_health_is_served(gql: GraphQLClient) -> None:
    settings: Settings = gql.app.state.settings
    now = int(time.time())
    expired = jwt.encode(
        {
            "sub": "x",
            "aud": "circular-mfa",
            "iat": now - 7200,
            "exp": now - 3600,
            "role": "operator",
        },
        settings.jwt_secret,
        algorithm="HS256",
    )
    forged = jwt.encode(
        {"sub": "x", "aud": "circular-mfa", "exp": now + 3600, "role": "operator"},
        "another-key-that-is-long-enough-0123456789",
        algorithm="HS256",
    )
    async with _anonymous(gql) as http:
        assert (await http.get("/healthz")).status_code == 200
        ide = await http.get("/graphql", headers={"Accept": "text/html"})
        assert ide.status_code == 200  # the GraphiQL page itself; its queries need a token
        none = await http.post("/graphql", json=VIEWER)
        by_get = await http.get("/graphql", params={"query": "{ viewer { role } }"})
        assert none.status_code == by_get.status_code == 401
        assert none.headers["WWW-Authenticate"].startswith("Bearer")
        for token in (expired, forged, "not-a-jwt"):
            response = await http.post(
                "/graphql", json=VIEWER, headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 401, token
        assert (
            "expired"
            in (
                await http.post(
                    "/graphql", json=VIEWER, headers={"Authorization": f"Bearer {expired}"}
                )
            ).json()["detail"]
        )


def test_production_refuses_the_development_signing_key() -> None:
    production = {
        "environment": Environment.PRODUCTION,
        "graphiql": False,
        "database_url": "postgresql://u@h/db",
    }
    with pytest.raises(ValidationError, match="MFA_JWT_SECRET"):
        Settings(**production)  # type: ignore[arg-type]
    Settings(**production, jwt_secret="x" * 40)  # type: ignore[arg-type]
