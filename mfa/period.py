"""Reporting periods: inclusive date ranges, checked once for every caller."""

from __future__ import annotations

from datetime import date

from mfa.errors import PeriodError


def check_period(start: date, end: date) -> None:
    """Refuse a period that ends before it starts (a one-day period has start == end)."""
    if end < start:
        raise PeriodError(
            f"period ends {end.isoformat()} before it starts {start.isoformat()}",
            field=("periodEnd",),
        )
