"""POSTing one health report (built by
:func:`aistock_actors.core.supervision.health.build_health_report`).

Retried like every call of :mod:`aistock_actors.net.http`, squeezed into the report interval,
so a slow monitoring endpoint never piles up reports: the next one waits for this one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp

from aistock_actors.messages.ops import HealthReportDelivered
from aistock_actors.net.http import RetryPolicy, expect_2xx, request_with_retry


async def post_health_report(
    session: aiohttp.ClientSession,
    url: str,
    report: dict[str, Any],
    *,
    policy: RetryPolicy,
    redact: Callable[[str], str] = lambda text: text,
) -> HealthReportDelivered:
    """POST ``report`` as JSON; 2xx is delivered, anything else (after retries) is not."""
    result = await request_with_retry(
        session, "POST", url, policy=policy, parse=expect_2xx, json_body=report, redact=redact
    )
    return HealthReportDelivered(ok=result.ok, attempts=result.attempts, error=result.error)
