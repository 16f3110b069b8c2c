"""Market-data sources: one interface (``base.Source``), one small adapter per provider.

``build_source`` picks the adapter named by ``data.source``; ``fetch.fetch_into_store`` pages a
source's closed bars into the ``BarStore``. A new provider is one module with a ``Source``.
"""

from __future__ import annotations

from aistock_actors.sources.base import Source, SourceError, credentials, store_symbol
from aistock_actors.sources.factory import build_source, check_source

__all__ = ["Source", "SourceError", "build_source", "check_source", "credentials", "store_symbol"]
