"""``FileCursor``: how far the ingestor read a symbol's CSV, kept in ``state/bars/cursors.json``."""

from __future__ import annotations

import msgspec


class FileCursor(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True
):
    """How far a symbol's CSV file was read, and how to tell whether it was rewritten since.

    The cursor applies while the file is the same one (``inode``), still reaches ``offset``, and
    its header and the bytes just before ``offset`` hash as recorded; only then are the rows
    after ``offset`` read alone (see :mod:`aistock_actors.store.ingest_tail`).
    """

    file: str
    """Name of the CSV file (a different file for the symbol means: start over)."""
    offset: int
    """Byte offset just past the last fully parsed line."""
    lines: int
    """Number of complete lines before ``offset`` (the header included)."""
    size: int
    """File size when it was last read."""
    header_sha256: str
    """Hash of the header line: a changed header means the file was rewritten."""
    last_timestamp: int | None
    """The store's last bar after this read; a mismatch means the cursor is stale."""
    inode: int = 0
    """The file's inode when it was read: another file under the name means it was replaced."""
    window_sha256: str = ""
    """Hash of the (up to) ``CURSOR_WINDOW`` bytes before ``offset``: a change there means the
    file was rewritten or truncated in place ("": a cursor of an older version, not trusted)."""
    prefix_sha256: str = ""
    """Hash of every byte before ``offset``, as versions before the windowed cursor wrote it;
    read but not used (such a cursor has no window, so its file is parsed whole once)."""
