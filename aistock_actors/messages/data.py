"""Market-data messages: the ingest step of a cycle."""

from __future__ import annotations

from aistock_actors.messages import Reply, Request


class IngestBars(Request, frozen=True, kw_only=True):
    """Ingest every new bar from the configured CSV folder."""


class BarsIngested(Reply, frozen=True, kw_only=True):
    """Ingestion finished; rejected files were alerted and left the earlier bars intact."""

    bars_added: int
    """New bars stored this cycle over all symbols."""
    symbols_ingested: int
    """Symbols whose file was accepted (with or without new bars)."""
    symbols_rejected: list[str]
    """Symbols whose file was rejected this cycle."""
    total_bars: int
    """Bars held in the bar store after ingestion."""


DataIngestorInbox = IngestBars
"""What the DataIngestor accepts besides control messages."""
