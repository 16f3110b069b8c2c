"""One error tree for the whole system; retries only ever apply to the transient branch."""

from __future__ import annotations


class AutopilotError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(AutopilotError):
    """The config file is unreadable, malformed, has an unknown key or a value out of range."""


class DataError(AutopilotError):
    """Market data (a CSV file or a row in it) is malformed or inconsistent."""


class StateError(AutopilotError):
    """A state file could not be read or written."""


class ModelIntegrityError(AutopilotError):
    """A stored model artifact does not match its recorded sha256 (tampered or truncated)."""


class TransientNetworkError(AutopilotError):
    """A network call failed in a way that may succeed on retry."""


class LockHeldError(AutopilotError):
    """Another process already runs a daemon (or a cycle) on this state directory."""


class HaltedError(AutopilotError):
    """An action was refused because the system is halted."""


class JobTimeoutError(AutopilotError, TimeoutError):
    """A pooled job did not finish within its timeout; it was abandoned (``runtime/jobs.py``)."""


class JobBackendError(AutopilotError, RuntimeError):
    """The job backend itself failed (dask scheduler unreachable, local cluster did not start)."""


class JobCancelledError(AutopilotError):
    """A pooled job was cancelled (the system halted or the process is stopping); abandoned."""


class StrategyError(AutopilotError):
    """A strategy (built-in or user-written) cannot be loaded or produced unusable output; the
    message names the strategy."""


class UnexpectedMessageError(AutopilotError, TypeError):
    """An actor received a message its inbox does not declare (a bug: the actor crashes)."""


class InjectedFault(AutopilotError, RuntimeError):
    """The exception an injected ``raise`` or ``on_start`` fault throws (``runtime/faults.py``)."""


class PermanentHTTPError(AutopilotError):
    """An HTTP answer that retrying will not change (a 4xx, a malformed body)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TransientHTTPError(TransientNetworkError):
    """An HTTP answer worth retrying (408, 429, 5xx)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class StaleInstanceError(StateError):
    """This actor instance was replaced by a newer generation; it must not write."""


class ModelUnavailableError(AutopilotError):
    """The active model cannot be used this cycle (a reason code and a message)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class ReplayError(AutopilotError):
    """A replay cannot run as asked (dates outside the data, a state directory it must not use)."""
