"""The domain's exceptions: one base, one class per failure, each message saying what to fix.

Every error carries ``field`` (the input path it concerns, e.g. ``("flows", "3", "quantity")``)
and ``code`` (a stable machine-readable name) so the API can turn it into a ``UserError``
without parsing messages.
"""

from __future__ import annotations

from collections.abc import Sequence


class MfaError(Exception):
    """Base of every expected failure; anything else is a bug and is masked for clients."""

    code = "INVALID"

    def __init__(self, message: str, *, field: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.field: tuple[str, ...] = tuple(field)

    def at(self, *prefix: str) -> MfaError:
        """The same error with its field path under ``prefix`` (a batch row, an input object)."""
        self.field = (*prefix, *self.field)
        return self


class NotFoundError(MfaError):
    code = "NOT_FOUND"


class UnitError(MfaError):
    """A unit pint does not know, or one that is ambiguous."""

    code = "UNKNOWN_UNIT"


class DimensionError(MfaError):
    """A unit whose dimension is not the material's (litres of steel)."""

    code = "WRONG_DIMENSION"


class QuantityError(MfaError):
    """A negative, non-finite or otherwise unusable number."""

    code = "INVALID_QUANTITY"


class PeriodError(MfaError):
    code = "INVALID_PERIOD"


class SelfFlowError(MfaError):
    code = "SELF_FLOW"


class DuplicateError(MfaError):
    code = "DUPLICATE"


class ReversalError(MfaError):
    """Reversing a reversal, or reversing an entry twice."""

    code = "ALREADY_REVERSED"


class ConfirmationError(MfaError):
    code = "CANNOT_CONFIRM"


class BatchError(MfaError):
    """A batch that breaks a batch-level limit (size, emptiness)."""

    code = "INVALID_BATCH"


class PermissionDeniedError(MfaError):
    code = "FORBIDDEN"


class AuthenticationError(MfaError):
    """Missing, unknown, expired or malformed credentials (HTTP 401)."""

    code = "UNAUTHENTICATED"


class LedgerImmutableError(MfaError):
    """Raised below the API when code tries to update or delete a ledger row."""

    code = "LEDGER_IMMUTABLE"


class BatchValidationError(MfaError):
    """Several rows of one batch failed; ``errors`` holds each, nothing was written."""

    code = "INVALID_BATCH"

    def __init__(self, errors: Sequence[MfaError]) -> None:
        first = errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        super().__init__(f"{'.'.join(first.field)}: {first.message}{more}", field=first.field)
        self.errors = list(errors)
