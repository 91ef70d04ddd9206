"""The LCA's expected failures, under the core's single base ``mfa.errors.MfaError``."""

from __future__ import annotations

from mfa.errors import MfaError


class LcaError(MfaError):
    """Base of the failures raised by ``lca``."""


class MissingFactorError(LcaError):
    """No sourced factor exists for what was asked: report it as missing, never as zero."""

    code = "MISSING_FACTOR"


class FactorDataError(LcaError):
    """A factor file in ``datasets/factors`` (or bw2io's LCIA data) is malformed or incomplete."""

    code = "INVALID_FACTOR_DATA"


class RecyclingParameterError(LcaError):
    """A recycling-allocation parameter outside its range; ``field`` names the parameter."""

    code = "INVALID_RECYCLING_PARAMETER"
