"""Circularity indicators (WBCSD CTI, Ellen MacArthur MCI, waste by fate) of a park, an
enterprise or a group of enterprises, computed from the ledger; see ``indicators``."""

from mfa.circularity.indicators import (
    Circularity,
    EnterpriseMci,
    FateTotal,
    Ratio,
    Unconverted,
    circularity,
)
from mfa.circularity.parameters import EndOfLife, WasteFate
from mfa.circularity.scope import FlowSelection, Scope, ScopeKind, resolve_scope

__all__ = [
    "Circularity",
    "EndOfLife",
    "EnterpriseMci",
    "FateTotal",
    "FlowSelection",
    "Ratio",
    "Scope",
    "ScopeKind",
    "Unconverted",
    "WasteFate",
    "circularity",
    "resolve_scope",
]
