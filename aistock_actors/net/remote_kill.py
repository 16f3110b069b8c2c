"""The remote kill-switch contract and one check of it.

Contract (``headless.kill_switch_check_url``, polled with GET every
``kill_switch_check_interval_seconds``):

- HTTP **200** with a JSON object whose ``kill_switch`` is ``true`` → **trip** (halt now);
- HTTP 200 with ``"kill_switch": false`` → keep running;
- anything else — another status, a body that is not JSON, a missing or non-boolean
  ``kill_switch``, a timeout, a refused connection — is a **failed check**: warning alert
  ``kill_switch_check_failed``, trading continues (the file kill switch still works), and with
  ``headless.kill_switch_fail_closed_after: N`` the N-th failed check in a row trips.

Connection errors, timeouts and 408/429/5xx are retried within the interval (jittered
exponential backoff); other answers fail at once. With ``headless.kill_switch_token_env`` the
request carries ``Authorization: Bearer <value of that environment variable>``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

import aiohttp

from aistock_actors.errors import PermanentHTTPError
from aistock_actors.messages.ops import RemoteKillSwitchChecked
from aistock_actors.net.http import RetryPolicy, raise_for_status
from aistock_actors.net.http import request_with_retry as _request

FAILED_MESSAGE = "kill_switch_check_failed: remote URL unreachable"
"""The alert message of a failed check (the manual's troubleshooting entry)."""


def parse_kill_switch(status: int, body: bytes) -> bool:
    """Apply the contract to one answer: True trips, False runs, anything else raises."""
    if status != 200:
        raise_for_status(status)
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise PermanentHTTPError("answer is not JSON", status) from None
    if not isinstance(data, dict) or "kill_switch" not in data:
        raise PermanentHTTPError('answer has no "kill_switch" key', status)
    value = data["kill_switch"]
    if not isinstance(value, bool):
        raise PermanentHTTPError(f'"kill_switch" is {type(value).__name__}, not true/false', status)
    return value


async def check_remote_kill_switch(
    session: aiohttp.ClientSession,
    url: str,
    *,
    policy: RetryPolicy,
    headers: Mapping[str, str] | None = None,
    on_active: Callable[[], None] | None = None,
    redact: Callable[[str], str] = lambda text: text,
) -> RemoteKillSwitchChecked:
    """One check (with its retries); ``on_active`` runs on the loop the moment a trip is seen
    (it sets the shared halt flag, before any actor processes the result)."""
    result = await _request(
        session, "GET", url, policy=policy, parse=parse_kill_switch, headers=headers, redact=redact
    )
    if not result.ok:
        return RemoteKillSwitchChecked(active=None, attempts=result.attempts, error=result.error)
    active = bool(result.value)
    if active and on_active is not None:
        on_active()
    return RemoteKillSwitchChecked(active=active, attempts=result.attempts)
