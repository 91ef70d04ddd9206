"""Credentials: hashed secrets, who may issue which client, the development token."""

from __future__ import annotations

import hashlib

import jwt
import pytest
from factories import make_world
from sqlalchemy.ext.asyncio import AsyncSession

from mfa.access import Caller, Role
from mfa.auth import (
    AUDIENCE,
    ClientCreate,
    caller_from_api_key,
    create_client,
    development_token,
    hash_secret,
    verify_secret,
)
from mfa.errors import MfaError, NotFoundError, PermissionDeniedError
from mfa.settings import Environment, Settings


def test_secrets_are_stored_salted_and_verified_by_scrypt() -> None:
    stored = hash_secret("s3cret")
    scheme, n, r, p, salt, digest = stored.split("$")
    assert (scheme, n, r, p) == ("scrypt", "16384", "8", "1")
    expected = hashlib.scrypt(b"s3cret", salt=bytes.fromhex(salt), n=16384, r=8, p=1, dklen=32)
    assert digest == expected.hex()
    assert hash_secret("s3cret") != stored  # a fresh salt each time
    assert verify_secret("s3cret", stored)
    assert not verify_secret("s3cret!", stored)
    assert not verify_secret("s3cret", "garbage")


async def test_a_park_administrator_issues_clients_of_its_own_park_only(
    session: AsyncSession, caller: Caller
) -> None:
    world = await make_world(session, caller)
    other = await make_world(session, caller, code="other")
    admin = Caller(subject="admin", role=Role.PARK_ADMIN, park_id=world.park)
    mill = world.nodes["mill"]

    issued = await create_client(
        session, ClientCreate("Mill books", Role.ENTERPRISE, world.park, mill), caller=admin
    )
    assert await caller_from_api_key(session, issued.api_key) == Caller(
        subject=issued.client_id, role=Role.ENTERPRISE, park_id=world.park, enterprise_id=mill
    )
    for refused in (
        ClientCreate("x", Role.AUDITOR, other.park),
        ClientCreate("x", Role.PARK_ADMIN, world.park),
        ClientCreate("x", Role.OPERATOR),
    ):
        with pytest.raises(PermissionDeniedError):
            await create_client(session, refused, caller=admin)
    with pytest.raises(NotFoundError):  # an enterprise of another park
        await create_client(
            session,
            ClientCreate("x", Role.ENTERPRISE, world.park, other.nodes["mill"]),
            caller=caller,
        )
    with pytest.raises(MfaError, match="needs a park"):
        await create_client(session, ClientCreate("x", Role.AUDITOR), caller=caller)


async def test_the_development_token_reuses_one_operator_client(session: AsyncSession) -> None:
    settings = Settings(environment=Environment.TEST)
    first = jwt.decode(
        await development_token(session, settings=settings),
        settings.jwt_secret,
        algorithms=["HS256"],
        audience=AUDIENCE,
    )
    second = jwt.decode(
        await development_token(session, settings=settings),
        settings.jwt_secret,
        algorithms=["HS256"],
        audience=AUDIENCE,
    )
    assert first["sub"] == second["sub"]
    assert first["role"] == "operator"
    assert first["exp"] - first["iat"] == 24 * 3600
    production = Settings.model_construct(environment=Environment.PRODUCTION)
    with pytest.raises(MfaError, match="production"):
        await development_token(session, settings=production)
