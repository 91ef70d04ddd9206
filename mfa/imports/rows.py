"""Checking a chunk of rows and mapping the good ones onto ledger flows.

Two stages, both reporting every bad cell rather than stopping at the first:

1. cell checks, with pandera (``lazy=True``): required cells present, numbers in the file's
   number format, dates in one of the profile's formats, units the profile knows, text
   lengths;
2. row checks against the park: the movement type, the enterprise, partner and material
   exist, the unit measures the material's dimension, the flow's direction suits the nodes
   (a scrap goes to a waste handler, a transfer to another enterprise). Each row that gets
   this far claims its natural key (``Checked.claims``); the job checks the claims against
   the keys met earlier in the file, which it keeps in the database, not in memory
   (``drop_repeats`` turns a repeated key into the row's error).

Each error names the row as the file numbers it (the header is row 1, the first movement
row 2), the column, the cell's value and the reason.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

import pandas as pd
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from mfa.errors import MfaError
from mfa.imports.profiles import MovementRule, MovementType, Profile
from mfa.ledger import FlowCreate
from mfa.models import NodeKind
from mfa.units import Dimension, conversion_factor

HEADER_ROWS = 1
WASTE_HANDLERS = frozenset(
    {
        NodeKind.LANDFILL,
        NodeKind.INCINERATION,
        NodeKind.RECYCLER,
        NodeKind.WASTEWATER_TREATMENT,
    }
)
_SPACES = "[ \u00a0\u202f]"
_NUMBER = {
    ".": rf"[+-]?(?:\d{{1,3}}(?:,\d{{3}})+|\d{{1,3}}(?:{_SPACES}\d{{3}})+|\d+)(?:\.\d+)?",
    ",": rf"[+-]?(?:\d{{1,3}}(?:\.\d{{3}})+|\d{{1,3}}(?:{_SPACES}\d{{3}})+|\d+)(?:,\d+)?",
}
_EXAMPLE = {".": "1234.5 or 1,234.5", ",": "1234,5 or 1.234,5"}


@dataclass(frozen=True, slots=True)
class RowError:
    """One refused cell: ``row`` as the file numbers it (header = 1)."""

    row: int
    column: str
    value: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        return f"row {self.row}, column {self.column!r}, value {self.value!r}: {self.reason}"


@dataclass(frozen=True, slots=True)
class NodeInfo:
    id: int
    kind: NodeKind
    code: str


@dataclass(frozen=True, slots=True)
class Lookup:
    """The park's nodes (by code, tax id and name) and the catalogue (by code)."""

    nodes: dict[str, NodeInfo]
    materials: dict[str, tuple[int, Dimension]]
    enterprise: NodeInfo | None = None  # the reporting enterprise when the file has no column


@dataclass(slots=True)
class Movement:
    """A good row: the flow it maps to and its natural key."""

    row: int
    entry: FlowCreate
    key: str
    content_hash: str


FileKey = tuple[int, str]
"""A natural key within one file: ``(reporting enterprise id, key)``."""


@dataclass(slots=True)
class Checked:
    movements: list[Movement] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    ignored: int = 0
    claims: list[tuple[FileKey, int]] = field(default_factory=list)  # (key, row), row order

    @property
    def rejected_rows(self) -> set[int]:
        return {e.row for e in self.errors}


def records_of(chunk: pd.DataFrame) -> list[dict[str, str]]:
    """The chunk's rows as ``{column: cell}``, built from whole columns: ``DataFrame.to_dict``
    boxes every cell of pandas' Arrow-backed strings one by one, about 6× slower."""
    columns = [str(c) for c in chunk.columns]
    cells = zip(*(chunk[c].tolist() for c in chunk.columns), strict=True)
    return [dict(zip(columns, row, strict=True)) for row in cells]


def file_row(index: int) -> int:
    return index + HEADER_ROWS + 1


def parse_numbers(cells: pd.Series, decimal: str) -> pd.Series:
    """Text in the file's number format as plain decimal text: '1.234,5' → '1234.5'."""
    if decimal == ".":
        return cells.str.replace(rf"[,{_SPACES[1:-1]}]", "", regex=True)
    return cells.str.replace(rf"[.{_SPACES[1:-1]}]", "", regex=True).str.replace(",", ".")


