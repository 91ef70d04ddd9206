"""Quantities enter through pint and leave in canonical units: kg, m3, kWh.

One registry for the process. Conversions are cached per (unit, dimension) so a batch of
100,000 flows parses each distinct unit once.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from functools import lru_cache

import pint

from mfa.errors import DimensionError, QuantityError, UnitError


class Dimension(StrEnum):
    """The physical dimension of a material, which fixes its canonical unit."""

    MASS = "mass"
    VOLUME = "volume"
    ENERGY = "energy"


CANONICAL_UNIT: dict[Dimension, str] = {
    Dimension.MASS: "kg",
    Dimension.VOLUME: "m3",
    Dimension.ENERGY: "kWh",
}

_PINT_DIMENSIONALITY: dict[Dimension, str] = {
    Dimension.MASS: "[mass]",
    Dimension.VOLUME: "[length] ** 3",
    Dimension.ENERGY: "[mass] * [length] ** 2 / [time] ** 2",
}

# pint's "ton" is the US short ton (907 kg); in a Vietnamese park "ton" almost always means the
# metric tonne. Refuse the guess rather than be wrong by 10%.
_AMBIGUOUS: dict[str, str] = {
    "ton": "'ton' is ambiguous: write 't' or 'tonne' for 1000 kg, or 'short_ton' / 'long_ton'",
    "tons": "'tons' is ambiguous: write 't' or 'tonne' for 1000 kg, or 'short_ton' / 'long_ton'",
}

# "m3", "Nm3", "cm3" as written in ERP exports mean m**3 etc.
_POWER_SUFFIX = re.compile(r"(?<=[A-Za-z])([23])\b")

registry: pint.UnitRegistry[float] = pint.UnitRegistry(
    preprocessors=[lambda s: _POWER_SUFFIX.sub(r"**\1", s)]
)
registry.define("tonne_of_oil_equivalent = 41.868 GJ = toe")


def _dimension_name(unit: pint.Unit) -> str:
    return str(unit.dimensionality)


@lru_cache(maxsize=512)
def conversion_factor(unit: str, dimension: Dimension) -> float:
    """Factor f such that ``q [unit] = q·f [canonical unit of dimension]``.

    Raises ``UnitError`` for a unit pint does not know (or an ambiguous one) and
    ``DimensionError`` when the unit measures something else. The factor is rounded to 15
    significant digits so that exact decimal ratios (1 L = 0.001 m3) stay exact.
    """
    text = unit.strip()
    if not text:
        raise UnitError("unit is empty: give a unit such as kg, t, m3, kWh", field=("unit",))
    if text.lower() in _AMBIGUOUS:
        raise UnitError(_AMBIGUOUS[text.lower()], field=("unit",))
    try:
        parsed = registry.parse_units(text)
    except (pint.UndefinedUnitError, pint.DefinitionSyntaxError, ValueError, AttributeError) as exc:
        raise UnitError(
            f"unknown unit {text!r}: use a unit such as kg, t, m3, L, kWh, MWh, GJ",
            field=("unit",),
        ) from exc
    except Exception as exc:  # pint's tokenizer raises assorted errors on garbage
        raise UnitError(f"cannot read unit {text!r}", field=("unit",)) from exc
    if parsed.dimensionality != registry.get_dimensionality(_PINT_DIMENSIONALITY[dimension]):
        raise DimensionError(
            f"unit {text!r} measures {_dimension_name(parsed)}, but the material is measured "
            f"in {dimension.value} ({CANONICAL_UNIT[dimension]})",
            field=("unit",),
        )
    factor = registry.Quantity(1, parsed).to(CANONICAL_UNIT[dimension]).magnitude
    return float(f"{float(factor):.15g}")


def parse_amount(value: Decimal | float | int | str) -> Decimal:
    """The reported number as an exact decimal; refuses NaN, infinities and garbage."""
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise QuantityError(f"quantity {value!r} is not a number", field=("quantity",)) from exc
    if not amount.is_finite():
        raise QuantityError(f"quantity {value!r} is not finite", field=("quantity",))
    return amount


def to_canonical(
    value: Decimal | float | int | str, unit: str, dimension: Dimension
) -> tuple[float, Decimal]:
    """``(quantity in canonical units, the reported amount as given)``; refuses negatives.

    A zero is accepted: a period in which nothing moved is a fact worth recording.
    """
    amount = parse_amount(value)
    if amount < 0:
        raise QuantityError(
            f"quantity {amount} is negative: record flows in their direction of travel and "
            "correct mistakes with a reversal",
            field=("quantity",),
        )
    canonical = float(amount) * conversion_factor(unit, dimension)
    if not math.isfinite(canonical):
        raise QuantityError(f"quantity {amount} {unit} is too large", field=("quantity",))
    return canonical, amount
