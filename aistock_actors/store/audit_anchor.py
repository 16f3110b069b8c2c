"""The audit chain's anchor: a head record kept OUTSIDE the state folder and keyed with the
integrity key, so cutting the log's tail, deleting the log, or editing a line and recomputing
the chain are all detected (``--audit-verify`` exits 5; the daemon halts at start).

The head (``audit-head-<id>.json`` beside the integrity key, ``<id>`` naming the state folder)
holds how many records the chain had and the hash of the last one, plus an HMAC of both under
the key. It is rewritten after every anchored append. A log LONGER than its head is fine as long
as the head's record is still in place (a crash between the append and the head write, or an
unanchored writer); shorter, missing, or with a different line at the head's position is a break.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from aistock_actors.store.atomic import atomic_write_json
from aistock_actors.store.signing import IntegrityKey

if TYPE_CHECKING:
    from aistock_actors.config.loading import LoadedConfig

_PURPOSE = "audit-head"


class AuditHead(msgspec.Struct, frozen=True, kw_only=True):
    """The anchored chain head: ``records`` lines, the last one hashing to ``last_hash``."""

    log: str
    records: int
    last_hash: str
    mac: str = ""


def head_path_for(key: IntegrityKey, log_path: Path) -> Path:
    """Where the head of the audit log at ``log_path`` is kept (beside the key)."""
    tag = hashlib.sha256(str(Path(log_path).resolve()).encode()).hexdigest()[:12]
    return key.path.parent / f"audit-head-{tag}.json"


class AuditAnchor:
    """Reads and writes one log's keyed head record."""

    def __init__(self, key: IntegrityKey, log_path: Path, head_path: Path | None = None) -> None:
        self.key = key
        self.log_path = Path(log_path).resolve()
        self.path = head_path if head_path is not None else head_path_for(key, self.log_path)

    def _mac(self, records: int, last_hash: str) -> str:
        return self.key.sign(_PURPOSE, f"{self.log_path}\0{records}\0{last_hash}".encode())

    def write(self, records: int, last_hash: str) -> AuditHead:
        """Record that the chain now has ``records`` lines ending in ``last_hash``."""
        head = AuditHead(log=str(self.log_path), records=records, last_hash=last_hash,
                         mac=self._mac(records, last_hash))
        atomic_write_json(self.path, head, keep_backup=False)
        return head

    def read(self) -> tuple[AuditHead | None, str | None]:
        """(head, None); (None, None) if there is none yet; (None, why it is not trusted)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return None, None
        except OSError as exc:
            return None, f"audit head {self.path} unreadable: {exc.strerror or exc}"
        try:
            head = msgspec.json.decode(raw, type=AuditHead)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return None, f"audit head {self.path} corrupt: {exc}"
        if not self.key.verify(_PURPOSE, f"{head.log}\0{head.records}\0{head.last_hash}".encode(),
                               head.mac) or head.log != str(self.log_path):
            return None, f"audit head {self.path} fails its keyed check (forged or another log's)"
        return head, None


def audit_path(loaded: LoadedConfig) -> Path:
    """``state/audit/log.jsonl`` of a loaded config."""
    return loaded.state_dir / "audit" / "log.jsonl"


def anchor_for(loaded: LoadedConfig) -> AuditAnchor:
    """The anchor of the config's audit log, keyed with its integrity key."""
    return AuditAnchor(IntegrityKey.from_config(loaded), audit_path(loaded))