def parse_dates(cells: pd.Series, formats: Iterable[str]) -> pd.Series:
    """The first of ``formats`` that reads each cell; NaT where none does."""
    parsed = pd.Series(pd.NaT, index=cells.index, dtype="datetime64[ns]")
    for fmt in formats:
        missing = parsed.isna()
        if not missing.any():
            break
        parsed[missing] = pd.to_datetime(cells[missing], format=fmt, errors="coerce")
    return parsed


def _date_formats(profile: Profile) -> tuple[str, ...]:
    # ISO dates are what xlsx and Parquet cells become (see reader._cell).
    return tuple(dict.fromkeys((*profile.date_formats, "%Y-%m-%d", "%Y-%m-%d %H:%M:%S")))


def cell_schema(profile: Profile, decimal: str) -> pa.DataFrameSchema:
    """The pandera schema of one profile's cells, for a file with ``decimal`` as decimal mark."""
    present = pa.Check(lambda s: s.str.len() > 0, error="the cell is empty", name="present")
    # The other checks pass an empty cell: ``present`` reports it once where it is required.
    number = pa.Check(
        lambda s: (s.str.len() == 0) | s.str.fullmatch(_NUMBER[decimal]).fillna(False),
        error=f"not a number in this file's format (decimal mark {decimal!r}, e.g. "
        f"{_EXAMPLE[decimal]})",
        name="number",
    )
    formats = _date_formats(profile)
    known_date = pa.Check(
        lambda s: (s.str.len() == 0) | parse_dates(s, formats).notna(),
        error=f"not a date in a format the profile reads ({', '.join(profile.date_formats)})",
        name="date",
    )
    known_unit = pa.Check(
        lambda s: (s.str.len() == 0) | s.isin(list(profile.units)),
        error=f"unit not known to profile {profile.name} (it knows {', '.join(profile.units)})",
        name="unit",
    )
    columns: dict[str, pa.Column] = {}
    for name in profile.key:
        columns[name] = pa.Column(
            str,
            [present, pa.Check(lambda s: s.str.len() <= 60, error="longer than 60 characters")],
        )
    columns[profile.material] = pa.Column(str, present)
    columns[profile.quantity] = pa.Column(str, [present, number])
    columns[profile.unit] = pa.Column(str, [present, known_unit])
    columns[profile.date] = pa.Column(str, [present, known_date])
    if profile.enterprise is not None:
        columns[profile.enterprise] = pa.Column(str, present)
    if profile.evidence is not None:
        columns[profile.evidence] = pa.Column(
            str,
            pa.Check(lambda s: s.str.len() <= 200, error="longer than 200 characters"),
            required=False,
        )
    if profile.value is not None:
        columns[profile.value] = pa.Column(str, number, required=False)
    if profile.currency is not None:
        columns[profile.currency] = pa.Column(
            str,
            pa.Check(
                lambda s: (s.str.len() == 0) | s.str.fullmatch(r"[A-Z]{3}").fillna(False),
                error="not an ISO 4217 currency code such as VND",
            ),
            required=False,
        )
    return pa.DataFrameSchema(columns, strict=False, coerce=False)


def _cell_errors(schema: pa.DataFrameSchema, chunk: pd.DataFrame) -> list[RowError]:
    try:
        schema.validate(chunk, lazy=True)
    except SchemaErrors as exc:
        cases = exc.failure_cases
        return [
            RowError(
                row=file_row(int(case.index)),
                column=str(case.column),
                value="" if pd.isna(case.failure_case) else str(case.failure_case),
                reason=str(case.check),
            )
            for case in cases.itertuples()
            if not pd.isna(case.index)
        ]
    return []


