"""Webhook targets and payloads, pure: Slack, PagerDuty Events API v2, generic JSON.

- **Slack** incoming webhook: ``{"text": ..., "blocks": [header, section, context]}``; ``text``
  is the notification fallback, the blocks the formatted message (mrkdwn, ``&<>`` escaped).
- **PagerDuty** Events API v2: ``{"routing_key", "event_action": "trigger", "dedup_key",
  "payload": {"summary", "source", "severity", "timestamp", "component", "group", "class",
  "custom_details"}}``; severities map one to one (info, warning, error, critical). The
  ``dedup_key`` is ``aistock/<host>/<alert code>``: repeats of one code update one incident.
  A *resolving* alert sends ``{"routing_key", "event_action": "resolve", "dedup_key"}`` for
  each code it resolves (see :class:`IncidentTracker`).
- **generic**: the alert itself, as written under ``state/alerts/``.
- **apprise**: title, body and type for every apprise URL
  (``aistock_actors/net/apprise_target.py``).

Only WARNING, ERROR and CRITICAL alerts trigger; INFO alerts only ever resolve.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import msgspec

from aistock_actors.config import Config
from aistock_actors.runtime.redaction import resolve_env
from aistock_actors.store.alerts import Alert

WebhookKind = Literal["slack", "pagerduty", "generic", "apprise"]
NOTIFY_SEVERITIES = frozenset({"warning", "error", "critical"})
PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
RESOLVE_ALL_CRITICAL = frozenset({"kill_switch_deactivated", "operator_resumed"})
"""Alert codes meaning the operator cleared the halt: every open critical incident resolves."""

_SLACK_ICON = {"warning": ":warning:", "error": ":x:", "critical": ":rotating_light:"}


@dataclass(frozen=True)
class WebhookTarget:
    """One configured destination (its URL and key are secrets: never log them)."""

    kind: WebhookKind
    url: str
    routing_key: str | None = None
    apprise_urls: tuple[str, ...] = ()
    """The apprise lane's URLs (one lane for all of them; ``url`` is empty then)."""


def webhook_targets(
    config: Config, environ: Mapping[str, str]
) -> tuple[list[WebhookTarget], list[str]]:
    """The usable targets, and one problem line per configured-but-unusable one."""
    hooks = config.supervision.notification_webhooks
    targets: list[WebhookTarget] = []
    problems: list[str] = []
    plain: tuple[tuple[WebhookKind, str | None, str | None], ...] = (
        ("slack", hooks.slack, hooks.slack_env),
        ("generic", hooks.generic, hooks.generic_env),
    )
    for kind, value, env_name in plain:
        url = resolve_env(value, env_name, environ)
        if url:
            targets.append(WebhookTarget(kind=kind, url=url))
        elif env_name:
            problems.append(f"{kind}: environment variable {env_name} is not set")
    key = resolve_env(hooks.pagerduty_routing_key, hooks.pagerduty_routing_key_env, environ)
    pd_url = resolve_env(hooks.pagerduty, hooks.pagerduty_env, environ)
    if key:
        targets.append(
            WebhookTarget(kind="pagerduty", url=pd_url or PAGERDUTY_EVENTS_URL, routing_key=key)
        )
    elif pd_url or hooks.pagerduty_env or hooks.pagerduty_routing_key_env:
        missing = hooks.pagerduty_routing_key_env or "pagerduty_routing_key"
        problems.append(f"pagerduty: no routing key ({missing} is not set); PagerDuty disabled")
    if hooks.apprise or hooks.apprise_env:
        from aistock_actors.net.apprise_target import apprise_urls

        urls, apprise_problems = apprise_urls(hooks.apprise, hooks.apprise_env, environ)
        problems.extend(apprise_problems)
        if urls:
            targets.append(WebhookTarget(kind="apprise", url="", apprise_urls=tuple(urls)))
    if hooks.pagerduty_env and not pd_url and key:
        problems.append(
            f"pagerduty: environment variable {hooks.pagerduty_env} is not set; "
            "using PagerDuty's default endpoint"
        )
    return targets, problems


def instance_source() -> str:
    """PagerDuty's ``payload.source``: which machine raised it."""
    return f"aistock-actors@{socket.gethostname()}"


def dedup_key(code: str) -> str:
    """Stable per alert code (and machine), so repeats update one PagerDuty incident."""
    return f"aistock/{socket.gethostname()}/{code}"[:255]


def _mrkdwn(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(alert: Alert) -> dict[str, Any]:
    """A Slack incoming-webhook message: fallback ``text`` plus Block Kit ``blocks``."""
    icon = _SLACK_ICON.get(alert.severity, ":information_source:")
    title = f"{alert.severity.upper()}: {alert.code}"
    details = ", ".join(f"{k}={v}" for k, v in sorted(alert.details.items()))
    context = f"actor `{_mrkdwn(alert.actor)}` · {alert.ts}"
    if details:
        context += f" · {_mrkdwn(details)[:1500]}"
    return {
        "text": f"{icon} [aistock] {title}: {alert.message}"[:3000],
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": f"aistock {title}"[:150]}},
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"{icon} {_mrkdwn(alert.message)}"[:3000]},
            },
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context[:3000]}]},
        ],
    }


def pagerduty_trigger(alert: Alert, routing_key: str) -> dict[str, Any]:
    """A PagerDuty Events API v2 ``trigger`` event for ``alert``."""
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": dedup_key(alert.code),
        "payload": {
            "summary": f"[aistock] {alert.code}: {alert.message}"[:1024],
            "source": instance_source(),
            "severity": alert.severity,
            "timestamp": alert.ts,
            "component": alert.actor,
            "group": "aistock",
            "class": alert.code,
            "custom_details": {"message": alert.message, **alert.details},
        },
    }


def pagerduty_resolve(code: str, routing_key: str) -> dict[str, Any]:
    """A PagerDuty Events API v2 ``resolve`` event for the incident of alert ``code``."""
    return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup_key(code)}


def generic_payload(alert: Alert) -> dict[str, Any]:
    """The alert JSON, exactly as in its ``state/alerts/`` file."""
    out = msgspec.to_builtins(alert)
    assert isinstance(out, dict)
    return out


class IncidentTracker:
    """Which alert codes are *open* (triggered, not yet resolved); thread-safe.

    ``X_recovered`` resolves ``X_failed``; ``kill_switch_deactivated`` and ``operator_resumed``
    (the operator cleared the halt) resolve every open critical code.
    """

    def __init__(self) -> None:
        self._open: dict[str, str] = {}
        self._lock = threading.Lock()

    def observe(self, alert: Alert) -> list[str]:
        """Record ``alert``; return the codes it resolves (sorted)."""
        with self._lock:
            resolved: list[str] = []
            if alert.code in RESOLVE_ALL_CRITICAL:
                resolved = [c for c, sev in self._open.items() if sev == "critical"]
            if alert.code.endswith("_recovered"):
                failed = alert.code.removesuffix("_recovered") + "_failed"
                if failed in self._open:
                    resolved.append(failed)
            for code in resolved:
                self._open.pop(code, None)
            if alert.severity in NOTIFY_SEVERITIES:
                previous = self._open.get(alert.code)
                if previous != "critical":
                    self._open[alert.code] = alert.severity
            return sorted(set(resolved))

    @property
    def open_critical(self) -> int:
        """Open critical incidents."""
        with self._lock:
            return sum(1 for sev in self._open.values() if sev == "critical")

    def open_codes(self) -> dict[str, str]:
        """Open codes and their severity."""
        with self._lock:
            return dict(self._open)
