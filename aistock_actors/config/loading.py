"""Loading the config file: comments stripped, strict decoding, one-line errors, ceiling clamps.

The manual's JSON examples (``//`` comments included) load verbatim. An unknown key or a value out
of range is a :class:`~aistock_actors.errors.ConfigError` whose message names the key path and the
allowed values (read from the Structs of ``config_sections.py``). Values above the hard safety
ceilings are not errors: they are clamped to the ceiling and reported as :class:`Clamp` records,
which the supervisor audit-logs as ``risk_ceiling_clamped``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec

from aistock_actors.config.sections import Config
from aistock_actors.core.risk.ceilings import (
    HARD_CEILING_NOTIONAL_CAP,
    HARD_CEILING_POSITION_FRACTION,
)
from aistock_actors.errors import ConfigError


class Clamp(msgspec.Struct, frozen=True, kw_only=True):
    """A config value that was above a hard ceiling and was lowered to it."""

    key: str
    requested: float
    applied: float


class LoadedConfig(msgspec.Struct, frozen=True, kw_only=True):
    """A decoded config, where it came from, and the ceiling clamps applied to it."""

    config: Config
    path: Path
    base_dir: Path
    clamps: tuple[Clamp, ...] = ()

    def resolve(self, value: str) -> Path:
        """Resolve a config path; relative paths are relative to the working directory at load
        time, as in the manual's runbook (``touch state/KILL_SWITCH`` next to the CLI call)."""
        candidate = Path(value).expanduser()
        return candidate if candidate.is_absolute() else (self.base_dir / candidate).resolve()

    @property
    def state_dir(self) -> Path:
        """Absolute state folder."""
        return self.resolve(self.config.state_dir)

    @property
    def models_dir(self) -> Path:
        """Absolute models folder."""
        return self.resolve(self.config.models_dir)

    @property
    def csv_dir(self) -> Path:
        """Absolute CSV folder."""
        return self.resolve(self.config.data.csv_dir)

    @property
    def integrity_key_file(self) -> Path:
        """Absolute HMAC key file (``security.integrity_key_file``; default beside ``models/``)."""
        configured = self.config.security.integrity_key_file
        if configured is None:
            return self.models_dir.parent / "integrity.key"
        return self.resolve(configured)


def strip_json_comments(text: str) -> str:
    """Remove ``//`` line comments and ``/* */`` block comments outside JSON strings."""
    out: list[str] = []
    i, n = 0, len(text)
    in_string = False
    while i < n:
        ch = text[i]
        if in_string:
            out.append(ch)
            if ch == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 1
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
            out.append(ch)
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end == -1 else end
            continue
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end == -1:
                raise ConfigError("unterminated /* comment */")
            out.append(" ")
            i = end + 2
            continue
        else:
            out.append(ch)
        i += 1
    return "".join(out)


_DECODER = msgspec.json.Decoder(Config)


