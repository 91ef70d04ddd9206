"""Import throughput and memory: a generated generic-profile CSV through ``mfa import``'s job.

    python -m bench.import_flows [--backend sqlite|postgresql|both] [--quick] [--rows N]

One CSV of N rows (default 1,000,000; 2,000 with ``--quick``) in the generic profile, written
to ``bench/.work`` from the generated park of ``bench.common``: 70% boundary movements
(receipts from suppliers, the grid and the water utility; issues to customers; scrap to the
landfill and the recycler), 30% transfers between enterprises; units t, kg, m3, L, MWh,
kWh; dates over 24 months. Then, per backend, on a fresh database each time and each in a
fresh Python process (so that its peak RSS is its own):

* baseline: pandas reads the file (chunks of 10,000 rows), maps codes to ids and units to
  canonical quantities with vectorised pandas, and bulk-inserts the rows into ``flow``:
  ``executemany`` on SQLite, ``COPY`` on PostgreSQL; one transaction;
* import: ``mfa.imports.jobs`` as ``mfa import`` runs it: the file read once, each chunk
  validated (pandera cell checks, row checks, natural keys, the ledger's own checks) and
  recorded through the ledger at once, with the natural keys, under one batch whose row is
  written last; one transaction.

    ratio = import seconds ÷ baseline seconds            (target: ≤ 2)
    peak RSS of each process (``ru_maxrss``)             (target: < 1 GB)

Nothing is asserted; the figures are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import random
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from bench.common import (
    BACKENDS,
    BENCH_CALLER,
    BOUNDARY_FLOWS,
    MONTHS,
    ROOT,
    TRANSFER_MATERIALS,
    UNITS,
    WORKDIR,
    Stopwatch,
    World,
    backends,
    create_world,
    describe_machine,
    fmt_int,
    fmt_ratio,
    fresh_database,
    load_average,
    log,
    month,
    print_table,
    rate,
    remove_workdir,
)
from mfa.db import create_engine
from mfa.models import Flow, Material, ParkNode
from mfa.units import CANONICAL_UNIT, conversion_factor

HEADER = (
    "external_id",
    "movement",
    "enterprise",
    "partner",
    "material",
    "quantity",
    "unit",
    "date",
)
SCRAP_TO = {"landfill", "recycler", "wwtp"}
CHUNK = 10_000


def write_file(world: World, path: Path, rows: int, *, seed: int = 5) -> None:
    """``rows`` generic-profile movements of the generated park (codes as ``create_world``
    names them)."""
    rng = random.Random(seed)
    enterprises = [f"enterprise-{i:02d}" for i in range(len(world.enterprises))]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        for index in range(rows):
            start, _ = month(index * MONTHS // rows)
            day = start.replace(day=rng.randint(1, 28)).isoformat()
            enterprise = rng.choice(enterprises)
            if rng.random() < 0.7:
                partner, material, direction = rng.choice(BOUNDARY_FLOWS)
                movement = (
                    "receipt" if direction == "in" else "scrap" if partner in SCRAP_TO else "issue"
                )
            else:
                partner = rng.choice([e for e in enterprises if e != enterprise])
                material, movement = rng.choice(TRANSFER_MATERIALS), "transfer"
            unit, factor = rng.choice(UNITS[world.dimensions[material]])
            quantity = f"{rng.lognormvariate(8, 1.2) * factor:.3f}"
            writer.writerow(
                [f"M-{index:07d}", movement, enterprise, partner, material, quantity, unit, day]
            )


# --- the measurements, each in its own process ---------------------------------------------


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def baseline(url: str, path: Path) -> dict[str, Any]:
    """pandas read + vectorised mapping + bulk insert of every row into ``flow``."""
    engine = create_engine(url)
    node_t, material_t = ParkNode.__table__, Material.__table__  # type: ignore[attr-defined]
    with engine.connect() as connection:
        nodes = dict(connection.execute(sa.select(node_t.c.code, node_t.c.id)).tuples().all())
        park = connection.execute(sa.select(node_t.c.park_id)).scalars().first()
        materials = {
            r.code: (r.id, r.dimension)
            for r in connection.execute(
                sa.select(material_t.c.code, material_t.c.id, material_t.c.dimension)
            )
        }
    material_ids = {code: mid for code, (mid, _) in materials.items()}
    canonical = {code: CANONICAL_UNIT[dim] for code, (_, dim) in materials.items()}
    factors = {
        (code, unit): conversion_factor(unit, dim)
        for code, (_, dim) in materials.items()
        for unit in ("t", "kg", "m3", "L", "MWh", "kWh")
        if _fits(unit, dim)
    }
    now = datetime.now(UTC)
    clock = Stopwatch()
    rows = 0
    flow_t = Flow.__table__  # type: ignore[attr-defined]
    columns = [
        "park_id", "source_id", "target_id", "material_id", "quantity", "unit",
        "reported_quantity", "reported_unit", "period_start", "period_end",
        "reporting_party_id", "recorded_by", "recorded_at",
    ]  # fmt: skip
    with engine.begin() as connection:
        raw = connection.connection.driver_connection
        for chunk in pd.read_csv(path, dtype=str, chunksize=CHUNK, keep_default_na=False):
            inward = chunk["movement"] == "receipt"
            enterprise = chunk["enterprise"].map(nodes)
            partner = chunk["partner"].map(nodes)
            frame = pd.DataFrame(
                {
                    "park_id": park,
                    "source_id": partner.where(inward, enterprise),
                    "target_id": enterprise.where(inward, partner),
                    "material_id": chunk["material"].map(material_ids),
                    "quantity": chunk["quantity"].astype(float)
                    * pd.Series(
                        list(zip(chunk["material"], chunk["unit"], strict=True)), index=chunk.index
                    ).map(factors),
                    "unit": chunk["material"].map(canonical),
                    "reported_quantity": chunk["quantity"],
                    "reported_unit": chunk["unit"],
                    "period_start": pd.to_datetime(chunk["date"], format="%Y-%m-%d").dt.date,
                    "reporting_party_id": enterprise,
                    "recorded_by": BENCH_CALLER.subject,
                    "recorded_at": now,
                }
            )
            frame["period_end"] = frame["period_start"]
            records = frame[columns].to_dict("records")
            if engine.dialect.name == "postgresql":
                with (
                    raw.cursor() as cursor,
                    cursor.copy(f"COPY flow ({', '.join(columns)}) FROM STDIN") as copy,
                ):
                    for record in records:
                        copy.write_row([record[c] for c in columns])
            else:
                connection.execute(sa.insert(flow_t), records)
            rows += len(records)
    seconds = clock.seconds
    engine.dispose()
    return {"rows": rows, "seconds": seconds, "peak_mb": _peak_mb()}


def _fits(unit: str, dimension: str) -> bool:
    try:
        conversion_factor(unit, dimension)  # type: ignore[arg-type]
    except Exception:  # a unit of another dimension
        return False
    return True


async def run_import(url: str, path: Path) -> dict[str, Any]:
    from mfa.db import create_async, session_factory, transaction
    from mfa.imports.jobs import (
        ImportRequest,
        JobSettings,
        create_job,
        park_ids,
        run_job,
    )
    from mfa.models import ImportStatus
    from mfa.settings import REPOSITORY_DATASETS

    engine = create_async(url)
    factory = session_factory(engine)
    settings = JobSettings(
        datasets=REPOSITORY_DATASETS, import_dir=WORKDIR, max_bytes=2**31, chunk_rows=CHUNK
    )
    clock = Stopwatch()
    async with transaction(factory) as session:
        park_id, _ = await park_ids(session, "bench-park", None)
        request = ImportRequest(park_id=park_id, profile="generic", path=path, file_name=path.name)
        job = await create_job(session, request, caller=BENCH_CALLER, settings=settings)
    assert job.id is not None
    job = await run_job(factory, job.id, caller=BENCH_CALLER, settings=settings)
    seconds = clock.seconds
    await engine.dispose()
    if job.status is not ImportStatus.SUCCEEDED:
        raise SystemExit(f"import failed: {job.message} {job.errors[:3]}")
    return {
        "rows": job.flows_recorded + job.flows_linked,
        "seconds": seconds,
        "linked": job.flows_linked,
        "peak_mb": _peak_mb(),
    }


def _child(kind: str, url: str, path: Path) -> dict[str, Any]:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.import_flows",
            "--child",
            kind,
            "--url",
            url,
            "--file",
            str(path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise SystemExit(f"{kind} run failed:\n{completed.stdout}\n{completed.stderr}")
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


def measure(backend: str, rows: int, clock: Stopwatch) -> dict[str, dict[str, Any]]:
    results: dict[str, dict[str, Any]] = {}
    path = WORKDIR / f"import-{rows}.csv"
    for kind in ("baseline", "import"):
        with fresh_database(backend) as url:
            world = asyncio.run(create_world(url))
            if not path.exists():
                WORKDIR.mkdir(parents=True, exist_ok=True)
                write_file(world, path, rows)
                log(f"wrote {path.name}: {path.stat().st_size / 2**20:.1f} MiB", clock)
            results[kind] = _child(kind, url, path)
            log(f"{backend} {kind}: {results[kind]['seconds']:.1f} s", clock)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=[*BACKENDS, "both"], default="both")
    parser.add_argument("--quick", action="store_true", help="2,000 rows (the smoke test's mode)")
    parser.add_argument(
        "--rows", type=int, default=None, help="rows in the file (default 1,000,000)"
    )
    parser.add_argument("--child", choices=["baseline", "import"], help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "baseline":
        print(json.dumps(baseline(args.url, args.file)))
        return
    if args.child == "import":
        print(json.dumps(asyncio.run(run_import(args.url, args.file))))
        return
    rows = args.rows or (2_000 if args.quick else 1_000_000)
    clock = Stopwatch()
    print(f"# Import benchmark: {fmt_int(rows)} rows; {describe_machine()}")
    table_rows = []
    try:
        for backend in backends(args.backend):
            r = measure(backend, rows, clock)
            base, imp = r["baseline"], r["import"]
            table_rows.append(
                [
                    backend,
                    fmt_int(rows),
                    fmt_int(rate(base["rows"], base["seconds"])),
                    fmt_int(rate(imp["rows"], imp["seconds"])),
                    fmt_ratio(imp["seconds"] / base["seconds"]),
                    f"{base['peak_mb']:,.0f}",
                    f"{imp['peak_mb']:,.0f}",
                ]
            )
    finally:
        (WORKDIR / f"import-{rows}.csv").unlink(missing_ok=True)
        for leftover in WORKDIR.glob("job-*-rejected.csv"):
            leftover.unlink()
        remove_workdir()
    print_table(
        "Importing a generic CSV: rows per second and peak RSS",
        [
            "backend",
            "rows",
            "baseline rows/s",
            "import rows/s",
            "import/baseline",
            "baseline peak MB",
            "import peak MB",
        ],
        table_rows,
    )
    print(f"\nelapsed: {clock.seconds:.1f} s; {load_average()}")
    time.sleep(0)


if __name__ == "__main__":
    main()
