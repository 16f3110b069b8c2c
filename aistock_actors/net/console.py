"""The operator console: a web page at ``/`` and its JSON API, on the monitoring server.

Served by the same aiohttp application as ``/healthz`` (same port, same network thread), with
nothing from a CDN: the page, its script and its style are package data
(``aistock_actors/net/console_static/``) and the equity chart is drawn as inline SVG.

- ``GET /`` (and ``/console.js``, ``/console.css``): the page; it polls ``/api/status``.
- ``GET /api/status``: the same object as ``--status --json``.
- ``GET /api/console``: whether control is enabled and the paper equity curve (for the chart).
- ``POST /api/kill``, ``/api/unkill``, ``/api/resume``, ``/api/approve/{id}``,
  ``/api/reject/{id}``, ``/api/ack/{id|all}``: the CLI's operator commands, audited with actor
  ``web``. Each needs ``Authorization: Bearer <token>``, the token being the value of the
  environment variable named by ``monitoring.control_token_env``; without one configured the
  console is read-only (403). A missing or wrong token is 401, a GET 405, a malformed or
  oversized body 400/413, an unknown id 404; a refused action 409. A refused request changes
  nothing.

The operator commands read and write state files; they run in a worker thread so the network
loop keeps serving ``/healthz`` meanwhile.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import re
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any

import msgspec
from aiohttp import web

from aistock_actors.config import LoadedConfig
from aistock_actors.errors import HaltedError, ModelIntegrityError, StateError
from aistock_actors.runtime.clock import Clock

MAX_BODY_BYTES = 4096
"""Largest control request body accepted (413 beyond)."""
log = logging.getLogger(__name__)
MAX_CURVE_POINTS = 400
"""The equity curve sent to the page is thinned to at most this many points."""
ID_PATTERN = re.compile(r"[A-Za-z0-9_.:@+\-]{1,200}")
"""What a manifest entry, risk change or alert id may look like."""
WEB = "web"
"""The audit actor of every console action."""
STATIC = {"/": ("index.html", "text/html"), "/console.js": ("console.js", "text/javascript"),
          "/console.css": ("console.css", "text/css")}


class ControlBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The optional JSON body of a control request."""

    note: str = ""
    """Free text kept in the audit record (at most 200 characters)."""


class ControlOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """A control action's answer."""

    ok: bool
    action: str
    message: str


def _json(status: int, **body: Any) -> web.Response:
    return web.Response(status=status, body=msgspec.json.encode(body),
                        content_type="application/json")


def _error(status: int, message: str) -> web.Response:
    return _json(status, ok=False, error=message)


