"""What the benchmarks share: fresh databases, a generated park and ledger, timing and tables.

The benchmarks print figures; nothing here asserts a speed. Every measurement runs on a fresh
database: a new SQLite file under ``bench/.work/`` or a new PostgreSQL database on the server
named by ``MFA_BENCH_POSTGRES_URL`` (default: the test server's ``test`` database, used only
to create and drop ``mfa_bench_*`` databases). Both are removed when the measurement ends.

The generated ledger is a park of 20 enterprises, 7 boundary nodes and 10 materials. About
70% of the rows are boundary flows (purchases, utilities, sales, disposal) and 30% transfers
between enterprises; a third of those transfer rows are the counterparty's report of a
transfer reported earlier (0.05 to 1.5 batches later in the stream), so the ledger's linking
path runs both inside a batch and against flows already recorded. A single batch keeps fewer
counterparty reports (those placed past its end are cut): the scripts print the actual mix.
Units vary (t, kg, m3, L, MWh, kWh); a tenth of the counterparty reports disagree by more
than the 2% tolerance.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from mfa.access import Caller, Role
from mfa.api.ids import to_global_id
from mfa.auth import issue_token
from mfa.db import create_async, create_engine, session_factory, transaction
from mfa.ledger import FlowCreate, StockCreate, record_flows, record_stocks
from mfa.models import BatchKind, MaterialKind, NodeKind, metadata
from mfa.registry import (
    MaterialCreate,
    NodeCreate,
    ParkCreate,
    create_material,
    create_node,
    create_park,
)
from mfa.settings import Settings
from mfa.units import Dimension

ROOT = Path(__file__).resolve().parents[1]
WORKDIR = ROOT / "bench" / ".work"
PG_ADMIN_URL = os.environ.get("MFA_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ("sqlite", "postgresql")
BENCH_CALLER = Caller(subject="bench", role=Role.OPERATOR)


def bench_headers(settings: Settings) -> dict[str, str]:
    """Credentials of the benchmark's HTTP requests: a bearer token of ``BENCH_CALLER``."""
    token, _ = issue_token(
        client_id=BENCH_CALLER.subject,
        role=Role.OPERATOR,
        park_id=None,
        enterprise_id=None,
        settings=settings,
    )
    return {"Authorization": f"Bearer {token}"}


FIRST_MONTH = date(2023, 1, 1)
MONTHS = 24


# --- command line, figures and tables -------------------------------------------------------


def parse_args(
    description: str, extra: Callable[[argparse.ArgumentParser], None] | None = None
) -> argparse.Namespace:
    """``--backend`` and ``--quick``, plus whatever ``extra`` adds for one script."""
    parser = argparse.ArgumentParser(description=description)
    if extra is not None:
        extra(parser)
    parser.add_argument(
        "--backend",
        choices=[*BACKENDS, "both"],
        default="both",
        help="database to measure on (default: both)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, a few seconds (the smoke test's mode)"
    )
    return parser.parse_args()


def backends(choice: str) -> list[str]:
    """The backends to run; with ``both``, PostgreSQL is skipped with a note when it is down."""
    wanted = list(BACKENDS) if choice == "both" else [choice]
    if "postgresql" in wanted:
        reason = postgres_unavailable()
        if reason is not None:
            if choice == "postgresql":
                raise SystemExit(reason)
            print(f"note: skipping PostgreSQL: {reason}")
            wanted.remove("postgresql")
    return wanted


def describe_machine() -> str:
    return (
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"SQLAlchemy {sa.__version__}, {sys.platform}; {load_average()}"
    )


def load_average() -> str:
    """Other processes share the machine: the figures are only as quiet as this."""
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"


def rate(rows: int, seconds: float) -> float:
    return rows / seconds if seconds > 0 else math.inf


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0–100) by linear interpolation between closest ranks."""
    ordered = sorted(samples)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True, slots=True)
class Latency:
    """Latencies of one scenario in milliseconds."""

    samples: tuple[float, ...]

    @property
    def p50(self) -> float:
        return percentile(self.samples, 50)

    @property
    def p99(self) -> float:
        return percentile(self.samples, 99)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.samples)


def fmt_int(value: float) -> str:
    return f"{value:,.0f}"


def fmt_ms(value: float) -> str:
    return f"{value:.2f}"


def fmt_ratio(value: float) -> str:
    return f"{value:.2f}x"


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A plain-text table with right-aligned figures, readable in a terminal and in Markdown."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        padded = [
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "| " + " | ".join(padded) + " |"

    print()
    print(f"## {title}")
    print(line(headers))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print(line(row))
    sys.stdout.flush()


class Stopwatch:
    """Elapsed wall time since creation, for the progress lines the scripts print."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started


