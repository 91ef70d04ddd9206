"""circular-mfa: the ledger of flows between the enterprises of an industrial park."""

__version__ = "0.1.0"
