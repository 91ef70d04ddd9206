"""Faults: the database restarting, two clients racing on one transfer, the process killed
mid-write. Each test shows that nothing acknowledged is lost and nothing is recorded twice.

The restart runs on a private PostgreSQL cluster (initdb + pg_ctl in a temporary folder, on a
free port), never on the shared server the rest of the suite uses.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import sqlalchemy as sa
from conftest import GraphQLClient, _client
from factories import World, make_world

from mfa.access import Caller
from mfa.api.ids import to_global_id
from mfa.db import create_async, create_engine, session_factory, transaction
from mfa.imports.jobs import ImportRequest, JobProgress, JobSettings, create_job, run_job
from mfa.models import ImportStatus, metadata
from mfa.settings import REPOSITORY_DATASETS

PG_BIN = Path("/usr/lib/postgresql/15/bin")
ROOT = Path(__file__).resolve().parents[2]

RECORD = """
mutation ($input: FlowsRecordInput!) {
  flowsRecord(input: $input) { batch { id } recordedCount linkedCount replayed
    userErrors { code message } }
}
"""
PARKS = "{ parks(first: 5) { totalCount nodes { code } } }"
LEAKS = ("Traceback", "SELECT", "INSERT", "asyncpg", "sqlalchemy", "psycopg", "password")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivateCluster:
    """A throw-away PostgreSQL 15 cluster; run as the ``postgres`` user when we are root."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="mfa-pg-"))
        self.data = self.folder / "data"
        self.port = _free_port()
        self.as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_owner:
            shutil.chown(self.folder, "postgres")

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.as_owner, str(PG_BIN / "pg_ctl"), "-D", str(self.data), *args],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def init(self) -> None:
        subprocess.run(
            [
                *self.as_owner,
                str(PG_BIN / "initdb"),
                "-D",
                str(self.data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        self.start()

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -c fsync=off "
            "-c full_page_writes=off -c synchronous_commit=off"
        )
        self._ctl("-l", str(self.folder / "log"), "-o", options, "-w", "start")

    def stop(self) -> None:
        self._ctl("-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self._ctl("-m", "immediate", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        name = f"faults_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@pytest.fixture(scope="module")
def private_postgres() -> Iterator[PrivateCluster]:
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL 15 binaries not found in {PG_BIN}")
    cluster = PrivateCluster()
    try:
        cluster.init()
        yield cluster
    finally:
        cluster.destroy()


async def _world(url: str, caller: Caller) -> World:
    """The schema and the factories' small park, on a database of the private cluster."""
    engine = create_engine(url)
    metadata.create_all(engine)
    engine.dispose()
    return await _world_in(url, caller)


def _rows(world: World, count: int, tag: str) -> list[dict[str, Any]]:
    """Purchases of steel coil by the mill, each with its own delivery note ``tag-i``."""
    return [
        {
            "source": to_global_id("BoundaryNode", world.nodes["supplier"]),
            "target": to_global_id("Enterprise", world.nodes["mill"]),
            "material": to_global_id("Material", world.materials["steel-coil"]),
            "quantity": str(1 + i % 50),
            "unit": "t",
            "periodStart": "2025-01-01",
            "periodEnd": "2025-01-31",
            "evidence": f"{tag}-{i}",
        }
        for i in range(count)
    ]


def _ledger(url: str) -> tuple[int, int, list[str]]:
    """(batches, flows, evidence numbers) as the database holds them, read independently."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            batches = connection.execute(sa.text("SELECT count(*) FROM record_batch")).scalar_one()
            evidence = list(connection.execute(sa.text("SELECT evidence FROM flow")).scalars())
    finally:
        engine.dispose()
    return int(batches), len(evidence), evidence


async def test_postgres_restart_fails_requests_cleanly_and_keeps_batches_whole(
    private_postgres: PrivateCluster, caller: Caller
) -> None:
    url = private_postgres.create_database()
    world = await _world(url, caller)
    rows = _rows(world, 3000, "restart")
    key = f"restart-{uuid.uuid4().hex}"
    answers: list[httpx.Response] = []
    stop = asyncio.Event()
    async for gql in _client(url):

        async def read_loop(gql: GraphQLClient) -> None:
            while not stop.is_set():
                answers.append(await gql.http.post("/graphql", json={"query": PARKS}))
                await asyncio.sleep(0.01)

        async def record(gql: GraphQLClient) -> httpx.Response:
            variables = {"input": {"flows": rows, "idempotencyKey": key}}
            return await gql.http.post("/graphql", json={"query": RECORD, "variables": variables})

        reader = asyncio.create_task(read_loop(gql))
        batch = asyncio.create_task(record(gql))
        await asyncio.sleep(0.3)
        await asyncio.to_thread(private_postgres.stop)
        await asyncio.sleep(0.5)
        await asyncio.to_thread(private_postgres.start)
        first_try = await batch
        await asyncio.sleep(0.3)
        stop.set()
        await reader

        failed = [a for a in answers if a.status_code != 200]
        assert failed, "no request saw the restart"
        for answer in [*failed, first_try]:
            assert answer.status_code in (200, 503), answer.text
            assert not any(leak in answer.text for leak in LEAKS), answer.text
        for answer in failed:
            assert answer.status_code == 503
            assert answer.headers["retry-after"] == "1"
            (error,) = answer.json()["errors"]
            assert error["extensions"]["code"] == "UNAVAILABLE"
            assert error["extensions"]["requestId"] == answer.headers["x-request-id"]

        # The batch is all or nothing, whenever the restart hit it.
        batches, flows, _ = _ledger(url)
        assert (batches, flows) in ((0, 0), (1, len(rows)))
        acknowledged = first_try.status_code == 200 and "errors" not in first_try.json()
        assert acknowledged == (batches == 1)

        # The service recovers without a restart of its own; the client's retry with the same
        # key records the batch once (or replays it).
        for _ in range(50):
            retry = await record(gql)
            if retry.status_code == 200 and "errors" not in retry.json():
                break
            await asyncio.sleep(0.2)
        payload = retry.json()["data"]["flowsRecord"]
        assert payload["userErrors"] == []
        assert payload["replayed"] == acknowledged
        assert (await gql(PARKS))["parks"]["totalCount"] == 1
    batches, flows, evidence = _ledger(url)
    assert (batches, flows) == (1, len(rows))
    assert sorted(evidence) == sorted(r["evidence"] for r in rows)


async def test_postgres_restart_during_an_import_job_leaves_no_partial_batch(
    private_postgres: PrivateCluster, caller: Caller, tmp_path: Path
) -> None:
    """The server goes down once the job is recording; the ledger then holds the whole file
    or none of it, and importing the file again completes it with no movement twice."""
    url = private_postgres.create_database()
    world = await _world(url, caller)
    count = 6000
    lines = ["external_id,movement,enterprise,partner,material,quantity,unit,date,evidence"]
    lines += [
        f"R-{i},receipt,mill,supplier,steel-coil,{1 + i % 50},t,2025-01-06," for i in range(count)
    ]
    path = tmp_path / "receipts.csv"
    path.write_text("\n".join(lines) + "\n")
    settings = JobSettings(
        datasets=REPOSITORY_DATASETS,
        import_dir=tmp_path / "imports",
        max_bytes=2**26,
        chunk_rows=500,
    )
    engine = create_async(url)
    factory = session_factory(engine)
    recording = asyncio.Event()

    def progress(state: JobProgress) -> None:
        if state.phase == "recording":
            recording.set()

    async def import_once() -> int:
        request = ImportRequest(
            park_id=world.park, profile="generic", path=path, file_name=path.name
        )
        async with transaction(factory) as session:
            job = await create_job(session, request, caller=caller, settings=settings)
        assert job.id is not None
        return job.id

    try:
        first = await import_once()
        job = asyncio.create_task(
            run_job(factory, first, caller=caller, settings=settings, on_progress=progress)
        )
        await asyncio.wait_for(recording.wait(), timeout=60)
        await asyncio.to_thread(private_postgres.stop)
        with contextlib.suppress(Exception):  # the job fails, or cannot even say so
            await job
        await asyncio.to_thread(private_postgres.start)
        batches, flows, _ = _ledger(url)
        assert (batches, flows) in ((0, 0), (1, count))

        await engine.dispose()  # connections of the stopped server are gone
        again = await import_once()
        finished = await run_job(factory, again, caller=caller, settings=settings)
        assert finished.status is ImportStatus.SUCCEEDED, finished.message
    finally:
        await engine.dispose()
    engine_sync = create_engine(url)
    try:
        with engine_sync.connect() as connection:
            quantities = connection.execute(sa.text("SELECT quantity FROM flow")).scalars().all()
            keys = connection.execute(
                sa.text("SELECT count(DISTINCT natural_key) FROM imported_movement")
            ).scalar_one()
    finally:
        engine_sync.dispose()
    assert len(quantities) == count
    assert keys == count
    assert sorted(quantities) == sorted(1000.0 * (1 + i % 50) for i in range(count))


async def _retrying(gql: GraphQLClient, variables: dict[str, Any]) -> dict[str, Any]:
    """Post until the service stops answering 503 (SQLite refuses a second writer whose
    snapshot went stale; the client retries, as Retry-After tells it to)."""
    for _ in range(50):
        response = await gql.http.post("/graphql", json={"query": RECORD, "variables": variables})
        if response.status_code != 503:
            body: dict[str, Any] = response.json()
            assert "errors" not in body, body
            return dict(body["data"]["flowsRecord"])
        await asyncio.sleep(0.05)
    raise AssertionError("still unavailable after 50 tries")


async def test_two_clients_sending_one_batch_with_one_key_record_it_once(
    gql: GraphQLClient, database_url: str, caller: Caller
) -> None:
    world = await _world_in(database_url, caller)
    variables = {"input": {"flows": _rows(world, 200, "twice"), "idempotencyKey": "erp-42"}}
    first, second = await asyncio.gather(_retrying(gql, variables), _retrying(gql, variables))
    assert first["batch"]["id"] == second["batch"]["id"]
    assert sorted([first["replayed"], second["replayed"]]) == [False, True]
    batches, flows, _ = _ledger(database_url)
    assert (batches, flows) == (1, 200)


async def test_both_sides_reporting_one_transfer_at_once_make_one_flow_and_its_confirmation(
    gql: GraphQLClient, database_url: str, caller: Caller
) -> None:
    world = await _world_in(database_url, caller)

    def report(reporter: str, quantity: str, unit: str, month: int) -> dict[str, Any]:
        return {
            "source": to_global_id("Enterprise", world.nodes["mill"]),
            "target": to_global_id("Enterprise", world.nodes["stamper"]),
            "reportingParty": to_global_id("Enterprise", world.nodes[reporter]),
            "material": to_global_id("Material", world.materials["steel-scrap"]),
            "quantity": quantity,
            "unit": unit,
            "periodStart": f"2025-{month:02d}-01",
            "periodEnd": f"2025-{month:02d}-28",
        }

    # Twelve months of one transfer, each month reported by both sides at the same moment.
    sender = [report("mill", "12.5", "t", m) for m in range(1, 13)]
    receiver = [report("stamper", "12500", "kg", m) for m in range(1, 13)]
    results = await asyncio.gather(
        *(_retrying(gql, {"input": {"flows": [row]}}) for row in [*sender, *receiver])
    )
    # recordedCount counts new ledger entries, linkedCount the reports that confirmed one.
    assert sum(r["recordedCount"] for r in results) == 12
    assert sum(r["linkedCount"] for r in results) == 12
    engine = create_engine(database_url)
    with engine.connect() as connection:
        flows = connection.execute(
            sa.text("SELECT period_start, quantity FROM flow ORDER BY period_start")
        ).all()
        confirmations = connection.execute(
            sa.text("SELECT count(*), count(DISTINCT flow_id) FROM flow_confirmation")
        ).one()
    engine.dispose()
    assert len(flows) == 12
    assert all(quantity == 12_500 for _, quantity in flows)
    assert tuple(confirmations) == (12, 12)


async def _world_in(url: str, caller: Caller) -> World:
    engine = create_async(url)
    try:
        async with transaction(session_factory(engine)) as session:
            return await make_world(session, caller)
    finally:
        await engine.dispose()


WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from datetime import date
    from mfa.access import SYSTEM
    from mfa.db import create_async, session_factory, transaction
    from mfa.ledger import FlowCreate, record_flows

    async def main(url, source, target, material):
        engine = create_async(url)
        rows = [
            FlowCreate(source_id=source, target_id=target, material_id=material,
                       quantity=str(1 + i % 50), unit="t", period_start=date(2025, 3, 1),
                       period_end=date(2025, 3, 31), evidence=f"killed-{i}")
            for i in range(10_000)
        ]
        for round in range(1_000):  # batch after batch, until killed
            async with transaction(session_factory(engine)) as session:
                await record_flows(session, rows, caller=SYSTEM, idempotency_key=f"kill-{round}")
                print("writing", flush=True)

    asyncio.run(main(sys.argv[1], *map(int, sys.argv[2:])))
    """
)


def test_a_writer_killed_mid_batch_leaves_the_ledger_as_it_was(
    database_url: str, caller: Caller
) -> None:
    world = asyncio.run(_world_in(database_url, caller))
    before = _ledger(database_url)
    assert before[:2] == (0, 0)
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            WRITER,
            database_url,
            str(world.nodes["supplier"]),
            str(world.nodes["mill"]),
            str(world.materials["steel-coil"]),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        # Wait for its first batch to commit, then kill it inside the next one (a batch of
        # 10,000 rows takes about a second here; the rows are built before it starts).
        for _ in range(400):
            assert process.poll() is None, process.communicate()[1].decode()
            if _ledger(database_url)[0] > before[0]:
                break
            time.sleep(0.05)
        time.sleep(0.3)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL
    batches, flows, _evidence = _ledger(database_url)
    # Whole batches only: those committed before the kill, nothing of the one in flight.
    assert batches >= 1
    assert flows == batches * 10_000
    engine = create_engine(database_url)
    with engine.connect() as connection:
        per_batch = connection.execute(
            sa.text("SELECT count(*), count(DISTINCT evidence) FROM flow GROUP BY batch_id")
        ).all()
    engine.dispose()
    assert [tuple(r) for r in per_batch] == [(10_000, 10_000)] * batches
