"""Expected failures become data (``userErrors``); unexpected ones are masked and logged.

Mutations catch ``MfaError`` and return it as ``UserError``s. Queries let it propagate:
``ErrorPolicy`` keeps its message and adds ``extensions.code`` and ``extensions.field``.
Anything else is a bug: the client sees "Unexpected error." with a request id, and the log
holds the traceback under that id.
"""

from __future__ import annotations

import logging
import uuid
from enum import Enum

import strawberry
from strawberry.extensions import MaskErrors

from graphql import GraphQLError
from mfa.errors import BatchValidationError, MfaError

log = logging.getLogger("mfa.api")


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
                request_id = uuid.uuid4().hex
                log.error(
                    "unexpected error in %s (request %s)",
                    error.path,
                    request_id,
                    exc_info=(type(original), original, original.__traceback__),
                )
                masked = self.anonymise_error(error)
                masked.extensions = {"code": "INTERNAL", "requestId": request_id}
                processed.append(masked)
        return processed
