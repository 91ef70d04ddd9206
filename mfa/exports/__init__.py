"""Exports partners' tools can read: tidy tables (CSV, Excel, Parquet) and PACT footprints.

``tables`` turns ledger flows, mass balances, circularity indicators and footprints into tidy
pandas DataFrames, one row per entity × indicator × period with its unit and the ids and codes
that trace it back to the ledger; ``formats`` writes a table as bytes; ``pact`` maps a product
footprint onto the WBCSD PACT ProductFootprint (data model v2.3); ``service`` takes an export
from its text arguments to a file. The CLI (``mfa export``) and the HTTP router
(``mfa.api.exports``) are thin edges over ``service``.
"""