def parse_config(
    text: str | bytes, *, source: str = "<config>"
) -> tuple[Config, tuple[Clamp, ...]]:
    """Decode config text strictly and clamp values above the hard ceilings."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{source}: not UTF-8 text ({exc.reason})") from None
    try:
        stripped = strip_json_comments(text)
        literal_problem = json_literal_problem(stripped)
        if literal_problem is not None:
            raise ConfigError(literal_problem)
        config = _DECODER.decode(stripped)
    except ConfigError as exc:
        raise ConfigError(_one_line(f"{source}: {exc}")) from None
    except msgspec.ValidationError as exc:
        raise ConfigError(_one_line(f"{source}: {explain_validation_error(str(exc))}")) from None
    except msgspec.DecodeError as exc:
        raise ConfigError(_one_line(f"{source}: not valid JSON: {exc}")) from None
    return apply_hard_ceilings(config)


class _NonFinite:
    """Stands in for a ``NaN`` / ``Infinity`` literal while the config is pre-read."""

    def __init__(self, text: str) -> None:
        self.text = text


_FOUND = "\0problems"


def _paths(key: str, value: Any) -> list[str]:
    """Problems found inside ``value`` (already reduced by :func:`_pairs`), prefixed by ``key``."""
    if isinstance(value, _NonFinite):
        return [f"{key}: {value.text} is not a number JSON allows (use a finite value or null)"]
    if isinstance(value, dict):
        return [f"{key}.{p}" for p in value.get(_FOUND, [])]
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _paths(f"{key}[{i}]", item)]
    return []


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found: list[str] = []
    seen: set[str] = set()
    for key, value in pairs:
        if key in seen:
            found.append(f"{key}: duplicate key (a JSON object may name each key once)")
        seen.add(key)
        found.extend(_paths(key, value))
    return {_FOUND: found}


def json_literal_problem(text: str) -> str | None:
    """The first duplicate key or non-finite literal, by key path (#17), or None.

    Python's JSON reader keeps the last of duplicate keys and accepts ``NaN``; the config does
    neither, and says which key. Anything else that is not JSON is left to the strict decoder.
    """
    try:
        top = json.loads(text, object_pairs_hook=_pairs, parse_constant=_NonFinite)
    except ValueError:
        return None
    found = _paths("$", top)
    if not found:
        return None
    first = found[0].removeprefix("$.").removeprefix("$")
    return first.lstrip(": ") if first.startswith(":") else first


def _one_line(message: str) -> str:
    """Operators get config errors on exactly one line, whatever a key contains."""
    return message.replace("\r", "\\r").replace("\n", "\\n")


def load_config(path: str | Path) -> LoadedConfig:
    """Read, decode and clamp the config file at ``path``."""
    config_path = Path(path).expanduser().resolve()
    try:
        raw = config_path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file: {exc.strerror or exc}") from None
    config, clamps = parse_config(raw, source=str(path))
    loaded = LoadedConfig(config=config, path=config_path, base_dir=Path.cwd(), clamps=clamps)
    check_key_outside_state(loaded, source=str(path))
    return loaded


def check_key_outside_state(loaded: LoadedConfig, *, source: str) -> None:
    """The integrity key must not lie where an attacker who can write state/ or models/ can."""
    key = loaded.integrity_key_file
    for name, folder in (("state_dir", loaded.state_dir), ("models_dir", loaded.models_dir)):
        if key.is_relative_to(folder):
            raise ConfigError(
                f"{source}: security.integrity_key_file: {key} lies inside {name} ({folder}); "
                "keep the key outside the state and models folders"
            )


def apply_hard_ceilings(config: Config) -> tuple[Config, tuple[Clamp, ...]]:
    """Lower every value above a hard ceiling to the ceiling; report each change."""
    clamps: list[Clamp] = []
    risk = config.risk
    headless = config.headless
    checks = (
        ("risk.max_position_fraction", risk.max_position_fraction, HARD_CEILING_POSITION_FRACTION),
        ("risk.max_notional_per_symbol", risk.max_notional_per_symbol, HARD_CEILING_NOTIONAL_CAP),
        ("headless.min_risk_floor", headless.min_risk_floor, HARD_CEILING_POSITION_FRACTION),
    )
    for key, requested, ceiling in checks:
        if requested > ceiling:
            clamps.append(Clamp(key=key, requested=requested, applied=ceiling))
    if not clamps:
        return config, ()
    applied = {c.key: c.applied for c in clamps}
    risk = msgspec.structs.replace(
        risk,
        max_position_fraction=applied.get("risk.max_position_fraction", risk.max_position_fraction),
        max_notional_per_symbol=applied.get(
            "risk.max_notional_per_symbol", risk.max_notional_per_symbol
        ),
    )
    headless = msgspec.structs.replace(
        headless, min_risk_floor=applied.get("headless.min_risk_floor", headless.min_risk_floor)
    )
    return msgspec.structs.replace(config, risk=risk, headless=headless), tuple(clamps)


def explain_validation_error(message: str) -> str:
    """Turn msgspec's ``"... - at `$.a.b`"`` into ``"a.b: ... (allowed: ...)"``."""
    text, sep, where = message.rpartition(" - at `")
    if not sep:
        text, where = message, "$"
    if "` in `" in where:  # a bad mapping key: "key` in `$.allocator.profiles`"
        where = where.split("` in `", 1)[1]
        text = f"bad key: {text}"
    path = where.rstrip("`").removeprefix("$").lstrip(".")
    if text.startswith("Object contains unknown field"):
        field = text.split("`")[1] if "`" in text else "?"
        full = f"{path}.{field}" if path else field
        allowed = _allowed_keys(path)
        return f"{full}: unknown key (allowed keys{' under ' + path if path else ''}: {allowed})"
    hint = _allowed_range(path)
    if hint == "struct" and not text.startswith("Expected"):  # a section's own check failed
        hint = ""
    return f"{path or '(top level)'}: {text}{f' (allowed: {hint})' if hint else ''}"


def _walk(path: str) -> Any:
    info: Any = msgspec.inspect.type_info(Config)
    for part in [p for p in path.split(".") if p]:
        info = _unwrap(info)
        fields = getattr(info, "fields", None)
        if fields is None:
            return None
        name, _, indices = part.partition("[")  # "strategies[0]": an item of a list
        match = [f for f in fields if f.encode_name == name]
        if not match:
            return None
        info = match[0].type
        for _ in range(indices.count("]")):
            info = getattr(_unwrap(info), "item_type", None)
    return info


def _unwrap(info: Any) -> Any:
    if isinstance(info, msgspec.inspect.UnionType):
        for member in info.types:
            if not isinstance(member, msgspec.inspect.NoneType):
                return member
    return info


def _allowed_keys(path: str) -> str:
    info = _unwrap(_walk(path))
    fields = getattr(info, "fields", None)
    return ", ".join(f.encode_name for f in fields) if fields else "none"


def _allowed_range(path: str) -> str:
    info = _unwrap(_walk(path))
    if info is None:
        return ""
    if isinstance(info, msgspec.inspect.DictType):  # only reached for a bad key
        info = info.key_type
    if isinstance(info, msgspec.inspect.LiteralType):
        return " | ".join(repr(v) for v in info.values)
    lower = upper = ""
    for name, symbol in (("ge", ">="), ("gt", ">")):
        value = getattr(info, name, None)
        if value is not None:
            lower = f"{symbol} {value}"
    for name, symbol in (("le", "<="), ("lt", "<")):
        value = getattr(info, name, None)
        if value is not None:
            upper = f"{symbol} {value}"
    kind = type(info).__name__.removesuffix("Type").lower()
    bounds = " and ".join(b for b in (lower, upper) if b)
    return f"{kind} {bounds}".strip() if bounds else kind
