"""Import jobs end to end on both databases: good files recorded once, bad files refused with
every bad cell named, and the ledger unchanged by anything refused.

Expected quantities are converted here by hand (1 t = 1000 kg, 1 MWh = 1000 kWh), never read
back from the service.
"""

from __future__ import annotations

import asyncio
import gc
import os
import pickle
import unicodedata
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd
import pytest
import sqlalchemy as sa
from factories import World, make_world
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from mfa.access import SYSTEM, Caller
from mfa.db import create_async, session_factory, transaction
from mfa.imports import jobs, lease
from mfa.imports.jobs import ImportRequest, JobSettings, create_job, rejected_path, run_job
from mfa.ledger import append_checked, flow_checker
from mfa.models import ImportJob, ImportStatus
from mfa.settings import REPOSITORY_DATASETS

GENERIC_HEADER = "external_id,movement,enterprise,partner,material,quantity,unit,date,evidence"
LEDGER = ("flow", "flow_confirmation", "record_batch", "imported_movement")


@dataclass
class Env:
    factory: async_sessionmaker[AsyncSession]
    world: World
    tmp: Path
    settings: JobSettings
    caller: Caller

    async def run(
        self,
        path: Path,
        *,
        profile: str = "generic",
        enterprise: str | None = None,
        on_progress: jobs.ProgressCallback | None = None,
        **options: Any,
    ) -> ImportJob:
        request = ImportRequest(
            park_id=self.world.park,
            profile=profile,
            path=path,
            file_name=path.name,
            enterprise_id=self.world.nodes[enterprise] if enterprise else None,
            **options,
        )
        async with transaction(self.factory) as session:
            job = await create_job(session, request, caller=self.caller, settings=self.settings)
        assert job.id is not None
        return await run_job(
            self.factory,
            job.id,
            caller=self.caller,
            settings=self.settings,
            on_progress=on_progress,
        )

    async def counts(self) -> dict[str, int]:
        async with self.factory() as session:
            return {
                table: int(
                    (await session.execute(sa.text(f"SELECT count(*) FROM {table}"))).scalar_one()
                )
                for table in LEDGER
            }

    async def flows(self) -> list[sa.Row[Any]]:
        async with self.factory() as session:
            rows = await session.execute(
                sa.text(
                    "SELECT source_id, target_id, material_id, quantity, unit, period_start, "
                    "reporting_party_id, evidence, batch_id FROM flow ORDER BY id"
                )
            )
            return list(rows)


@pytest.fixture
async def env(database_url: str, tmp_path: Path, caller: Caller) -> AsyncIterator[Env]:
    engine: AsyncEngine = create_async(database_url)
    factory = session_factory(engine)
    async with transaction(factory) as session:
        world = await make_world(session, SYSTEM)
    settings = JobSettings(
        datasets=REPOSITORY_DATASETS,
        import_dir=tmp_path / "imports",
        max_bytes=128 * 2**20,
        chunk_rows=3,  # several chunks even in a small file
    )
    yield Env(factory, world, tmp_path, settings, caller)
    await engine.dispose()


def _csv(tmp: Path, name: str, lines: list[str], encoding: str = "utf-8") -> Path:
    path = tmp / name
    text = "\n".join(lines) + "\n"
    path.write_bytes(_cp1258(text) if encoding == "cp1258" else text.encode(encoding))
    return path


def _cp1258(text: str) -> bytes:
    """Text as Windows-1258 writes Vietnamese: a precomposed vowel where the code page has
    one (ê, ô, ư...), followed by the tone as a combining mark (ế = ê + U+0301)."""
    out = bytearray()
    for char in text:
        try:
            out += char.encode("cp1258")
        except UnicodeEncodeError:
            base, *marks = unicodedata.normalize("NFD", char)
            out += unicodedata.normalize("NFC", base + "".join(marks[:-1])).encode("cp1258")
            out += marks[-1].encode("cp1258")
    return bytes(out)


GOOD = [
    GENERIC_HEADER,
    "GR-1,receipt,mill,supplier,steel-coil,12.5,t,2025-01-06,GR 0001",
    "GI-1,issue,stamper,customer,parts,800,kg,2025-01-07,",
    "SC-1,scrap,stamper,landfill,steel-scrap,1.2,t,2025-01-08,",
    "TR-1,transfer,mill,stamper,steel-coil,3,t,2025-01-09,DO 77",
    "GR-2,receipt,assembler,grid,electricity,2.5,MWh,2025-01-31,",
]


