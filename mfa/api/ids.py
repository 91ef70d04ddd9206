"""Opaque global ids (Relay): base64 of ``"Type:pk"``, decoded only here."""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache

from mfa.errors import NotFoundError


@lru_cache(maxsize=4096)
def to_global_id(type_name: str, pk: int) -> str:
    """Cached: a page repeats its few ends' and materials' ids on every flow."""
    return base64.urlsafe_b64encode(f"{type_name}:{pk}".encode()).decode().rstrip("=")


@lru_cache(maxsize=4096)
def decode_global_id(value: str) -> tuple[str, int] | None:
    """``(type name, primary key)`` or None when the text is not one of our ids.

    Cached: a batch of flows repeats a park's few hundred ids thousands of times."""
    try:
        padded = value + "=" * (-len(value) % 4)
        type_name, _, pk = base64.urlsafe_b64decode(padded.encode()).decode().partition(":")
        return (type_name, int(pk)) if type_name and pk.isdigit() else None
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def pk_of(value: str, *types: str, field: str) -> int:
    """The primary key behind an id that must name one of ``types``; else a NotFound error."""
    decoded = decode_global_id(value)
    if decoded is None or decoded[0] not in types:
        expected = " or ".join(types)
        raise NotFoundError(f"{value!r} is not the id of a {expected}", field=(field,))
    return decoded[1]


def cursor_for(pk: int) -> str:
    return base64.urlsafe_b64encode(f"cursor:{pk}".encode()).decode().rstrip("=")


def after_pk(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    decoded = decode_global_id(cursor)
    if decoded is None or decoded[0] != "cursor":
        raise NotFoundError(f"{cursor!r} is not a cursor this API issued", field=("after",))
    return decoded[1]