class SqlTimer:
    """Counts the SQL statements an engine runs and the time spent in them (driver + database),
    from SQLAlchemy's ``before_cursor_execute`` to its ``after_cursor_execute``."""

    def __init__(self) -> None:
        self.statements = 0
        self.seconds = 0.0

    def attach(self, engine: AsyncEngine) -> None:
        sa.event.listen(engine.sync_engine, "before_cursor_execute", self._before)
        sa.event.listen(engine.sync_engine, "after_cursor_execute", self._after)

    def _before(self, connection: sa.Connection, *_: Any) -> None:
        connection.info.setdefault("bench_started", []).append(time.perf_counter())

    def _after(self, connection: sa.Connection, *_: Any) -> None:
        self.seconds += time.perf_counter() - connection.info["bench_started"].pop()
        self.statements += 1


def best_of(runs: int, work: Callable[[], object]) -> float:
    """The shortest of ``runs`` timings of ``work()``, in seconds."""
    timings = []
    for _ in range(runs):
        clock = Stopwatch()
        work()
        timings.append(clock.seconds)
    return min(timings)


def log(message: str, clock: Stopwatch | None = None) -> None:
    prefix = f"[{clock.seconds:7.1f}s] " if clock is not None else ""
    print(f"{prefix}{message}", flush=True)


# --- fresh databases -------------------------------------------------------------------------


def _pg_admin() -> psycopg.Connection:
    url = sa.make_url(PG_ADMIN_URL).set(drivername="postgresql")
    return psycopg.connect(
        url.render_as_string(hide_password=False), autocommit=True, connect_timeout=3
    )


def postgres_unavailable() -> str | None:
    try:
        with _pg_admin():
            return None
    except psycopg.OperationalError as exc:
        return f"PostgreSQL not reachable at {PG_ADMIN_URL}: {str(exc).strip().splitlines()[0]}"


@contextmanager
def fresh_database(backend: str) -> Iterator[str]:
    """A new, empty database with the schema and the append-only triggers; removed afterwards."""
    name = f"mfa_bench_{uuid.uuid4().hex[:10]}"
    if backend == "sqlite":
        WORKDIR.mkdir(parents=True, exist_ok=True)
        path = WORKDIR / f"{name}.db"
        url = f"sqlite:///{path}"
    else:
        with _pg_admin() as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        url = (
            sa.make_url(PG_ADMIN_URL)
            .set(drivername="postgresql", database=name)
            .render_as_string(hide_password=False)
        )
    try:
        engine = create_engine(url)
        metadata.create_all(engine)
        engine.dispose()
        yield url
    finally:
        if backend == "sqlite":
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
        else:
            with _pg_admin() as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def analyze(url: str) -> None:
    """After a bulk load on PostgreSQL, refresh the planner's statistics as autovacuum would.
    SQLite is left as the service leaves it: without ``ANALYZE``."""
    if sa.make_url(url).get_backend_name() != "postgresql":
        return
    engine = create_engine(url)
    with engine.connect() as connection:
        connection.execute(sa.text("ANALYZE"))
        connection.commit()
    engine.dispose()


# --- the generated park ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MaterialSpec:
    code: str
    name: str
    kind: MaterialKind
    dimension: Dimension
    hs_code: str | None = None
    ewc_code: str | None = None


MATERIALS: tuple[MaterialSpec, ...] = (
    MaterialSpec(
        "steel-coil", "Hot-rolled steel coil", MaterialKind.PRODUCT, Dimension.MASS, "7208"
    ),
    MaterialSpec(
        "pp-pellets", "Polypropylene pellets", MaterialKind.PRODUCT, Dimension.MASS, "3902"
    ),
    MaterialSpec("chemicals", "Process chemicals", MaterialKind.PRODUCT, Dimension.MASS, "3824"),
    MaterialSpec("parts", "Stamped parts", MaterialKind.PRODUCT, Dimension.MASS, "8708"),
    MaterialSpec("slag", "Furnace slag", MaterialKind.BY_PRODUCT, Dimension.MASS, "2618"),
    MaterialSpec(
        "steel-scrap", "Steel scrap", MaterialKind.WASTE, Dimension.MASS, "7204", "12 01 01"
    ),
    MaterialSpec(
        "sludge", "Treatment sludge", MaterialKind.WASTE, Dimension.MASS, None, "19 08 14"
    ),
    MaterialSpec("electricity", "Electricity", MaterialKind.ENERGY, Dimension.ENERGY),
    MaterialSpec("water", "Fresh water", MaterialKind.WATER, Dimension.VOLUME),
    MaterialSpec("wastewater", "Wastewater", MaterialKind.WASTE, Dimension.VOLUME),
)

