"""``POST /imports`` and GraphQL ``importJob`` / ``importCommit`` over the real app.

Quantities are converted by hand (1 t = 1000 kg); the flows are read back through the
``ImportJob`` operation document partners use.
"""

from __future__ import annotations

import asyncio
import csv
import gc
import io
from pathlib import Path
from typing import Any

import pytest
from conftest import GraphQLClient
from factories import World, make_world

from mfa.access import SYSTEM
from mfa.api.ids import decode_global_id, to_global_id
from mfa.app import create_app
from mfa.db import session_factory, transaction
from mfa.imports import jobs, lease
from mfa.models import ImportJob, ImportStatus
from mfa.settings import Environment, Settings

OPERATIONS = Path(__file__).resolve().parents[3] / "graphql" / "operations"
IMPORT_JOB = (OPERATIONS / "ImportJob.graphql").read_text()
IMPORT_COMMIT = (OPERATIONS / "ImportCommit.graphql").read_text()
HEADER = "external_id,movement,enterprise,partner,material,quantity,unit,date"
ROWS = [
    "A-1,receipt,mill,supplier,steel-coil,2,t,2025-01-06",
    "A-2,issue,mill,customer,steel-coil,500,kg,2025-01-07",
]


@pytest.fixture(autouse=True)
def _import_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Uploads and rejected rows in the test's folder (set before the app reads settings)."""
    monkeypatch.setenv("MFA_IMPORT_DIR", str(tmp_path / "imports"))


async def _world(gql: GraphQLClient) -> World:
    async with transaction(session_factory(gql.app.state.engine)) as session:
        return await make_world(session, SYSTEM)


async def submit(
    gql: GraphQLClient, content: bytes, name: str = "moves.csv", **form: str
) -> tuple[int, dict[str, Any]]:
    response = await gql.http.post(
        "/imports", files={"file": (name, content, "text/csv")}, data=form
    )
    return response.status_code, response.json()


async def finished(gql: GraphQLClient, job_id: str) -> dict[str, Any]:
    """The job once it left PENDING/RUNNING (it runs in a task of the app's event loop)."""
    for _ in range(200):
        job: dict[str, Any] = (await gql(IMPORT_JOB, {"id": job_id}))["importJob"]
        if job["status"] not in ("PENDING", "RUNNING"):
            return job
        await asyncio.sleep(0.05)
    raise AssertionError(f"import job {job_id} did not finish: {job}")


def _csv(*rows: str) -> bytes:
    return ("\n".join([HEADER, *rows]) + "\n").encode()


async def test_a_dry_run_records_nothing_until_committed(gql: GraphQLClient) -> None:
    world = await _world(gql)
    park = to_global_id("Park", world.park)
    status, body = await submit(gql, _csv(*ROWS), profile="generic", park=park, dry_run="true")
    assert status == 202, body
    job = await finished(gql, body["id"])
    assert job["status"] == "VALIDATED"
    assert (job["rowsTotal"], job["flows"]["totalCount"], job["batch"]) == (2, 0, None)
    committed = await gql(IMPORT_COMMIT, {"input": {"job": body["id"]}})
    assert committed["importCommit"]["userErrors"] == []
    job = await finished(gql, body["id"])
    assert job["status"] == "SUCCEEDED", job
    assert job["flowsRecorded"] == 2
    assert job["batch"]["source"] == "generic: moves.csv"
    flows = job["flows"]["nodes"]
    assert [(f["source"]["code"], f["target"]["code"]) for f in flows] == [
        ("supplier", "mill"),
        ("mill", "customer"),
    ]
    assert [f["quantity"] for f in flows] == [2 * 1000.0, 500.0]
    again = await gql(IMPORT_COMMIT, {"input": {"job": body["id"]}})
    (error,) = again["importCommit"]["userErrors"]
    assert "only a finished dry run" in error["message"]


