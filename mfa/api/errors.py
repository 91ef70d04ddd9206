"""Expected failures become data (``userErrors``); unexpected ones are masked and logged.

Mutations catch ``MfaError`` and return it as ``UserError``s. Queries let it propagate:
``ErrorPolicy`` keeps its message and adds ``extensions.code`` and ``extensions.field``.
Anything else is a bug: the client sees "Unexpected error." with the request id, and the log
holds the traceback under that id. A lost database connection is not a bug but a transient
fault: it is masked the same way, with code ``UNAVAILABLE`` (HTTP 503, see ``mfa.api.http``).
"""

from __future__ import annotations

import logging
import uuid
from contextvars import ContextVar
from enum import Enum

import asyncpg.exceptions
import sqlalchemy.exc
import strawberry
from strawberry.extensions import MaskErrors

from graphql import GraphQLError
from mfa.errors import BatchValidationError, MfaError

log = logging.getLogger("mfa.api")

_request_id: ContextVar[str | None] = ContextVar("mfa_request_id", default=None)


def request_id() -> str:
    """The id of the request being served (set by ``mfa.api.http.RequestGuard`` and sent back
    as ``X-Request-Id``), or a fresh one outside a request."""
    return _request_id.get() or uuid.uuid4().hex


def set_request_id(value: str | None) -> None:
    """Bind ``value`` to the request being served (``None`` when it ends)."""
    _request_id.set(value)


MASKED = {
    "INTERNAL": "Unexpected error.",
    "UNAVAILABLE": "The database is unavailable: retry in a moment.",
}


def is_unavailable(error: BaseException) -> bool:
    """Whether ``error`` means the database could not be reached or dropped the connection
    (a restart, a failover, SQLite's writer lock): transient, so the client is told to retry
    (HTTP 503). Looks down the chain of causes, where SQLAlchemy keeps the driver's error."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, sqlalchemy.exc.DBAPIError) and (
            seen.connection_invalidated
            or isinstance(seen, sqlalchemy.exc.OperationalError | sqlalchemy.exc.InterfaceError)
        ):
            return True
        if isinstance(
            seen,
            OSError
            | sqlalchemy.exc.TimeoutError
            | asyncpg.exceptions.PostgresConnectionError
            | asyncpg.exceptions.OperatorInterventionError,
        ):
            return True
        if isinstance(seen, asyncpg.exceptions.InterfaceError) and str(seen) == _CLOSED:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


# What asyncpg raises (a bare ``InterfaceError``) when a statement meets a connection the
# server already closed: during a restart, a connection can close between its handshake and
# the statements SQLAlchemy sends on connect. Other ``InterfaceError``s are misuse, not
# transient, so the message is compared, not the class alone.
_CLOSED = "connection is closed"


@strawberry.enum
class UserErrorCode(Enum):
    INVALID = "INVALID"
    NOT_FOUND = "NOT_FOUND"
    UNKNOWN_UNIT = "UNKNOWN_UNIT"
    WRONG_DIMENSION = "WRONG_DIMENSION"
    INVALID_QUANTITY = "INVALID_QUANTITY"
    INVALID_PERIOD = "INVALID_PERIOD"
    SELF_FLOW = "SELF_FLOW"
    DUPLICATE = "DUPLICATE"
    ALREADY_REVERSED = "ALREADY_REVERSED"
    CANNOT_CONFIRM = "CANNOT_CONFIRM"
    INVALID_BATCH = "INVALID_BATCH"
    FORBIDDEN = "FORBIDDEN"
    LEDGER_IMMUTABLE = "LEDGER_IMMUTABLE"
    MISSING_FACTOR = "MISSING_FACTOR"
    INVALID_FACTOR_DATA = "INVALID_FACTOR_DATA"
    INVALID_RECYCLING_PARAMETER = "INVALID_RECYCLING_PARAMETER"


@strawberry.type(description="An input the service refused, and why.")
class UserError:
    field: list[str] | None = strawberry.field(
        description='Path to the input field, e.g. ["input", "flows", "3", "quantity"].'
    )
    message: str
    code: UserErrorCode


_CODES = frozenset(code.value for code in UserErrorCode)


def user_errors(error: MfaError, *, prefix: tuple[str, ...] = ("input",)) -> list[UserError]:
    errors = error.errors if isinstance(error, BatchValidationError) else [error]
    return [
        UserError(
            field=[*prefix, *e.field] if e.field else None,
            message=e.message,
            code=UserErrorCode(e.code) if e.code in _CODES else UserErrorCode.INVALID,
        )
        for e in errors
    ]


class ErrorPolicy(MaskErrors):
    """Domain errors keep their message and gain a code; any other exception is masked."""

    def _process_errors(self, errors: list[GraphQLError]) -> list[GraphQLError]:
        processed: list[GraphQLError] = []
        for error in errors:
            original = error.original_error
            if original is None or isinstance(original, GraphQLError):
                processed.append(error)
            elif isinstance(original, MfaError):
                error.extensions = {"code": original.code, "field": list(original.field)}
                processed.append(error)
            else:
                current = request_id()
                unavailable = is_unavailable(original)
                log.error(
                    "%s error in %s (request %s)",
                    "database unavailable" if unavailable else "unexpected",
                    error.path,
                    current,
                    exc_info=(type(original), original, original.__traceback__),
                )
                masked = self.anonymise_error(error)
                code = "UNAVAILABLE" if unavailable else "INTERNAL"
                masked.message = MASKED[code]
                masked.extensions = {"code": code, "requestId": current}
                processed.append(masked)
        return processed
