"""Mapping profiles: how one ERP's export describes stock movements, kept as data.

A profile is a JSON file (``datasets/import_profiles/<name>.json``, or any path) naming the
columns that carry each part of a flow, the units it writes (mapped to units pint reads), the
rules that turn a row into a movement type, the date formats it uses, and the columns whose
values form a movement's natural key (SAP: material document, year, item).

Movement types give a flow its direction, seen from the reporting enterprise E:

    receipt:  partner → E        issue:    E → partner
    scrap:    E → partner (landfill, incinerator, recycler, wastewater treatment)
    transfer: E → partner (another enterprise of the park)
    ignore:   not a flow between nodes (consumption inside E, a move between its stores)
    reversal: a cancellation document; refused, since the ledger reverses flows explicitly
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from mfa.imports.errors import ProfileError

_NAME = re.compile(r"^[a-z0-9_]{1,64}$")


class MovementType(StrEnum):
    RECEIPT = "receipt"
    ISSUE = "issue"
    SCRAP = "scrap"
    TRANSFER = "transfer"
    IGNORE = "ignore"
    REVERSAL = "reversal"


@dataclass(frozen=True, slots=True)
class MovementRule:
    """``type`` applies to a row whose ``column`` equals ``equals`` (or starts with
    ``prefix``); the first matching rule of the profile wins."""

    column: str
    type: MovementType
    equals: str | None = None
    prefix: str | None = None


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    title: str
    system: str
    key: tuple[str, ...]
    enterprise: str | None
    partner: tuple[str, ...]
    material: str
    quantity: str
    unit: str
    date: str
    evidence: str | None
    value: str | None
    currency: str | None
    movements: tuple[MovementRule, ...]
    units: dict[str, str]
    date_formats: tuple[str, ...]
    decimal: str
    negative: str
    default_partner: dict[str, str]
    partner_codes: dict[str, str]
    material_codes: dict[str, str]

    @property
    def movement_columns(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(rule.column for rule in self.movements))

    @property
    def required_columns(self) -> tuple[str, ...]:
        """Columns a file must have: keys, movement, material, quantity, unit, date, and the
        enterprise column when the profile has one (else the caller names the enterprise)."""
        names = [
            *self.key,
            *self.movement_columns,
            self.material,
            self.quantity,
            self.unit,
            self.date,
        ]
        if self.enterprise is not None:
            names.append(self.enterprise)
        return tuple(dict.fromkeys(names))

    @property
    def optional_columns(self) -> tuple[str, ...]:
        names = [*self.partner]
        for part in ("evidence", "value", "currency"):
            column = getattr(self, part)
            if column is not None:
                names.append(column)
        return tuple(n for n in dict.fromkeys(names) if n not in self.required_columns)


def profiles_dir(datasets: Path) -> Path:
    return datasets / "import_profiles"


def available(datasets: Path) -> list[str]:
    return sorted(p.stem for p in profiles_dir(datasets).glob("*.json"))


def load_profile(name: str, *, datasets: Path) -> Profile:
    """The profile called ``name`` in the datasets, or read from ``name`` if it is a path."""
    path = Path(name)
    if not (path.suffix == ".json" and path.is_file()):
        if not _NAME.match(name):
            raise ProfileError(
                f"profile {name!r} is neither a profile name nor a JSON file",
                field=("profile",),
            )
        path = profiles_dir(datasets) / f"{name}.json"
        if not path.is_file():
            raise ProfileError(
                f"no import profile {name!r}: use one of {', '.join(available(datasets))} "
                "or the path of a profile JSON file",
                field=("profile",),
            )
    try:
        return parse_profile(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError) as exc:
        raise ProfileError(f"profile {path.name} is not valid: {exc}", field=("profile",)) from exc


def parse_profile(data: dict[str, Any]) -> Profile:
    columns = data["columns"]
    rules = tuple(
        MovementRule(
            column=r["column"],
            type=MovementType(r["type"]),
            equals=r.get("equals"),
            prefix=r.get("prefix"),
        )
        for r in data["movements"]
    )
    if any((r.equals is None) == (r.prefix is None) for r in rules):
        raise ValueError("each movement rule needs exactly one of 'equals' and 'prefix'")
    decimal = data.get("decimal", "auto")
    if decimal not in ("auto", ".", ","):
        raise ValueError("decimal must be 'auto', '.' or ','")
    negative = data.get("negative", "refuse")
    if negative not in ("refuse", "absolute"):
        raise ValueError("negative must be 'refuse' or 'absolute'")
    if not data["columns"]["key"]:
        raise ValueError("a profile needs at least one natural-key column")
    return Profile(
        name=data["name"],
        title=data.get("title", data["name"]),
        system=data["system"],
        key=tuple(columns["key"]),
        enterprise=columns.get("enterprise"),
        partner=tuple(columns.get("partner") or ()),
        material=columns["material"],
        quantity=columns["quantity"],
        unit=columns["unit"],
        date=columns["date"],
        evidence=columns.get("evidence"),
        value=columns.get("value"),
        currency=columns.get("currency"),
        movements=rules,
        units=dict(data["units"]),
        date_formats=tuple(data.get("date_formats", ("%Y-%m-%d",))),
        decimal=decimal,
        negative=negative,
        default_partner=dict(data.get("default_partner", {})),
        partner_codes=dict(data.get("partner_codes", {})),
        material_codes=dict(data.get("material_codes", {})),
    )
