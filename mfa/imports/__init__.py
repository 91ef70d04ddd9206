"""Bulk import of stock movements from ERP export files (CSV, xlsx, Parquet) into the ledger.

``profiles`` says how an ERP's columns, units and movement types map onto flows; ``reader``
turns a file into chunks of text cells whatever its format, encoding and separators;
``rows`` validates a chunk (pandera, lazily: every bad cell at once) and maps the good rows
onto ``FlowCreate``; ``jobs`` runs an import as one batch, all or nothing, idempotent by the
movements' natural keys.
"""