def _expected(world: World) -> list[tuple[int, int, int, float, str]]:
    """The rows of GOOD as flows: (source, target, material, canonical quantity, unit)."""
    n, m = world.nodes, world.materials
    return [
        (n["supplier"], n["mill"], m["steel-coil"], 12.5 * 1000, "kg"),
        (n["stamper"], n["customer"], m["parts"], 800.0, "kg"),
        (n["stamper"], n["landfill"], m["steel-scrap"], 1.2 * 1000, "kg"),
        (n["mill"], n["stamper"], m["steel-coil"], 3 * 1000, "kg"),
        (n["grid"], n["assembler"], m["electricity"], 2.5 * 1000, "kWh"),
    ]


def _flow_tuples(rows: list[sa.Row[Any]]) -> list[tuple[int, int, int, float, str]]:
    return [(r.source_id, r.target_id, r.material_id, round(r.quantity, 6), r.unit) for r in rows]


async def test_an_import_job_s_writes_are_in_the_audit_trail(env: Env) -> None:
    job = await env.run(_csv(env.tmp, "moves.csv", GOOD))
    assert job.status is ImportStatus.SUCCEEDED, job.message
    async with env.factory() as session:
        events = (
            await session.execute(
                sa.text("SELECT subject, action, park_id, allowed, operation FROM audit_event")
            )
        ).all()
    assert events
    assert {(e.subject, e.action, e.park_id, bool(e.allowed)) for e in events} == {
        (env.caller.subject, "record", env.world.park, True)
    }
    assert {e.operation for e in events} == {f"import job {job.id}"}


async def test_a_generic_file_becomes_one_batch_of_flows_in_their_direction(env: Env) -> None:
    job = await env.run(_csv(env.tmp, "moves.csv", GOOD))
    assert job.status is ImportStatus.SUCCEEDED, job.message
    assert (job.rows_total, job.flows_recorded, job.rows_rejected) == (5, 5, 0)
    flows = await env.flows()
    assert _flow_tuples(flows) == _expected(env.world)
    assert {f.batch_id for f in flows} == {job.batch_id}
    assert str(flows[0].period_start) == "2025-01-06"
    assert flows[0].reporting_party_id == env.world.nodes["mill"]
    async with env.factory() as session:
        batch = (
            await session.execute(
                sa.text("SELECT kind, source, content_hash, recorded_by FROM record_batch")
            )
        ).one()
    assert batch.kind == "file"
    assert batch.source == "generic: moves.csv"
    assert batch.content_hash == job.file_hash
    assert batch.recorded_by == "tester"