class Console:
    """The console's routes over one config; see the module docstring."""

    def __init__(self, loaded: LoadedConfig, environ: Mapping[str, str], clock: Clock) -> None:
        self.loaded = loaded
        self.environ = environ
        self.clock = clock

    # --- read side ---------------------------------------------------------------------------

    def token(self) -> str | None:
        """The control token (None: read-only console)."""
        name = self.loaded.config.monitoring.control_token_env
        value = self.environ.get(name) if name else None
        return value or None

    async def page(self, request: web.Request) -> web.Response:
        name, kind = STATIC[request.path]
        text = resources.files("aistock_actors.net").joinpath("console_static", name).read_text(
            encoding="utf-8")
        return web.Response(text=text, content_type=kind,
                            headers={"Cache-Control": "no-store",
                                     "Content-Security-Policy": "default-src 'self'; "
                                     "img-src 'self' data:; style-src 'self'"})

    async def status(self, _request: web.Request) -> web.Response:
        from aistock_actors.services import operator_actions as operator

        st = await asyncio.to_thread(operator.status, self.loaded, self.clock)
        return web.Response(body=msgspec.json.encode(st), content_type="application/json",
                            headers={"Cache-Control": "no-store"})

    async def console_info(self, _request: web.Request) -> web.Response:
        curve = await asyncio.to_thread(self._equity_curve)
        return _json(200, control=self.token() is not None, equity_curve=curve,
                     control_token_env=self.loaded.config.monitoring.control_token_env)

    def _equity_curve(self) -> list[list[Any]]:
        from aistock_actors.store.ledger import PaperStore

        store = PaperStore(self.loaded.state_dir, None, 0.0)
        if not store.ledger_path.exists():
            return []
        ledger = store.load_ledger()
        try:
            curve = store.equity.curve_since(0, ledger)  # archived points too (#18)
        except StateError as exc:  # a damaged archive file: the ledger's window, and say so
            log.warning("console chart: %s; showing the ledger's newest points only", exc)
            curve = list(ledger.equity_curve)
        step = max(1, -(-len(curve) // MAX_CURVE_POINTS))
        thinned = list(curve[::step])
        if curve and thinned[-1] != curve[-1]:
            thinned.append(curve[-1])
        return [[ts, value] for ts, value in thinned]

    # --- control -----------------------------------------------------------------------------

    async def _guard(self, request: web.Request) -> web.Response | ControlBody:
        """Authorise and parse a control request: the body, or the refusal to send."""
        token = self.token()
        if token is None:
            return _error(403, "the console is read-only: set monitoring.control_token_env to "
                               "the name of an environment variable holding a token")
        given = request.headers.get("Authorization", "")
        if not given.startswith("Bearer "):
            return web.Response(status=401, body=msgspec.json.encode(
                {"ok": False, "error": "missing 'Authorization: Bearer <token>' header"}),
                content_type="application/json", headers={"WWW-Authenticate": "Bearer"})
        if not hmac.compare_digest(given[7:].strip().encode(), token.encode()):
            return web.Response(status=401, body=msgspec.json.encode(
                {"ok": False, "error": "wrong control token"}),
                content_type="application/json", headers={"WWW-Authenticate": "Bearer"})
        if (request.content_length or 0) > MAX_BODY_BYTES:
            return _error(413, f"request body too large: {request.content_length} bytes "
                               f"(limit {MAX_BODY_BYTES})")
        raw = await request.content.read(MAX_BODY_BYTES + 1)
        if len(raw) > MAX_BODY_BYTES:
            return _error(413, f"request body too large (limit {MAX_BODY_BYTES} bytes)")
        if not raw.strip():
            return ControlBody()
        try:
            body = msgspec.json.decode(raw, type=ControlBody)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return _error(400, f"malformed request body (expected a JSON object with an "
                               f"optional 'note'): {exc}")
        if len(body.note) > 200:
            return _error(400, "malformed request body: 'note' is longer than 200 characters")
        return body

    def _handler(
        self, name: str, act: Callable[[str], tuple[int, str]], with_id: bool
    ) -> Callable[[web.Request], Any]:
        async def handle(request: web.Request) -> web.Response:
            guarded = await self._guard(request)
            if isinstance(guarded, web.Response):
                return guarded
            target = request.match_info.get("id", "") if with_id else ""
            if with_id and ID_PATTERN.fullmatch(target) is None:
                return _error(400, f"malformed id {target[:80]!r}: letters, digits and "
                                   "_ . : @ + - only, at most 200")
            code, message = await asyncio.to_thread(act, target)
            outcome = ControlOutcome(ok=code == 200, action=name, message=message)
            return web.Response(status=code, body=msgspec.json.encode(outcome),
                                content_type="application/json")

        return handle

    def add_routes(self, app: web.Application) -> None:
        """Register the page, the API and the control endpoints on ``app``."""
        for path in STATIC:
            app.router.add_get(path, self.page)
        app.router.add_get("/api/status", self.status)
        app.router.add_get("/api/console", self.console_info)
        for name, act, with_id in (
            ("kill", self._kill, False), ("unkill", self._unkill, False),
            ("resume", self._resume, False), ("approve", self._approve, True),
            ("reject", self._reject, True), ("ack", self._ack, True),
        ):
            path = f"/api/{name}/{{id}}" if with_id else f"/api/{name}"
            app.router.add_post(path, self._handler(name, act, with_id))

    # --- the actions (worker thread) ---------------------------------------------------------

    def _kill(self, _target: str) -> tuple[int, str]:
        from aistock_actors.services import operator_actions as operator

        return 200, operator.kill(self.loaded, WEB)

    def _unkill(self, _target: str) -> tuple[int, str]:
        from aistock_actors.services import operator_actions as operator

        message, still_halted = operator.unkill(self.loaded, WEB)
        return (409 if still_halted else 200), message

    def _resume(self, _target: str) -> tuple[int, str]:
        from aistock_actors.services import operator_actions as operator

        message, ok = operator.resume(self.loaded, WEB)
        return (200 if ok else 409), message

    def _approve(self, target: str) -> tuple[int, str]:
        return self._decide(target, approve=True)

    def _reject(self, target: str) -> tuple[int, str]:
        return self._decide(target, approve=False)

    def _decide(self, target: str, *, approve: bool) -> tuple[int, str]:
        from aistock_actors.services import promotion_decisions as promotion_ops
        from aistock_actors.services import risk_decisions as trading_ops

        if trading_ops.is_risk_id(target):
            message, ok = trading_ops.decide_risk(self.loaded, target, approve=approve, actor=WEB)
            return (200 if ok else 404), message
        try:
            return 200, promotion_ops.decide(self.loaded, target, approve=approve,
                                             clock=self.clock, actor=WEB)
        except ValueError as exc:
            return (404 if "no manifest entry" in str(exc) else 409), str(exc)
        except (HaltedError, ModelIntegrityError) as exc:
            return 409, str(exc)

    def _ack(self, target: str) -> tuple[int, str]:
        from aistock_actors.services import operator_actions as operator

        try:
            return 200, operator.ack(self.loaded, target, WEB, self.clock)
        except KeyError as exc:
            return 404, str(exc.args[0])