BOUNDARY: tuple[tuple[str, str, NodeKind], ...] = (
    ("suppliers", "Outside suppliers", NodeKind.SUPPLIER),
    ("water-utility", "Water utility", NodeKind.SUPPLIER),
    ("grid", "National grid", NodeKind.GRID),
    ("customers", "Customers outside", NodeKind.CUSTOMER),
    ("landfill", "Landfill", NodeKind.LANDFILL),
    ("wwtp", "Wastewater treatment", NodeKind.WASTEWATER_TREATMENT),
    ("recycler", "Scrap recycler", NodeKind.RECYCLER),
)

ISIC = ("2410", "2592", "2930", "2220", "2011", "1709", "2511", "2819", "3100", "1050")

# (boundary node, material, direction): "in" = boundary → enterprise, "out" = enterprise → it.
BOUNDARY_FLOWS: tuple[tuple[str, str, str], ...] = (
    ("suppliers", "steel-coil", "in"),
    ("suppliers", "pp-pellets", "in"),
    ("suppliers", "chemicals", "in"),
    ("grid", "electricity", "in"),
    ("water-utility", "water", "in"),
    ("customers", "parts", "out"),
    ("customers", "slag", "out"),
    ("landfill", "sludge", "out"),
    ("wwtp", "wastewater", "out"),
    ("recycler", "steel-scrap", "out"),
)
TRANSFER_MATERIALS = ("steel-coil", "parts", "slag", "steel-scrap", "pp-pellets")

# Reported units per dimension, with the factor from the canonical unit to the reported one.
UNITS: dict[Dimension, tuple[tuple[str, float], ...]] = {
    Dimension.MASS: (("t", 0.001), ("kg", 1.0)),
    Dimension.VOLUME: (("m3", 1.0), ("L", 1000.0)),
    Dimension.ENERGY: (("MWh", 0.001), ("kWh", 1.0)),
}


@dataclass(frozen=True, slots=True)
class World:
    """Ids of the generated park's nodes and materials."""

    park_id: int
    enterprises: tuple[int, ...]
    boundary: dict[str, int]
    materials: dict[str, int]
    dimensions: dict[str, Dimension] = field(
        default_factory=lambda: {m.code: m.dimension for m in MATERIALS}
    )

    def node_global_id(self, pk: int) -> str:
        kind = "Enterprise" if pk in self.enterprises else "BoundaryNode"
        return to_global_id(kind, pk)


async def create_world(url: str, *, enterprises: int = 20) -> World:
    """The park, its enterprises and boundary nodes, and the catalogue, through the registry."""
    engine = create_async(url)
    try:
        async with transaction(session_factory(engine)) as session:
            park = await create_park(
                session,
                ParkCreate(code="bench-park", name="Benchmark park", country="VN"),
                caller=BENCH_CALLER,
            )
            assert park.id is not None
            enterprise_ids = []
            for index in range(enterprises):
                node = await create_node(
                    session,
                    NodeCreate(
                        park_id=park.id,
                        code=f"enterprise-{index:02d}",
                        name=f"Enterprise {index:02d}",
                        isic_code=ISIC[index % len(ISIC)],
                    ),
                    caller=BENCH_CALLER,
                )
                assert node.id is not None
                enterprise_ids.append(node.id)
            boundary = {}
            for code, name, kind in BOUNDARY:
                node = await create_node(
                    session,
                    NodeCreate(park_id=park.id, code=code, name=name, kind=kind),
                    caller=BENCH_CALLER,
                )
                assert node.id is not None
                boundary[code] = node.id
            materials = {}
            for spec in MATERIALS:
                material = await create_material(
                    session,
                    MaterialCreate(
                        code=spec.code,
                        name=spec.name,
                        kind=spec.kind,
                        dimension=spec.dimension,
                        hs_code=spec.hs_code,
                        ewc_code=spec.ewc_code,
                    ),
                    caller=BENCH_CALLER,
                )
                assert material.id is not None
                materials[spec.code] = material.id
    finally:
        await engine.dispose()
    return World(park.id, tuple(enterprise_ids), boundary, materials)


