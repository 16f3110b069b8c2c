"""Start-up check that no config can silently disable a safety path (#17): the remote kill switch,
the health report and every webhook must be able to send, or the daemon / ``--run-once`` refuses
to start with a :class:`~aistock_actors.errors.ConfigError` naming the keys.

Refused: a URL that is not ``http(s)://host...``; credentials in the kill-switch URL together with
``kill_switch_token_env`` (the HTTP client cannot send both, so every check would fail before it is
sent); an ``*_env`` key naming an environment variable that is not set when nothing else supplies
the value.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from aistock_actors.config.sections import Config
from aistock_actors.errors import ConfigError


def _url_problem(key: str, value: str) -> str | None:
    try:
        url = urlsplit(value)
        host = url.hostname
        _ = url.port  # a non-numeric port raises here
    except ValueError:
        return f"{key}: not a valid URL"
    if url.scheme not in ("http", "https") or not host or any(c.isspace() for c in value):
        return f"{key}: not an http(s) URL with a host"
    return None


def safety_path_problems(config: Config, environ: Mapping[str, str]) -> list[str]:
    """Every reason a configured safety path could never send (empty: all can)."""
    problems: list[str] = []
    headless = config.headless
    hooks = config.supervision.notification_webhooks

    def resolved(key: str, value: str | None, env_key: str, env_name: str | None) -> str | None:
        if env_name:
            found = environ.get(env_name)
            if found:
                return found
            if not value:
                problems.append(f"{env_key}: environment variable {env_name} is not set and "
                                f"{key} is empty, so nothing could be sent")
        return value

    urls = [
        ("headless.kill_switch_check_url", headless.kill_switch_check_url),
        ("headless.external_health_report_url", headless.external_health_report_url),
    ]
    prefix = "supervision.notification_webhooks"
    for name in ("slack", "generic", "pagerduty"):
        value = resolved(f"{prefix}.{name}", getattr(hooks, name), f"{prefix}.{name}_env",
                         getattr(hooks, f"{name}_env"))
        urls.append((f"{prefix}.{name}", value))
    resolved(f"{prefix}.pagerduty_routing_key", hooks.pagerduty_routing_key,
             f"{prefix}.pagerduty_routing_key_env", hooks.pagerduty_routing_key_env)
    for key, value in urls:
        problem = _url_problem(key, value) if value else None
        if problem:
            problems.append(problem)
    kill_url = headless.kill_switch_check_url
    token_env = headless.kill_switch_token_env
    if kill_url and token_env:
        if not environ.get(token_env):
            problems.append(f"headless.kill_switch_token_env: environment variable {token_env} is "
                            "not set, so every remote kill-switch check would fail")
        if _url_problem("", kill_url) is None and "@" in urlsplit(kill_url).netloc:
            problems.append("headless.kill_switch_check_url carries credentials and "
                            "headless.kill_switch_token_env adds a bearer token: they cannot be "
                            "sent together, so every check would fail; use one of them")
    return problems


def check_safety_paths(config: Config, environ: Mapping[str, str]) -> None:
    """Raise :class:`ConfigError` listing every problem of :func:`safety_path_problems`."""
    problems = safety_path_problems(config, environ)
    if problems:
        raise ConfigError("a safety path could never send: " + "; ".join(problems))