async def test_a_bad_row_in_the_last_chunk_takes_back_the_chunks_recorded_before_it(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file is read once: the first chunk (rows 2-4) is written before the bad row 7 of
    the last chunk is seen, and the rollback of the job's transaction takes it back."""
    written: list[int] = []
    append = jobs.append_checked

    async def counted(session: AsyncSession, rows: Any, **options: Any) -> Any:
        written.append(len(rows))
        return await append(session, rows, **options)

    monkeypatch.setattr(jobs, "append_checked", counted)
    lines = [*GOOD, "X-1,receipt,mill,supplier,steel-coil,abc,t,2025-01-06,"]
    job = await env.run(_csv(env.tmp, "late.csv", lines))
    assert job.status is ImportStatus.FAILED
    assert [(e["row"], e["column"]) for e in job.errors] == [(7, "quantity")]
    assert written == [3]  # rows 2-4; nothing after the bad row was seen
    assert job.batch_id is None
    assert await env.counts() == dict.fromkeys(LEDGER, 0)


async def test_the_next_chunk_is_read_while_this_one_is_written(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each chunk's inserts overlap the reading and checking of the next (``_ReadAhead``):
    the write of a chunk sees the next chunk read without having asked for it. Waiting is
    bounded, so a job that reads only on demand fails here instead of hanging."""
    read: list[int] = []
    seen_when_writing: list[int] = []
    chunks = jobs._FileRun.chunks
    append = jobs.append_checked

    def counted_chunks(run: jobs._FileRun) -> Any:
        for chunk in chunks(run):
            read.append(len(chunk.cells))
            yield chunk

    async def waiting_append(session: AsyncSession, rows: Any, **options: Any) -> Any:
        for _ in range(500):  # the first write waits for the second (last) chunk
            if seen_when_writing or len(read) == 2:
                break
            await asyncio.sleep(0.01)
        seen_when_writing.append(len(read))
        return await append(session, rows, **options)

    monkeypatch.setattr(jobs._FileRun, "chunks", counted_chunks)
    monkeypatch.setattr(jobs, "append_checked", waiting_append)
    lines = [*GOOD, "GR-3,receipt,mill,supplier,steel-coil,1,t,2025-01-10,"]
    job = await env.run(_csv(env.tmp, "three.csv", lines))
    assert job.status is ImportStatus.SUCCEEDED
    assert read == [3, 3]  # six rows in chunks of three
    assert seen_when_writing == [2, 2]


async def test_a_job_collects_garbage_rarely_and_leaves_the_threshold_as_it_found_it(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = gc.get_threshold()
    during: list[tuple[int, int, int]] = []
    append = jobs.append_checked

    async def watched(session: AsyncSession, rows: Any, **options: Any) -> Any:
        during.append(gc.get_threshold())
        return await append(session, rows, **options)

    monkeypatch.setattr(jobs, "append_checked", watched)
    job = await env.run(_csv(env.tmp, "moves.csv", GOOD))
    assert job.status is ImportStatus.SUCCEEDED
    assert during == [(100_000, 50, 100)] * 2
    assert gc.get_threshold() == before


def test_jobs_ending_in_any_order_restore_the_threshold_once_the_last_ends() -> None:
    before = gc.get_threshold()
    first, second = jobs._rare_collections(), jobs._rare_collections()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    assert gc.get_threshold() == (100_000, 50, 100)  # the second job still runs
    second.__exit__(None, None, None)
    assert gc.get_threshold() == before


async def test_a_flow_whose_batch_row_never_comes_is_refused_at_commit(env: Env) -> None:
    """A flow's reference to its batch is checked at commit, so that an import can write
    its batch row last (``jobs._Batch``): the flow is written, and the missing batch row
    fails the commit, not the insert."""
    written: list[int] = []

    async def write_without_batch() -> None:
        async with transaction(env.factory) as session:
            batch = await jobs._Batch.reserve(session)
            flow = env.world.flow("supplier", "mill", "steel-coil", 5, reporter="mill")
            checker = await flow_checker(
                session,
                caller=env.caller,
                node_ids=env.world.nodes.values(),
                material_ids=env.world.materials.values(),
            )
            checks = checker.check([flow])
            await append_checked(session, list(checks.passed.values()), batch_id=batch.id)
            count = await session.execute(sa.text("SELECT count(*) FROM flow"))
            written.append(count.scalar_one())

    with pytest.raises(sa.exc.IntegrityError):
        await write_without_batch()
    assert written == [1]
    assert await env.counts() == dict.fromkeys(LEDGER, 0)


async def test_importing_the_same_file_twice_records_nothing_the_second_time(env: Env) -> None:
    path = _csv(env.tmp, "moves.csv", GOOD)
    await env.run(path)
    before = await env.counts()
    again = await env.run(path)
    assert again.status is ImportStatus.SUCCEEDED
    assert (again.flows_recorded, again.rows_already_imported) == (0, 5)
    assert again.batch_id is None
    assert await env.counts() == before


async def test_movements_another_import_recorded_meanwhile_fail_the_job_and_keep_nothing(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two jobs importing one movement at once both find it new; the second to insert its
    natural key meets the unique constraint of ``imported_movement`` and records nothing.
    Simulated here by a look-up that misses what the first import recorded."""
    path = _csv(env.tmp, "moves.csv", GOOD)
    await env.run(path)
    before = await env.counts()

    async def nothing_imported(*_: Any) -> dict[tuple[int, str], str]:
        return {}

    monkeypatch.setattr(jobs, "_imported", nothing_imported)
    again = await env.run(path)
    assert again.status is ImportStatus.FAILED
    assert again.message is not None
    assert "another import recorded some of these movements meanwhile" in again.message
    assert (again.flows_recorded, again.batch_id) == (0, None)
    assert await env.counts() == before


async def test_an_overlapping_later_export_records_only_its_new_movements(env: Env) -> None:
    await env.run(_csv(env.tmp, "week1.csv", GOOD[:4]))
    later = [GENERIC_HEADER, *GOOD[2:], "GI-2,issue,stamper,customer,parts,5,kg,2025-02-01,"]
    job = await env.run(_csv(env.tmp, "week2.csv", later))
    assert (job.flows_recorded, job.rows_already_imported) == (3, 2)
    flows = await env.flows()
    assert len(flows) == 6
    assert _flow_tuples(flows)[:5] == _expected(env.world)


async def test_a_movement_imported_with_other_figures_is_rejected(env: Env) -> None:
    await env.run(_csv(env.tmp, "first.csv", GOOD[:2]))
    changed = [GENERIC_HEADER, "GR-1,receipt,mill,supplier,steel-coil,13,t,2025-01-06,GR 0001"]
    before = await env.counts()
    job = await env.run(_csv(env.tmp, "changed.csv", changed))
    assert job.status is ImportStatus.FAILED
    assert job.errors[0]["row"] == 2
    assert "reverse the recorded flow" in job.errors[0]["reason"]
    assert await env.counts() == before


async def test_a_bad_file_writes_nothing_and_names_every_bad_cell(env: Env) -> None:
    lines = [
        GENERIC_HEADER,
        GOOD[1],
        "X-1,receipt,mill,supplier,steel-coil,12;5,t,2025-01-06,",  # not a number
        "X-2,receipt,mill,supplier,steel-coil,1,bags,2025-01-06,",  # unit unknown
        "X-3,issue,nobody,customer,parts,1,kg,06/13/2025,",  # no such enterprise; US date
        "X-4,gift,mill,customer,parts,1,kg,2025-01-06,",  # movement type unknown
        "X-5,receipt,mill,supplier,water,1,kg,2025-01-06,",  # kg of water
        "X-6,transfer,mill,landfill,steel-coil,1,t,2025-01-06,",  # transfer to a boundary
        "X-7,receipt,mill,supplier,unobtainium,1,t,2025-01-06,",  # no such material
    ]
    job = await env.run(_csv(env.tmp, "bad.csv", lines))
    assert job.status is ImportStatus.FAILED
    assert "nothing was recorded" in (job.message or "")
    found = {(e["row"], e["column"], e["value"]) for e in job.errors}
    assert found == {
        (3, "quantity", "12;5"),
        (4, "unit", "bags"),
        (5, "date", "06/13/2025"),
        (6, "movement", "gift"),
        (7, "unit", "kg"),
        (8, "partner", "landfill"),
        (9, "material", "unobtainium"),
    }
    assert job.rows_rejected == 7
    assert all(e["reason"] for e in job.errors)
    assert await env.counts() == dict.fromkeys(LEDGER, 0)


async def test_good_rows_only_records_them_and_returns_the_rejected_rows_as_csv(
    env: Env,
) -> None:
    lines = [*GOOD[:3], "X-1,receipt,mill,supplier,steel-coil,abc,t,2025-01-06,", GOOD[3]]
    job = await env.run(_csv(env.tmp, "mixed.csv", lines), good_rows_only=True)
    assert job.status is ImportStatus.SUCCEEDED
    assert (job.flows_recorded, job.rows_rejected) == (3, 1)
    assert job.id is not None
    rejected = pd.read_csv(
        rejected_path(env.settings.import_dir, job.id), dtype=str, encoding="utf-8-sig"
    )
    assert rejected["row"].tolist() == ["4"]
    assert rejected["external_id"].tolist() == ["X-1"]
    assert rejected["error"].str.startswith("quantity: not a number").all()


VALUED_HEADER = f"{GENERIC_HEADER},value,currency"
NEGATIVE_VALUE = "GI-9,issue,stamper,customer,parts,5,kg,2025-01-10,,-5,VND"


async def test_a_row_the_ledger_refuses_is_rejected_by_validation_with_its_row(
    env: Env,
) -> None:
    """A negative invoiced value passes the file's cell checks (a signed number) but not the
    ledger's: validation, which runs the ledger's checks, rejects that row alone, so a dry run
    already names it and good rows only records the others."""
    lines = [VALUED_HEADER, *(f"{g},," for g in GOOD[1:3]), NEGATIVE_VALUE, f"{GOOD[3]},,"]
    path = _csv(env.tmp, "valued.csv", lines)
    dry = await env.run(path, dry_run=True, good_rows_only=True)
    assert dry.status is ImportStatus.VALIDATED, dry.message
    assert [(e["row"], e["column"], e["value"]) for e in dry.errors] == [(4, "value", "GI-9")]
    assert "negative" in dry.errors[0]["reason"]
    job = await env.run(path, good_rows_only=True)
    assert job.status is ImportStatus.SUCCEEDED, job.message
    assert (job.flows_recorded, job.rows_rejected) == (3, 1)
    assert _flow_tuples(await env.flows()) == _expected(env.world)[:3]
    assert job.id is not None
    rejected = pd.read_csv(
        rejected_path(env.settings.import_dir, job.id), dtype=str, encoding="utf-8-sig"
    )
    assert rejected["external_id"].tolist() == ["GI-9"]
    assert rejected["error"].str.contains("negative").all()


async def test_a_file_with_a_row_the_ledger_refuses_records_nothing(env: Env) -> None:
    lines = [VALUED_HEADER, *(f"{g},," for g in GOOD[1:]), NEGATIVE_VALUE]
    job = await env.run(_csv(env.tmp, "valued.csv", lines))
    assert job.status is ImportStatus.FAILED
    assert [e["row"] for e in job.errors] == [7]
    assert await env.counts() == dict.fromkeys(LEDGER, 0)


async def test_a_dry_run_counts_what_would_be_recorded_and_writes_nothing(env: Env) -> None:
    job = await env.run(_csv(env.tmp, "moves.csv", GOOD), dry_run=True)
    assert job.status is ImportStatus.VALIDATED
    assert job.rows_total == 5
    assert "would record 5" in (job.message or "")
    assert await env.counts() == dict.fromkeys(LEDGER, 0)


async def test_cp1258_vietnamese_text_is_refused_by_default_and_read_when_named(
    env: Env,
) -> None:
    evidence = "Phiếu xuất kho số 1"
    lines = [GENERIC_HEADER, f"GR-1,receipt,mill,supplier,steel-coil,1,t,2025-01-06,{evidence}"]
    path = _csv(env.tmp, "vn.csv", lines, encoding="cp1258")
    refused = await env.run(path)
    assert refused.status is ImportStatus.FAILED
    assert "not UTF-8" in (refused.message or "")
    assert "cp1258" in (refused.message or "")
    assert await env.counts() == dict.fromkeys(LEDGER, 0)
    job = await env.run(path, encoding="cp1258")
    assert job.status is ImportStatus.SUCCEEDED, job.message
    (flow,) = await env.flows()
    assert flow.evidence == evidence  # NFC, as typed in this file


async def test_utf8_with_bom_reads_the_first_column_by_its_name(env: Env) -> None:
    path = env.tmp / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + ("\n".join(GOOD) + "\n").encode())
    job = await env.run(path)
    assert job.status is ImportStatus.SUCCEEDED, job.message
    assert job.flows_recorded == 5


async def test_semicolons_decimal_commas_thousands_and_day_first_dates(env: Env) -> None:
    lines = [
        GENERIC_HEADER.replace(",", ";"),
        "A-1;receipt;mill;supplier;steel-coil;1.234,5;kg;06.01.2025;",
        "A-2;receipt;mill;supplier;steel-coil;2,25;t;07/01/2025;",
        "A-3;issue;mill;customer;steel-coil;12 000;kg;2025-01-08;",
    ]
    job = await env.run(_csv(env.tmp, "eu.csv", lines))
    assert job.status is ImportStatus.SUCCEEDED, job.errors
    flows = await env.flows()
    assert [f.quantity for f in flows] == pytest.approx([1234.5, 2250.0, 12000.0])
    assert [str(f.period_start) for f in flows] == ["2025-01-06", "2025-01-07", "2025-01-08"]


async def test_thousands_separators_in_a_comma_separated_file(env: Env) -> None:
    lines = [
        GENERIC_HEADER,
        'A-1,receipt,mill,supplier,steel-coil,"1,234.5",kg,2025-01-06,',
        'A-2,receipt,mill,supplier,steel-coil,"12,34",kg,2025-01-06,',
    ]
    job = await env.run(_csv(env.tmp, "us.csv", lines))
    assert job.status is ImportStatus.FAILED
    assert [(e["row"], e["value"]) for e in job.errors] == [(3, "12,34")]
    fixed = await env.run(_csv(env.tmp, "us2.csv", lines[:2]))
    (flow,) = await env.flows()
    assert fixed.status is ImportStatus.SUCCEEDED
    assert flow.quantity == pytest.approx(1234.5)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(b"", "is empty", id="empty file"),
        pytest.param((GENERIC_HEADER + "\n").encode(), "header but no rows", id="header only"),
        pytest.param(
            b"external_id,movement,enterprise,partner,material,quantity,date\nA,receipt,mill,"
            b"supplier,steel-coil,1,2025-01-01\n",
            "lacks the column(s) 'unit'",
            id="missing column",
        ),
        pytest.param(
            b"PK\x03\x04not really a workbook", "named as CSV text but holds an Excel", id="zip"
        ),
    ],
)
async def test_unreadable_files_get_a_clear_answer(env: Env, content: bytes, expected: str) -> None:
    path = env.tmp / "file.csv"
    path.write_bytes(content)
    job = await env.run(path)
    assert job.status is ImportStatus.FAILED
    assert expected in (job.message or ""), job.message
    assert await env.counts() == dict.fromkeys(LEDGER, 0)