def month(index: int) -> tuple[date, date]:
    """The first and last day of the ``index``-th month after ``FIRST_MONTH``."""
    year, month0 = divmod(FIRST_MONTH.month - 1 + index, 12)
    start = date(FIRST_MONTH.year + year, month0 + 1, 1)
    following = date(start.year + (start.month == 12), start.month % 12 + 1, 1)
    return start, following - timedelta(days=1)


def _amount(rng: random.Random, canonical: float, dimension: Dimension) -> tuple[str, str]:
    unit, factor = rng.choice(UNITS[dimension])
    return f"{canonical * factor:.3f}", unit


def generate_flows(world: World, count: int, *, batch_size: int, seed: int = 7) -> list[FlowCreate]:
    """``count`` reports in recording order, spread evenly over ``MONTHS`` months.

    Each row is a boundary flow (70%) or a transfer report (30%); one transfer in two is also
    reported by its target, so a third of the transfer rows are counterparty reports placed
    0.05 to 1.5 batches after the first report: some in the same batch, some in the next.
    """
    rng = random.Random(seed)
    keyed: list[tuple[float, FlowCreate]] = []
    positions = round(count * 0.9)  # 1.11 rows per position: 0.78 × 1 + 0.22 × 1.5
    position = 0
    while len(keyed) < count * 1.2:  # counterparts may land past the end: generate a margin
        start, end = month(min(MONTHS - 1, position * MONTHS // positions))
        evidence = f"INV-{start:%Y%m}-{position:06d}" if rng.random() < 0.5 else None
        uncertainty = 0.05 if rng.random() < 0.2 else None
        if rng.random() < 0.7 / 0.9:  # rows: 70% boundary, 20% transfers, 10% counterparts
            node_code, material, direction = rng.choice(BOUNDARY_FLOWS)
            enterprise = rng.choice(world.enterprises)
            boundary = world.boundary[node_code]
            source, target = (boundary, enterprise) if direction == "in" else (enterprise, boundary)
            dimension = world.dimensions[material]
            quantity, unit = _amount(rng, rng.lognormvariate(8, 1.2), dimension)
            keyed.append(
                (
                    position,
                    FlowCreate(
                        source_id=source,
                        target_id=target,
                        material_id=world.materials[material],
                        quantity=quantity,
                        unit=unit,
                        period_start=start,
                        period_end=end,
                        evidence=evidence,
                        relative_uncertainty=uncertainty,
                    ),
                )
            )
        else:
            source, target = rng.sample(world.enterprises, 2)
            material = rng.choice(TRANSFER_MATERIALS)
            canonical = rng.lognormvariate(8, 1.2)
            quantity, unit = _amount(rng, canonical, Dimension.MASS)
            reported_by_target = rng.random() < 0.5
            first = FlowCreate(
                source_id=source,
                target_id=target,
                material_id=world.materials[material],
                quantity=quantity,
                unit=unit,
                period_start=start,
                period_end=end,
                reporting_party_id=source,
                evidence=evidence,
            )
            keyed.append((position, first))
            if reported_by_target:
                spread = 0.001 if rng.random() < 0.9 else 0.08  # one in ten beyond tolerance
                other, other_unit = _amount(
                    rng, canonical * (1 + rng.uniform(-spread, spread)), Dimension.MASS
                )
                later = position + batch_size * rng.uniform(0.05, 1.5)
                counterpart = FlowCreate(
                    source_id=source,
                    target_id=target,
                    material_id=world.materials[material],
                    quantity=other,
                    unit=other_unit,
                    period_start=start,
                    period_end=end,
                    reporting_party_id=target,
                    evidence=f"GRN-{start:%Y%m}-{position:06d}",
                )
                keyed.append((later, counterpart))
        position += 1
    keyed.sort(key=lambda pair: pair[0])
    return [entry for _, entry in keyed[:count]]


def batches(entries: Sequence[FlowCreate], size: int) -> list[Sequence[FlowCreate]]:
    return [entries[i : i + size] for i in range(0, len(entries), size)]


def as_variables(world: World, entry: FlowCreate) -> dict[str, object]:
    """A report as a client sends it in ``FlowsRecordInput.flows``: global ids, ISO dates."""
    row: dict[str, object] = {
        "source": world.node_global_id(entry.source_id),
        "target": world.node_global_id(entry.target_id),
        "material": to_global_id("Material", entry.material_id),
        "quantity": str(entry.quantity),
        "unit": entry.unit,
        "periodStart": entry.period_start.isoformat(),
        "periodEnd": entry.period_end.isoformat(),
    }
    if entry.reporting_party_id is not None:
        row["reportingParty"] = world.node_global_id(entry.reporting_party_id)
    if entry.evidence is not None:
        row["evidence"] = entry.evidence
    if entry.relative_uncertainty is not None:
        row["relativeUncertainty"] = entry.relative_uncertainty
    return row


def generate_stocks(world: World) -> list[StockCreate]:
    """End-of-month stock of every mass material at every enterprise, a month before the first
    flows to the last month, so balances have an opening and a closing stock."""
    rng = random.Random(11)
    stocks = []
    for index in range(-1, MONTHS):
        _, end = month(index)
        for enterprise in world.enterprises:
            for spec in MATERIALS:
                if spec.dimension is Dimension.MASS:
                    stocks.append(
                        StockCreate(
                            enterprise_id=enterprise,
                            material_id=world.materials[spec.code],
                            on_date=end,
                            quantity=f"{rng.uniform(5, 50):.3f}",
                            unit="t",
                        )
                    )
    return stocks


async def settle(engine: AsyncEngine) -> None:
    """Between two batches on PostgreSQL, refresh the planner's statistics as autovacuum
    would (it analyses a table once 10% of it changed; this server runs with autovacuum off,
    and a fresh database has no statistics at all). Callers keep it off the clock."""
    if engine.dialect.name == "postgresql":
        async with engine.begin() as connection:
            await connection.execute(sa.text("ANALYZE flow, flow_confirmation"))


async def load_ledger(url: str, world: World, entries: Sequence[FlowCreate], size: int) -> None:
    """Record ``entries`` through the ledger, one transaction per batch, and the stocks."""
    engine = create_async(url)
    factory = session_factory(engine)
    try:
        for index, batch in enumerate(batches(entries, size)):
            if index:
                await settle(engine)
            async with transaction(factory) as session:
                await record_flows(session, batch, caller=BENCH_CALLER, kind=BatchKind.FILE)
        async with transaction(factory) as session:
            await record_stocks(session, generate_stocks(world), caller=BENCH_CALLER)
    finally:
        await engine.dispose()


# --- a uvicorn server in a subprocess --------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def uvicorn_server(url: str) -> Iterator[str]:
    """``uvicorn --factory mfa.app:create_app`` on 127.0.0.1 and a free port, one worker;
    yields its base URL and stops it (SIGTERM, then SIGKILL after 10 s) on exit."""
    with uvicorn_process(url) as (base, _):
        yield base


@contextmanager
def uvicorn_process(
    url: str, *, workers: int = 1, env: dict[str, str] | None = None
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """As ``uvicorn_server``, with ``workers`` processes and extra ``MFA_*`` settings; yields
    the base URL and the parent process (its children are the workers when ``workers`` > 1)."""
    port = free_port()
    environment = {
        **os.environ,
        "MFA_DATABASE_URL": url,
        "MFA_ENVIRONMENT": "test",
        "MFA_GRAPHIQL": "false",
        **(env or {}),
    }
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "mfa.app:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=ROOT,
        env=environment,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(base, process)
        yield base, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_healthy(base: str, process: subprocess.Popen[bytes]) -> None:
    import httpx

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"uvicorn exited with code {process.returncode}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("uvicorn did not become healthy within 30 s")


def remove_workdir() -> None:
    """Remove ``bench/.work`` when no measurement left a file in it."""
    if WORKDIR.exists() and not any(WORKDIR.iterdir()):
        shutil.rmtree(WORKDIR)


def run(main: Coroutine[Any, Any, None]) -> None:
    """Run an async ``main()`` and exit 0, or 130 on Ctrl-C (databases are dropped either way)."""
    try:
        asyncio.run(main)
    except KeyboardInterrupt:
        sys.exit(130)
    finally:
        remove_workdir()