class RowChecker:
    """Checks chunks of one file; what a chunk's rows are depends on that chunk alone."""

    def __init__(self, profile: Profile, lookup: Lookup, *, decimal: str) -> None:
        self.profile = profile
        self.lookup = lookup
        self.decimal = decimal
        self.schema = cell_schema(profile, decimal)
        self.formats = _date_formats(profile)

    def check(self, chunk: pd.DataFrame) -> Checked:
        chunk = chunk.apply(lambda s: s.str.strip())
        out = Checked()
        out.errors = _cell_errors(self.schema, chunk)
        bad = out.rejected_rows
        p = self.profile
        quantities = parse_numbers(chunk[p.quantity], self.decimal)
        dates = parse_dates(chunk[p.date], self.formats)
        values = (
            parse_numbers(chunk[p.value], self.decimal)
            if p.value is not None and p.value in chunk
            else None
        )
        days = dates.tolist()
        records = records_of(chunk)
        amounts = quantities.tolist()
        prices = values.tolist() if values is not None else [None] * len(records)
        for index, cells, amount, day, value in zip(
            chunk.index, records, amounts, days, prices, strict=True
        ):
            row = file_row(int(index))
            if row in bad:
                continue
            draft, errors = self._movement(row, cells, amount)
            if draft is None and not errors:
                out.ignored += 1
                continue
            movement = None
            if draft is not None:
                out.claims.append(((draft.enterprise.id, self._key(cells)), row))
                movement, errors = self._finish(row, cells, draft, day.date(), value)
            if errors:
                out.errors.extend(errors)
            elif movement is not None:
                out.movements.append(movement)
        out.errors.sort(key=lambda e: e.row)
        return out

    def _key(self, cells: dict[str, str]) -> str:
        return "/".join(self._cell(cells, c) for c in self.profile.key)

    @staticmethod
    def _cell(cells: dict[str, str], column: str | None) -> str:
        return "" if column is None else cells.get(column, "")

    def _node(self, identifier: str) -> NodeInfo | None:
        mapped = self.profile.partner_codes.get(identifier, identifier)
        return self.lookup.nodes.get(mapped) or self.lookup.nodes.get(mapped.casefold())

    def _movement(
        self, row: int, cells: dict[str, str], quantity: str
    ) -> tuple[_Draft | None, list[RowError]]:
        p = self.profile
        rule = next((r for r in p.movements if _matches(r, self._cell(cells, r.column))), None)
        first = p.movements[0].column
        if rule is None:
            return None, [
                RowError(
                    row,
                    first,
                    self._cell(cells, first),
                    f"movement type not known to profile {p.name}",
                )
            ]
        if rule.type is MovementType.IGNORE:
            return None, []
        if rule.type is MovementType.REVERSAL:
            return None, [
                RowError(
                    row,
                    rule.column,
                    self._cell(cells, rule.column),
                    "a reversal document is not imported: reverse the flow it cancels in the "
                    "ledger (flowReverse)",
                )
            ]
        errors: list[RowError] = []
        enterprise = self.lookup.enterprise
        if p.enterprise is not None:
            code = self._cell(cells, p.enterprise)
            enterprise = self._node(code)
            if enterprise is None or enterprise.kind is not NodeKind.ENTERPRISE:
                errors.append(RowError(row, p.enterprise, code, "no enterprise of the park"))
                enterprise = None
        partner_column, partner_id = next(
            ((c, v) for c in p.partner if (v := self._cell(cells, c))),
            (p.partner[0] if p.partner else "", ""),
        )
        partner_id = partner_id or p.default_partner.get(rule.type.value, "")
        partner = self._node(partner_id) if partner_id else None
        if not partner_id:
            errors.append(
                RowError(
                    row,
                    partner_column,
                    "",
                    f"a {rule.type.value} needs a partner: "
                    f"{' / '.join(p.partner) or 'no partner column'} is empty",
                )
            )
        elif partner is None:
            errors.append(
                RowError(row, partner_column, partner_id, "no node of the park has this code")
            )
        elif rule.type is MovementType.SCRAP and partner.kind not in WASTE_HANDLERS:
            errors.append(
                RowError(
                    row,
                    partner_column,
                    partner_id,
                    f"scrap must go to a landfill, incinerator, recycler or wastewater "
                    f"treatment, not a {partner.kind.value}",
                )
            )
        elif rule.type is MovementType.TRANSFER and partner.kind is not NodeKind.ENTERPRISE:
            errors.append(
                RowError(
                    row,
                    partner_column,
                    partner_id,
                    "a transfer goes to another enterprise of the park",
                )
            )
        elif enterprise is not None and partner.id == enterprise.id:
            errors.append(
                RowError(row, partner_column, partner_id, "the partner is the enterprise itself")
            )
        amount = quantity
        if amount.startswith("-"):
            if p.negative == "absolute":
                amount = amount[1:]
            else:
                errors.append(
                    RowError(
                        row,
                        p.quantity,
                        self._cell(cells, p.quantity),
                        "negative quantity: the movement type gives the direction",
                    )
                )
        amount = amount.lstrip("+")
        if errors or enterprise is None or partner is None:
            return None, errors
        return _Draft(rule.type, enterprise, partner, amount), []

    def _finish(
        self, row: int, cells: dict[str, str], draft: _Draft, day: date, value: str | None
    ) -> tuple[Movement | None, list[RowError]]:
        p = self.profile
        errors: list[RowError] = []
        code = self._cell(cells, p.material)
        material = self.lookup.materials.get(p.material_codes.get(code, code))
        unit = p.units[self._cell(cells, p.unit)]
        if material is None:
            errors.append(RowError(row, p.material, code, "no material with this code"))
        else:
            try:
                conversion_factor(unit, material[1])
            except MfaError as exc:
                errors.append(RowError(row, p.unit, self._cell(cells, p.unit), exc.message))
        currency = self._cell(cells, p.currency) or None
        if (value or None) is not None and currency is None:
            errors.append(RowError(row, p.currency or "currency", "", "a value needs its currency"))
        key = self._key(cells)
        if errors or material is None:
            return None, errors
        if draft.type is MovementType.RECEIPT:
            source, target = draft.partner, draft.enterprise
        else:
            source, target = draft.enterprise, draft.partner
        entry = FlowCreate(
            source_id=source.id,
            target_id=target.id,
            material_id=material[0],
            quantity=draft.quantity,
            unit=unit,
            period_start=day,
            period_end=day,
            reporting_party_id=draft.enterprise.id,
            evidence=self._cell(cells, p.evidence) or None,
            value=value or None,
            currency=currency if value else None,
        )
        digest = hashlib.blake2b(
            f"{source.id}|{target.id}|{material[0]}|{draft.quantity}|{unit}|{day}".encode(),
            digest_size=8,
        ).hexdigest()
        return Movement(row, entry, key, digest), []


