"""Alert notifications through `apprise <https://github.com/caronc/Apprise>`_: Telegram,
Discord, e-mail, ntfy, Matrix, Pushover and ~100 more services behind one URL scheme each.

``supervision.notification_webhooks.apprise`` (a list of apprise URLs) and ``apprise_env`` (names
of environment variables, each holding one URL) make one more webhook lane, beside Slack,
PagerDuty and the generic JSON target: WARNING, ERROR and CRITICAL alerts are sent to every
apprise URL. apprise is an optional extra (``pip install 'aistock-actors[notify]'``), imported
only when such a URL is configured. Its calls are blocking, so each attempt runs in a worker
thread, bounded by ``monitoring.http_timeout_seconds`` and retried with the webhooks' jittered
backoff within ``monitoring.retry_max_attempts`` / ``retry_max_seconds``. Every URL is a secret
(masked in logs, alerts and the audit log).
"""

from __future__ import annotations

import asyncio
import random
import warnings
from collections.abc import Mapping, Sequence
from types import ModuleType
from typing import Any

from aistock_actors.net.http import RetryPolicy
from aistock_actors.runtime.clock import SYSTEM_CLOCK
from aistock_actors.store.alerts import Alert

INSTALL_HINT = "pip install 'aistock-actors[notify]'"
"""What to run when apprise URLs are configured but the package is missing."""


def _apprise() -> ModuleType:
    """``import apprise`` with its plugins loaded, quietly: its e-mail plugin imports the
    stdlib's deprecated ``imghdr`` (a DeprecationWarning that is not ours to fix), and apprise
    loads plugins on first use; :func:`apprise_urls` calls this first, on the supervisor's
    thread at start-up, so later deliveries find everything loaded."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import apprise

        apprise.Apprise().details()  # loads every plugin now
    return apprise


def apprise_urls(
    urls: Sequence[str], env_names: Sequence[str], environ: Mapping[str, str]
) -> tuple[list[str], list[str]]:
    """The configured apprise URLs (literal, then from the environment) and one problem line per
    unusable one (a variable not set, a URL apprise does not understand, apprise missing)."""
    found = [u for u in urls if u]
    problems = []
    for name in env_names:
        value = environ.get(name, "").strip()
        if value:
            found.append(value)
        else:
            problems.append(f"apprise: environment variable {name} is not set")
    if not found:
        return [], problems
    try:
        apprise = _apprise()
    except ImportError:
        return [], [*problems, f"apprise: {len(found)} URL(s) configured but the apprise package "
                               f"is not installed ({INSTALL_HINT}); apprise disabled"]
    usable = []
    for i, url in enumerate(found, start=1):
        scheme = url.split("://", 1)[0] if "://" in url else "(none)"
        if apprise.Apprise().add(url):
            usable.append(url)
        else:
            problems.append(f"apprise: URL #{i} (scheme {scheme!r}) is not understood by apprise; "
                            "skipped")
    return usable, problems


def apprise_payload(alert: Alert) -> dict[str, Any]:
    """Title, body and apprise notification type of ``alert``."""
    kind = {"warning": "warning", "error": "failure", "critical": "failure"}.get(
        alert.severity, "info")
    return {
        "title": f"[aistock] {alert.severity.upper()} {alert.code}",
        "body": f"{alert.message}\n({alert.actor}, {alert.ts})",
        "notify_type": kind,
    }


def _notify_once(urls: Sequence[str], payload: Mapping[str, Any], timeout: float) -> bool:
    apprise = _apprise()

    asset = apprise.AppriseAsset(async_mode=False)
    sender = apprise.Apprise(asset=asset)
    for url in urls:
        sender.add(url, asset=asset)
    for server in sender:  # bound every HTTP call of every service by our attempt timeout
        server.socket_connect_timeout = timeout
        server.socket_read_timeout = timeout
    return bool(sender.notify(title=payload["title"], body=payload["body"],
                              notify_type=payload["notify_type"]))


async def send_apprise(
    urls: Sequence[str], payload: Mapping[str, Any], policy: RetryPolicy
) -> tuple[bool, int, str]:
    """Send to every URL, retried as a webhook is; ``(ok, attempts, last error)``."""
    start = SYSTEM_CLOCK.monotonic()
    error = ""
    attempt = 0
    while attempt < policy.max_attempts:
        attempt += 1
        try:
            ok = await asyncio.wait_for(
                asyncio.to_thread(_notify_once, urls, payload, policy.attempt_timeout),
                timeout=policy.attempt_timeout * 2 + 1.0,
            )
        except (TimeoutError, OSError) as exc:
            ok, error = False, f"{type(exc).__name__}: {exc}"
        else:
            error = "" if ok else "apprise reported a failed delivery"
        if ok:
            return True, attempt, ""
        backoff = random.uniform(0.0, min(policy.backoff_max, policy.backoff_base * 2**attempt))
        if SYSTEM_CLOCK.monotonic() - start + backoff >= policy.max_seconds:
            break
        await asyncio.sleep(backoff)
    return False, attempt, error
