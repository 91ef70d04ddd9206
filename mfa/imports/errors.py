"""Failures of an import as a whole: the file cannot be read, or the profile cannot be used."""

from __future__ import annotations

from mfa.errors import MfaError


class ImportFileError(MfaError):
    """The file is empty, too large, not what its name says, or not readable as a table."""

    code = "INVALID_FILE"


class ProfileError(MfaError):
    """No such mapping profile, or a profile file that does not describe a mapping."""

    code = "INVALID_PROFILE"


class ImportJobError(MfaError):
    """An import job asked to do what its status does not allow (commit a failed job...)."""

    code = "INVALID_JOB"