async def test_a_csv_named_xlsx_is_refused(env: Env) -> None:
    path = _csv(env.tmp, "moves.xlsx", GOOD)
    job = await env.run(path)
    assert job.status is ImportStatus.FAILED
    assert "named as an Excel workbook (xlsx) but holds CSV text" in (job.message or "")


async def test_duplicate_rows_inside_one_file_are_refused_naming_the_first(env: Env) -> None:
    lines = [*GOOD[:3], GOOD[1], *GOOD[3:5], GOOD[1]]
    job = await env.run(_csv(env.tmp, "dup.csv", lines))
    assert job.status is ImportStatus.FAILED
    assert [(e["row"], e["column"]) for e in job.errors] == [(4, "external_id"), (7, "external_id")]
    assert all("repeats the movement of row 2" in e["reason"] for e in job.errors)
    assert await env.counts() == dict.fromkeys(LEDGER, 0)


async def test_repeats_are_named_the_same_whatever_the_chunk_size(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GR-1 at rows 2, 4, 7 and TR-1 at rows 6, 8: one chunk, or chunks of 3 and of 2,
    # so that the repeats fall inside a chunk and across chunk boundaries.
    lines = [*GOOD[:3], GOOD[1], *GOOD[3:5], GOOD[1], GOOD[4]]
    path = _csv(env.tmp, "dup.csv", lines)
    expected = [
        (4, "GR-1", "repeats the movement of row 2"),
        (7, "GR-1", "repeats the movement of row 2"),
        (8, "TR-1", "repeats the movement of row 6"),
    ]
    for rows in (100, 3, 2):
        monkeypatch.setattr(env, "settings", replace(env.settings, chunk_rows=rows))
        job = await env.run(path, dry_run=True)
        assert [(e["row"], e["value"], e["reason"].split(" (")[0]) for e in job.errors] == (
            expected
        ), rows


async def test_good_rows_only_records_a_movement_repeated_across_chunks_once(env: Env) -> None:
    lines = [*GOOD[:3], GOOD[1], *GOOD[3:], GOOD[1], GOOD[3]]
    job = await env.run(_csv(env.tmp, "dup.csv", lines), good_rows_only=True)
    assert job.status is ImportStatus.SUCCEEDED, job.message
    assert (job.flows_recorded, job.rows_rejected) == (5, 3)
    assert _flow_tuples(await env.flows()) == _expected(env.world)


async def test_a_200_mb_file_is_refused_by_size_before_it_is_read(env: Env) -> None:
    path = env.tmp / "huge.csv"
    with path.open("wb") as handle:  # sparse: no 200 MB written to disk
        handle.truncate(200 * 2**20)
    job = await env.run(path)
    assert job.status is ImportStatus.FAILED
    assert "200.0 MiB; the limit is 128 MiB" in (job.message or "")
    assert await env.counts() == dict.fromkeys(LEDGER, 0)


def _workbook(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


async def test_an_xlsx_with_several_sheets_reads_the_one_with_the_profiles_columns(
    env: Env,
) -> None:
    from datetime import datetime

    header = GENERIC_HEADER.split(",")
    rows: list[list[object]] = [
        ["GR-1", "receipt", "mill", "supplier", "steel-coil", 12.5, "t", datetime(2025, 1, 6)],
        ["GI-1", "issue", "stamper", "customer", "parts", 800, "kg", datetime(2025, 1, 7)],
    ]
    path = _workbook(
        env.tmp / "book.xlsx",
        {"Notes": [["exported by ERP"]], "Movements": [header, *rows]},
    )
    job = await env.run(path)
    assert job.status is ImportStatus.SUCCEEDED, job.message
    assert [f.quantity for f in await env.flows()] == pytest.approx([12500.0, 800.0])
    two = _workbook(env.tmp / "two.xlsx", {"Jan": [header, rows[0]], "Feb": [header, rows[1]]})
    refused = await env.run(two)
    assert refused.status is ImportStatus.FAILED
    assert "'Jan', 'Feb' all have the profile's columns: name the sheet" in (refused.message or "")
    chosen = await env.run(two, sheet="Feb")
    assert chosen.status is ImportStatus.SUCCEEDED
    assert (chosen.flows_recorded, chosen.rows_already_imported) == (0, 1)


async def test_a_parquet_file_imports_like_its_csv(env: Env) -> None:
    frame = pd.read_csv(_csv(env.tmp, "moves.csv", GOOD), dtype=str, keep_default_na=False)
    frame["quantity"] = frame["quantity"].astype(float)
    frame["date"] = pd.to_datetime(frame["date"])
    path = env.tmp / "moves.parquet"
    frame.to_parquet(path)
    job = await env.run(path)
    assert job.status is ImportStatus.SUCCEEDED, job.message
    assert _flow_tuples(await env.flows()) == _expected(env.world)


async def test_progress_counts_the_rows_read_after_each_chunk(env: Env) -> None:
    """Five rows in chunks of three: progress after the first chunk and after the second,
    each once its rows are checked (and, unless a dry run, recorded). A CSV file's total is
    not known while it is read once."""
    seen: list[jobs.JobProgress] = []
    path = _csv(env.tmp, "moves.csv", GOOD)
    dry = await env.run(path, dry_run=True, on_progress=seen.append)
    assert dry.status is ImportStatus.VALIDATED
    assert seen == [jobs.JobProgress("validating", 3), jobs.JobProgress("validating", 5)]
    seen.clear()
    await env.run(path, on_progress=seen.append)
    assert seen == [jobs.JobProgress("recording", 3), jobs.JobProgress("recording", 5)]
    assert jobs.PROGRESS == {}  # a finished job reports no progress


async def test_a_parquet_file_s_progress_knows_its_total_from_its_metadata(env: Env) -> None:
    frame = pd.read_csv(_csv(env.tmp, "moves.csv", GOOD), dtype=str, keep_default_na=False)
    path = env.tmp / "moves.parquet"
    frame.to_parquet(path)
    seen: list[jobs.JobProgress] = []
    job = await env.run(path, on_progress=seen.append)
    assert job.status is ImportStatus.SUCCEEDED, job.message
    assert seen == [jobs.JobProgress("recording", 3, 5), jobs.JobProgress("recording", 5, 5)]


SAP_HEADER = (
    "Material Document;Material Doc.Year;Material Doc.Item;Movement Type;Material;Plant;"
    "Vendor;Customer;Quantity;Base Unit of Measure;Posting Date;Reference"
)


async def test_sap_mb51_rows_map_movement_types_units_and_signed_quantities(env: Env) -> None:
    lines = [
        SAP_HEADER,
        "5000000001;2025;1;101;steel-coil;1000;supplier;;12,500;TO;06.01.2025;PO 4500001",
        "4900000001;2025;1;601;parts;1000;;customer;-800;KG;07.01.2025;",
        "4900000002;2025;1;551;steel-scrap;1000;;;-1,2;TO;08.01.2025;",
        "4900000003;2025;1;261;steel-coil;1000;;;-5;TO;08.01.2025;",
    ]
    job = await env.run(_csv(env.tmp, "mb51.csv", lines), profile="sap_mb51", enterprise="stamper")
    assert job.status is ImportStatus.SUCCEEDED, job.errors
    assert job.rows_ignored == 1  # 261, consumption inside the plant
    n, m = env.world.nodes, env.world.materials
    assert _flow_tuples(await env.flows()) == (
        [
            (n["supplier"], n["stamper"], m["steel-coil"], 12.5 * 1000, "kg"),
            (n["stamper"], n["customer"], m["parts"], 800.0, "kg"),
            (n["stamper"], n["landfill"], m["steel-scrap"], 1.2 * 1000, "kg"),
        ]
    )


async def test_sap_reversal_documents_are_refused_with_what_to_do(env: Env) -> None:
    lines = [SAP_HEADER, "5000000009;2025;1;102;steel-coil;1000;supplier;;5;TO;06.01.2025;"]
    job = await env.run(_csv(env.tmp, "rev.csv", lines), profile="sap_mb51", enterprise="mill")
    assert job.status is ImportStatus.FAILED
    assert job.errors[0]["column"] == "Movement Type"
    assert "flowReverse" in job.errors[0]["reason"]


async def test_odoo_stock_moves_map_by_locations(env: Env) -> None:
    lines = [
        "ID,Reference,Product,Quantity,Unit of Measure,Date,Source Location,"
        "Destination Location,Partner,Status",
        "101,WH/IN/00001,steel-coil,2,Tonnes,2025-01-06 08:00:00,Partner Locations/Vendors,"
        "WH/Stock,supplier,Done",
        "102,WH/INT/00002,steel-coil,2,Tonnes,2025-01-06 09:00:00,WH/Stock,WH/Stock/Shelf 1,,Done",
        "103,WH/OUT/00003,parts,40,kg,2025-01-07 10:00:00,WH/Stock,"
        "Partner Locations/Customers,Customers outside,Done",
    ]
    job = await env.run(
        _csv(env.tmp, "odoo.csv", lines), profile="odoo_stock_move", enterprise="assembler"
    )
    assert job.status is ImportStatus.SUCCEEDED, job.errors
    assert job.rows_ignored == 1
    n, m = env.world.nodes, env.world.materials
    assert _flow_tuples(await env.flows()) == (
        [
            (n["supplier"], n["assembler"], m["steel-coil"], 2000.0, "kg"),
            (n["assembler"], n["customer"], m["parts"], 40.0, "kg"),
        ]
    )


async def test_a_job_killed_mid_import_leaves_the_ledger_unchanged_and_is_failed_by_a_sweep(
    env: Env, database_url: str
) -> None:
    import asyncio
    import sys

    lines = [GENERIC_HEADER] + [
        f"K-{i},receipt,mill,supplier,steel-coil,{i % 50 + 1},t,2025-01-06," for i in range(6000)
    ]
    path = _csv(env.tmp, "big.csv", lines)
    request = ImportRequest(
        park_id=env.world.park, profile="generic", path=path, file_name=path.name
    )
    async with transaction(env.factory) as session:
        job = await create_job(session, request, caller=env.caller, settings=env.settings)
    caller = pickle.dumps(env.caller)
    script = f"""
import asyncio, pickle, sys
from pathlib import Path
from mfa.db import create_async, session_factory
from mfa.imports.jobs import JobSettings, run_job
from mfa.settings import REPOSITORY_DATASETS

def report(state):
    if state.phase == "recording":
        print(state.rows_done, flush=True)

async def main():
    engine = create_async({database_url!r})
    settings = JobSettings(datasets=REPOSITORY_DATASETS, import_dir=Path({str(env.tmp)!r}),
                           max_bytes=2**30, chunk_rows=500)
    await run_job(session_factory(engine), {job.id}, caller=pickle.loads({caller!r}),
                  settings=settings, on_progress=report)
    print("finished", flush=True)

asyncio.run(main())
"""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert process.stdout is not None
    written = 0
    while written < 1000:  # two chunks of 500 rows written, the batch not committed
        line = (await process.stdout.readline()).decode().strip()
        assert line.isdigit(), line
        written = int(line)
    assert await lease.sweep(env.factory) == []  # its runner is alive: left running
    assert (await _job(env, job.id)).status is ImportStatus.RUNNING
    process.kill()
    await process.wait()
    assert await env.counts() == dict.fromkeys(LEDGER, 0)
    assert await lease.sweep(env.factory) == [job.id]
    interrupted = await _job(env, job.id)
    assert (interrupted.status, interrupted.message) == (ImportStatus.FAILED, lease.INTERRUPTED)
    assert interrupted.finished_at is not None
    assert await lease.sweep(env.factory) == []


async def _job(env: Env, job_id: int | None) -> ImportJob:
    async with env.factory() as session:
        job = await session.get(ImportJob, job_id)
        assert job is not None
        return job
