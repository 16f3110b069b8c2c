"""Secret redaction for logs, alerts and the audit log.

The secrets are the configured values that grant access to something: webhook URLs (a Slack
incoming-webhook URL *is* its credential), the PagerDuty routing key, the kill-switch bearer
token, the data provider's API key and secret, and the query string or password of the
kill-switch, health-report and ``data.base_url`` URLs. They are
read from the config and from the environment variables it names, and every occurrence in a
log line, an alert (message and details) or an audit record is replaced by ``***``.

A URL secret is also matched by its path-and-query part alone, because HTTP libraries print
URLs back in their own normalised spelling (``url='http://host/services/T0/B0/xyz'``).

#17: besides those literal values, every URL written in a text is rewritten: its user info (any
length) and query values are masked, and for a host of a configured URL every path segment too
(tokens live in paths). :func:`escape_control` makes control characters visible (``\\x1b``,
``\\n``) in text logs and ``--status``, so a file name cannot forge a log line or drive the
terminal.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from aistock_actors.config import Config

MASK = "***"
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape_control(text: str) -> str:
    """``text`` with every control character shown as an escape (``\\n``, ``\\x1b``)."""
    return _CONTROL.sub(lambda m: _NAMED.get(m.group(), f"\\x{ord(m.group()):02x}"), text)


def mask_url(url: str, secret_hosts: frozenset[str]) -> str:
    """``url`` with user info and query values masked; path segments too for ``secret_hosts``."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rsplit('@', 1)[1]}"
    path = parts.path
    if host.lower() in secret_hosts:
        path = "/".join(MASK if segment else "" for segment in path.split("/"))
    query = "&".join(
        f"{pair.split('=', 1)[0]}={MASK}" if "=" in pair else pair
        for pair in parts.query.split("&")
    ) if parts.query else ""
    rebuilt = f"{parts.scheme}://{netloc}{path}"
    if parts.query:
        rebuilt += f"?{query}"
    if parts.fragment:
        rebuilt += f"#{parts.fragment}"
    return rebuilt
MIN_SECRET_LENGTH = 6
"""Shorter values are not treated as secrets: redacting ``/v2`` everywhere would help nobody."""


def resolve_env(value: str | None, env_name: str | None, environ: Mapping[str, str]) -> str | None:
    """``environ[env_name]`` when that variable is set and non-empty, else ``value``."""
    if env_name:
        from_env = environ.get(env_name, "")
        if from_env:
            return from_env
    return value or None


def _url_variants(url: str) -> list[str]:
    """The whole URL plus its path+query, so a re-rendered URL is still caught."""
    out = [url]
    try:
        parts = urlsplit(url)
    except ValueError:
        return out
    tail = parts.path + (f"?{parts.query}" if parts.query else "")
    if len(tail) > 1:
        out.append(tail)
    return out


def _url_credentials(url: str | None) -> list[str]:
    """Only the credential parts of a non-secret URL: password, query string, query values."""
    if not url:
        return []
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    values = [value for _, value in parse_qsl(parts.query, keep_blank_values=False)]
    return [p for p in (parts.password, parts.query, *values) if p]


def configured_urls(config: Config, environ: Mapping[str, str] | None = None) -> list[str]:
    """Every URL the config names (literal or through an environment variable)."""
    env = os.environ if environ is None else environ
    hooks = config.supervision.notification_webhooks
    urls = [
        resolve_env(hooks.slack, hooks.slack_env, env),
        resolve_env(hooks.generic, hooks.generic_env, env),
        resolve_env(hooks.pagerduty, hooks.pagerduty_env, env),
        config.headless.kill_switch_check_url,
        config.headless.external_health_report_url,
    ]
    return [u for u in urls if u]


def _hosts(urls: Iterable[str]) -> frozenset[str]:
    hosts = set()
    for url in urls:
        try:
            host = urlsplit(url).hostname
        except ValueError:
            continue
        if host:
            hosts.add(host.lower())
    return frozenset(hosts)


