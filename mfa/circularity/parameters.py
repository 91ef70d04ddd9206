"""What the ledger does not hold, kept as data in ``datasets/circularity`` with its source.

* ``waste_fates.csv``: how a waste's fate follows from where it goes (node kind, the receiving
  enterprise's ISIC class, the waste's HS heading); ordered rules, the first match wins.
* ``product_end_of_life.csv``: per product, the CTI's recovery potential and actual recovery
  and the MCI's end-of-life and utility parameters. Shipped empty: no sourced figure exists
  yet, and each product without a row gets the stated defaults, listed with the result.

Tables are read once per process; tests and callers may pass their own instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from types import MappingProxyType

from lca.characterisation import read_rows
from mfa.models import NodeKind
from mfa.settings import get_settings


class WasteFate(StrEnum):
    """Where a waste ends, in the order of the waste hierarchy."""

    REUSED = "reused"
    RECYCLED = "recycled"
    RECOVERED_FOR_ENERGY = "recovered_for_energy"
    INCINERATED = "incinerated"
    LANDFILLED = "landfilled"
    TREATED = "treated"
    COLLECTED = "collected"
    UNKNOWN = "unknown"

    @property
    def recovered(self) -> bool:
        """Material kept in use: counts as a circular outflow (CTI counts no energy recovery)."""
        return self in (WasteFate.REUSED, WasteFate.RECYCLED)


@dataclass(frozen=True, slots=True)
class WasteFateRule:
    """A row of ``waste_fates.csv``: empty prefix lists match anything."""

    rule: str
    destination_kinds: frozenset[NodeKind]
    isic_prefixes: tuple[str, ...]
    hs_prefixes: tuple[str, ...]
    fate: WasteFate
    source: str

    def matches(self, kind: NodeKind, isic: str | None, hs_code: str | None) -> bool:
        if kind not in self.destination_kinds:
            return False
        if self.isic_prefixes and not (isic and isic.startswith(self.isic_prefixes)):
            return False
        return not self.hs_prefixes or bool(hs_code and hs_code.startswith(self.hs_prefixes))


def waste_fate(
    rules: tuple[WasteFateRule, ...], kind: NodeKind, isic: str | None, hs_code: str | None
) -> tuple[WasteFate, str]:
    """The fate of a waste sent to a node of ``kind`` (an enterprise of ISIC ``isic``), and
    the rule that decided it; ``UNKNOWN`` when no rule matches."""
    for rule in rules:
        if rule.matches(kind, isic, hs_code):
            return rule.fate, rule.rule
    return WasteFate.UNKNOWN, "no rule"


def is_waste_service(rules: tuple[WasteFateRule, ...], isic: str | None) -> bool:
    """An enterprise whose receipts of waste are a service (collection, sewerage), not a use."""
    return any(
        rule.fate is WasteFate.COLLECTED
        and NodeKind.ENTERPRISE in rule.destination_kinds
        and bool(isic and isic.startswith(rule.isic_prefixes))
        for rule in rules
    )


@dataclass(frozen=True, slots=True)
class EndOfLife:
    """End-of-life and utility parameters of a product (fractions 0–1, ratios > 0).

    CTI: ``recovery_potential`` × ``actual_recovery`` is the circular share of its outflow.
    MCI: C_R, C_U, C_C, C_E (``collected_*``), E_C (``recycling_efficiency_eol``), E_F
    (``recycling_efficiency_feedstock``), L/L_av (``lifetime_ratio``), U/U_av
    (``intensity_ratio``). Blank cells take ``DEFAULT_END_OF_LIFE``'s value.
    """

    recovery_potential: float = 0.0
    actual_recovery: float = 0.0
    collected_recycling: float = 0.0
    collected_reuse: float = 0.0
    collected_composting: float = 0.0
    collected_energy: float = 0.0
    recycling_efficiency_eol: float = 1.0
    recycling_efficiency_feedstock: float = 1.0
    lifetime_ratio: float = 1.0
    intensity_ratio: float = 1.0
    source: str = "defaults"


DEFAULT_END_OF_LIFE = EndOfLife()
"""For a product without data: not recovered (CTI's conservative default), nothing collected
at end of life, recycling without loss (E_C = E_F = 1), average utility (X = 1)."""

_FRACTIONS = (
    "recovery_potential",
    "actual_recovery",
    "collected_recycling",
    "collected_reuse",
    "collected_composting",
    "collected_energy",
    "recycling_efficiency_eol",
    "recycling_efficiency_feedstock",
)


def _end_of_life_row(row: dict[str, str]) -> tuple[str, EndOfLife]:
    values: dict[str, float] = {}
    for name in (*_FRACTIONS, "lifetime_ratio", "intensity_ratio"):
        text = row[name].strip()
        if not text:
            continue
        value = float(text)
        if name in _FRACTIONS and not 0 <= value <= 1:
            raise ValueError(f"{name} {value} is not a fraction between 0 and 1")
        if value <= 0 and (name.startswith("recycling_efficiency") or name.endswith("ratio")):
            raise ValueError(f"{name} must be greater than 0")
        values[name] = value
    if not row["source"].strip():
        raise ValueError("source is empty")
    return row["material"], EndOfLife(**values, source=row["source"])


def _waste_rule(row: dict[str, str]) -> WasteFateRule:
    return WasteFateRule(
        rule=row["rule"],
        destination_kinds=frozenset(NodeKind(k) for k in row["destination_kinds"].split()),
        isic_prefixes=tuple(row["isic_prefixes"].split()),
        hs_prefixes=tuple(row["hs_prefixes"].split()),
        fate=WasteFate(row["fate"]),
        source=row["source"],
    )


def _path(name: str) -> Path:
    return get_settings().datasets_dir / "circularity" / name


@cache
def _fate_rules(path: Path) -> tuple[WasteFateRule, ...]:
    return tuple(read_rows(path, _waste_rule))


@cache
def _end_of_life_table(path: Path) -> Mapping[str, EndOfLife]:
    return MappingProxyType(dict(read_rows(path, _end_of_life_row)))


def waste_fate_rules() -> tuple[WasteFateRule, ...]:
    """The rules of ``datasets/circularity/waste_fates.csv``, in file order."""
    return _fate_rules(_path("waste_fates.csv"))


def end_of_life_table() -> Mapping[str, EndOfLife]:
    """Material code → ``EndOfLife`` from ``datasets/circularity/product_end_of_life.csv``."""
    return _end_of_life_table(_path("product_end_of_life.csv"))
