"""API credentials: clients, hashed secrets, access tokens, and the ``Caller`` they stand for.

A client gets a ``client_id`` and a secret once (``mfa client create`` or ``apiClientCreate``).
It exchanges them at ``POST /auth/token`` (OAuth 2.0 client credentials, RFC 6749 §4.4) for
a bearer token, or sends ``X-API-Key: <client_id>.<secret>`` on every request.

* Secrets are stored as scrypt(secret, 16-byte salt, N=2^14, r=8, p=1, 32 bytes) (RFC 7914;
  the parameters are those OWASP recommends as a minimum) and compared in constant time.
* Tokens are JWTs (RFC 7519) signed HS256 with ``Settings.jwt_secret``; they carry the role,
  park and enterprise, so a request needs no database look-up except a partner's shares;
  they expire after ``Settings.token_lifetime`` seconds.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

import jwt
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mfa.access import Action, Caller, Role, authorize
from mfa.db import savepoint
from mfa.errors import AuthenticationError, DuplicateError, MfaError, NotFoundError
from mfa.models import ApiClient, FootprintShare, Material, NodeKind, ParkNode
from mfa.registry import get_park, slugify
from mfa.settings import Environment, Settings

AUDIENCE = "circular-mfa"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
_client_t = ApiClient.__table__  # type: ignore[attr-defined]
_share_t = FootprintShare.__table__  # type: ignore[attr-defined]


def hash_secret(secret: str) -> str:
    """``scrypt$n$r$p$salt$hash`` (hex) of ``secret`` with a fresh random salt."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, dklen=32, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${salt.hex()}${digest.hex()}"