async def test_a_running_job_reports_its_progress_and_a_finished_one_none(
    gql: GraphQLClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job is held after its (only) chunk is recorded, before it commits: ``importJob``
    then answers RUNNING with the rows done so far, read from the server's process."""
    gate = asyncio.Event()
    chunks = jobs._ReadAhead.next
    calls = 0

    async def held_after_first_chunk(self: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            await asyncio.wait_for(gate.wait(), timeout=10)
        return await chunks(self)

    monkeypatch.setattr(jobs._ReadAhead, "next", held_after_first_chunk)
    world = await _world(gql)
    status, body = await submit(
        gql, _csv(*ROWS), profile="generic", park=to_global_id("Park", world.park)
    )
    assert status == 202, body
    query = (
        "query($id: ID!) { importJob(id: $id) { status progress { phase rowsDone rowsTotal } } }"
    )
    for _ in range(200):
        job = (await gql(query, {"id": body["id"]}))["importJob"]
        if job["progress"] is not None:
            break
        await asyncio.sleep(0.05)
    gate.set()
    assert job == {
        "status": "RUNNING",
        "progress": {"phase": "recording", "rowsDone": 2, "rowsTotal": None},
    }
    done = await finished(gql, body["id"])
    assert done["status"] == "SUCCEEDED"
    after = (await gql(query, {"id": body["id"]}))["importJob"]
    assert after["progress"] is None


async def test_good_rows_only_offers_the_rejected_rows_as_a_csv_download(
    gql: GraphQLClient,
) -> None:
    world = await _world(gql)
    bad = "A-3,receipt,mill,supplier,steel-coil,2,bags,2025-01-06"
    status, body = await submit(
        gql,
        _csv(ROWS[0], bad, ROWS[1]),
        profile="generic",
        park=to_global_id("Park", world.park),
        good_rows_only="true",
    )
    assert status == 202, body
    job = await finished(gql, body["id"])
    assert (job["status"], job["flowsRecorded"], job["rowsRejected"]) == ("SUCCEEDED", 2, 1)
    assert [(e["row"], e["column"], e["value"]) for e in job["errors"]] == [(3, "unit", "bags")]
    download = await gql.http.get(job["rejectedRowsUrl"])
    assert download.status_code == 200
    rows = list(csv.DictReader(io.StringIO(download.content.decode("utf-8-sig"))))
    assert [(r["row"], r["external_id"]) for r in rows] == [("3", "A-3")]
    assert rows[0]["error"].startswith("unit: unit not known to profile generic")


async def test_a_repeated_idempotency_key_returns_the_first_job(gql: GraphQLClient) -> None:
    world = await _world(gql)
    form = {"profile": "generic", "park": to_global_id("Park", world.park)}
    first = await submit(gql, _csv(*ROWS), idempotency_key="jan-2025", **form)
    second = await submit(gql, _csv(*ROWS), idempotency_key="jan-2025", **form)
    assert first[1]["id"] == second[1]["id"]
    other = await submit(gql, _csv(ROWS[0]), idempotency_key="jan-2025", **form)
    assert other[0] == 422
    assert other[1]["errors"][0]["field"] == ["idempotencyKey"]


async def test_bad_submissions_are_refused_naming_the_field(gql: GraphQLClient) -> None:
    world = await _world(gql)
    park = to_global_id("Park", world.park)
    status, body = await submit(gql, _csv(*ROWS), profile="nope", park=park)
    assert status == 422
    assert body["errors"][0]["field"] == ["profile"]
    status, body = await submit(gql, _csv(*ROWS), profile="sap_mb51", park=park)
    assert status == 422
    assert body["errors"][0]["field"] == ["enterprise"]
    status, body = await submit(gql, _csv(*ROWS), profile="generic", park="bm9wZTox")
    assert status == 422
    assert body["errors"][0]["field"] == ["park"]
    assert (await gql(IMPORT_JOB, {"id": to_global_id("ImportJob", 999)}))["importJob"] is None


async def test_an_import_job_is_a_node(gql: GraphQLClient) -> None:
    world = await _world(gql)
    _, body = await submit(
        gql, _csv(*ROWS), profile="generic", park=to_global_id("Park", world.park), dry_run="1"
    )
    await finished(gql, body["id"])
    query = "query($id: ID!) { node(id: $id) { id ... on ImportJob { status rowsTotal } } }"
    node = (await gql(query, {"id": body["id"]}))["node"]
    assert node == {"id": body["id"], "status": "VALIDATED", "rowsTotal": 2}


async def test_jobs_whose_process_died_answer_failed_at_startup_and_when_asked(
    gql: GraphQLClient, database_url: str
) -> None:
    world = await _world(gql)
    form = {"profile": "generic", "park": to_global_id("Park", world.park), "dry_run": "1"}
    ids = [(await submit(gql, _csv(row), **form))[1]["id"] for row in ROWS]
    for job_id in ids:
        await finished(gql, job_id)
    async with transaction(session_factory(gql.app.state.engine)) as session:
        for job_id in ids:  # as a process killed mid-run leaves them: RUNNING, no runner
            decoded = decode_global_id(job_id)
            assert decoded is not None
            row = await session.get(ImportJob, decoded[1])
            assert row is not None
            row.status = ImportStatus.RUNNING
    asked = (await gql(IMPORT_JOB, {"id": ids[0]}))["importJob"]
    assert (asked["status"], asked["message"]) == ("FAILED", lease.INTERRUPTED)

    restarted = create_app(Settings(database_url=database_url, environment=Environment.TEST))
    swept_id = decode_global_id(ids[1])
    assert swept_id is not None
    try:
        # read from the table: importJob would settle the job itself
        async with (
            restarted.router.lifespan_context(restarted),
            session_factory(restarted.state.engine)() as session,
        ):
            swept = await session.get(ImportJob, swept_id[1])
    finally:
        gc.unfreeze()  # the lifespan freezes the heap for a server's workers, not for tests
    assert swept is not None
    assert (swept.status, swept.message) == (ImportStatus.FAILED, lease.INTERRUPTED)