def drop_repeats(profile: Profile, checked: Checked, first: dict[FileKey, int]) -> None:
    """Refuse the rows of ``checked`` whose natural key an earlier row of the file claimed
    (``first``: each claimed key's first row in the file), keeping errors in row order."""
    repeats = {}
    for file_key, row in checked.claims:
        if first[file_key] != row:
            repeats[row] = RowError(
                row,
                profile.key[0],
                file_key[1],
                f"repeats the movement of row {first[file_key]} (same {' / '.join(profile.key)})",
            )
    if repeats:
        checked.movements = [m for m in checked.movements if m.row not in repeats]
        checked.errors = sorted([*checked.errors, *repeats.values()], key=lambda e: e.row)


@dataclass(frozen=True, slots=True)
class _Draft:
    type: MovementType
    enterprise: NodeInfo
    partner: NodeInfo
    quantity: str


def _matches(rule: MovementRule, value: str) -> bool:
    if not value:
        return False
    return value == rule.equals if rule.equals is not None else value.startswith(rule.prefix or "")


def missing_columns(profile: Profile, header: Iterable[str]) -> list[str]:
    present = {h.strip().casefold() for h in header}
    return [c for c in profile.required_columns if c.casefold() not in present]


def align_columns(chunk: pd.DataFrame, profile: Profile) -> pd.DataFrame:
    """Rename the file's columns to the profile's spelling (headers match case-insensitively)."""
    wanted = {c.casefold(): c for c in (*profile.required_columns, *profile.optional_columns)}
    return chunk.rename(columns=lambda c: wanted.get(str(c).strip().casefold(), c))