def config_secrets(config: Config, environ: Mapping[str, str] | None = None) -> list[str]:
    """Every secret value the config names (literal or through an environment variable)."""
    env = os.environ if environ is None else environ
    hooks = config.supervision.notification_webhooks
    secrets: list[str] = []
    for value, env_name in (
        (hooks.slack, hooks.slack_env),
        (hooks.generic, hooks.generic_env),
        (hooks.pagerduty, hooks.pagerduty_env),
    ):
        url = resolve_env(value, env_name, env)
        if url:
            secrets.append(url)  # the Redactor adds its path-and-query variant
    secrets.extend(u for u in hooks.apprise if u)  # an apprise URL carries its token
    secrets.extend(env[name] for name in hooks.apprise_env if env.get(name))
    key = resolve_env(hooks.pagerduty_routing_key, hooks.pagerduty_routing_key_env, env)
    if key:
        secrets.append(key)
    headless = config.headless
    token = resolve_env(None, headless.kill_switch_token_env, env)
    if token:
        secrets.append(token)
    secrets.extend(_url_credentials(headless.kill_switch_check_url))
    secrets.extend(_url_credentials(headless.external_health_report_url))
    # data.source's API key and secret (only ever named by environment variables)
    for env_name in (config.data.api_key_env, config.data.api_secret_env):
        key = resolve_env(None, env_name, env)
        if key:
            secrets.append(key)
    secrets.extend(_url_credentials(config.data.base_url))
    return secrets


class Redactor:
    """Replaces every known secret in strings, nested dicts/lists, and log records."""

    def __init__(self, secrets: Iterable[str] = (), urls: Iterable[str] = ()) -> None:
        self._secret_hosts = _hosts(urls)
        expanded = [v for s in secrets if s for v in (_url_variants(s) if "://" in s else [s])]
        unique = {s for s in expanded if len(s) >= MIN_SECRET_LENGTH}
        # Longest first, so a URL is masked whole before its path part is considered.
        ordered = sorted(unique, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(s) for s in ordered)) if ordered else None
        self.secret_count = len(ordered)

    @classmethod
    def from_config(cls, config: Config, environ: Mapping[str, str] | None = None) -> Redactor:
        """The redactor of one config (environment read once, at construction)."""
        return cls(config_secrets(config, environ), configured_urls(config, environ))

    def text(self, value: str) -> str:
        """``value`` with every secret replaced by ``***``."""
        if not value:
            return value
        if self._pattern is not None:
            value = self._pattern.sub(MASK, value)
        if "://" in value:
            value = _URL.sub(lambda m: mask_url(m.group(), self._secret_hosts), value)
        return value

    def value(self, obj: Any) -> Any:
        """Redact strings inside any JSON-like value (dict keys included)."""
        if isinstance(obj, str):
            return self.text(obj)
        if isinstance(obj, dict):
            return {self.value(k): self.value(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [self.value(v) for v in obj]
        return obj

    def details(self, details: dict[str, Any]) -> dict[str, Any]:
        """Redact a details mapping (the signature ``AuditLog(redact=...)`` expects)."""
        redacted = self.value(details)
        assert isinstance(redacted, dict)
        return redacted

    def logging_filter(self) -> RedactingFilter:
        """A ``logging.Filter`` applying this redactor to every record it sees."""
        return RedactingFilter(self)


class RedactingFilter(logging.Filter):
    """Rewrites a record's message (and traceback) with the secrets masked; never drops it.

    Installed on *handlers* (a filter on a logger would miss records propagated from child
    loggers). The record is rewritten in place, so every later handler sees the masked text.
    """

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is the logging module's problem, not ours
            return True
        masked = self.redactor.text(message)
        if record.exc_info and record.exc_info[0] is not None:
            trace = self._formatter.formatException(record.exc_info)
            masked_trace = self.redactor.text(trace)
            if masked_trace != trace:
                # Formatters re-render exc_info themselves; fold the masked trace into the text.
                masked = f"{masked}\n{masked_trace}"
                record.exc_info = None
                record.exc_text = None
        if masked != message:
            record.msg = masked
            record.args = ()
        return True

    def install(self) -> None:
        """Attach to every handler of the root logger (those present now)."""
        for handler in logging.getLogger().handlers:
            if self not in handler.filters:
                handler.addFilter(self)

    def uninstall(self) -> None:
        """Detach from every root handler."""
        for handler in logging.getLogger().handlers:
            handler.removeFilter(self)
