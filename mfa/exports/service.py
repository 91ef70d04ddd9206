"""One export, from its arguments to the bytes a partner downloads: what the CLI and HTTP share.

Arguments arrive as text (a command line, a query string) and are checked here, so both edges
refuse the same input with the same message; each error's ``field`` is the argument's name
(``kind``, ``format``, ``park``, ``start``, ``end``, ``enterprise``, ``material``), which the edge
turns into its own spelling (``--park``, ``?park=``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from lca.footprint import FootprintCache
from mfa.access import Caller
from mfa.errors import MfaError, NotFoundError, PeriodError
from mfa.exports.footprints import Run, park_footprints
from mfa.exports.formats import ExportFormat, to_bytes
from mfa.exports.pact import footprint_list, product_footprint
from mfa.exports.tables import ExportKind, TableRequest, export_table, resolve_park
from mfa.registry import ids_by_code

PACT = "pact"
JSON = "json"
KINDS = (*(k.value for k in ExportKind), PACT)


@dataclass(frozen=True, slots=True)
class ExportFile:
    content: bytes
    media_type: str
    filename: str


_ARGUMENTS = {
    "periodStart": "start",
    "periodEnd": "end",
    "period": "start",
    "subject": "material",
    "product": "material",
}


def argument_of(error: MfaError) -> str:
    """The export argument an error concerns (the domain names some fields its own way)."""
    head = error.field[0] if error.field else "park"
    return _ARGUMENTS.get(head, head)


def parse_date(text: str, *, field: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise MfaError(f"{text!r} is not a date: write it as YYYY-MM-DD", field=(field,)) from None


def _check(kind: str, fmt: str | None) -> str:
    if kind not in KINDS:
        raise MfaError(f"unknown export {kind!r}: one of {', '.join(KINDS)}", field=("kind",))
    if kind == PACT:
        if fmt not in (None, JSON):
            raise MfaError("PACT footprints are JSON: use format json", field=("format",))
        return JSON
    formats = [f.value for f in ExportFormat]
    if fmt is not None and fmt not in formats:
        raise MfaError(f"unknown format {fmt!r}: one of {', '.join(formats)}", field=("format",))
    return fmt or ExportFormat.CSV.value


async def export_file(
    session: AsyncSession,
    *,
    kind: str,
    fmt: str | None,
    park: str,
    start: str,
    end: str,
    caller: Caller,
    tolerance: float,
    cache: FootprintCache,
    run: Run,
    created: datetime,
    enterprise: str | None = None,
    material: str | None = None,
) -> ExportFile:
    """The export asked for, as a file; ``MfaError`` naming the argument when it cannot be.

    ``enterprise`` and ``material`` (codes, both or neither) pick one product of a PACT export,
    which is then one ProductFootprint ``{"data": {...}}``; without them every product of the
    park is listed (``mfa.exports.pact.footprint_list``).
    """
    chosen = _check(kind, fmt)
    period_start = parse_date(start, field="start")
    period_end = parse_date(end, field="end")
    if period_end < period_start:
        raise PeriodError(f"end {end} is before start {start}", field=("end",))
    filename = f"{kind}-{park}-{period_start}-{period_end}.{chosen}"
    if kind != PACT:
        table = await export_table(
            session,
            TableRequest(ExportKind(kind), park, period_start, period_end),
            caller=caller,
            tolerance=tolerance,
            cache=cache,
            run=run,
        )
        fmt_ = ExportFormat(chosen)
        return ExportFile(to_bytes(table, fmt_, sheet=kind), fmt_.media_type, filename)
    if (enterprise is None) != (material is None):
        missing = "material" if material is None else "enterprise"
        raise MfaError("name both the enterprise and the material of one product", field=(missing,))
    row = await resolve_park(session, park, caller=caller, start=period_start, end=period_end)
    products = None
    if enterprise is not None and material is not None:
        nodes, materials = await ids_by_code(session, row.id)
        if enterprise not in nodes:
            raise NotFoundError(f"no node {enterprise!r} in park {park}", field=("enterprise",))
        if material not in materials:
            raise NotFoundError(f"no material {material!r}", field=("material",))
        products = ((nodes[enterprise], materials[material]),)
        filename = f"pact-{park}-{enterprise}-{material}-{period_start}-{period_end}.json"
    found = await park_footprints(
        session,
        caller=caller,
        park_id=row.id,
        period_start=period_start,
        period_end=period_end,
        cache=cache,
        run=run,
        products=products,
    )
    if products is None:
        body = footprint_list(found.products, park=row, created=created)
    else:
        body = {"data": product_footprint(found.products[0], park=row, created=created)}
    content = json.dumps(body, ensure_ascii=False, indent=2).encode("utf-8")
    return ExportFile(content, "application/json", filename)
