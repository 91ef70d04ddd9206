"""Which failures tell the client to retry (``UNAVAILABLE``, HTTP 503) and which are bugs."""

from __future__ import annotations

import asyncpg.exceptions
import pytest
import sqlalchemy.exc

from mfa.api.errors import is_unavailable


def _raised_by_sqlalchemy(driver_error: Exception) -> BaseException:
    """``driver_error`` as SQLAlchemy surfaces it: a ``DBAPIError`` caused by the driver's."""
    try:
        try:
            raise driver_error
        except Exception as exc:
            raise sqlalchemy.exc.DBAPIError("select 1", None, exc) from exc
    except sqlalchemy.exc.DBAPIError as wrapped:
        return wrapped


@pytest.mark.parametrize(
    ("error", "unavailable"),
    [
        # a restart closes a connection between its handshake and SQLAlchemy's on-connect
        (asyncpg.exceptions.InterfaceError("connection is closed"), True),
        (asyncpg.exceptions.CannotConnectNowError("the database system is starting up"), True),
        (asyncpg.exceptions.AdminShutdownError("terminating connection"), True),
        (ConnectionRefusedError(111, "Connection refused"), True),
        (
            asyncpg.exceptions.InterfaceError(
                "cannot perform operation: another operation is in progress"
            ),
            False,
        ),
        (asyncpg.exceptions.UniqueViolationError("duplicate key"), False),
    ],
)
def test_a_closed_or_unreachable_database_is_unavailable_and_misuse_is_not(
    error: Exception, unavailable: bool
) -> None:
    assert is_unavailable(error) is unavailable
    assert is_unavailable(_raised_by_sqlalchemy(error)) is unavailable