def verify_secret(secret: str, stored: str) -> bool:
    """Whether ``secret`` hashes to ``stored``; constant-time in the digest comparison."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        computed = hashlib.scrypt(
            secret.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32
        )
    except ValueError:
        return False
    return hmac.compare_digest(computed, bytes.fromhex(digest))


@dataclass(frozen=True, slots=True)
class ClientCreate:
    name: str
    role: Role
    park_id: int | None = None
    enterprise_id: int | None = None


@dataclass(frozen=True, slots=True)
class IssuedCredentials:
    """Shown once: only the hash of the secret is kept."""

    client_id: str
    client_secret: str
    name: str
    role: Role
    park_id: int | None
    enterprise_id: int | None

    @property
    def api_key(self) -> str:
        return f"{self.client_id}.{self.client_secret}"


async def create_client(
    session: AsyncSession, data: ClientCreate, *, caller: Caller
) -> IssuedCredentials:
    """Register a client of a park (or an operator) and return its credentials.

    A park administrator issues enterprise, auditor and partner clients of its own park; only
    the operator issues operators and park administrators.
    """
    name = data.name.strip()
    if not 0 < len(name) <= 200:
        raise MfaError("name must be 1 to 200 characters", field=("name",))
    if data.role is Role.OPERATOR:
        if data.park_id is not None or data.enterprise_id is not None:
            raise MfaError("an operator client has no park or enterprise", field=("park",))
        authorize(caller, Action.ADMINISTER)
    else:
        if data.park_id is None:
            raise MfaError(f"a {data.role.value} client needs a park", field=("park",))
        park = await get_park(session, data.park_id)
        if data.role is Role.PARK_ADMIN:
            authorize(caller, Action.ADMINISTER)
        else:
            authorize(caller, Action.ADMINISTER, park_id=park.id)
    if data.role is Role.ENTERPRISE:
        node = (
            None if data.enterprise_id is None else await session.get(ParkNode, data.enterprise_id)
        )
        if node is None or node.kind is not NodeKind.ENTERPRISE or node.park_id != data.park_id:
            raise NotFoundError(
                "an enterprise client needs an enterprise of its park", field=("enterprise",)
            )
    elif data.enterprise_id is not None:
        raise MfaError(
            f"a {data.role.value} client is not bound to an enterprise", field=("enterprise",)
        )
    client_id = f"{slugify(name)[:40]}-{secrets.token_hex(4)}"
    secret = secrets.token_urlsafe(32)
    session.add(
        ApiClient(
            client_id=client_id,
            name=name,
            role=data.role,
            park_id=data.park_id,
            enterprise_id=data.enterprise_id,
            secret_hash=hash_secret(secret),
            created_by=caller.subject,
        )
    )
    try:
        async with savepoint(session):
            await session.flush()
    except IntegrityError as exc:  # 32 random bits collided: ask again
        raise DuplicateError("client id collision, try again", field=("name",)) from exc
    return IssuedCredentials(client_id, secret, name, data.role, data.park_id, data.enterprise_id)


async def share_footprint(
    session: AsyncSession,
    *,
    caller: Caller,
    enterprise_id: int,
    material_id: int,
    partner_client_id: str,
) -> int:
    """Let a partner client read the footprint of an enterprise's product; returns the share id.

    The enterprise itself (or its park's administrator) decides; sharing twice is harmless.
    """
    node = await session.get(ParkNode, enterprise_id)
    if node is None or node.kind is not NodeKind.ENTERPRISE:
        raise NotFoundError(f"no enterprise with id {enterprise_id}", field=("enterprise",))
    authorize(caller, Action.RECORD, park_id=node.park_id, node_id=node.id)
    if await session.get(Material, material_id) is None:
        raise NotFoundError(f"no material with id {material_id}", field=("material",))
    partner = (
        await session.execute(
            sa.select(_client_t.c.id, _client_t.c.role, _client_t.c.park_id).where(
                _client_t.c.client_id == partner_client_id
            )
        )
    ).first()
    if partner is None or Role(partner.role) is not Role.PARTNER or partner.park_id != node.park_id:
        raise NotFoundError(
            f"no partner client {partner_client_id!r} in the enterprise's park", field=("partner",)
        )
    key = {"enterprise_id": node.id, "material_id": material_id, "partner_id": partner.id}
    existing = (
        await session.execute(
            sa.select(_share_t.c.id).where(*(_share_t.c[k] == v for k, v in key.items()))
        )
    ).scalar()
    if existing is not None:
        return int(existing)
    result = await session.execute(
        sa.insert(_share_t).returning(_share_t.c.id), [{**key, "created_by": caller.subject}]
    )
    return int(result.scalar_one())


def issue_token(
    *,
    client_id: str,
    role: Role,
    park_id: int | None,
    enterprise_id: int | None,
    settings: Settings,
    lifetime: int | None = None,
) -> tuple[str, int]:
    """A signed access token and its lifetime in seconds."""
    seconds = lifetime or settings.token_lifetime
    now = int(time.time())
    claims = {
        "sub": client_id,
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + seconds,
        "role": role.value,
        "park": park_id,
        "ent": enterprise_id,
    }
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256"), seconds


async def _client(session: AsyncSession, client_id: str) -> sa.Row[tuple[object, ...]] | None:
    return (
        await session.execute(sa.select(_client_t).where(_client_t.c.client_id == client_id))
    ).first()


async def exchange_credentials(
    session: AsyncSession, client_id: str, client_secret: str, *, settings: Settings
) -> tuple[str, int]:
    """The client-credentials grant: a token for a valid id and secret."""
    row = await _client(session, client_id)
    if row is None or not verify_secret(client_secret, row.secret_hash):
        raise AuthenticationError("unknown client id or wrong secret", field=("client_id",))
    return issue_token(
        client_id=row.client_id,
        role=Role(row.role),
        park_id=row.park_id,
        enterprise_id=row.enterprise_id,
        settings=settings,
    )


async def _caller(
    session: AsyncSession,
    *,
    client_id: str,
    role: Role,
    park_id: int | None,
    enterprise_id: int | None,
) -> Caller:
    shares: frozenset[tuple[int, int]] = frozenset()
    if role is Role.PARTNER:
        rows = await session.execute(
            sa.select(_share_t.c.enterprise_id, _share_t.c.material_id)
            .join(_client_t, _client_t.c.id == _share_t.c.partner_id)
            .where(_client_t.c.client_id == client_id)
        )
        shares = frozenset((r.enterprise_id, r.material_id) for r in rows)
    return Caller(
        subject=client_id, role=role, park_id=park_id, enterprise_id=enterprise_id, shares=shares
    )


async def caller_from_token(session: AsyncSession, token: str, *, settings: Settings) -> Caller:
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret,
            algorithms=["HS256"],
            audience=AUDIENCE,
            options={"require": ["exp", "sub", "aud"]},
        )
        role = Role(claims["role"])
        return await _caller(
            session,
            client_id=str(claims["sub"]),
            role=role,
            park_id=claims.get("park"),
            enterprise_id=claims.get("ent"),
        )
    except jwt.ExpiredSignatureError as exc:
        raise AuthenticationError("the access token has expired: get a new one") from exc
    except (jwt.InvalidTokenError, KeyError, ValueError) as exc:
        raise AuthenticationError(f"invalid access token: {exc}") from exc


class _KeyCache:
    """Callers of recently verified API keys, so each request does not pay a scrypt (~60 ms).

    Keyed by SHA-256 of the whole key; entries live ``ttl`` seconds (a new share reaches a
    partner's API key within that time)."""

    def __init__(self, size: int = 1024, ttl: float = 60.0) -> None:
        self._size, self._ttl = size, ttl
        self._lock = threading.Lock()
        self._items: OrderedDict[bytes, tuple[float, Caller]] = OrderedDict()

    def get(self, key: bytes) -> Caller | None:
        with self._lock:
            found = self._items.get(key)
            if found is None or found[0] < time.monotonic():
                self._items.pop(key, None)
                return None
            return found[1]

    def put(self, key: bytes, caller: Caller) -> None:
        with self._lock:
            self._items[key] = (time.monotonic() + self._ttl, caller)
            while len(self._items) > self._size:
                self._items.popitem(last=False)


_verified_keys = _KeyCache()


async def caller_from_api_key(session: AsyncSession, api_key: str) -> Caller:
    digest = hashlib.sha256(api_key.encode()).digest()
    cached = _verified_keys.get(digest)
    if cached is not None:
        return cached
    client_id, _, secret = api_key.partition(".")
    row = await _client(session, client_id) if secret else None
    if row is None or not verify_secret(secret, row.secret_hash):
        raise AuthenticationError("unknown API key: expected <client_id>.<secret>")
    caller = await _caller(
        session,
        client_id=row.client_id,
        role=Role(row.role),
        park_id=row.park_id,
        enterprise_id=row.enterprise_id,
    )
    _verified_keys.put(digest, caller)
    return caller


DEV_CLIENT_NAME = "development operator"


async def development_token(session: AsyncSession, *, settings: Settings) -> str:
    """A token of the development operator client, created on first use (never in production).

    The client's own secret is random and never shown: the token is minted directly."""
    if settings.environment is Environment.PRODUCTION:
        raise MfaError("no development token in production", field=("environment",))
    row = (
        await session.execute(
            sa.select(_client_t.c.client_id).where(
                _client_t.c.name == DEV_CLIENT_NAME, _client_t.c.role == Role.OPERATOR.value
            )
        )
    ).first()
    if row is None:
        dev = Caller(subject="mfa serve (development)", role=Role.OPERATOR)
        issued = await create_client(
            session, ClientCreate(name=DEV_CLIENT_NAME, role=Role.OPERATOR), caller=dev
        )
        client_id = issued.client_id
    else:
        client_id = row.client_id
    token, _ = issue_token(
        client_id=client_id,
        role=Role.OPERATOR,
        park_id=None,
        enterprise_id=None,
        settings=settings,
        lifetime=86_400,
    )
    return token
