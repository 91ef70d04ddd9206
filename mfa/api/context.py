"""The per-request context: the caller, a way to open sessions, and the request's DataLoaders.

Strawberry resolves sibling fields concurrently, and one AsyncSession cannot serve concurrent
statements; so each domain call opens its own short session from the factory, and the
DataLoaders batch the look-ups that a page could not prefetch.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from strawberry.dataloader import DataLoader
from strawberry.fastapi import BaseContext

from lca.footprint import FootprintCache
from mfa import reads
from mfa.access import Caller, Trail
from mfa.audit import audited
from mfa.settings import Settings

V = TypeVar("V")


class Context(BaseContext):
    def __init__(
        self,
        *,
        factory: async_sessionmaker[AsyncSession],
        settings: Settings,
        caller: Caller,
        footprints: FootprintCache | None = None,
    ) -> None:
        super().__init__()
        self.factory = factory
        self.footprints = footprints if footprints is not None else FootprintCache()
        self.settings = settings
        self.caller = caller
        self.trail = Trail()
        self.parks = self._loader(reads.parks_by_id)
        self.nodes = self._loader(reads.nodes_by_id)
        self.materials = self._loader(reads.materials_by_id)
        self.flows = self._loader(reads.flows_by_id)
        self.batches = self._loader(reads.batches_by_id)

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self.factory() as session:
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A transaction that commits when the block succeeds and rolls back otherwise; the
        grants it was given are stored in the audit trail with it (``mfa.audit.audited``)."""
        async with audited(self.factory, self.trail) as session:
            yield session

    def _loader(self, fetch: Callable[..., Awaitable[dict[int, V]]]) -> DataLoader[int, V | None]:
        async def load(keys: list[int]) -> list[V | None]:
            async with self.read() as session:
                found = await fetch(session, keys, caller=self.caller)
            return [found.get(key) for key in keys]

        return DataLoader(load_fn=load)
